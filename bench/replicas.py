#!/usr/bin/env python3
"""warden replicas against one PostgreSQL, one command:

    python3 bench/replicas.py                 # all three parts; writes bench/RESULTS-replicas.md
    python3 bench/replicas.py revocation      # or fanout, or connections (one part; the file
                                              # then holds that part only)
    TRIALS=27 FANOUT_DURATION=2 python3 bench/replicas.py     # a smoke run

1. revocation: REPLICAS warden processes (127.0.0.1, one port each, user cache on, as by
   default) and the real auth-server (Better-Auth) on one database. A ban, a role change and a
   sign-out are made through each path — SQL (`UPDATE "user"`, `DELETE FROM session`, committed on
   a connection of its own), Better-Auth's API (`/api/auth/admin/ban-user`, `/admin/set-role`,
   `/sign-out`) and replica 1's API (`POST /admin/users/{id}/ban`, `PUT /admin/users/{id}/role`,
   `DELETE /admin/sessions/{id}`) — TRIALS times in all, the 9 combinations in turn. Before each
   change one poller per replica is answered 200 (the user's row and session are cached there);
   from the moment the change is committed (SQL) or answered (HTTP), each poller keeps asking its
   replica until it refuses (401/403). The time to refusal is from that moment to the refusing
   answer's arrival (a poll's own round trip included, so an upper bound; negative when a replica
   refused before the writer had its answer). Reported per trial as the slowest replica ("every
   replica refuses within"), and per path and change.
2. fanout: the cost of warden's NOTIFY per write. pgbench commits `UPDATE "user" SET
   updated_at = now()` (one row, the trigger notifies `warden_user`) from FANOUT_CLIENTS clients
   for FANOUT_DURATION s each, with the trigger disabled, then with 0, 3 and 30 (LISTENERS)
   connections LISTENing on warden's six channels and reading promptly, as warden's listener does.
   Reported: commits/s, commit latency p50/p99, PostgreSQL CPU per commit (all its processes) and
   the notifications delivered.
3. connections: what REPLICAS replicas hold in pg_stat_activity, idle and with each replica's
   pool saturated by `GET /admin/users` (a query per request), by application_name.

Knobs (environment): REPLICAS=3 TRIALS=300 WARMUP_TRIALS=9 POLL_TIMEOUT=5 LISTENERS=0,3,30 FANOUT_CLIENTS=1,8
FANOUT_DURATION=10 FANOUT_USERS=10000 CONN_LOAD_SECS=5 BENCH_DATABASE=warden_bench_replicas
KEEP_DB=0 PORT_BASE=18200 OUT=bench/RESULTS-replicas.md WARDEN_BIN (a warden binary built already;
default: cargo build --release). Needs PostgreSQL (ADMIN_DATABASE_URL,
trust auth), pgbench (postgresql's client tools), wrk, node with auth-server/node_modules, cargo.
Traffic goes to 127.0.0.1 only; every process it starts is stopped on exit.
"""
import base64
import http.client
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, auth_server_ready, build_warden, PgCpu, create_db,  # noqa: E402
                    drop_db, env_int, env_list, http_json, knobs, loadavg, log, machine, need_wrk,
                    psql, raise_nofile, require_free, spawn, stop, ticks_to_us, wait_http, warden_bin)
from pgwire import PgConn  # noqa: E402

REPLICAS = env_int("REPLICAS", 3)
TRIALS = env_int("TRIALS", 300)
WARMUP_TRIALS = env_int("WARMUP_TRIALS", 9)
POLL_TIMEOUT = float(os.environ.get("POLL_TIMEOUT", "5"))
LISTENERS = [int(n) for n in env_list("LISTENERS", "0,3,30")]
FANOUT_CLIENTS = [int(n) for n in env_list("FANOUT_CLIENTS", "1,8")]
FANOUT_DURATION = env_int("FANOUT_DURATION", 10)
FANOUT_USERS = env_int("FANOUT_USERS", 10_000)
CONN_LOAD_SECS = env_int("CONN_LOAD_SECS", 5)
DB = os.environ.get("BENCH_DATABASE", "warden_bench_replicas")
PORT_BASE = env_int("PORT_BASE", 18200)
BA_PORT = PORT_BASE
BA_URL = f"http://127.0.0.1:{BA_PORT}"
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "RESULTS-replicas.md"))
WORK = "/tmp/warden-bench-replicas"
SECRET = base64.b64encode(os.urandom(32)).decode()
PASSWORD = "correct-horse-battery"
CHANNELS = ["warden_user", "warden_session", "warden_member", "warden_organization_role", "warden_truncate",
            "warden_ping"]
PATHS = ["SQL", "Better-Auth", "replica 1"]
CHANGES = ["ban", "role change", "sign-out"]

sys.setswitchinterval(0.0002)  # the pollers' threads hand the interpreter over quickly


def port(i):
    return PORT_BASE + 1 + i


def metrics_port(i):
    return PORT_BASE + 50 + i


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------- servers

def start_better_auth(url):
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_ENV", "JWT_PLUGIN", "SESSION_COOKIE_CACHE_SECS")}
    env.update(DATABASE_URL=url + "?application_name=better-auth", BETTER_AUTH_SECRET=SECRET,
               BETTER_AUTH_URL=BA_URL, HOST="127.0.0.1", PORT=str(BA_PORT), RATE_LIMIT="0", JWT_EXPIRATION="1h")
    proc = spawn(["node", "server.mjs"], env, os.path.join(WORK, "auth-server.log"), cwd=os.path.join(ROOT, "auth-server"))
    wait_http(f"{BA_URL}/healthz", proc)
    return proc


def start_replica(url, i):
    env = dict(os.environ, DATABASE_URL=f"{url}?application_name=warden-replica-{i + 1}", BETTER_AUTH_URL=BA_URL,
               BIND_ADDR=f"127.0.0.1:{port(i)}", METRICS_ADDR=f"127.0.0.1:{metrics_port(i)}",
               RUN_MIGRATIONS="false", RUST_LOG="warn", USER_CACHE="true")
    for k in ("DATABASE_LISTEN_URL", "DATABASE_MAX_CONNECTIONS", "SESSION_CHECK", "TOKEN_CACHE_SIZE"):
        env.pop(k, None)
    return spawn([warden_bin(), "serve"], env, os.path.join(WORK, f"warden-{i + 1}.log"))


def wait_listeners(replicas):
    for i, proc in enumerate(replicas):
        wait_http(f"http://127.0.0.1:{port(i)}/readyz", proc)
        deadline = time.monotonic() + 15
        while True:
            _, _, text = http_json("GET", f"http://127.0.0.1:{metrics_port(i)}/metrics")
            if "warden_cache_listener_up 1" in str(text):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"replica {i + 1}: cache listener not up after 15 s")
            time.sleep(0.1)


def listeners_up(n):
    up = 0
    for i in range(n):
        _, _, text = http_json("GET", f"http://127.0.0.1:{metrics_port(i)}/metrics")
        up += "warden_cache_listener_up 1" in str(text)
    return up


# ---------------------------------------------------------------- Better-Auth clients

def origin():
    return {"origin": BA_URL}


def sign_up(name, email):
    status, headers, body = http_json("POST", f"{BA_URL}/api/auth/sign-up/email",
                                      {"name": name, "email": email, "password": PASSWORD}, origin())
    if status != 200:
        raise SystemExit(f"sign-up {email}: {status} {body}")
    return body["user"]["id"]


class Session:
    """A signed-in user: Better-Auth's session token, a JWT for warden and the session id."""

    def __init__(self, email):
        self.email = email
        self.sign_in()

    def sign_in(self):
        status, headers, body = http_json("POST", f"{BA_URL}/api/auth/sign-in/email",
                                          {"email": self.email, "password": PASSWORD}, origin())
        if status != 200 or not headers.get("set-auth-token"):
            raise SystemExit(f"sign-in {self.email}: {status} {body}")
        self.token = headers["set-auth-token"]
        self.refresh_jwt()

    def refresh_jwt(self):
        status, _, body = http_json("GET", f"{BA_URL}/api/auth/token", headers={"authorization": f"Bearer {self.token}"})
        if status != 200:
            raise SystemExit(f"GET /api/auth/token for {self.email}: {status} {body}")
        self.jwt = body["token"]
        payload = self.jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.sid, self.user_id, self.jwt_at = claims["sid"], claims["sub"], time.monotonic()

    def fresh_jwt(self):
        if time.monotonic() - self.jwt_at > 600:
            self.refresh_jwt()
        return self.jwt


# ---------------------------------------------------------------- one trial

class Poller:
    """Keeps one keep-alive connection to one replica."""

    def __init__(self, i):
        self.i = i
        self.conn = http.client.HTTPConnection("127.0.0.1", port(i), timeout=5)

    def get(self, path, jwt):
        try:
            self.conn.request("GET", path, headers={"authorization": f"Bearer {jwt}"})
            r = self.conn.getresponse()
            r.read()
            return r.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", port(self.i), timeout=5)
            return None


def until_all(pollers, path, jwt, want_ok, timeout=10):
    deadline = time.monotonic() + timeout
    for p in pollers:
        while True:
            status = p.get(path, jwt)
            if (status == 200) == want_ok and status is not None:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"replica {p.i + 1}: {path} still answers {status} after {timeout} s")
            time.sleep(0.005)


class NotifyWatch:
    """A bare LISTEN connection in this process: when each notification arrived here, as a
    reference for what PostgreSQL and the machine add before warden sees it."""

    def __init__(self, url):
        self.conn = PgConn(url, application_name="bench-watch")
        self.conn.query("LISTEN warden_user; LISTEN warden_session")
        self.seen = []  # (perf_counter, channel, payload)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import select
        while not self.stopped.is_set():
            ready, _, _ = select.select([self.conn.sock], [], [], 0.1)
            if ready:
                self.conn.drain()
                t = time.perf_counter()
                with self.lock:
                    self.seen += [(t, ch, payload) for ch, payload, _ in self.conn.pending]
                self.conn.pending.clear()

    def clear(self):
        with self.lock:
            self.seen = []

    def arrival(self, payload, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                hit = [t for t, _, p in self.seen if p == payload]
            if hit:
                return hit[0]
            time.sleep(0.001)
        return None

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.conn.close()


def timed_refusal(pollers, path, jwt, change, watch, key):
    """Polls every replica (each answering 200 first), runs change() (which returns once the change
    is committed or answered), and returns (seconds to the refusing answer, its status) per replica
    and the seconds until the notification about `key` reached `watch`."""
    started = threading.Barrier(len(pollers) + 1)
    t0 = [None]
    out = [None] * len(pollers)

    last_ok = [None] * len(pollers)  # when the last request answered 200 was sent

    def poll(k, p):
        first = True
        while True:
            sent = time.perf_counter()
            status = p.get(path, jwt)
            t = time.perf_counter()
            if status == 200:
                last_ok[k] = sent
            if first:
                first = False
                if status != 200:
                    out[k] = ("not allowed before the change", status)
                    started.abort()
                    return
                try:
                    started.wait(10)
                except threading.BrokenBarrierError:
                    return
                continue
            if status in (401, 403):
                out[k] = (t, status)
                return
            if status != 200:
                out[k] = ("unexpected answer", status)
                return
            if t0[0] is not None and t - t0[0] > POLL_TIMEOUT:
                out[k] = ("still allowed after the change", POLL_TIMEOUT)
                return

    threads = [threading.Thread(target=poll, args=(k, p)) for k, p in enumerate(pollers)]
    for t in threads:
        t.start()
    try:
        started.wait(15)
    except threading.BrokenBarrierError:
        for t in threads:
            t.join()
        raise SystemExit(f"a replica did not allow {path} before the change: {out}")
    watch.clear()
    change()
    t0[0] = time.perf_counter()
    for t in threads:
        t.join()
    bad = [(k + 1, o) for k, o in enumerate(out) if not isinstance(o[0], float)]
    if bad:
        raise SystemExit(f"refusal not seen: {bad}")
    heard = watch.arrival(key, POLL_TIMEOUT)
    # How long after the bare listener heard it a replica still answered 200 (to a request sent
    # then): warden's own delay, without the poll's round trip. Negative: none was.
    stale = None if heard is None else max(ok - heard for ok in last_ok)
    return ([((t - t0[0]), status) for t, status in out], None if heard is None else heard - t0[0], stale)


# ---------------------------------------------------------------- part 1: revocation

def revocation(url):
    log(f"revocation: Better-Auth + {REPLICAS} replicas on {DB}")
    ba = start_better_auth(url)
    run = int(time.time())
    root_email, alice_email, bob_email = (f"{n}-{run}@bench.test" for n in ("root", "alice", "bob"))
    root_id = sign_up("Root", root_email)
    alice_id = sign_up("Alice", alice_email)  # the role changes: an admin demoted
    bob_id = sign_up("Bob", bob_email)  # the bans and the sign-outs
    psql(url, f"""UPDATE "user" SET role = 'admin' WHERE id IN ('{root_id}', '{alice_id}')""")
    root, alice, bob = Session(root_email), Session(alice_email), Session(bob_email)

    replicas = [start_replica(url, i) for i in range(REPLICAS)]
    wait_listeners(replicas)
    idle = connection_counts(url)
    pollers = [Poller(i) for i in range(REPLICAS)]
    sql = PgConn(url, application_name="bench-writer")
    watch = NotifyWatch(url)
    r1 = f"http://127.0.0.1:{port(0)}"

    def ba_post(path, body, session):
        def do():
            status, _, answer = http_json("POST", f"{BA_URL}/api/auth/{path}", body,
                                          {**origin(), "authorization": f"Bearer {session.token}"})
            if status != 200:
                raise SystemExit(f"Better-Auth {path}: {status} {answer}")
        return do

    def warden_call(method, path, body=None):
        def do():
            status, _, answer = http_json(method, r1 + path, body, {"authorization": f"Bearer {root.fresh_jwt()}"})
            if status not in (200, 204):
                raise SystemExit(f"replica 1 {method} {path}: {status} {answer}")
        return do

    samples = []  # (change, path, [seconds per replica], [status per replica])
    combos = [(c, p) for c in CHANGES for p in PATHS]
    t_start = time.monotonic()
    for n in range(-WARMUP_TRIALS, TRIALS):  # n < 0: warm-up (pools open their connections), not counted
        change, path = combos[n % len(combos)]
        if change == "role change":
            probe, who = f"/admin/users/{root_id}", alice
            act = {"SQL": lambda: sql.query(f"""UPDATE "user" SET role = 'user' WHERE id = '{alice_id}'"""),
                   "Better-Auth": ba_post("admin/set-role", {"userId": alice_id, "role": "user"}, root),
                   "replica 1": warden_call("PUT", f"/admin/users/{alice_id}/role", {"role": "user"})}[path]
        elif change == "ban":
            probe, who = "/users/me", bob
            act = {"SQL": lambda: sql.query(f"""UPDATE "user" SET banned = true WHERE id = '{bob_id}'"""),
                   "Better-Auth": ba_post("admin/ban-user", {"userId": bob_id}, root),
                   "replica 1": warden_call("POST", f"/admin/users/{bob_id}/ban", {"reason": "bench"})}[path]
        else:
            probe, who = "/users/me", bob
            act = {"SQL": lambda: sql.query(f"DELETE FROM session WHERE id = '{bob.sid}'"),
                   "Better-Auth": ba_post("sign-out", {}, bob),
                   "replica 1": warden_call("DELETE", f"/admin/sessions/{bob.sid}")}[path]
        jwt = who.fresh_jwt()
        key = bob.sid if change == "sign-out" else who.user_id
        result, heard, stale = timed_refusal(pollers, probe, jwt, act, watch, key)
        if n >= 0:
            samples.append((change, path, [s for s, _ in result], [st for _, st in result], heard, stale))
        # Undo, and wait until every replica allows again.
        if change == "role change":
            sql.query(f"""UPDATE "user" SET role = 'admin' WHERE id = '{alice_id}'""")
        elif change == "ban":
            sql.query(f"""UPDATE "user" SET banned = false, ban_reason = NULL, ban_expires = NULL WHERE id = '{bob_id}'""")
            if path != "SQL":  # Better-Auth's and warden's bans also end every session
                bob.sign_in()
        else:
            bob.sign_in()
        until_all(pollers, probe, who.fresh_jwt(), want_ok=True)
        if n >= 0 and ((n + 1) % 27 == 0 or n + 1 == TRIALS):
            worst = [max(s) * 1000 for _, _, s, *_ in samples]
            log(f"  {n + 1}/{TRIALS} trials: every replica refused within p50 {statistics.median(worst):.1f} ms, "
                f"max {max(worst):.1f} ms")
    elapsed = time.monotonic() - t_start
    up = listeners_up(REPLICAS)
    after = connection_counts(url)
    loaded = saturate(url, root)
    sql.close()
    watch.close()
    for p in replicas:
        stop(p)
    stop(ba)
    return {"samples": samples, "elapsed": elapsed, "listeners_up_after": up,
            "connections": {"idle": idle, "after": after, "loaded": loaded}}


# ---------------------------------------------------------------- part 3: connections

def connection_counts(url):
    rows = psql(url, f"""SELECT coalesce(nullif(application_name, ''), '(none)'), count(*)
                         FROM pg_stat_activity WHERE datname = '{DB}' AND pid <> pg_backend_pid()
                         GROUP BY 1 ORDER BY 1""")
    return {name: int(n) for name, n in (line.split("|") for line in rows.splitlines() if line)}


def saturate(url, root):
    """Each replica's pool made to open every connection (64 concurrent GET /admin/users per
    replica, a query each) while pg_stat_activity is sampled; returns the peak per application."""
    peak = {}
    procs = []
    for i in range(REPLICAS):
        procs.append(subprocess.Popen(
            ["wrk", "-t1", "-c64", f"-d{CONN_LOAD_SECS}s", "-H", f"Authorization: Bearer {root.fresh_jwt()}",
             f"http://127.0.0.1:{port(i)}/admin/users?limit=50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        while any(p.poll() is None for p in procs):
            counts = connection_counts(url)
            total = sum(v for k, v in counts.items() if k.startswith("warden"))
            if total >= sum(v for k, v in peak.items() if k.startswith("warden")):
                peak = counts
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
    return peak


# ---------------------------------------------------------------- part 2: fanout

def fanout():
    name = DB + "_fanout"
    url = create_db(name)
    log(f"fanout: {FANOUT_USERS:,} users in {name}")
    try:
        psql(url, f"""INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at, role, banned)
                      SELECT 'u' || g, 'User ' || g, 'user' || g || '@bench.test', true, now(), now(), 'user', false
                      FROM generate_series(1, {FANOUT_USERS}) g; ANALYZE;""")
        pg_cpu = PgCpu(url, name)
        script = os.path.join(WORK, "update.sql")
        with open(script, "w") as f:
            f.write(f"\\set id random(1, {FANOUT_USERS})\n"
                    "UPDATE \"user\" SET updated_at = now() WHERE id = 'u' || :id;\n")
        cases = [("trigger disabled", 0)] + [(f"{n} listeners", n) for n in LISTENERS]
        rows = []
        for label, n in cases:
            if label == "trigger disabled":
                psql(url, 'ALTER TABLE "user" DISABLE TRIGGER warden_user_changed')
            listeners = [PgConn(url, application_name="bench-listener") for _ in range(n)]
            for c in listeners:
                c.query("; ".join(f"LISTEN {ch}" for ch in CHANNELS))
            counter = {"n": 0, "cpu": 0.0}
            stop_flag = threading.Event()

            def drain():
                sel = selectors.DefaultSelector()
                for c in listeners:
                    sel.register(c.sock, selectors.EVENT_READ, c)
                while not stop_flag.is_set():
                    for key, _ in sel.select(timeout=0.1):
                        key.data.drain()
                        counter["n"] += len(key.data.pending)
                        key.data.pending.clear()
                    counter["cpu"] = time.thread_time()

            drainer = threading.Thread(target=drain, daemon=True)
            drainer.start()
            try:
                for clients in FANOUT_CLIENTS:
                    counter["n"], cpu_before = 0, counter["cpu"]
                    r = pgbench(url, script, clients, pg_cpu)
                    deadline = time.monotonic() + 10
                    while counter["n"] < n * r["commits"] and time.monotonic() < deadline:
                        time.sleep(0.05)
                    r.update(label=label, listeners=n, clients=clients, delivered=counter["n"],
                             client_us=(counter["cpu"] - cpu_before) * 1e6 / max(1, r["commits"]))
                    log(f"  {label}, {clients} clients: {r['tps']:,.0f} commits/s, p50 {r['p50']:.2f} ms, "
                        f"p99 {r['p99']:.2f} ms, PostgreSQL {r['pg_us']:.0f} µs/commit, "
                        f"{r['delivered']:,} of {n * r['commits']:,} notifications delivered")
                    rows.append(r)
            finally:
                stop_flag.set()
                drainer.join()
                for c in listeners:
                    c.close()
                if label == "trigger disabled":
                    psql(url, 'ALTER TABLE "user" ENABLE TRIGGER warden_user_changed')
        return rows
    finally:
        if os.environ.get("KEEP_DB", "0") != "1":
            drop_db(name)


def pgbench(url, script, clients, pg_cpu):
    tmp = tempfile.mkdtemp(dir=WORK)
    pg_cpu.start()
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(FANOUT_DURATION),
                          "-f", script, "-l", "--log-prefix", os.path.join(tmp, "tx"), url],
                         capture_output=True, text=True)
    pg_ticks = pg_cpu.stop()
    if out.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{out.stderr}")
    latencies = []
    for fname in os.listdir(tmp):
        for line in open(os.path.join(tmp, fname)):
            latencies.append(int(line.split()[2]) / 1000)
    shutil.rmtree(tmp)
    commits = len(latencies)
    return {"commits": commits, "tps": commits / FANOUT_DURATION, "p50": pct(latencies, 50), "p99": pct(latencies, 99),
            "pg_us": float("nan") if pg_ticks is None else ticks_to_us(pg_ticks) / max(1, commits)}


def find_pgbench():
    if shutil.which("pgbench"):
        return
    for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
        candidate = f"/usr/lib/postgresql/{d}/bin"
        if os.path.exists(os.path.join(candidate, "pgbench")):
            os.environ["PATH"] = candidate + os.pathsep + os.environ["PATH"]
            return
    raise SystemExit("needs pgbench (PostgreSQL's client tools)")


# ---------------------------------------------------------------- report

def report(parts, started, load_at_start):
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    cmd = " ".join(filter(None, [knobs(["REPLICAS", "TRIALS", "WARMUP_TRIALS", "POLL_TIMEOUT", "LISTENERS", "FANOUT_CLIENTS",
                                        "FANOUT_DURATION", "FANOUT_USERS", "CONN_LOAD_SECS"]),
                                 "python3 bench/replicas.py", mode]))
    lines = [
        "## Replicas",
        "",
        f"Command: `{cmd}`. Measured {started} on {machine()}; load average {load_at_start} at the start. " +
        (f"{REPLICAS} warden processes (release build, defaults: user cache on, pool of 10) on 127.0.0.1, the real "
         "auth-server (Better-Auth, rate limiter off) and PostgreSQL share the machine." if "revocation" in parts
         else "pgbench, the listeners and PostgreSQL share the machine."),
        "",
    ]
    rev = parts.get("revocation")
    if rev and rev.get("samples"):
        samples = rev["samples"]
        worst = [max(s) * 1000 for _, _, s, *_ in samples]
        every = [x * 1000 for _, _, s, *_ in samples for x in s]
        heard = [h * 1000 for *_, h, _ in samples if h is not None]
        stale = [max(0.0, x) * 1000 for *_, x in samples if x is not None]
        early = sum(1 for x in every if x < 0)
        lines += [
            "### A ban, a role change, a sign-out: refused by every replica",
            "",
            f"{len(samples)} trials ({len(samples) // 9}+ per path and change) in {rev['elapsed']:.0f} s, after "
            f"{WARMUP_TRIALS} uncounted warm-up trials (the replicas' pools open connections on first need). Time from the "
            "change's commit (SQL) or answer (HTTP) to each replica's first refusing answer, measured by one "
            "poller per replica that asks back to back over a keep-alive connection (so each figure includes up to "
            "one poll round trip). The probe is `GET /users/me` (ban, sign-out) or an admin route (role change: an "
            "admin demoted to `user`). Better-Auth's and warden's bans also delete the user's sessions. "
            f"Cache listeners up on {rev['listeners_up_after']} of {REPLICAS} replicas after the trials.",
            "",
            f"**Every replica refused within: p50 {statistics.median(worst):.1f} ms, p99 {pct(worst, 99):.1f} ms, "
            f"max {max(worst):.1f} ms** over {len(samples)} trials (target: p99 ≤ 100 ms). Per replica and trial "
            f"({len(every)} samples): p50 {statistics.median(every):.1f} ms, p99 {pct(every, 99):.1f} ms; "
            f"{early} refused before the writer had its answer (counted as negative times). For reference, a bare "
            f"`LISTEN` connection in the benchmark process heard the change's notification after p50 "
            f"{statistics.median(heard or [float('nan')]):.1f} ms, p99 {pct(heard, 99):.1f} ms, "
            f"max {max(heard or [float('nan')]):.1f} ms ({len(heard)} trials): "
            "what PostgreSQL and the machine take before any replica can know. And the latest a replica still "
            "answered 200 to a request sent after that moment (warden's own part, without the poll's round trip): "
            f"p50 {statistics.median(stale or [float('nan')]):.1f} ms, p99 {pct(stale, 99):.1f} ms, "
            f"max {max(stale or [float('nan')]):.1f} ms (0 when no such answer).",
            "",
            "| change | through | trials | slowest replica p50 | p99 | max | bare LISTEN heard it, p50 | refusals seen |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for change in CHANGES:
            for path in PATHS:
                sel = [(s, st, h) for c, p, s, st, h, _ in samples if c == change and p == path]
                if not sel:
                    continue
                w = [max(s) * 1000 for s, _, _ in sel]
                hs = [h * 1000 for _, _, h in sel if h is not None]
                statuses = sorted({x for _, st, _ in sel for x in st})
                lines.append(f"| {change} | {path} | {len(sel)} | {statistics.median(w):.1f} ms | {pct(w, 99):.1f} ms | "
                             f"{max(w):.1f} ms | {statistics.median(hs) if hs else float('nan'):.1f} ms | "
                             f"{', '.join(map(str, statuses))} |")
        lines.append("")
    fan = parts.get("fanout")
    if fan:
        lines += [
            "### NOTIFY fan-out per write",
            "",
            f"pgbench commits single-row `UPDATE \"user\" SET updated_at = now()` (its trigger notifies "
            f"`warden_user`) for {FANOUT_DURATION} s per row, on {FANOUT_USERS:,} users; the listeners are "
            "connections that `LISTEN` on warden's six channels and read at once, as warden's cache listener does. "
            "PostgreSQL CPU is that of all its processes (the writers' and the listeners' backends, WAL writer…) "
            "per commit; synchronous_commit on (each commit waits for its WAL flush). The listeners' client side (one "
            "Python thread reading all of them) runs on the same machine; its CPU is shown apart.",
            "",
            "| case | writers | commits/s | commit p50 | commit p99 | PostgreSQL CPU/commit | listeners' client CPU/commit | notifications delivered |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in fan:
            expect = r["listeners"] * r["commits"]
            delivered = f"{r['delivered']:,} of {expect:,}" if r["listeners"] else "—"
            client = f"{r['client_us']:.0f} µs" if r["listeners"] else "—"
            lines.append(f"| {r['label']} | {r['clients']} | {r['tps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | "
                         f"{r['pg_us']:.0f} µs | {client} | {delivered} |")
        lines.append("")
        most = max(FANOUT_CLIENTS)
        off = next((r for r in fan if r["label"] == "trigger disabled" and r["clients"] == most), None)
        on = next((r for r in fan if r["listeners"] == 0 and r["label"] != "trigger disabled" and r["clients"] == most), None)
        if most > 1 and off and on:
            lines += [
                f"With {most} writers, the trigger alone (0 listeners) takes the commit rate from {off['tps']:,.0f}/s to "
                f"{on['tps']:,.0f}/s: PostgreSQL serializes the commits of transactions that `NOTIFY` (a database-wide "
                "lock taken before commit and held through the WAL flush, so that notifications queue in commit order), "
                "so concurrent updates and deletes of `user` and `session` rows commit one WAL flush at a time, whoever "
                "makes them (Better-Auth included). Each listener then adds the backend work of waking it and sending it "
                "the notification.",
                "",
            ]
    conns = (rev or {}).get("connections")
    if conns:
        names = sorted(set().union(*[set(v) for v in conns.values()]))
        warden_total = lambda c: sum(v for k, v in c.items() if k.startswith("warden"))
        lines += [
            "### Database connections held",
            "",
            f"pg_stat_activity on the benchmark's database, by application_name, with {REPLICAS} replicas "
            "(each: `DATABASE_MAX_CONNECTIONS` = 10, the default, plus one `LISTEN` connection) and the auth-server: "
            f"just after start, after the trials, and at the peak while each replica served 64 concurrent "
            f"`GET /admin/users` for {CONN_LOAD_SECS} s.",
            "",
            "| application_name | after start | after the trials | peak under load |",
            "|---|---:|---:|---:|",
        ]
        for n in names:
            lines.append(f"| {n} | {conns['idle'].get(n, 0)} | {conns['after'].get(n, 0)} | {conns['loaded'].get(n, 0)} |")
        lines.append(f"| **all warden** | {warden_total(conns['idle'])} | {warden_total(conns['after'])} | "
                     f"{warden_total(conns['loaded'])} |")
        lines += [
            "",
            f"So N replicas hold up to N × (`DATABASE_MAX_CONNECTIONS` + 1) connections: {REPLICAS} × 11 = "
            f"{REPLICAS * 11} here, 30 × 11 = 330 for 30 replicas, past PostgreSQL's default `max_connections` "
            "(100). To keep it bounded, point `DATABASE_URL` at a transaction-mode pooler (PgBouncer ≥ 1.21 with "
            "`max_prepared_statements`, or Neon's `-pooler` host) and `DATABASE_LISTEN_URL` at the database directly: "
            "the database then sees the pooler's pool (its `default_pool_size`, whatever N is) plus N listener "
            "connections, one per replica, each idle but for notifications and a ping every 5 s of silence. "
            "Lowering `DATABASE_MAX_CONNECTIONS` also caps it; with the user cache on, a hot-path request touches the "
            "database only on a cache miss.",
            "",
        ]
    return "\n".join(lines)


def main():
    global TRIALS
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    if mode not in ("all", "revocation", "fanout", "connections"):
        raise SystemExit("usage: bench/replicas.py [all|revocation|fanout|connections]")
    if 9 > TRIALS and mode in ("all", "revocation"):
        raise SystemExit("TRIALS must be at least 9 (each path × change once)")
    need_wrk()
    find_pgbench()
    auth_server_ready()
    raise_nofile()
    require_free(BA_PORT, *[port(i) for i in range(REPLICAS)], *[metrics_port(i) for i in range(REPLICAS)])
    os.makedirs(WORK, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M")
    load_at_start = loadavg()
    build_warden(WORK)
    parts = {}
    if mode in ("all", "revocation", "connections"):
        url = create_db(DB)
        try:
            if mode == "connections":
                TRIALS = 9
            parts["revocation"] = revocation(url)
            if mode == "connections":
                parts["revocation"] = {"connections": parts["revocation"]["connections"]}
        finally:
            if os.environ.get("KEEP_DB", "0") != "1":
                drop_db(DB)
    if mode in ("all", "fanout"):
        parts["fanout"] = fanout()
    text = report(parts, started, load_at_start)
    print(text)
    with open(OUT, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
