#!/usr/bin/env python3
"""Admin search on a million users: seeds a database with generate_series, starts warden on
127.0.0.1, and times GET /admin/users for each kind of search over HTTP; prints the query
plan (EXPLAIN ANALYZE) of the SQL warden runs for each case.

    python3 bench/admin_search.py                 # 1,000,000 users, 20 timed requests per case
    USERS=200000 REQUESTS=10 python3 bench/admin_search.py
    REUSE=1 python3 bench/admin_search.py         # keep an already seeded database

Needs PostgreSQL (ADMIN_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres) and
a built warden (PROFILE=debug|release, default release: `cargo build --release`). Sends traffic
only to 127.0.0.1; bounded by USERS x cases x REQUESTS; stops warden when done.
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USERS = int(os.environ.get("USERS", "1000000"))
REQUESTS = int(os.environ.get("REQUESTS", "20"))
PORT = int(os.environ.get("PORT", "18089"))
ADMIN_URL = os.environ.get("ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB = os.environ.get("BENCH_DATABASE", "warden_bench_search")
DB_URL = ADMIN_URL.rsplit("/", 1)[0] + "/" + DB
PROFILE = os.environ.get("PROFILE", "release")
TOKEN = "bench-admin-session-token"
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
WARDEN = os.path.join(target, PROFILE, "warden")


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
               (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Ken','Margaret'])[1 + g % 8]
                   || ' ' || (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Thompson','Hamilton'])[1 + (g / 8) % 8]
                   || ' ' || g,
               'user' || g || '@' || (ARRAY['example.com','corp.test','mail.test','uni.test'])[1 + g % 4],
               g % 3 = 0,
               now() - make_interval(secs => g),
               now() - make_interval(secs => g / 2),
               CASE WHEN g % 1000 = 0 THEN 'admin' WHEN g % 20 = 0 THEN 'user,editor' ELSE 'user' END,
               g % 50 = 0
        FROM generate_series(1, {USERS}) AS g;
        INSERT INTO "user" (id, name, email, email_verified, role, banned)
        VALUES ('bench-admin', 'Bench Admin', 'bench-admin@bench.test', true, 'admin', false);
        INSERT INTO session (id, expires_at, token, created_at, updated_at, user_id)
        VALUES ('bench-admin-session', now() + interval '1 day', '{TOKEN}', now(), now(), 'bench-admin');
        ANALYZE;
    """)
    print(f"seeded {USERS:,} users in {time.time() - started:.1f} s", flush=True)


# Each case: the query string, and the SQL warden runs for it (for EXPLAIN).
SELECT = 'SELECT id, name, email, email_verified, image, created_at, updated_at, role, banned, ban_reason, ban_expires FROM "user"'
CASES = [
    ("newest first (default)", "", "WHERE true ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("deep page offset=500000", "offset=500000",
     "WHERE true ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 500000"),
    ("email contains, 1 match", "search=user123457%40", "WHERE true AND lower(email) LIKE '%user123457@%' ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("email contains, ~11 matches", "search=user12345", "WHERE true AND lower(email) LIKE '%user12345%' ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("email starts_with", "search=user99999&searchOperator=starts_with", "WHERE true AND lower(email) LIKE 'user99999%' ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("email ends_with (1/4 of users)", "search=%40corp.test&searchOperator=ends_with", "WHERE true AND lower(email) LIKE '%@corp.test' ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("name contains", "search=hopper%2077&searchField=name", "WHERE true AND lower(name) LIKE '%hopper 77%' ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("role=admin", "role=admin", "WHERE true AND string_to_array(replace(coalesce(role, ''), ' ', ''), ',') @> ARRAY['admin']::text[] ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("banned=true", "banned=true", "WHERE true AND banned IS TRUE ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0"),
    ("sortBy=email", "sortBy=email", "WHERE true ORDER BY email ASC, id ASC LIMIT 50 OFFSET 0"),
    ("sortBy=name desc, limit 200", "sortBy=name&sortDirection=desc&limit=200", "WHERE true ORDER BY name DESC, id DESC LIMIT 200 OFFSET 0"),
]


def get(path):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.loads(r.read())


def main():
    if not os.path.exists(WARDEN):
        sys.exit(f"{WARDEN} not found: run `cargo build{' --release' if PROFILE == 'release' else ''}` first")
    exists = psql(ADMIN_URL, f"SELECT 1 FROM pg_database WHERE datname = '{DB}'", capture=True)
    if os.environ.get("REUSE") == "1" and exists:
        print(f"reusing {DB}")
    else:
        seed()
    total = int(psql(DB_URL, 'SELECT count(*) FROM "user"', capture=True))
    env = dict(os.environ, DATABASE_URL=DB_URL, BIND_ADDR=f"127.0.0.1:{PORT}", RUN_MIGRATIONS="false",
               BETTER_AUTH_URL="http://127.0.0.1:9", RUST_LOG="error", SESSION_CHECK="auto")
    server = subprocess.Popen([WARDEN, "serve"], env=env)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        print(f"\n{total:,} users; {REQUESTS} timed requests per case after 2 warm-ups ({PROFILE} build)\n")
        print(f"{'case':34} {'total':>9} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  plan (execution ms)")
        for name, query, where in CASES:
            for _ in range(2):
                get(f"/admin/users?{query}")
            times = []
            for _ in range(REQUESTS):
                t = time.perf_counter()
                status, body = get(f"/admin/users?{query}")
                times.append((time.perf_counter() - t) * 1000)
                assert status == 200
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            plan = psql(DB_URL, f"EXPLAIN (ANALYZE, FORMAT JSON) {SELECT} {where}", capture=True)
            plan = json.loads(plan)[0]
            nodes = []
            def walk(n):
                label = n["Node Type"] + (f" on {n['Index Name']}" if "Index Name" in n else "")
                nodes.append(label)
                for c in n.get("Plans", []):
                    walk(c)
            walk(plan["Plan"])
            shown = " > ".join(dict.fromkeys(nodes))
            print(f"{name:34} {body['total']:>9,} {statistics.median(times):>10.1f} {p95:>8.1f} {times[-1]:>8.1f}"
                  f"  {shown} ({plan['Execution Time']:.1f})", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
