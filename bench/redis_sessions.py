#!/usr/bin/env python3
"""Sessions in Redis (`SESSION_STORE=redis`), one command:

    python3 bench/redis_sessions.py                 # both parts; writes bench/RESULTS-redis-sessions.md
    python3 bench/redis_sessions.py load            # or freshness (one part)
    DURATION=3 TRIALS=20 python3 bench/redis_sessions.py     # a smoke run

1. load: USERS users with a session each, written both to PostgreSQL's session table and to a
   redis-server (started here) as Better-Auth's redis-storage writes them. warden answers
   `GET /auth/verify` with TOKENS of those users' signed session tokens (Bearer), each seen once
   before the run, at CONNECTIONS, in three setups: sessions in PostgreSQL (the row cache,
   NOTIFY), in Redis (client tracking: warm requests read nothing), and in Redis with
   `REDIS_CACHE_ENTRIES=0` (every request reads Redis: two GETs). Requests/s, p50/p99, warden's
   CPU per request, and PostgreSQL's and Redis's.
2. freshness: REPLICAS warden processes with `SESSION_STORE=redis` and the real auth-server
   (Better-Auth with @better-auth/redis-storage) on one Redis. TRIALS times, a fresh session
   (its JWT answered 200 by a poller on every replica) is ended in turn by Better-Auth's
   sign-out, Better-Auth's revoke-sessions (the revoked-before mark), replica 1's
   `DELETE /users/me/sessions/{id}` and a bare `DEL` of its key in Redis; from the moment the
   change was answered, each poller asks its replica until it refuses. Reported: the slowest
   replica's time to refusal per trial (p50, p99, max), per way.

Knobs: USERS=10000 TOKENS=1000 DURATION=10 WARMUP=2 CONNECTIONS=64 REPLICAS=3 TRIALS=300
PORT_BASE=18260 BENCH_DATABASE=warden_bench_redis KEEP_DB=0 OUT=bench/RESULTS-redis-sessions.md
WARDEN_BIN (else cargo build --release). Needs wrk, redis-server and redis-cli, PostgreSQL, node
with auth-server/node_modules. Traffic goes to 127.0.0.1 only; what it starts is stopped on exit.
"""
import json
import os
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PORT_BASE", "18260")
os.environ.setdefault("BENCH_DATABASE", "warden_bench_redis")
os.environ.setdefault("USERS", "10000")
os.environ.setdefault("TOKENS", "1000")
os.environ.setdefault("CONNECTIONS", "64")
import better_auth as ba  # noqa: E402  (seeding, warden's start, measuring)
import common  # noqa: E402  (a private redis-server)
import oauth  # noqa: E402  (a signing key, for the JWKS warden needs to be ready)
import replicas as rp  # noqa: E402  (Better-Auth and replicas, sessions, pollers, timed refusals)
from common import (ROOT, PgCpu, build_warden, cpu_ticks, create_db, drop_db, env_int, http_json,  # noqa: E402
                    knobs, loadavg, log, machine, need_wrk, raise_nofile, require_free, stop,
                    ticks_to_us)

PORT_BASE = env_int("PORT_BASE", 18260)
REDIS_PORT = PORT_BASE + 90
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}"
PREFIX = "better-auth:"
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "RESULTS-redis-sessions.md"))
WAYS = ["Better-Auth sign-out", "Better-Auth revoke-sessions", "replica 1 DELETE", "Redis DEL"]


def start_redis():
    return common.start_redis(REDIS_PORT, os.path.join(ba.WORK, "redis.log"))


def redis_cli(*args):
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


resp = common.redis_resp


def js_date(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def seed_redis():
    """Every seeded session (`s<i>`, token md5('s<i>'), user `u<i>`) as Better-Auth writes it."""
    import hashlib
    now = time.time()
    expires = now + 7 * 86400
    lines = []
    for i in range(1, ba.USERS + 1):
        token = hashlib.md5(f"s{i}".encode()).hexdigest()
        value = {"session": {"id": f"s{i}", "userId": f"u{i}", "token": token, "expiresAt": js_date(expires),
                             "createdAt": js_date(now - 60), "updatedAt": js_date(now - 60),
                             "ipAddress": "", "userAgent": ""},
                 "user": {"id": f"u{i}"}}
        lines.append(resp("SETEX", f"{PREFIX}{token}", 7 * 86400, json.dumps(value)))
        lines.append(resp("SETEX", f"{PREFIX}active-sessions-u{i}", 7 * 86400,
                          json.dumps([{"token": token, "expiresAt": int(expires * 1000)}])))
    common.redis_pipe(REDIS_PORT, lines)
    log(f"  {ba.USERS:,} sessions written to Redis ({redis_cli('dbsize')} keys)")


# ---------------------------------------------------------------- part 1: load

SETUPS = {
    "postgres": {"SESSION_STORE": "database"},
    "redis": {"SESSION_STORE": "redis", "REDIS_URL": REDIS_URL},
    "redis-uncached": {"SESSION_STORE": "redis", "REDIS_URL": REDIS_URL, "REDIS_CACHE_ENTRIES": "0"},
}


def load(url, redis_proc):
    ids = ba.sample_ids()
    values = ba.write_values("session-tokens.txt", [f"Bearer {ba.signed(ba.md5s(i))}" for i in ids])
    results = {}
    for name, extra in SETUPS.items():
        log(f"load: sessions in {name}")
        saved = {k: os.environ.get(k) for k in ("SESSION_STORE", "REDIS_URL", "REDIS_CACHE_ENTRIES")}
        os.environ.update(extra, BETTER_AUTH_SECRET=ba.SECRET, AUTH_FAILURES_PER_MINUTE="0")
        proc = ba.start_warden(url)
        try:
            for i in ids:
                status, got, body = http_json("GET", ba.WARDEN_URL + "/auth/verify",
                                              headers={"authorization": f"Bearer {ba.signed(ba.md5s(i))}"})
                if status != 200 or got.get("x-auth-user-id") != f"u{i}":
                    raise SystemExit(f"{name}: u{i} answered {status} {str(body)[:300]}")
            for connections in ba.CONNECTIONS:
                if ba.WARMUP:
                    ba.wrk(ba.WARDEN_URL, "/auth/verify", "Authorization", values, 64, ba.WARMUP, ba.WRK_TIMEOUT)
                before, redis_before = cpu_ticks(proc.pid), cpu_ticks(redis_proc.pid)
                pg = PgCpu(url, ba.DB)
                pg.start()
                r = ba.wrk(ba.WARDEN_URL, "/auth/verify", "Authorization", values, connections, ba.DURATION,
                           ba.WRK_TIMEOUT)
                served = max(1, r["requests"])
                r["cpu_us"] = ticks_to_us(cpu_ticks(proc.pid) - before) / served
                r["redis_us"] = ticks_to_us(cpu_ticks(redis_proc.pid) - redis_before) / served
                pg_ticks = pg.stop()
                r["pg_us"] = float("nan") if pg_ticks is None else ticks_to_us(pg_ticks) / served
                log(f"  {connections} connections: {r['rps']:,.0f} req/s, p50 {r['p50'] / 1000:.2f} ms, "
                    f"p99 {r['p99'] / 1000:.2f} ms, warden {r['cpu_us']:.1f} µs/req, PG {r['pg_us']:.1f}, "
                    f"Redis {r['redis_us']:.1f}, errors {r['errors']}")
                results[(name, connections)] = r
        finally:
            stop(proc)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return results


# ---------------------------------------------------------------- part 2: freshness

class NoWatch:
    """`timed_refusal` times a NOTIFY too; Redis sends none."""

    def clear(self):
        pass

    def arrival(self, _key, _timeout):
        return None


def freshness(url):
    os.environ.update(SESSION_STORE="redis", REDIS_URL=REDIS_URL, BETTER_AUTH_SECRET=rp.SECRET)
    for k in ("REDIS_CACHE_ENTRIES", "JWKS_URL"):
        os.environ.pop(k, None)
    log(f"freshness: Better-Auth + {rp.REPLICAS} replicas, sessions in Redis")
    ba_proc = rp.start_better_auth(url)
    run = int(time.time())
    email = f"bob-{run}@bench.test"
    rp.sign_up("Bob", email)
    bob = rp.Session(email)
    replicas = [rp.start_replica(url, i) for i in range(rp.REPLICAS)]
    try:
        rp.wait_listeners(replicas)
        pollers = [rp.Poller(i) for i in range(rp.REPLICAS)]
        r1 = f"http://127.0.0.1:{rp.port(0)}"
        samples = {w: [] for w in WAYS}

        def ba_post(path):
            def do():
                status, _, answer = http_json("POST", f"{rp.BA_URL}/api/auth/{path}", {},
                                              {**rp.origin(), "authorization": f"Bearer {bob.token}"})
                if status != 200:
                    raise SystemExit(f"Better-Auth {path}: {status} {answer}")
            return do

        def warden_delete():
            status, _, answer = http_json("DELETE", f"{r1}/users/me/sessions/{bob.sid}",
                                          headers={"authorization": f"Bearer {bob.jwt}"})
            if status != 204:
                raise SystemExit(f"replica 1 DELETE: {status} {answer}")

        def redis_del():
            raw = bob.token.split(".")[0].split("%2E")[0]
            redis_cli("DEL", f"{PREFIX}{raw}")

        acts = {"Better-Auth sign-out": ba_post("sign-out"), "Better-Auth revoke-sessions": ba_post("revoke-sessions"),
                "replica 1 DELETE": warden_delete, "Redis DEL": redis_del}
        for n in range(-len(WAYS), rp.TRIALS):  # the first round warms up, not counted
            way = WAYS[n % len(WAYS)]
            # After a revoke-sessions, a session created in the mark's own millisecond would be
            # revoked by it: the next one begins later.
            time.sleep(0.003)
            bob.sign_in()
            result, _, _ = rp.timed_refusal(pollers, "/users/me", bob.jwt, acts[way], NoWatch(), bob.sid)
            if n >= 0:
                samples[way].append(max(s for s, _ in result))
            if n >= 0 and (n + 1) % 40 == 0:
                worst = [s * 1000 for v in samples.values() for s in v]
                log(f"  {n + 1}/{rp.TRIALS} trials: every replica refused within p50 {statistics.median(worst):.1f} ms, "
                    f"max {max(worst):.1f} ms")
        return samples
    finally:
        for p in replicas:
            stop(p)
        stop(ba_proc)


# ---------------------------------------------------------------- report

def report(load_results, fresh, started, load_at_start):
    cmd = " ".join(filter(None, [knobs(["USERS", "TOKENS", "DURATION", "WARMUP", "CONNECTIONS", "REPLICAS", "TRIALS"]),
                                 "python3 bench/redis_sessions.py"]))
    server = redis_cli("info", "server")
    version = next((l.split(":", 1)[1] for l in server.splitlines() if l.startswith("redis_version:")), "?")
    lines = ["## Sessions in Redis", "",
             f"Command: `{cmd}`. Measured {started} on {machine()}; load average {load_at_start} at the start; "
             f"Redis {version.strip()} (Debian's redis-server, no persistence), PostgreSQL, wrk and warden share the machine.",
             ""]
    if load_results:
        what = {"postgres": "PostgreSQL (row cache kept by NOTIFY: the session by id once its token is known)",
                "redis": "Redis (client tracking: nothing read once warm)",
                "redis-uncached": "Redis, `REDIS_CACHE_ENTRIES=0` (2 GETs a request)"}
        lines += [f"### A session token (`GET /auth/verify`, {len(ba.sample_ids())} users' tokens, each seen before)", "",
                  "| sessions in | connections | req/s | p50 ms | p99 ms | warden CPU µs/req | PostgreSQL µs/req | Redis µs/req | ÷ PostgreSQL |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in SETUPS:
            for c in ba.CONNECTIONS:
                r, base = load_results.get((name, c)), load_results.get(("postgres", c))
                if not r:
                    continue
                ratio = f"{r['rps'] / base['rps']:.2f}" if base and base["rps"] else "–"
                lines.append(f"| {what[name]} | {c} | {r['rps']:,.0f} | {r['p50'] / 1000:.2f} | {r['p99'] / 1000:.2f} | "
                             f"{r['cpu_us']:.1f} | {r['pg_us']:.1f} | {r['redis_us']:.1f} | {ratio} |")
        errors = {f"{k[0]}@{k[1]}": r["errors"] for k, r in load_results.items() if r["errors"]}
        lines += ["", f"Errors: {errors or 'none'}.", ""]
    if fresh:
        def p(v, q):
            return rp.pct(v, q) * 1000
        every = [s for v in fresh.values() for s in v]
        lines += [f"### A session ended, seen by {rp.REPLICAS} replicas", "",
                  "From the moment the change was answered (or `DEL` returned) to the refusing answer of the slowest "
                  "replica (a poll's round trip included: an upper bound).", "",
                  "| ended by | trials | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|"]
        for way, v in list(fresh.items()) + [("all", every)]:
            if v:
                lines.append(f"| {way} | {len(v)} | {p(v, 50):.2f} | {p(v, 99):.2f} | {max(v) * 1000:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main():
    parts = sys.argv[1:] or ["load", "freshness"]
    need_wrk()
    raise_nofile()
    require_free(ba.WARDEN_PORT, ba.METRICS_PORT, REDIS_PORT, rp.BA_PORT, *[rp.port(i) for i in range(rp.REPLICAS)])
    os.makedirs(ba.WORK, exist_ok=True)
    os.makedirs(rp.WORK, exist_ok=True)
    started, load_at_start = time.strftime("%Y-%m-%d %H:%M"), loadavg()
    build_warden(ba.WORK)
    redis_proc = start_redis()
    load_results, fresh = {}, {}
    try:
        if "load" in parts:
            url = ba.seed()
            seed_redis()
            jwks_server = ba.serve_jwks(json.dumps(oauth.Signer().jwks).encode())
            try:
                load_results = load(url, redis_proc)
            finally:
                jwks_server.shutdown()
                jwks_server.server_close()
        if "freshness" in parts:
            redis_cli("flushall")
            url = create_db(ba.DB)
            fresh = freshness(url)
        text = report(load_results, fresh, started, load_at_start)
    finally:
        stop(redis_proc)
        if os.environ.get("KEEP_DB", "0") != "1":
            drop_db(ba.DB)
    print(text)
    with open(OUT, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
