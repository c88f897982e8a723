#!/usr/bin/env python3
"""Better-Auth's own `GET /api/auth/get-session` (what a team with a Node backend would call)
side by side with warden's `GET /users/me`, on the same database and machine, one command:

    python3 bench/better_auth.py
    python3 bench/better_auth.py plot      # only draws the plots again from the last run's JSON
    DURATION=3 CONNECTIONS=64 USERS=10000 TOKENS=200 python3 bench/better_auth.py   # a smoke run

It seeds a database (USERS users, one live session each, warden's schema), starts the real
auth-server (`node auth-server/server.mjs`, Better-Auth 1.7.25) and takes a JWT for each of
TOKENS sessions from its `/api/auth/token`, then measures, one server at a time:

- `warden`: `GET /users/me` with those JWTs (warden's defaults: token and user caches on, the
  session of each JWT's `sid` checked), JWKS as Better-Auth published it;
- `defaults`: Better-Auth as server.mjs runs it (jwt + admin + bearer + organization plugins),
  `get-session` with `Authorization: Bearer <signed session token>`, as a Node backend passes
  it on. Every answer also carries a freshly signed JWT (`set-auth-jwt`, the jwt plugin);
- `cookie-cache`: the same with `SESSION_COOKIE_CACHE_SECS` (Better-Auth's
  `session.cookieCache`). It only helps clients that send cookies, so each request sends what a
  browser would: `better-auth.session_token` and the `better-auth.session_data` cookie that a
  first `get-session` set (fetched before each run, checked to be a cache hit);
- `floor`: examples/floor.rs, warden's own HTTP stack answering the same user JSON from memory
  with no authentication at all: warden ÷ floor is the share its security work costs;
- `no-jwt`: `JWT_PLUGIN=0`, bearer as in `defaults`;
- `cookie-cache-no-jwt`: both (the fastest Better-Auth can be configured here).

Each at CONNECTIONS (wrk on 127.0.0.1, after a WARMUP-second run at 64 connections):
requests/s, p50/p99/p99.9, the server's CPU per request (user+system time of its process from
/proc), PostgreSQL's CPU per request (its backends'), errors, peak RSS. Better-Auth's rate limiter
is off (RATE_LIMIT=0; it is off anyway without NODE_ENV=production).

It also draws docs/bench/throughput.svg and docs/bench/p99.svg (requests/s and p99 against
connections: warden, the floor, Better-Auth's defaults and its fastest configuration).

Knobs (environment): USERS=100000 TOKENS=1000 DURATION=10 WARMUP=2 CONNECTIONS=1,16,64,256,1000
TRIALS=1 (each measurement repeated; the median by requests/s is reported)
CONFIGS=warden,floor,defaults,cookie-cache,no-jwt,cookie-cache-no-jwt COOKIE_CACHE_SECS=300
WRK_TIMEOUT=10 BENCH_DATABASE=warden_bench_better_auth KEEP_DB=0 PORT_BASE=18180
OUT=bench/RESULTS-better-auth.md (and the numbers as JSON next to it, OUT_JSON, for plots)
WARDEN_BIN (a warden binary built already; default: cargo build --release).
Needs wrk, PostgreSQL (ADMIN_DATABASE_URL, trust), node with auth-server/node_modules
(npm ci --prefix auth-server), cargo.
"""
import base64
import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socketserver
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, auth_server_ready, build_warden, PgCpu, cpu_ticks,  # noqa: E402
                    create_db, drop_db, env_int, env_list, http_json, knobs, loadavg, log, machine,
                    need_wrk, psql, raise_nofile, require_free, sh, spawn, status_kb, stop, WARDEN,
                    ticks_to_us, wait_http, warden_bin, wrk)

USERS = env_int("USERS", 100_000)
TOKENS = env_int("TOKENS", 1000)
DURATION = env_int("DURATION", 10)
WARMUP = env_int("WARMUP", 2)
TRIALS = env_int("TRIALS", 1)
CONNECTIONS = [int(c) for c in env_list("CONNECTIONS", "1,16,64,256,1000")]
ALL_CONFIGS = ["warden", "floor", "defaults", "cookie-cache", "no-jwt", "cookie-cache-no-jwt"]
CONFIGS = env_list("CONFIGS", ",".join(ALL_CONFIGS))
COOKIE_CACHE_SECS = env_int("COOKIE_CACHE_SECS", 300)
WRK_TIMEOUT = env_int("WRK_TIMEOUT", 10)
DB = os.environ.get("BENCH_DATABASE", "warden_bench_better_auth")
PORT_BASE = env_int("PORT_BASE", 18180)
BA_PORT, WARDEN_PORT, JWKS_PORT, METRICS_PORT = PORT_BASE, PORT_BASE + 1, PORT_BASE + 2, PORT_BASE + 3
FLOOR_PORT = PORT_BASE + 4
FLOOR_URL = f"http://127.0.0.1:{FLOOR_PORT}"
# The plots BENCHMARKS.md shows (requests/s and p99 against connections), drawn from this run.
PLOTS = os.environ.get("PLOTS", os.path.join(ROOT, "docs", "bench"))
BA_URL = f"http://127.0.0.1:{BA_PORT}"
WARDEN_URL = f"http://127.0.0.1:{WARDEN_PORT}"
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "RESULTS-better-auth.md"))
# The same numbers for plots: [{config, connections, rps, p50_us, p99_us, ...}, ...]
OUT_JSON = os.environ.get("OUT_JSON", os.path.splitext(OUT)[0] + ".json")
WORK = "/tmp/warden-bench-better-auth"
SECRET = base64.b64encode(os.urandom(32)).decode()
COOKIE = "better-auth.session_token"
CACHE_COOKIE = "better-auth.session_data"

BA_CONFIGS = {
    "defaults": {},
    "cookie-cache": {"SESSION_COOKIE_CACHE_SECS": str(COOKIE_CACHE_SECS)},
    "no-jwt": {"JWT_PLUGIN": "0"},
    "cookie-cache-no-jwt": {"SESSION_COOKIE_CACHE_SECS": str(COOKIE_CACHE_SECS), "JWT_PLUGIN": "0"},
}
DESCRIBE = {
    "warden": "warden `GET /users/me`, defaults (token + user caches, session checked), bearer JWT",
    "floor": "the floor: warden's HTTP stack answering the same user JSON from memory, no authentication (examples/floor.rs)",
    "defaults": "Better-Auth `get-session`, server.mjs defaults (jwt + admin + bearer + organization), bearer session token",
    "cookie-cache": f"… + `session.cookieCache` ({COOKIE_CACHE_SECS} s), browser cookies incl. the cache cookie",
    "no-jwt": "… defaults without the jwt plugin (`JWT_PLUGIN=0`), bearer session token",
    "cookie-cache-no-jwt": "… without the jwt plugin + cookie cache, browser cookies",
}


# ---------------------------------------------------------------- data

def seed():
    log(f"seeding {DB}: {USERS:,} users, one session each")
    url = create_db(DB)
    psql(url, f"""
        INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at, role, banned)
        SELECT 'u' || g, 'User ' || g, 'user' || g || '@bench.test', true, now(), now(), 'user', false
        FROM generate_series(1, {USERS}) g;
        -- 7 days, Better-Auth's session lifetime: no session is old enough to be refreshed
        -- (updateAge, 1 day), so get-session never writes.
        INSERT INTO session (id, expires_at, token, created_at, updated_at, user_id)
        SELECT 's' || g, now() + interval '7 days', md5('s' || g), now(), now(), 'u' || g
        FROM generate_series(1, {USERS}) g;
        ANALYZE;""")
    return url


def signed(token):
    """The session token as Better-Auth hands it out (set-auth-token, the cookie):
    encodeURIComponent(token + "." + base64(HMAC-SHA256(secret, token)))."""
    sig = base64.b64encode(hmac.new(SECRET.encode(), token.encode(), hashlib.sha256).digest()).decode()
    return urllib.parse.quote(f"{token}.{sig}", safe="")


def sample_ids():
    return list(range(1, USERS + 1, max(1, USERS // TOKENS)))[:TOKENS]


# ---------------------------------------------------------------- servers

def start_better_auth(url, extra, label):
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_ENV", "RATE_LIMIT", "JWT_PLUGIN",
                                                             "SESSION_COOKIE_CACHE_SECS")}
    env.update(DATABASE_URL=url, BETTER_AUTH_SECRET=SECRET, BETTER_AUTH_URL=BA_URL, HOST="127.0.0.1",
               PORT=str(BA_PORT), RATE_LIMIT="0", JWT_EXPIRATION="3h", **extra)
    proc = spawn(["node", "server.mjs"], env, os.path.join(WORK, f"auth-server-{label}.log"),
                 cwd=os.path.join(ROOT, "auth-server"))
    wait_http(f"{BA_URL}/healthz", proc)
    return proc


def serve_jwks(body):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingTCPServer):
        # A run right after another finds the port in TIME_WAIT: take it anyway.
        allow_reuse_address = True

    server = Server(("127.0.0.1", JWKS_PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_warden(url):
    env = dict(os.environ, DATABASE_URL=url, BETTER_AUTH_URL=BA_URL, JWKS_URL=f"http://127.0.0.1:{JWKS_PORT}/jwks",
               BIND_ADDR=f"127.0.0.1:{WARDEN_PORT}", METRICS_ADDR=f"127.0.0.1:{METRICS_PORT}",
               RUN_MIGRATIONS="false", RUST_LOG="error")
    proc = spawn([warden_bin(), "serve"], env, os.path.join(WORK, "warden.log"))
    wait_http(f"{WARDEN_URL}/readyz", proc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the user cache is used once its listener is up
        _, _, text = http_json("GET", f"http://127.0.0.1:{METRICS_PORT}/metrics")
        if "warden_cache_listener_up 1" in str(text):
            break
        time.sleep(0.1)
    else:
        log("warning: warden's cache listener is not up; /users/me reads the database every time")
    return proc


# ---------------------------------------------------------------- tokens and cookies

def fetch_jwts(ids):
    def one(i):
        status, _, body = http_json("GET", f"{BA_URL}/api/auth/token",
                                    headers={"authorization": f"Bearer {signed(md5s(i))}"})
        if status != 200 or not isinstance(body, dict) or "token" not in body:
            raise SystemExit(f"GET /api/auth/token for session s{i}: {status} {body}")
        return body["token"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, ids))


def md5s(i):
    return hashlib.md5(f"s{i}".encode()).hexdigest()


def fetch_cache_cookies(ids):
    """For each session, the Cookie header a browser sends once the cache cookie is set."""
    def one(i):
        token_cookie = f"{COOKIE}={signed(md5s(i))}"
        status, headers, body = http_json("GET", f"{BA_URL}/api/auth/get-session", headers={"cookie": token_cookie})
        if status != 200 or not isinstance(body, dict) or body["user"]["id"] != f"u{i}":
            raise SystemExit(f"get-session for session s{i} with its cookie: {status} {body}")
        data = None
        for c in headers.get_all("set-cookie") or []:
            name, _, rest = c.partition("=")
            if name.strip() == CACHE_COOKIE:
                data = rest.split(";", 1)[0]
        if not data:
            raise SystemExit(f"get-session set no {CACHE_COOKIE} cookie: {headers.get_all('set-cookie')}")
        return f"{token_cookie}; {CACHE_COOKIE}={data}"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, ids))


def start_floor():
    """examples/floor.rs (built with warden's features: the same allocator) on FLOOR_PORT."""
    proc = spawn([os.path.join(WORK, "floor"), "serve"], dict(os.environ, BIND_ADDR=f"127.0.0.1:{FLOOR_PORT}",
                                                             RUST_LOG="error"), os.path.join(WORK, "floor.log"))
    wait_http(f"{FLOOR_URL}/users/me", proc)
    return proc


def build_floor():
    if os.environ.get("WARDEN_BIN"):
        source = os.path.join(os.path.dirname(os.environ["WARDEN_BIN"]), "examples", "floor")
    else:
        log("cargo build --release --example floor")
        sh("cargo", "build", "--quiet", "--release", "--example", "floor", cwd=ROOT,
           env=dict(os.environ, SQLX_OFFLINE="true"))
        source = os.path.join(os.path.dirname(WARDEN), "examples", "floor")
    shutil.copy2(source, os.path.join(WORK, "floor"))


def check_answers(config, ids, header, values):
    """A sample of the requests wrk will send: each answers 200 for the right user; with the cookie
    cache, from the cache (no new session_data cookie set)."""
    if config == "floor":
        status, _, body = http_json("GET", f"{FLOOR_URL}/users/me", headers={header: values[0]})
        if status != 200 or not isinstance(body, dict) or "email" not in body:
            raise SystemExit(f"floor: /users/me answered {status} {str(body)[:300]}")
        return
    step = max(1, len(ids) // 20)
    for i, value in list(zip(ids, values))[::step]:
        path = "/users/me" if config == "warden" else "/api/auth/get-session"
        base = WARDEN_URL if config == "warden" else BA_URL
        status, headers, body = http_json("GET", base + path, headers={header: value})
        user = body.get("id") if config == "warden" and isinstance(body, dict) else \
            (body or {}).get("user", {}).get("id") if isinstance(body, dict) else None
        if status != 200 or user != f"u{i}":
            raise SystemExit(f"{config}: {path} for u{i} answered {status} {str(body)[:300]}")
        if config.startswith("cookie-cache") and any(
                c.startswith(CACHE_COOKIE + "=") for c in headers.get_all("set-cookie") or []):
            raise SystemExit(f"{config}: the cache cookie was not used (a new one was set)")
        if config in ("defaults", "cookie-cache") and not headers.get("set-auth-jwt"):
            raise SystemExit(f"{config}: no set-auth-jwt header (the jwt plugin should sign one)")
        if config.endswith("no-jwt") and headers.get("set-auth-jwt"):
            raise SystemExit(f"{config}: a set-auth-jwt header although JWT_PLUGIN=0")


# ---------------------------------------------------------------- measuring

def measure(proc, base, path, header, values_file, connections, pg_cpu):
    runs = []
    for _ in range(TRIALS):
        before = cpu_ticks(proc.pid)
        pg_cpu.start()
        r = wrk(base, path, header, values_file, connections, DURATION, WRK_TIMEOUT)
        served = max(1, r["requests"])
        r["cpu_us"] = ticks_to_us(cpu_ticks(proc.pid) - before) / served
        pg_ticks = pg_cpu.stop()
        r["pg_us"] = float("nan") if pg_ticks is None else ticks_to_us(pg_ticks) / served
        r["rss_mb"] = status_kb(proc.pid, "VmHWM") / 1024
        log(f"  {connections} connections: {r['rps']:,.0f} req/s, p50 {r['p50'] / 1000:.2f} ms, "
            f"p99 {r['p99'] / 1000:.2f} ms, CPU {r['cpu_us']:.0f} µs/req, PG {r['pg_us']:.0f} µs/req, "
            f"errors {r['errors']} (timeouts {r['timeouts']})")
        runs.append(r)
    runs.sort(key=lambda r: r["rps"])
    return runs[len(runs) // 2]


def write_values(name, values):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write("\n".join(values) + "\n")
    return path


def main():
    unknown = [c for c in CONFIGS if c not in ALL_CONFIGS]
    if unknown:
        raise SystemExit(f"unknown CONFIGS {unknown}; choose from {ALL_CONFIGS}")
    need_wrk()
    auth_server_ready()
    raise_nofile()
    require_free(BA_PORT, WARDEN_PORT, JWKS_PORT, METRICS_PORT, FLOOR_PORT)
    os.makedirs(WORK, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M")
    load_at_start = loadavg()
    build_warden(WORK)
    if "floor" in CONFIGS:
        build_floor()
    url = seed()
    pg_cpu = PgCpu(url, DB)
    ids = sample_ids()

    log("Better-Auth (defaults): a JWT per session and the JWKS, for warden")
    ba = start_better_auth(url, {}, "tokens")
    try:
        jwts = fetch_jwts(ids)
        _, _, jwks = http_json("GET", f"{BA_URL}/api/auth/jwks")
    finally:
        stop(ba)
    jwks_server = serve_jwks(json.dumps(jwks).encode())
    bearer_jwts = write_values("warden.txt", [f"Bearer {t}" for t in jwts])
    bearer_sessions = write_values("sessions.txt", [f"Bearer {signed(md5s(i))}" for i in ids])

    results = {}
    try:
        for config in CONFIGS:
            log(f"{config}: {DESCRIBE[config]}")
            if config == "warden":
                proc = start_warden(url)
                base, path, header, values_file = WARDEN_URL, "/users/me", "authorization", bearer_jwts
                values = [f"Bearer {t}" for t in jwts]
            elif config == "floor":
                proc = start_floor()
                base, path, header, values_file = FLOOR_URL, "/users/me", "authorization", bearer_jwts
                values = [f"Bearer {t}" for t in jwts]
            else:
                proc = start_better_auth(url, BA_CONFIGS[config], config)
                base, path = BA_URL, "/api/auth/get-session"
                if config.startswith("cookie-cache"):
                    header, values = "cookie", fetch_cache_cookies(ids)
                    values_file = write_values(f"{config}.txt", values)
                    cookies_at = time.monotonic()
                else:
                    header, values_file = "authorization", bearer_sessions
                    values = [f"Bearer {signed(md5s(i))}" for i in ids]
            try:
                check_answers(config, ids, header, values)
                if WARMUP:
                    wrk(base, path, header, values_file, 64, WARMUP, WRK_TIMEOUT)
                for connections in CONNECTIONS:
                    if config.startswith("cookie-cache") and \
                            time.monotonic() - cookies_at > COOKIE_CACHE_SECS * 0.8 - DURATION * TRIALS:
                        values = fetch_cache_cookies(ids)  # before the cache cookies expire
                        values_file = write_values(f"{config}.txt", values)
                        cookies_at = time.monotonic()
                    results[(config, connections)] = measure(proc, base, path, header, values_file,
                                                             connections, pg_cpu)
                check_answers(config, ids, header, values)
            finally:
                stop(proc)
    finally:
        jwks_server.shutdown()
        if os.environ.get("KEEP_DB", "0") != "1":
            drop_db(DB)

    text = report(results, started, load_at_start)
    print(text)
    with open(OUT, "w") as f:
        f.write(text)
    rows = [{"config": config, "connections": c, "rps": r["rps"], "p50_us": r["p50"], "p99_us": r["p99"],
             "p999_us": r["p999"], "cpu_us_per_request": r["cpu_us"],
             "pg_cpu_us_per_request": None if r["pg_us"] != r["pg_us"] else r["pg_us"],
             "errors": r["errors"], "timeouts": r["timeouts"], "requests": r["requests"], "peak_rss_mb": r["rss_mb"],
             "duration_s": DURATION} for (config, c), r in results.items()]
    with open(OUT_JSON, "w") as f:
        json.dump({"measured": started, "machine": machine(), "rows": rows}, f, indent=1)
    log(f"wrote {os.path.relpath(OUT, ROOT)} and {os.path.relpath(OUT_JSON, ROOT)}")
    if len(CONNECTIONS) > 1:
        for path in plot(results):
            log(f"wrote {os.path.relpath(path, ROOT)}")


def plot(results):
    """Requests/s and p99 against connections: warden, the floor, and Better-Auth's defaults and
    its fastest configuration here (the one with the most requests/s at 64 connections)."""
    from plot import line_chart
    names = {"warden": "warden /users/me", "floor": "floor (no auth)", "defaults": "Better-Auth defaults"}
    ba = [c for c in CONFIGS if c in BA_CONFIGS and c != "defaults"]
    if ba:
        fastest = max(ba, key=lambda c: max((r["rps"] for (k, _), r in results.items() if k == c), default=0))
        names[fastest] = f"Better-Auth {fastest}"
    series = lambda key: {label: [(c, results[(config, c)][key]) for c in CONNECTIONS if (config, c) in results]  # noqa: E731
                          for config, label in names.items() if config in CONFIGS}
    os.makedirs(PLOTS, exist_ok=True)
    rps_path, p99_path = os.path.join(PLOTS, "throughput.svg"), os.path.join(PLOTS, "p99.svg")
    line_chart(rps_path, "GET /users/me vs Better-Auth get-session: throughput", "connections", "requests/s",
               series("rps"), log_x=True, log_y=True)
    p99 = {label: [(c, us / 1000) for c, us in points] for label, points in series("p99").items()}
    line_chart(p99_path, "GET /users/me vs Better-Auth get-session: p99 latency", "connections", "p99 (ms)",
               p99, log_x=True, log_y=True)
    return rps_path, p99_path


def report(results, started, load_at_start):
    cmd = " ".join(filter(None, [knobs(["USERS", "TOKENS", "DURATION", "WARMUP", "CONNECTIONS", "TRIALS", "CONFIGS",
                                        "COOKIE_CACHE_SECS"]), "python3 bench/better_auth.py"]))
    lines = [
        "## Better-Auth's `get-session` side by side",
        "",
        f"Command: `{cmd}` (USERS={USERS}, TOKENS={TOKENS}, DURATION={DURATION} s, CONNECTIONS="
        f"{','.join(map(str, CONNECTIONS))}, TRIALS={TRIALS}). Measured {started} on {machine()}; load average "
        f"{load_at_start} at the start. The servers, PostgreSQL and wrk share the machine; one server runs at a time.",
        "",
        f"One database: {USERS:,} users with one live session each (warden's schema = Better-Auth's). "
        f"{TOKENS:,} of those sessions are used round-robin: warden gets each session's JWT (from Better-Auth's "
        "`/api/auth/token`, EdDSA, with `sid`), Better-Auth gets the session itself. Better-Auth is the real "
        "`auth-server/` (Better-Auth 1.7.25, Node, one process) with its **rate limiter off** (`RATE_LIMIT=0`, "
        "as without `NODE_ENV=production`). CPU is the server process's user+system time per request "
        "(/proc; Node's worker threads included), PostgreSQL's is that of all its backends; RSS is the server's peak.",
        "",
        "| server / configuration | connections | requests/s | p50 | p99 | p99.9 | server CPU/request | PostgreSQL CPU/request | errors (timeouts) | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    thin = lambda r, c: r["requests"] < 3 * c  # noqa: E731
    for config in CONFIGS:
        for c in CONNECTIONS:
            r = results.get((config, c))
            if r:
                mark = " ¹" if thin(r, c) else ""
                lines.append(f"| `{config}`: {DESCRIBE[config]} | {c:,}{mark} | {r['rps']:,.0f} | {r['p50'] / 1000:.2f} ms | "
                             f"{r['p99'] / 1000:.2f} ms | {r['p999'] / 1000:.2f} ms | {r['cpu_us']:,.0f} µs | "
                             f"{r['pg_us']:,.0f} µs | {r['errors']} ({r['timeouts']}) | {r['rss_mb']:.0f} MB |")
    lines.append("")
    if "warden" in CONFIGS and "floor" in CONFIGS:
        lines += ["| connections | warden requests/s | floor requests/s | warden ÷ floor (target ≥ 0.8) | "
                  "warden p99 | floor p99 |", "|---:|---:|---:|---:|---:|---:|"]
        for c in CONNECTIONS:
            w, f = results.get(("warden", c)), results.get(("floor", c))
            if w and f:
                lines.append(f"| {c:,} | {w['rps']:,.0f} | {f['rps']:,.0f} | {w['rps'] / f['rps']:.2f} | "
                             f"{w['p99'] / 1000:.2f} ms | {f['p99'] / 1000:.2f} ms |")
        lines.append("")
    ba = [c for c in CONFIGS if c in BA_CONFIGS]
    if "warden" in CONFIGS and ba:
        lines += ["| connections | warden requests/s | fastest Better-Auth configuration | its requests/s | "
                  "warden ÷ it | its p99 ÷ warden's p99 | target (≥ 10×, ≤ 1/5 of its p99) |",
                  "|---:|---:|---|---:|---:|---:|---|"]
        for c in CONNECTIONS:
            w = results.get(("warden", c))
            candidates = [(results[(b, c)]["rps"], b) for b in ba if (b, c) in results]
            if not w or not candidates:
                continue
            rps, best = max(candidates)
            r = results[(best, c)]
            ratio, p99_ratio = w["rps"] / rps, r["p99"] / max(1, w["p99"])
            if thin(r, c) or thin(w, c):
                met = "met (requests/s)" if ratio >= 10 else "not met"
                lines.append(f"| {c:,} | {w['rps']:,.0f} | `{best}` | {rps:,.0f} | {ratio:.1f}× | n/a ¹ | {met} |")
            else:
                met = "met" if ratio >= 10 and p99_ratio >= 5 else "not met"
                lines.append(f"| {c:,} | {w['rps']:,.0f} | `{best}` | {rps:,.0f} | {ratio:.1f}× | {p99_ratio:.1f}× | {met} |")
        lines.append("")
    if any(thin(r, c) for (_, c), r in results.items()):
        lines += [f"¹ Fewer than 3 answers per connection in {DURATION} s: most requests were still queued when wrk "
                  "stopped, and the latency percentiles cover only the answered ones (an undercount). Throughput "
                  "still holds; for latencies at this many connections run longer (DURATION=60).", ""]
    lines += [
        "Notes:",
        "- Errors count socket errors, timeouts (wrk gives up after "
        f"{WRK_TIMEOUT} s; those requests are not in the latency percentiles) and non-2xx answers.",
        "- Before and after each server's runs, a sample of the very requests wrk sends is checked: 200 "
        "for the right user; with the cookie cache, answered from the cache cookie (no new one set); "
        "`set-auth-jwt` present exactly when the jwt plugin is on.",
        "- The jwt plugin signs a new JWT into `set-auth-jwt` on every `get-session`, cache hit or not.",
        "- The cookie cache helps only clients that keep cookies (a bearer token alone always reads the "
        "database), and it is a revocation delay: a ban, a role change or a sign-out reaches `get-session` only "
        f"when the cache cookie expires (up to {COOKIE_CACHE_SECS} s here). warden refuses them at once "
        "(bench/replicas.py measures how fast).",
        "",
    ]
    return "\n".join(lines)


def replot():
    """Draws the plots again from OUT_JSON, without measuring."""
    rows = json.load(open(OUT_JSON))["rows"]
    results = {(r["config"], r["connections"]): {"rps": r["rps"], "p99": r["p99_us"]} for r in rows}
    for path in plot(results):
        log(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    replot() if sys.argv[1:] == ["plot"] else main()
