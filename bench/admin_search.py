#!/usr/bin/env python3
"""Admin search on a million users: every query shape GET /admin/users offers, timed over HTTP
(p50/p99), each `total` checked against a plain SELECT count(*), with the plan of the SQL
warden runs; side by side with Better-Auth's own GET /api/auth/admin/list-users on the same
database; and the write cost that warden's search indexes and user count add to a sign-up.

    python3 bench/admin_search.py                  # warden, every shape (1,000,000 users)
    python3 bench/admin_search.py --better-auth    # + Better-Auth's list-users, ratio per shape
    python3 bench/admin_search.py --write-cost     # + INSERT/UPDATE cost per index set (pgbench)
    python3 bench/admin_search.py --write-cost-only
    REUSE=1 python3 bench/admin_search.py ...      # keep an already seeded database
    ONLY="cursor;countLimit" python3 bench/admin_search.py   # only the shapes whose label holds one of these
    USERS=200000 SECONDS_PER_CASE=2 python3 bench/admin_search.py

Seeding: generate_series, then VACUUM ANALYZE (what autovacuum does to a table after a million
inserts; index-only scans need its visibility map). Each case: 3 warm-up requests, then
sequential requests until REQUESTS (default 300) or SECONDS_PER_CASE (default 6 s; Better-Auth
BA_SECONDS_PER_CASE, default 10 s, at most BA_REQUESTS=100). p99 is the 99th percentile of the
samples taken (with fewer than 100 samples it is the slowest but one... i.e. close to max; the
count is printed). The plans shown are those of the SQL warden runs, rebuilt here (keep
`page_sql`/`count_sql` in step with src/db/users.rs).

Needs PostgreSQL (ADMIN_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres), a
built warden (PROFILE=debug|release, default release), and for --better-auth Node with
auth-server/node_modules (`npm ci --prefix auth-server`), for --write-cost pgbench. Sends
traffic only to 127.0.0.1; every loop is bounded in count and time; stops the servers it
started. Markdown tables of the results go to OUT (default: none) as well as to stdout.
"""
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USERS = int(os.environ.get("USERS", "1000000"))
REQUESTS = int(os.environ.get("REQUESTS", "300"))
SECONDS_PER_CASE = float(os.environ.get("SECONDS_PER_CASE", "6"))
BA_REQUESTS = int(os.environ.get("BA_REQUESTS", "100"))
BA_SECONDS_PER_CASE = float(os.environ.get("BA_SECONDS_PER_CASE", "10"))
PORT = int(os.environ.get("PORT", "18089"))
BA_PORT = int(os.environ.get("BA_PORT", "18090"))
ADMIN_URL = os.environ.get("ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB = os.environ.get("BENCH_DATABASE", "warden_bench_search")
DB_URL = ADMIN_URL.rsplit("/", 1)[0] + "/" + DB
PROFILE = os.environ.get("PROFILE", "release")
OUT = os.environ.get("OUT")
TOKEN = "bench-admin-session-token"
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
WARDEN = os.path.join(target, PROFILE, "warden")
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Margaret"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Thompson", "Hamilton"]
DOMAINS = ["example.com", "corp.test", "mail.test", "uni.test"]


def psql(url, sql, capture=False):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip() if capture else None


def seed():
    psql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(ADMIN_URL, f'CREATE DATABASE "{DB}"')
    subprocess.run([WARDEN, "migrate"], check=True, env=dict(os.environ, DATABASE_URL=DB_URL, RUST_LOG="warn"))
    started = time.time()
    # Roles: 1 in 1000 admin, 1 in 20 editor; 1 in 50 banned; emails over four domains.
    psql(DB_URL, f"""
        INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at, role, banned)
        SELECT 'u' || g,
               (ARRAY{FIRST})[1 + g % 8] || ' ' || (ARRAY{LAST})[1 + (g / 8) % 8] || ' ' || g,
               'user' || g || '@' || (ARRAY{DOMAINS})[1 + g % 4],
               g % 3 = 0,
               now() - make_interval(secs => g),
               now() - make_interval(secs => g / 2),
               CASE WHEN g % 1000 = 0 THEN 'admin' WHEN g % 20 = 0 THEN 'user,editor' ELSE 'user' END,
               g % 50 = 0
        FROM generate_series(1, {USERS}) AS g;
        INSERT INTO "user" (id, name, email, email_verified, role, banned, created_at)
        VALUES ('bench-admin', 'Bench Admin', 'bench-admin@bench.test', true, 'admin', false, now() - interval '100 years');
        INSERT INTO session (id, expires_at, token, created_at, updated_at, user_id)
        VALUES ('bench-admin-session', now() + interval '1 day', '{TOKEN}', now(), now(), 'bench-admin');
    """)
    psql(DB_URL, 'VACUUM ANALYZE "user"')
    print(f"seeded {USERS:,} users in {time.time() - started:.1f} s (then VACUUM ANALYZE)", flush=True)


def name_of(g):
    return f"{FIRST[g % 8]} {LAST[(g // 8) % 8]} {g}"


def like_escape(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sql_text(text):
    return "'" + text.replace("'", "''") + "'"


def prefix_successor(prefix):
    """The least string above every string starting with `prefix` (as src/db/users.rs)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        nxt = 0xE000 if last == 0xD7FF else last + 1
        if nxt <= 0x10FFFF:
            return "".join(chars) + chr(nxt)
    return None


class Shape:
    """One query shape: warden's query string, Better-Auth's, and the plain SQL for its count."""

    def __init__(self, label, search=None, role=None, banned=None, sort=None, direction=None, offset=0, limit=50,
                 cursor=False, count_limit=None):
        self.label, self.search, self.role, self.banned = label, search, role, banned
        self.sort, self.direction, self.offset, self.limit = sort, direction, offset, limit
        # `count_limit`: warden counts a search's matches up to this many (`countLimit`).
        self.count_limit = count_limit
        # `cursor`: warden is asked for the page at `offset` by keyset, with the `nextCursor` of
        # the page before it (found once, by offset, before the timing); Better-Auth, which has
        # no cursor, by `offset`.
        self.cursor, self.cursor_value = cursor, None

    def resolve_cursor(self, headers):
        """The cursor of the page at `offset` (asked once, slowly, by offset), and that page's
        ids, which the keyset page must equal."""
        before = Shape(self.label, self.search, self.role, self.banned, self.sort, self.direction,
                       self.offset - self.limit, self.limit)
        _, body = request(f"http://127.0.0.1:{PORT}/admin/users?{before.warden_query()}", headers)
        self.cursor_value = body["nextCursor"]
        at = Shape(self.label, self.search, self.role, self.banned, self.sort, self.direction, self.offset, self.limit)
        _, body = request(f"http://127.0.0.1:{PORT}/admin/users?{at.warden_query()}", headers)
        return [u["id"] for u in body["users"]]

    def warden_query(self):
        q = {}
        if self.search:
            field, op, text = self.search
            q.update(search=text, searchField=field, searchOperator=op)
        if self.role:
            q["role"] = self.role
        if self.banned is not None:
            q["banned"] = "true" if self.banned else "false"
        if self.sort:
            q.update(sortBy=self.sort, sortDirection=self.direction)
        if self.cursor:
            q.update(limit=self.limit, cursor=self.cursor_value)
        else:
            q.update(limit=self.limit, offset=self.offset)
        if self.count_limit:
            q["countLimit"] = self.count_limit
        return urllib.parse.urlencode(q)

    def better_auth_query(self):
        # Better-Auth has no "holds this role" filter: `contains` on the comma-joined string is
        # the same set on this data (roles admin, user, user,editor). Its search is
        # case-sensitive LIKE; the texts below are written in the data's case, so both match
        # the same users (the bench checks that the totals agree).
        q = {}
        if self.search:
            field, op, text = self.search
            q.update(searchValue=text, searchField=field, searchOperator=op)
        if self.role:
            q.update(filterField="role", filterValue=self.role, filterOperator="contains")
        if self.banned is not None:
            q.update(filterField="banned", filterValue="true" if self.banned else "false", filterOperator="eq")
        q.update(sortBy=self.sort or "createdAt", sortDirection=self.direction or "desc")
        q.update(limit=self.limit, offset=self.offset)
        return urllib.parse.urlencode(q)

    def where(self):
        """The filter as plain SQL, as warden documents it (case-insensitive LIKE)."""
        parts = ["true"]
        if self.search:
            field, op, text = self.search
            t = like_escape(text.lower())
            pattern = {"contains": f"%{t}%", "starts_with": f"{t}%", "ends_with": f"%{t}"}[op]
            parts.append(f"lower({field}) LIKE {sql_text(pattern)}")
        if self.role:
            parts.append(f"{sql_text(self.role)} = ANY(warden_role_names(role))")
        if self.banned is True:
            parts.append("banned IS TRUE")
        if self.banned is False:
            parts.append("banned IS NOT TRUE")
        return " AND ".join(parts)

    # The SQL warden runs (src/db/users.rs), for EXPLAIN.
    def warden_where(self, prefix_range=False):
        parts = ["true"]
        if self.search:
            field, op, text = self.search
            t = text.lower()
            if op in ("starts_with", "ends_with"):
                expr, prefix = (f"lower({field})", t) if op == "starts_with" else (f"reverse(lower({field}))", t[::-1])
                if not prefix_range:
                    parts.append(f"{expr} ^@ {sql_text(prefix)}")
                else:
                    parts.append(f"{expr} ~>=~ {sql_text(prefix)}")
                    upper = prefix_successor(prefix)
                    if upper is not None:
                        parts.append(f"{expr} ~<~ {sql_text(upper)}")
            else:
                parts.append(f"lower({field}) LIKE {sql_text('%' + like_escape(t) + '%')}")
        if self.role:
            parts.append(f"warden_role_names(role) @> ARRAY[{sql_text(self.role)}]::text[]")
        if self.banned is True:
            parts.append("banned IS TRUE")
        if self.banned is False:
            parts.append("banned IS NOT TRUE")
        return " AND ".join(parts)

    def serial(self):
        """Whether warden counts this shape without parallel workers (a btree range)."""
        return bool(self.search) and self.search[1] in ("starts_with", "ends_with")

    def count_sql(self):
        if not self.search:
            return f"SELECT coalesce(sum(delta), 0)::bigint, count(*) FROM warden_user_count WHERE {self.warden_where()}"
        if self.count_limit:
            return (f'SELECT count(*), 0::bigint FROM (SELECT 1 FROM "user" WHERE {self.warden_where(prefix_range=True)} '
                    f"LIMIT {self.count_limit + 1}) AS matches")
        return f'SELECT count(*), 0::bigint FROM "user" WHERE {self.warden_where(prefix_range=True)}'

    def page_sql(self, total):
        col = {"createdAt": "created_at", "updatedAt": "updated_at", "email": "email", "name": "name"}[self.sort or "createdAt"]
        fwd = (self.direction or "desc").upper()
        back = "ASC" if fwd == "DESC" else "DESC"
        cols = "id, name, email, email_verified, image, created_at, updated_at, role, banned, ban_reason, ban_expires"
        if self.cursor:
            import base64
            position = json.loads(base64.urlsafe_b64decode(self.cursor_value + "=" * (-len(self.cursor_value) % 4)))
            # A time is nanoseconds since the epoch in the cursor; PostgreSQL keeps microseconds.
            key = (f"(timestamptz 'epoch' + {int(position['key']) // 1000} * interval '1 microsecond')"
                   if col.endswith("_at") else sql_text(position["key"]))
            beyond = ">" if fwd == "ASC" else "<"
            return (f'SELECT {cols} FROM "user" WHERE {self.warden_where()} AND ({col}, id) {beyond} '
                    f"({key}, {sql_text(position['id'])}) ORDER BY {col} {fwd}, id {fwd} LIMIT {self.limit + 1}")
        if self.offset < 1000:
            return (f'SELECT {cols} FROM "user" WHERE {self.warden_where()} '
                    f"ORDER BY {col} {fwd}, id {fwd} LIMIT {self.limit} OFFSET {self.offset}")
        direction, limit, offset = fwd, self.limit, self.offset
        if total // 2 < self.offset < total:
            end = total - self.offset
            start = max(end - self.limit, 0)
            direction, limit, offset = back, end - start, start
        return (f'SELECT {cols} FROM "user" WHERE id IN (SELECT id FROM "user" WHERE {self.warden_where()} '
                f"ORDER BY {col} {direction}, id {direction} LIMIT {limit} OFFSET {offset}) ORDER BY {col} {fwd}, id {fwd}")


def shapes():
    g = 123457
    out = [
        Shape("newest first (default)"),
        Shape("email contains, 1 match", search=("email", "contains", f"user{g}@")),
        Shape("email contains, 1/4 of users", search=("email", "contains", "example")),
        Shape("email starts_with, 11 matches", search=("email", "starts_with", "user99999")),
        Shape("email starts_with, 1/9 of users", search=("email", "starts_with", "user1")),
        Shape("email ends_with, 100 matches", search=("email", "ends_with", "3457@corp.test")),
        Shape("email ends_with, 1/4 of users", search=("email", "ends_with", "@corp.test")),
        Shape("name contains, few", search=("name", "contains", f"{LAST[(g // 8) % 8]} {g}")),
        Shape("name contains, 1/8 of users", search=("name", "contains", "Hopper")),
        Shape("name starts_with, few", search=("name", "starts_with", f"{FIRST[g % 8]} {LAST[(g // 8) % 8]} 12345")),
        Shape("name starts_with, 1/8 of users", search=("name", "starts_with", "Grace")),
        Shape("name ends_with, 1 match", search=("name", "ends_with", f" {g}")),
        Shape("name ends_with, 1/10 of users", search=("name", "ends_with", "7")),
        Shape("role=admin (0.1%)", role="admin"),
        Shape("role=editor (5%)", role="editor"),
        Shape("role=user (99.9%)", role="user"),
        Shape("banned=true (2%)", banned=True),
        Shape("banned=false (98%)", banned=False),
    ]
    for sort in ["createdAt", "updatedAt", "email", "name"]:
        for direction in ["asc", "desc"]:
            out.append(Shape(f"sortBy={sort} {direction}", sort=sort, direction=direction))
    for sort in ["createdAt", "updatedAt", "email", "name"]:
        out.append(Shape(f"sortBy={sort} desc, offset=500,000", sort=sort, direction="desc", offset=500_000))
    out.append(Shape("newest first, offset=250,000", sort="createdAt", direction="desc", offset=250_000))
    out.append(Shape("newest first, near the end", sort="createdAt", direction="desc", offset=USERS - 49))
    out.append(Shape("sortBy=email asc, near the end", sort="email", direction="asc", offset=USERS - 49))
    out.append(Shape("email ends_with 1/4, offset=100,000", search=("email", "ends_with", "@corp.test"), offset=100_000))
    # The same deep pages by keyset cursor (`nextCursor`), as an admin console pages.
    for sort in ["createdAt", "updatedAt", "email", "name"]:
        out.append(Shape(f"sortBy={sort} desc, cursor at 500,000", sort=sort, direction="desc", offset=500_000,
                         cursor=True))
    out.append(Shape("email ends_with 1/4, cursor at 100,000", search=("email", "ends_with", "@corp.test"),
                     offset=100_000, cursor=True))
    # Broad substring searches with the total counted up to 10,000 (`countLimit`), as an admin
    # console shows "1-50 of more than 10,000".
    out.append(Shape("email contains, 1/4 of users, countLimit=10,000", search=("email", "contains", "example"),
                     count_limit=10_000))
    out.append(Shape("name contains, 1/8 of users, countLimit=10,000", search=("name", "contains", "Hopper"),
                     count_limit=10_000))
    only = [o.strip() for o in os.environ.get("ONLY", "").split(";") if o.strip()]
    return [s for s in out if not only or any(o in s.label for o in only)]


def request(url, headers):
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.loads(r.read())


def timed(url, headers, max_requests, max_seconds):
    for _ in range(3):
        status, body = request(url, headers)
        assert status == 200, status
    times = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < max_requests and time.perf_counter() < deadline:
        t = time.perf_counter()
        status, body = request(url, headers)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return statistics.median(times), p99, len(times), body


def plan_summary(sql, serial=False):
    """EXPLAIN ANALYZE of `sql`; `serial` as warden runs a prefix or suffix search
    (`max_parallel_workers_per_gather = 0`, src/db/users.rs `serial_scan`)."""
    setup = "SET jit = off; " + ("SET max_parallel_workers_per_gather = 0; " if serial else "")
    plan = json.loads(psql(DB_URL, f"{setup}EXPLAIN (ANALYZE, FORMAT JSON) {sql}", capture=True))[0]
    nodes = []

    def walk(n):
        label = n["Node Type"] + (f" on {n['Index Name']}" if "Index Name" in n else "")
        if n["Node Type"] not in ("Aggregate", "Limit", "Gather", "Sort", "Hash Aggregate", "Finalize Aggregate",
                                  "Partial Aggregate", "HashAggregate", "Nested Loop"):
            nodes.append(label.replace("Index Only Scan", "IOS").replace("Index Scan", "IS"))
        for c in n.get("Plans", []):
            walk(c)
    walk(plan["Plan"])
    return " + ".join(dict.fromkeys(nodes)), plan["Execution Time"]


def wait_for(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    sys.exit(f"{url} did not answer within {seconds} s")


def start_better_auth():
    """Better-Auth on 127.0.0.1 against the bench database; an admin signs up and is made admin
    in SQL; its bearer session token authenticates list-users."""
    if not os.path.isdir(os.path.join(ROOT, "auth-server", "node_modules")):
        sys.exit("auth-server/node_modules missing: npm ci --prefix auth-server")
    base = f"http://127.0.0.1:{BA_PORT}"
    env = dict(os.environ, DATABASE_URL=DB_URL, BETTER_AUTH_SECRET=secrets.token_urlsafe(32),
               BETTER_AUTH_URL=base, PORT=str(BA_PORT), HOST="127.0.0.1", RATE_LIMIT="0",
               TRUSTED_ORIGINS=base)
    server = subprocess.Popen(["node", os.path.join(ROOT, "auth-server", "server.mjs")], env=env,
                              stdout=subprocess.DEVNULL)
    try:
        wait_for(f"{base}/healthz")
        psql(DB_URL, "DELETE FROM \"user\" WHERE email LIKE 'ba-admin-%@bench.test'")
        email = f"ba-admin-{secrets.token_hex(4)}@bench.test"
        body = json.dumps({"email": email, "password": secrets.token_urlsafe(16), "name": "BA Admin"}).encode()
        for attempt in range(5):
            req = urllib.request.Request(f"{base}/api/auth/sign-up/email", data=body, method="POST",
                                         headers={"Content-Type": "application/json", "Origin": base})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    token = r.headers.get("set-auth-token") or json.loads(r.read())["token"]
                break
            except urllib.error.HTTPError as e:
                print(f"Better-Auth sign-up: {e.code} {e.read()[:200]!r}", flush=True)
                if attempt == 4:
                    raise
                time.sleep(1)
    except BaseException:
        server.terminate()
        server.wait(timeout=10)
        raise
    psql(DB_URL, f"UPDATE \"user\" SET role = 'admin', created_at = now() - interval '101 years' WHERE email = '{email}'")
    return server, base, token


def write_cost(report):
    """INSERTs like a Better-Auth sign-up (one row, its own transaction, random email and name)
    into a copy of the million-user table, with each set of indexes added in turn (pgbench,
    one client, the lower of two runs of WRITE_TRANSACTIONS each); then the same for a profile
    UPDATE (name, updated_at)."""
    n = int(os.environ.get("WRITE_TRANSACTIONS", "2000"))
    print(f"\nwrite cost: {n:,} single-row INSERT, then UPDATE, transactions per step "
          "(pgbench, 1 client, synchronous_commit=off)", flush=True)
    psql(DB_URL, """
        DROP SCHEMA IF EXISTS wc CASCADE; CREATE SCHEMA wc;
        CREATE TABLE wc."user" (LIKE public."user" INCLUDING DEFAULTS);
        INSERT INTO wc."user" SELECT * FROM public."user";
        ALTER TABLE wc."user" ADD PRIMARY KEY (id), ADD UNIQUE (email);""")
    psql(DB_URL, 'VACUUM ANALYZE wc."user"')
    steps = [
        ("Better-Auth's own (primary key, unique email)", []),
        ("+ warden's earlier search indexes (2 trigram, 4 sort btrees, roles GIN, banned partial)", [
            "CREATE INDEX ON wc.\"user\" USING gin (lower(email) gin_trgm_ops)",
            "CREATE INDEX ON wc.\"user\" USING gin (lower(name) gin_trgm_ops)",
            "CREATE INDEX ON wc.\"user\" (created_at, id)", "CREATE INDEX ON wc.\"user\" (updated_at, id)",
            "CREATE INDEX ON wc.\"user\" (name, id)", "CREATE INDEX ON wc.\"user\" (email, id)",
            "CREATE INDEX ON wc.\"user\" USING gin (public.warden_role_names(role))",
            "CREATE INDEX ON wc.\"user\" (created_at, id) WHERE banned IS TRUE"]),
        ("+ prefix/suffix btrees on email (2)", [
            "CREATE INDEX ON wc.\"user\" (lower(email) text_pattern_ops) INCLUDE (email)",
            "CREATE INDEX ON wc.\"user\" (reverse(lower(email)) text_pattern_ops) INCLUDE (email)"]),
        ("+ prefix/suffix btrees on name (2)", [
            "CREATE INDEX ON wc.\"user\" (lower(name) text_pattern_ops) INCLUDE (name)",
            "CREATE INDEX ON wc.\"user\" (reverse(lower(name)) text_pattern_ops) INCLUDE (name)"]),
        ("+ user count triggers (warden_user_count, insert and update)", [
            "CREATE TABLE wc.warden_user_count (role text, banned boolean, delta bigint NOT NULL)",
            "CREATE FUNCTION wc.count_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO wc.warden_user_count (role, banned, delta) SELECT role, banned, count(*) FROM inserted "
            "GROUP BY role, banned; RETURN NULL; END $$",
            "CREATE TRIGGER c AFTER INSERT ON wc.\"user\" REFERENCING NEW TABLE AS inserted "
            "FOR EACH STATEMENT EXECUTE FUNCTION wc.count_ins()",
            "CREATE FUNCTION wc.count_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO wc.warden_user_count (role, banned, delta) SELECT role, banned, sum(d) FROM ("
            "SELECT role, banned, -1 AS d FROM before_rows UNION ALL SELECT role, banned, 1 FROM after_rows) c "
            "GROUP BY role, banned HAVING sum(d) <> 0; RETURN NULL; END $$",
            "CREATE TRIGGER u AFTER UPDATE ON wc.\"user\" REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION wc.count_upd()"]),
    ]
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write("\\set r random(1, 1000000000)\n"
                 "INSERT INTO wc.\"user\" (id, name, email, email_verified, created_at, updated_at, role, banned) "
                 "VALUES (md5(:r::text || random()::text), 'Signup ' || md5(:r::text), "
                 "md5(random()::text) || '@signup.test', false, now(), now(), 'user', false);\n")
    script.close()
    # A profile change as Better-Auth's updateUser writes it (name and updated_at, no role/ban).
    update = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    update.write(f"\\set r random(1, {USERS})\n"
                 "UPDATE wc.\"user\" SET name = 'Renamed ' || :r || ' ' || random(), updated_at = now() "
                 "WHERE id = 'u' || :r;\n")
    update.close()

    def latency_of(path):
        # synchronous_commit=off: the commit's WAL flush (a few ms on this disk, the same with
        # or without indexes) would drown the cost of the index entries themselves.
        out = subprocess.run(["pgbench", "-n", "-c", "1", "-t", str(n), "-f", path, DB_URL],
                             check=True, capture_output=True, text=True,
                             env=dict(os.environ, PGOPTIONS="-c synchronous_commit=off")).stdout
        return float(next(line for line in out.splitlines() if "latency average" in line).split("=")[1].split()[0])

    rows = []
    previous = None
    for label, ddl in steps:
        for statement in ddl:
            psql(DB_URL, statement)
        psql(DB_URL, 'VACUUM ANALYZE wc."user"')
        psql(DB_URL, "CHECKPOINT")
        # The lower of two runs: other work on the machine only ever adds time.
        insert = min(latency_of(script.name), latency_of(script.name))
        upd = min(latency_of(update.name), latency_of(update.name))
        added = "" if previous is None else f"{(insert - previous[0]) * 1000:+.0f} µs"
        added_upd = "" if previous is None else f"{(upd - previous[1]) * 1000:+.0f} µs"
        previous = (insert, upd)
        rows.append((label, insert, added, upd, added_upd))
        print(f"  {label:90} INSERT {insert * 1000:5.0f} µs {added:>8}   UPDATE {upd * 1000:5.0f} µs {added_upd:>8}", flush=True)
    os.unlink(script.name)
    os.unlink(update.name)
    psql(DB_URL, "DROP SCHEMA wc CASCADE")
    report.append("\n| indexes on the table | sign-up INSERT µs | added | profile UPDATE µs | added |")
    report.append("|---|---:|---:|---:|---:|")
    for label, insert, added, upd, added_upd in rows:
        report.append(f"| {label} | {insert * 1000:.0f} | {added} | {upd * 1000:.0f} | {added_upd} |")


def main():
    args = set(sys.argv[1:])
    if not os.path.exists(WARDEN):
        sys.exit(f"{WARDEN} not found: run `cargo build{' --release' if PROFILE == 'release' else ''}` first")
    exists = psql(ADMIN_URL, f"SELECT 1 FROM pg_database WHERE datname = '{DB}'", capture=True)
    if os.environ.get("REUSE") == "1" and exists:
        print(f"reusing {DB}")
        subprocess.run([WARDEN, "migrate"], check=True, env=dict(os.environ, DATABASE_URL=DB_URL, RUST_LOG="warn"))
    else:
        seed()
    env = dict(os.environ, DATABASE_URL=DB_URL, BIND_ADDR=f"127.0.0.1:{PORT}", RUN_MIGRATIONS="false",
               BETTER_AUTH_URL="http://127.0.0.1:9", RUST_LOG="error", SESSION_CHECK="auto")
    servers = [subprocess.Popen([WARDEN, "serve"], env=env)]
    report = []
    try:
        wait_for(f"http://127.0.0.1:{PORT}/healthz")
        ba = None
        if "--better-auth" in args:
            server, base, ba_token = start_better_auth()
            servers.append(server)
            ba = (base, ba_token)
        users = int(psql(DB_URL, 'SELECT count(*) FROM "user"', capture=True))
        load = os.getloadavg()
        print(f"\n{users:,} users; up to {REQUESTS} requests or {SECONDS_PER_CASE:g} s per case after 3 warm-ups "
              f"({PROFILE} build); load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n", flush=True)
        head = "| shape | total | warden p50 ms | warden p99 ms | n |"
        if ba:
            head += " Better-Auth p50 ms | Better-Auth p99 ms | n | p50 ratio | p99 ratio |"
        head += " warden plan: count ; page (ms) |"
        if "--write-cost-only" not in args:
            report += [head, "|" + "---|" * (head.count("|") - 1)]
        print(head)
        for shape in shapes() if "--write-cost-only" not in args else []:
            want = int(psql(DB_URL, f'SELECT count(*) FROM "user" WHERE {shape.where()}', capture=True))
            page_ids = shape.resolve_cursor({"Authorization": f"Bearer {TOKEN}"}) if shape.cursor else None
            p50, p99, n, body = timed(f"http://127.0.0.1:{PORT}/admin/users?{shape.warden_query()}",
                                      {"Authorization": f"Bearer {TOKEN}"}, REQUESTS, SECONDS_PER_CASE)
            if shape.count_limit and want > shape.count_limit:
                assert (body["total"], body["totalExact"]) == (shape.count_limit, False), \
                    f"{shape.label}: warden total {body['total']} ({body['totalExact']}), {want} match"
            else:
                assert body["total"] == want, f"{shape.label}: warden total {body['total']} != count(*) {want}"
            if page_ids is not None:
                assert [u["id"] for u in body["users"]] == page_ids, f"{shape.label}: not the page at the offset"
            row = f"| {shape.label} | {want:,} | {p50:.1f} | {p99:.1f} | {n} |"
            if ba:
                bp50, bp99, bn, bbody = timed(f"{ba[0]}/api/auth/admin/list-users?{shape.better_auth_query()}",
                                              {"Authorization": f"Bearer {ba[1]}"}, BA_REQUESTS, BA_SECONDS_PER_CASE)
                # Better-Auth counts its own admin too (warden's bench admin is in both).
                note = "" if bbody["total"] in (want, want + 1) else f" (Better-Auth total {bbody['total']:,})"
                row += f" {bp50:.1f} | {bp99:.1f} | {bn} | {bp50 / p50:.1f}× | {bp99 / p99:.1f}×{note} |"
            (pplan, pms) = plan_summary(shape.page_sql(want), shape.serial())
            if not shape.cursor and shape.offset < 1000 and (want - shape.offset < shape.limit) and \
                    (want > shape.offset or shape.offset == 0):
                cplan = "none: the page is the last one"  # warden counts nothing (list_page)
            else:
                (cplan, cms) = plan_summary(shape.count_sql(), shape.serial())
                cplan = f"{cplan} ({cms:.1f})"
            row += f" {cplan} ; {pplan} ({pms:.1f}) |"
            report.append(row)
            print(row, flush=True)
        save(report)
        if "--write-cost" in args or "--write-cost-only" in args:
            write_cost(report)
            save(report)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


def save(report):
    if OUT:
        with open(OUT, "w") as f:
            f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
