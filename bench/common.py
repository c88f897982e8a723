"""Helpers shared by bench/better_auth.py and bench/replicas.py: building warden, seeding a
database, starting and always stopping the servers, wrk, CPU and RSS from /proc, the machine.

Everything listens on and talks to 127.0.0.1 only. Every child process is started so that it
dies with the benchmark (PR_SET_PDEATHSIG) and is stopped on exit, Ctrl-C or SIGTERM.
"""
import atexit
import ctypes
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
WARDEN = os.path.join(TARGET, "release", "warden")
ADMIN_URL = os.environ.get("ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    return int(os.environ.get(name, str(default)))


def env_list(name, default):
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


def db_url(name):
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def psql(url, sql):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- processes

_children = []
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args, env, log_path, cwd=None):
    """Starts a server; its output goes to log_path. Stopped by stop_all() at the latest."""
    out = open(log_path, "ab")
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    proc.log_path = log_path
    _children.append(proc)
    return proc


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_all():
    for proc in reversed(_children):
        stop(proc)
    _children.clear()


def _on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


atexit.register(stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def tail(path, n=30):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return ""


def wait_http(url, proc=None, timeout=60, ok=(200,)):
    """Polls url until it answers one of `ok`; fails when proc exits or the time is up."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}:\n{tail(proc.log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
                last = r.status
        except urllib.error.HTTPError as e:
            last = e.code
            if e.code in ok:
                return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout} s (last: {last})" +
                     (f"\n{tail(proc.log_path)}" if proc is not None else ""))


def require_free(*ports):
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"port {port} on 127.0.0.1 is in use: stop what listens there or change the *_PORT knobs")


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- building and seeding

_warden = None


def build_warden(work):
    """Builds warden (release) and copies the binary into `work`: CARGO_TARGET_DIR may be shared
    with other checkouts whose builds would otherwise swap the binary under a running benchmark."""
    global _warden
    source = os.environ.get("WARDEN_BIN")  # a binary built already (then no build here)
    if not source:
        log("cargo build --release --bin warden")
        sh("cargo", "build", "--quiet", "--release", "--bin", "warden", cwd=ROOT,
           env=dict(os.environ, SQLX_OFFLINE="true"))
        source = WARDEN
    _warden = os.path.join(work, "warden")
    shutil.copy2(source, _warden + ".new")
    os.replace(_warden + ".new", _warden)
    return _warden


def warden_bin():
    if _warden is None:
        raise RuntimeError("build_warden() first")
    return _warden


def create_db(name):
    """A fresh database `name` with warden's schema; returns its URL."""
    url = db_url(name)
    psql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    sh(warden_bin(), "migrate", env=dict(os.environ, DATABASE_URL=url, RUST_LOG="warn"))
    return url


def drop_db(name):
    psql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def auth_server_ready():
    if not os.path.isdir(os.path.join(ROOT, "auth-server", "node_modules")):
        raise SystemExit("auth-server/node_modules is missing: run `npm ci --prefix auth-server`")


# ---------------------------------------------------------------- /proc

def redis_resp(*parts):
    """One command in Redis's wire format, for `redis-cli --pipe`."""
    out = f"*{len(parts)}\r\n"
    for p in parts:
        p = str(p)
        out += f"${len(p.encode())}\r\n{p}\r\n"
    return out


def start_redis(port, log_path=None):
    """A private redis-server (no persistence) on 127.0.0.1:`port`, answering."""
    for tool in ("redis-server", "redis-cli"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (Debian: apt-get install redis-server)")
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if log_path:
        proc = spawn(args, dict(os.environ), log_path)
    else:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        if time.monotonic() > deadline:
            raise SystemExit("redis-server did not answer")
        time.sleep(0.05)
    return proc


def redis_pipe(port, commands):
    """Sends `commands` (each from `redis_resp`) in one `redis-cli --pipe`."""
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(commands), text=True, check=True,
                   capture_output=True)


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def ppid(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def _proc_children(parent):
    """{pid: (start time, utime + stime)} of the live children of `parent`."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                out[int(entry)] = (fields[19], int(fields[11]) + int(fields[12]))
    return out


class PgCpu:
    """CPU time PostgreSQL spends for one database between start() and stop(): its backends' and
    the background processes' (WAL writer, checkpointer...), from /proc, sampled every 0.2 s so
    that backends ending in between (pgbench's) count up to their last sample. Connections to
    other databases are left out."""

    def __init__(self, url, database):
        self.url, self.database = url, database
        self.parent = postmaster_pid(url)

    def _sample(self, first):
        kids = _proc_children(self.parent)
        ours = {int(r[0]) for r in self.conn.query(
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.database}' OR datname IS NULL")}
        ours.discard(self.conn.backend_pid)
        for pid in ours:
            if pid in kids:
                key = (pid, kids[pid][0])
                if key not in self.base:
                    self.base[key] = kids[pid][1] if first else 0
                self.last[key] = kids[pid][1]

    def start(self):
        if not self.parent:
            return
        from pgwire import PgConn
        self.conn = PgConn(self.url, application_name="bench-cpu-probe")
        self.base, self.last = {}, {}
        self._sample(first=True)
        self.done = threading.Event()

        def loop():
            while not self.done.wait(0.2):
                self._sample(first=False)

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def stop(self):
        """Ticks used since start(), or None when PostgreSQL's processes are not readable."""
        if not self.parent:
            return None
        self.done.set()
        self.thread.join()
        self._sample(first=False)
        self.conn.close()
        return sum(self.last[k] - self.base[k] for k in self.last)


def postmaster_pid(url):
    """The postmaster of the local PostgreSQL (the parent of a backend), or None when it is not
    on this machine (its CPU is then not reported)."""
    from pgwire import PgConn
    try:
        conn = PgConn(url)
        try:
            return ppid(conn.backend_pid)
        finally:
            conn.close()
    except Exception as e:
        log(f"PostgreSQL's processes are not readable here ({e}); its CPU is not reported")
        return None


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def ticks_to_us(ticks):
    return ticks * 1e6 / CLK_TCK


# ---------------------------------------------------------------- wrk

def wrk(url_base, path, header, values_file, connections, duration, timeout=10):
    """GET url_base+path for `duration` s with `connections`, each request with the next line of
    values_file as the value of `header`. Returns requests, duration_us, p50/p99/p999 (µs),
    errors (socket errors, timeouts and non-2xx/3xx answers) and timeouts."""
    threads = max(1, min(2, connections))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", f"{timeout}s",
         "-s", os.path.join(ROOT, "bench", "headers.lua"), url_base],
        env=dict(os.environ, HEADERS_FILE=values_file, HEADER=header, REQ_PATH=path),
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) p999_us=(\d+) "
                  r"errors=(\d+) timeouts=(\d+)", out)
    if not m:
        raise SystemExit(f"wrk printed no RESULT:\n{out}")
    r = dict(zip(["requests", "duration_us", "p50", "p99", "p999", "errors", "timeouts"], map(int, m.groups())))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def need_wrk():
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode != 0:
        raise SystemExit("needs wrk: apt-get -o DPkg::Lock::Timeout=600 install -y wrk")


# ---------------------------------------------------------------- reporting

def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")), 0)
    pg = psql(ADMIN_URL, "SHOW server_version")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {mem / 1024 / 1024:.0f} GiB, {platform.system()} {platform.release()}; "
            f"PostgreSQL {pg}, Node {node}")


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def knobs(names):
    return " ".join(f"{n}={os.environ[n]}" for n in names if n in os.environ)


def http_json(method, url, body=None, headers=None, timeout=10):
    """(status, headers, parsed JSON or text) of one request."""
    data = None if body is None else json.dumps(body).encode()
    h = {"content-type": "application/json"} if body is not None else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    try:
        return status, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return status, hdrs, raw.decode(errors="replace")
