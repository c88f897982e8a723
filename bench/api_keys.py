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

`STORE=redis` keeps the keys in Better-Auth's secondary storage instead (the plugin's
`storage: "secondary-storage"`): a private redis-server (started here, no persistence) holds
them as the plugin writes them, both servers run with `SESSION_STORE=redis` and
`API_KEY_STORAGE=secondary-storage`, and Redis's CPU per request is reported too (the JWT
yardstick is left out: its sessions are in the table).

Knobs: USERS=10000 KEYS=1000 DURATION=10 WARMUP=2 CONNECTIONS=64 TRIALS=1 KINDS=unlimited,rate-limit,quota
SERVERS=warden,better-auth STORE=database PORT_BASE=18200 BENCH_DATABASE=warden_bench_api_keys KEEP_DB=0
OUT=bench/RESULTS-api-keys.md (STORE=redis: bench/RESULTS-api-keys-redis.md), WARDEN_BIN (else cargo
build --release). Needs wrk, PostgreSQL, node with auth-server/node_modules; redis-server and
redis-cli with STORE=redis.
"""
import json
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
import common  # noqa: E402  (a private redis-server)
from common import (ROOT, PgCpu, auth_server_ready, build_warden, cpu_ticks, drop_db, env_list,  # noqa: E402
                    http_json, knobs, loadavg, log, machine, need_wrk, raise_nofile, require_free, stop,
                    ticks_to_us)

KINDS = env_list("KINDS", "unlimited,rate-limit,quota")
SERVERS = env_list("SERVERS", "warden,better-auth")
STORE = os.environ.get("STORE", "database")
if STORE not in ("database", "redis"):
    raise SystemExit(f"STORE must be database or redis, got {STORE!r}")
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "RESULTS-api-keys.md" if STORE == "database"
                                         else "RESULTS-api-keys-redis.md"))
REDIS_PORT = int(os.environ["PORT_BASE"]) + 90
REDIS_ENV = {"SESSION_STORE": "redis", "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}",
             "API_KEY_STORAGE": "secondary-storage"}
BIG = 1_000_000_000
KIND_SQL = {
    "unlimited": ("NULL", "false", "NULL", "NULL"),
    "rate-limit": ("NULL", "true", "86400000", str(BIG)),
    "quota": (str(BIG), "false", "NULL", "NULL"),
}


def stored(key):
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")


def start_redis():
    return common.start_redis(REDIS_PORT, os.path.join(ba.WORK, "redis.log"))


def seed_redis(values):
    """The keys as the plugin's createApiKey writes them to secondary storage: the value under its
    hash and its id, and each owner's list."""
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    lines, owners = [], {}
    sql_value = lambda v: None if v == "NULL" else (v == "true" if v in ("true", "false") else int(v))  # noqa: E731
    for kind, i, key in values:
        remaining, enabled, window, top = KIND_SQL[kind]
        value = {"configId": "default", "createdAt": created, "updatedAt": created, "name": None, "prefix": None,
                 "start": key[:6], "key": stored(key), "enabled": True, "expiresAt": None, "referenceId": f"u{i}",
                 "lastRefillAt": None, "lastRequest": None, "metadata": None, "rateLimitMax": sql_value(top),
                 "rateLimitTimeWindow": sql_value(window), "remaining": sql_value(remaining), "refillAmount": None,
                 "refillInterval": None, "rateLimitEnabled": sql_value(enabled), "requestCount": 0,
                 "id": f"{kind}-{i}"}
        text = json.dumps(value, separators=(",", ":"))
        lines.append(common.redis_resp("SET", f"better-auth:api-key:{stored(key)}", text))
        lines.append(common.redis_resp("SET", f"better-auth:api-key:by-id:{kind}-{i}", text))
        owners.setdefault(i, []).append(f"{kind}-{i}")
    for i, key_ids in owners.items():
        lines.append(common.redis_resp("SET", f"better-auth:api-key:by-ref:u{i}", json.dumps(key_ids, separators=(",", ":"))))
    common.redis_pipe(REDIS_PORT, lines)
    log(f"  {len(values):,} keys written to Redis")


def seed_keys(url, ids):
    """KEYS keys per kind, one per sampled user: {kind: [key, ...]} in the order of ids."""
    rng = random.Random(7)
    keys, rows, values = {}, [], []
    for kind in KINDS:
        remaining, enabled, window, top = KIND_SQL[kind]
        keys[kind] = []
        for i in ids:
            key = "".join(rng.choice(string.ascii_letters) for _ in range(64))
            keys[kind].append(key)
            values.append((kind, i, key))
            rows.append(f"('{kind}-{i}', 'default', 'u{i}', '{key[:6]}', '{stored(key)}', {enabled}, {window}, "
                        f"{top}, 0, {remaining}, now(), now())")
    if STORE == "redis":
        seed_redis(values)
        return keys
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
    redis_proc = start_redis() if STORE == "redis" else None
    keys = seed_keys(url, ids)

    log("Better-Auth: a JWT per session and the JWKS, for warden's yardstick")
    proc = ba.start_better_auth(url, {}, "tokens")
    try:
        jwts = ba.fetch_jwts(ids)
        _, _, jwks = http_json("GET", f"{ba.BA_URL}/api/auth/jwks")
    finally:
        stop(proc)
    jwks_server = ba.serve_jwks(json.dumps(jwks).encode())
    results = {}
    store_env = REDIS_ENV if STORE == "redis" else {}
    try:
        for server in SERVERS:
            if server == "warden":
                os.environ.update(store_env, API_KEYS_AS_USERS="true")
                proc = ba.start_warden(url)
            else:
                proc = ba.start_better_auth(url, {"API_KEY_SESSIONS": "1", **store_env}, "api-keys")
            try:
                kinds = KINDS + (["jwt"] if server == "warden" and STORE == "database" else [])
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
                        redis_before = cpu_ticks(redis_proc.pid) if redis_proc else 0
                        r = ba.measure(proc, base, path, header, values_file, connections, pg_cpu)
                        if redis_proc:
                            spent = ticks_to_us(cpu_ticks(redis_proc.pid) - redis_before)
                            r["redis_us"] = spent / max(1, r["requests"] * ba.TRIALS)
                            log(f"  Redis {r['redis_us']:.1f} µs/req")
                        results[(server, kind, connections)] = r
                    check(server, kind, ids, values)
            finally:
                stop(proc)
    finally:
        jwks_server.shutdown()
        if redis_proc:
            stop(redis_proc)
        if os.environ.get("KEEP_DB", "0") != "1":
            drop_db(ba.DB)
    text = report(results, started, load_at_start)
    print(text)
    with open(OUT, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(OUT, ROOT)}")


def report(results, started, load_at_start):
    cmd = " ".join(filter(None, [knobs(["USERS", "KEYS", "DURATION", "WARMUP", "CONNECTIONS", "TRIALS", "KINDS",
                                        "SERVERS", "STORE"]), "python3 bench/api_keys.py"]))
    redis = STORE == "redis"
    title = " (keys in Redis, `API_KEY_STORAGE=secondary-storage`)" if redis else ""
    lines = [
        f"## API keys: warden `GET /users/me` vs Better-Auth `get-session`, with `x-api-key`{title}",
        "",
        f"Command: `{cmd}` (USERS={ba.USERS}, KEYS={len(ba.sample_ids())} per kind, DURATION={ba.DURATION} s). "
        f"Measured {started} on {machine()}; load average {load_at_start} at the start. One server at a time; "
        "the servers, PostgreSQL and wrk share the machine.",
        "",
        "| kind | connections | warden req/s | p99 ms | CPU µs/req | PG µs/req | " + ("Redis µs/req | " if redis else "")
        + "Better-Auth req/s | p99 ms | CPU µs/req | PG µs/req | " + ("Redis µs/req | " if redis else "")
        + "warden ÷ Better-Auth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if redis else ""),
    ]
    for kind in KINDS + ([] if redis else ["jwt"]):
        for c in ba.CONNECTIONS:
            w, b = results.get(("warden", kind, c)), results.get(("better-auth", kind, c))
            cell = lambda r: ((f"{r['rps']:,.0f} | {r['p99'] / 1000:.2f} | {r['cpu_us']:.0f} | {r['pg_us']:.0f}"  # noqa: E731
                               + (f" | {r['redis_us']:.1f}" if redis else ""))
                              if r else "– | – | – | –" + (" | –" if redis else ""))
            ratio = f"{w['rps'] / b['rps']:.1f}×" if w and b and b["rps"] else "–"
            name = "cached JWT (yardstick)" if kind == "jwt" else kind
            lines.append(f"| {name} | {c} | {cell(w)} | {cell(b)} | {ratio} |")
    errors = {k: r["errors"] for k, r in results.items() if r["errors"]}
    lines += ["", f"Errors: {errors or 'none'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
