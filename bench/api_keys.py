#!/usr/bin/env python3
"""API keys: warden's `GET /users/me` with `x-api-key` side by side with the path a Node app
would take through Better-Auth (`get-session` with the key, the api-key plugin's
`enableSessionForAPIKeys`, which runs its `verifyApiKey` and reads the owner), on the same
database and machine, one command:

    python3 bench/api_keys.py
    DURATION=3 KEYS=200 python3 bench/api_keys.py      # a smoke run

It seeds USERS users with a session each and, per kind, KEYS keys of those users written as the
plugin writes them (64 random letters, `key` = base64url(SHA-256) without padding):

- `unlimited`: no quota, rate limiting off on the key: nothing to count, so warden keeps the
  row cached (dropped by a notification on any change) and stamps a use at most once a second;
- `rate-limit`: the plugin's rate limit on (window 1 day, max 10^9: never reached, but every
  request counts in the row, as with the plugin's defaults);
- `quota`: `remaining` 10^9, rate limiting off: every request decrements it.

Then, one server at a time, at CONNECTIONS: warden (`API_KEYS_AS_USERS=true`, defaults
otherwise) and Better-Auth (`auth-server/`, `API_KEY_SESSIONS=1`, its rate limiter off), each
kind; and warden with cached JWTs of the same users (`jwt`), the yardstick for keys that count
nothing. Requests/s, p50/p99, the server's CPU per request and PostgreSQL's.

Knobs: USERS=10000 KEYS=1000 DURATION=10 WARMUP=2 CONNECTIONS=64 TRIALS=1 KINDS=unlimited,rate-limit,quota
SERVERS=warden,better-auth PORT_BASE=18200 BENCH_DATABASE=warden_bench_api_keys KEEP_DB=0
OUT=bench/RESULTS-api-keys.md, WARDEN_BIN (else cargo build --release). Needs wrk, PostgreSQL,
node with auth-server/node_modules.
"""
import base64
import hashlib
import os
import random
import string
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PORT_BASE", "18200")
os.environ.setdefault("BENCH_DATABASE", "warden_bench_api_keys")
os.environ.setdefault("USERS", "10000")
os.environ.setdefault("TOKENS", os.environ.get("KEYS", "1000"))
os.environ.setdefault("CONNECTIONS", "64")
import better_auth as ba  # noqa: E402  (its servers, seeding and measuring, with the knobs above)
from common import (ROOT, PgCpu, auth_server_ready, build_warden, drop_db, env_list, http_json,  # noqa: E402
                    knobs, loadavg, log, machine, need_wrk, raise_nofile, require_free, stop)

KINDS = env_list("KINDS", "unlimited,rate-limit,quota")
SERVERS = env_list("SERVERS", "warden,better-auth")
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "RESULTS-api-keys.md"))
BIG = 1_000_000_000
KIND_SQL = {
    "unlimited": ("NULL", "false", "NULL", "NULL"),
    "rate-limit": ("NULL", "true", "86400000", str(BIG)),
    "quota": (str(BIG), "false", "NULL", "NULL"),
}


def stored(key):
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")


def seed_keys(url, ids):
    """KEYS keys per kind, one per sampled user: {kind: [key, ...]} in the order of ids."""
    rng = random.Random(7)
    keys, rows = {}, []
    for kind in KINDS:
        remaining, enabled, window, top = KIND_SQL[kind]
        keys[kind] = []
        for i in ids:
            key = "".join(rng.choice(string.ascii_letters) for _ in range(64))
            keys[kind].append(key)
            rows.append(f"('{kind}-{i}', 'default', 'u{i}', '{key[:6]}', '{stored(key)}', {enabled}, {window}, "
                        f"{top}, 0, {remaining}, now(), now())")
    sql = ("INSERT INTO apikey (id, config_id, reference_id, start, key, rate_limit_enabled, "
           "rate_limit_time_window, rate_limit_max, request_count, remaining, created_at, updated_at) VALUES "
           + ",".join(rows) + "; ANALYZE apikey;")
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"], input=sql, text=True, check=True)
    return keys


def check(server, kind, ids, keys):
    """Every key (or token) once, one at a time: each answers 200 for its user. (This is also
    each key's first use: warden reads the row of a key it has not seen as dear work, which an
    address pays for with its refused-credential attempts; a key seen before is not.)"""
    base, path = (ba.WARDEN_URL, "/users/me") if server == "warden" else (ba.BA_URL, "/api/auth/get-session")
    for i, key in zip(ids, keys):
        headers = {"x-api-key": key} if kind != "jwt" else {"authorization": key}
        status, _, body = http_json("GET", base + path, headers=headers)
        user = (body or {}).get("id") if server == "warden" else ((body or {}).get("user") or {}).get("id")
        if status != 200 or user != f"u{i}":
            raise SystemExit(f"{server} {kind}: {path} for u{i} answered {status} {str(body)[:300]}")


def main():
    need_wrk()
    auth_server_ready()
    raise_nofile()
    require_free(ba.BA_PORT, ba.WARDEN_PORT, ba.JWKS_PORT, ba.METRICS_PORT)
    os.makedirs(ba.WORK, exist_ok=True)
    started, load_at_start = time.strftime("%Y-%m-%d %H:%M"), loadavg()
    build_warden(ba.WORK)
    url = ba.seed()
    pg_cpu = PgCpu(url, ba.DB)
    ids = ba.sample_ids()
    keys = seed_keys(url, ids)

    log("Better-Auth: a JWT per session and the JWKS, for warden's yardstick")
    proc = ba.start_better_auth(url, {}, "tokens")
    try:
        jwts = ba.fetch_jwts(ids)
        _, _, jwks = http_json("GET", f"{ba.BA_URL}/api/auth/jwks")
    finally:
        stop(proc)
    jwks_server = ba.serve_jwks(__import__("json").dumps(jwks).encode())
    results = {}
    try:
        for server in SERVERS:
            if server == "warden":
                os.environ["API_KEYS_AS_USERS"] = "true"
                proc = ba.start_warden(url)
            else:
                proc = ba.start_better_auth(url, {"API_KEY_SESSIONS": "1"}, "api-keys")
            try:
                kinds = KINDS + (["jwt"] if server == "warden" else [])
                for kind in kinds:
                    values = [f"Bearer {t}" for t in jwts] if kind == "jwt" else keys[kind]
                    header = "authorization" if kind == "jwt" else "x-api-key"
                    values_file = ba.write_values(f"{server}-{kind}.txt", values)
                    base, path = (ba.WARDEN_URL, "/users/me") if server == "warden" else \
                        (ba.BA_URL, "/api/auth/get-session")
                    check(server, kind, ids, values)
                    log(f"{server} {kind}")
                    if ba.WARMUP:
                        ba.wrk(base, path, header, values_file, 64, ba.WARMUP, ba.WRK_TIMEOUT)
                    for connections in ba.CONNECTIONS:
                        results[(server, kind, connections)] = ba.measure(proc, base, path, header, values_file,
                                                                          connections, pg_cpu)
                    check(server, kind, ids, values)
            finally:
                stop(proc)
    finally:
        jwks_server.shutdown()
        if os.environ.get("KEEP_DB", "0") != "1":
            drop_db(ba.DB)
    text = report(results, started, load_at_start)
    print(text)
    with open(OUT, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(OUT, ROOT)}")


def report(results, started, load_at_start):
    cmd = " ".join(filter(None, [knobs(["USERS", "KEYS", "DURATION", "WARMUP", "CONNECTIONS", "TRIALS", "KINDS",
                                        "SERVERS"]), "python3 bench/api_keys.py"]))
    lines = [
        "## API keys: warden `GET /users/me` vs Better-Auth `get-session`, with `x-api-key`",
        "",
        f"Command: `{cmd}` (USERS={ba.USERS}, KEYS={len(ba.sample_ids())} per kind, DURATION={ba.DURATION} s). "
        f"Measured {started} on {machine()}; load average {load_at_start} at the start. One server at a time; "
        "the servers, PostgreSQL and wrk share the machine.",
        "",
        "| kind | connections | warden req/s | p99 ms | CPU µs/req | PG µs/req | Better-Auth req/s | p99 ms | "
        "CPU µs/req | PG µs/req | warden ÷ Better-Auth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS + ["jwt"]:
        for c in ba.CONNECTIONS:
            w, b = results.get(("warden", kind, c)), results.get(("better-auth", kind, c))
            cell = lambda r: (f"{r['rps']:,.0f} | {r['p99'] / 1000:.2f} | {r['cpu_us']:.0f} | {r['pg_us']:.0f}"  # noqa: E731
                              if r else "– | – | – | –")
            ratio = f"{w['rps'] / b['rps']:.1f}×" if w and b and b["rps"] else "–"
            name = "cached JWT (yardstick)" if kind == "jwt" else kind
            lines.append(f"| {name} | {c} | {cell(w)} | {cell(b)} | {ratio} |")
    errors = {k: r["errors"] for k, r in results.items() if r["errors"]}
    lines += ["", f"Errors: {errors or 'none'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
