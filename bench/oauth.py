#!/usr/bin/env python3
"""OAuth access tokens through warden's forward auth (`GET /auth/verify`), beside the session
JWT they are measured against, on one machine, one command:

    python3 bench/oauth.py
    DURATION=3 python3 bench/oauth.py          # a smoke run

It seeds USERS users with a session each and an OAuth client, signs tokens as Better-Auth
signs them (one Ed25519 key, its JWKS served here) for TOKENS of those users, and measures,
one kind at a time, warden (RESOURCE_URL set, defaults otherwise) at CONNECTIONS:

- `session-jwt`: the user's session JWT (`sid`), the yardstick, at `/auth/verify` (a location
  for people); every other kind at `/auth/verify?scope=notes:read` (one for OAuth clients);
- `access-jwt`: a JWT access token (`typ: at+jwt`, `aud` the resource, `sid`, scopes), as the
  OAuth provider issues it for a named resource;
- `access-opaque`: an opaque access token (32 letters, its row in `oauth_access_token`);
- `dpop`: a DPoP-bound JWT access token (`cnf.jkt`) sent as `Authorization: DPoP` with a fresh
  ES256 proof every request (made beforehand, each used once, `bench/dpop.lua`): the token is
  cached like any other, the proof's signature is checked every time;
- `bearer-same-token`: the same bound tokens' unbound twins as Bearer, for the DPoP
  comparison on equal footing.

Every token is checked once before its run (200, its user). Requests/s, p50/p99, warden's CPU
per request, errors.

Knobs: USERS=10000 TOKENS=1000 DURATION=10 WARMUP=2 CONNECTIONS=64 KINDS=session-jwt,access-jwt,
access-opaque,bearer-same-token,dpop PROOFS_PER_SEC=25000 (DPoP proofs made per second of a run)
PORT_BASE=18230 BENCH_DATABASE=warden_bench_oauth KEEP_DB=0 OUT=bench/RESULTS-oauth.md
WARDEN_BIN (else cargo build --release). Needs wrk, PostgreSQL, python3-cryptography (installed
with pip when missing).
"""
import base64
import hashlib
import importlib.util
import json
import os
import random
import string
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PORT_BASE", "18230")
os.environ.setdefault("BENCH_DATABASE", "warden_bench_oauth")
os.environ.setdefault("USERS", "10000")
os.environ.setdefault("TOKENS", "1000")
os.environ.setdefault("CONNECTIONS", "64")
import better_auth as ba  # noqa: E402  (seeding, the JWKS server, warden's start, measuring)
from common import (ROOT, build_warden, cpu_ticks, drop_db, env_int, env_list, http_json,  # noqa: E402
                    knobs, loadavg, log, machine, need_wrk, raise_nofile, require_free, stop,
                    ticks_to_us)

KINDS = env_list("KINDS", "session-jwt,access-jwt,access-opaque,bearer-same-token,dpop")
PROOFS_PER_SEC = env_int("PROOFS_PER_SEC", 25_000)
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "RESULTS-oauth.md"))
RESOURCE = "https://api.bench.test"
PATH = "/notes"
CLIENT = "bench-client"


def crypto():
    if importlib.util.find_spec("cryptography") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "cryptography"], check=True)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return hashes, ec, ed25519, decode_dss_signature, Encoding, PublicFormat


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header, claims, sign):
    signing_input = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing_input + "." + b64(sign(signing_input.encode()))


class Signer:
    """Better-Auth's signing key (Ed25519) and the client's DPoP key (ES256)."""

    def __init__(self):
        hashes, ec, ed25519, decode_dss, Encoding, PublicFormat = crypto()
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.kid = "bench-oauth-" + os.urandom(6).hex()
        x = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(x), "alg": "EdDSA", "kid": self.kid}]}
        self.dpop = ec.generate_private_key(ec.SECP256R1())
        numbers = self.dpop.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
                    "y": b64(numbers.y.to_bytes(32, "big"))}
        canonical = json.dumps({k: self.jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        self.jkt = b64(hashlib.sha256(canonical.encode()).digest())
        self._ec, self._hashes, self._decode = ec, hashes, decode_dss

    def token(self, claims, typ=None):
        header = {"alg": "EdDSA", "kid": self.kid}
        if typ:
            header["typ"] = typ
        return compact(header, claims, self.key.sign)

    def proof(self, url, token, jti):
        def sign(data):
            r, s = self._decode(self.dpop.sign(data, self._ec.ECDSA(self._hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        claims = {"jti": jti, "htm": "GET", "htu": url, "iat": int(time.time()),
                  "ath": b64(hashlib.sha256(token.encode()).digest())}
        return compact({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}, claims, sign)


def tokens(signer, ids):
    """{kind: [header value, ...]} for the sampled users; opaque rows inserted."""
    now = int(time.time())
    issuer = ba.BA_URL
    out = {k: [] for k in ("session-jwt", "access-jwt", "access-opaque", "bearer-same-token", "dpop-token")}
    rows = []
    rng = random.Random(11)
    for i in ids:
        base = {"sub": f"u{i}", "iat": now, "exp": now + 3600, "sid": f"s{i}"}
        out["session-jwt"].append("Bearer " + signer.token(dict(base, iss=issuer, aud=issuer, id=f"u{i}")))
        access = dict(base, iss=f"{issuer}/api/auth", aud=RESOURCE, client_id=CLIENT, azp=CLIENT,
                      scope="notes:read notes:write", jti=f"at-{i}")
        out["access-jwt"].append("Bearer " + signer.token(access, "at+jwt"))
        out["bearer-same-token"].append("Bearer " + signer.token(dict(access, jti=f"twin-{i}"), "at+jwt"))
        out["dpop-token"].append(signer.token(dict(access, jti=f"bound-{i}", cnf={"jkt": signer.jkt}), "at+jwt"))
        opaque = "".join(rng.choice(string.ascii_letters) for _ in range(32))
        out["access-opaque"].append("Bearer " + opaque)
        stored = b64(hashlib.sha256(opaque.encode()).digest())
        rows.append(f"('oat-{i}', '{stored}', '{CLIENT}', 's{i}', 'u{i}', '[\"notes:read\",\"notes:write\"]', "
                    "now() + interval '1 hour', now())")
    return out, rows


def seed_oauth(url, rows):
    sql = f"""INSERT INTO oauth_client (id, client_id, redirect_uris, created_at, updated_at)
              VALUES ('oc-bench', '{CLIENT}', '["http://127.0.0.1:9/cb"]', now(), now());
              INSERT INTO oauth_access_token (id, token, client_id, session_id, user_id, scopes, expires_at,
              created_at) VALUES {",".join(rows)}; ANALYZE oauth_access_token;"""
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"], input=sql, text=True, check=True)


def route(kind):
    """The session JWT at a location for people; access tokens at one naming a scope."""
    return "/auth/verify" if kind == "session-jwt" else "/auth/verify?scope=notes:read"


def verify_once(kind, value, dpop=None):
    headers = {"authorization": value, "x-forwarded-uri": PATH, "x-forwarded-method": "GET"}
    if dpop:
        headers["dpop"] = dpop
    status, got, body = http_json("GET", ba.WARDEN_URL + route(kind), headers=headers)
    return status, got, body


def proofs_file(signer, bound, count, label):
    url = RESOURCE + PATH
    started = time.monotonic()
    lines = []
    for n in range(count):
        token = bound[n % len(bound)]
        lines.append(f"DPoP {token}\t{signer.proof(url, token, f'{label}-{n}')}")
    log(f"  {count:,} DPoP proofs made in {time.monotonic() - started:.1f} s")
    return ba.write_values(f"dpop-{label}.txt", lines)


def run_wrk(kind, values_file, connections, duration):
    dpop = kind == "dpop"
    if not dpop:
        return ba.wrk(ba.WARDEN_URL, route(kind), "Authorization", values_file, connections, duration, ba.WRK_TIMEOUT)
    threads = max(1, min(2, connections))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", f"{ba.WRK_TIMEOUT}s",
         "-s", os.path.join(ROOT, "bench", "dpop.lua"), ba.WARDEN_URL],
        env=dict(os.environ, HEADERS_FILE=values_file, REQ_PATH=route(kind), WRK_THREADS=str(threads),
                 FORWARDED_URI=PATH),
        capture_output=True, text=True, check=True).stdout
    import re
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) p999_us=(\d+) "
                  r"errors=(\d+) timeouts=(\d+)", out)
    if not m:
        raise SystemExit(f"wrk printed no RESULT:\n{out}")
    r = dict(zip(["requests", "duration_us", "p50", "p99", "p999", "errors", "timeouts"], map(int, m.groups())))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def measure(proc, kind, values_file, connections):
    before = cpu_ticks(proc.pid)
    r = run_wrk(kind, values_file, connections, ba.DURATION)
    r["cpu_us"] = ticks_to_us(cpu_ticks(proc.pid) - before) / max(1, r["requests"])
    log(f"  {connections} connections: {r['rps']:,.0f} req/s, p50 {r['p50'] / 1000:.2f} ms, "
        f"p99 {r['p99'] / 1000:.2f} ms, CPU {r['cpu_us']:.0f} µs/req, errors {r['errors']}")
    return r


def main():
    need_wrk()
    raise_nofile()
    require_free(ba.WARDEN_PORT, ba.JWKS_PORT, ba.METRICS_PORT)
    os.makedirs(ba.WORK, exist_ok=True)
    started, load_at_start = time.strftime("%Y-%m-%d %H:%M"), loadavg()
    build_warden(ba.WORK)
    url = ba.seed()
    ids = ba.sample_ids()
    signer = Signer()
    values, rows = tokens(signer, ids)
    seed_oauth(url, rows)
    jwks_server = ba.serve_jwks(json.dumps(signer.jwks).encode())
    os.environ.update(RESOURCE_URL=RESOURCE, OAUTH_ISSUER=f"{ba.BA_URL}/api/auth", AUTH_FAILURES_PER_MINUTE="0")
    results = {}
    proc = ba.start_warden(url)
    try:
        for kind in KINDS:
            log(kind)
            dpop = kind == "dpop"
            if dpop:
                # Each token once with a proof (its first use verifies the token), then the runs.
                for n, token in enumerate(values["dpop-token"]):
                    status, _, body = verify_once(kind, f"DPoP {token}",
                                                  signer.proof(RESOURCE + PATH, token, f"check-{n}"))
                    if status != 200:
                        raise SystemExit(f"dpop: {status} {str(body)[:300]}")
            else:
                for i, value in zip(ids, values[kind]):
                    status, got, body = verify_once(kind, value)
                    if status != 200 or got.get("x-auth-user-id") != f"u{i}":
                        raise SystemExit(f"{kind}: u{i} answered {status} {str(body)[:300]}")
            for connections in ba.CONNECTIONS:
                if dpop:
                    if ba.WARMUP:
                        warm = proofs_file(signer, values["dpop-token"], PROOFS_PER_SEC * ba.WARMUP, f"warm-{connections}")
                        run_wrk(kind, warm, 64, ba.WARMUP)
                    file = proofs_file(signer, values["dpop-token"], PROOFS_PER_SEC * ba.DURATION, f"run-{connections}")
                else:
                    file = ba.write_values(f"{kind}.txt", values[kind])
                    if ba.WARMUP:
                        run_wrk(kind, file, 64, ba.WARMUP)
                results[(kind, connections)] = measure(proc, kind, file, connections)
    finally:
        stop(proc)
        jwks_server.shutdown()
        if os.environ.get("KEEP_DB", "0") != "1":
            drop_db(ba.DB)
    text = report(results, started, load_at_start)
    print(text)
    with open(OUT, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(OUT, ROOT)}")


def report(results, started, load_at_start):
    cmd = " ".join(filter(None, [knobs(["USERS", "TOKENS", "DURATION", "WARMUP", "CONNECTIONS", "KINDS"]),
                                 "python3 bench/oauth.py"]))
    what = {
        "session-jwt": "session JWT (yardstick)",
        "access-jwt": "JWT access token (`at+jwt`)",
        "access-opaque": "opaque access token",
        "bearer-same-token": "JWT access token, Bearer (DPoP's twin)",
        "dpop": "DPoP-bound JWT access token + fresh ES256 proof",
    }
    lines = [
        "## OAuth access tokens: warden `GET /auth/verify`",
        "",
        f"Command: `{cmd}` (USERS={ba.USERS}, TOKENS={len(ba.sample_ids())}, DURATION={ba.DURATION} s). "
        f"Measured {started} on {machine()}; load average {load_at_start} at the start. warden with "
        "`RESOURCE_URL` set, defaults otherwise; every token seen before the run (verified and cached); wrk and "
        "PostgreSQL share the machine.",
        "",
        "| credential | connections | req/s | p50 ms | p99 ms | CPU µs/req | ÷ session JWT |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        for c in ba.CONNECTIONS:
            r, base = results.get((kind, c)), results.get(("session-jwt", c))
            if not r:
                continue
            ratio = f"{r['rps'] / base['rps']:.2f}" if base and base["rps"] else "–"
            lines.append(f"| {what.get(kind, kind)} | {c} | {r['rps']:,.0f} | {r['p50'] / 1000:.2f} | "
                         f"{r['p99'] / 1000:.2f} | {r['cpu_us']:.1f} | {ratio} |")
    errors = {f"{k[0]}@{k[1]}": r["errors"] for k, r in results.items() if r["errors"]}
    lines += ["", f"Errors: {errors or 'none'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
