// warden's Better-Auth server: sign-up / sign-in / OAuth / sessions, JWTs and JWKS.
//
// The database schema is owned by warden (its migrations); this server never migrates.
// At start it asks Better-Auth whether the schema it would need differs from the database
// and refuses to run when tables or columns are missing.
//
// Configuration comes from the environment; see README.md for every variable.

import http from "node:http";
import process from "node:process";

import pg from "pg";
import { betterAuth } from "better-auth";
import { admin, bearer, jwt } from "better-auth/plugins";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";

// Telemetry is off whatever the environment says (Better-Auth reads this at call time).
process.env.BETTER_AUTH_TELEMETRY = "0";

function fail(message) {
  console.error(`auth-server: ${message}`);
  process.exit(1);
}

function env(name, fallback) {
  const value = process.env[name];
  return value === undefined || value.trim() === "" ? fallback : value.trim();
}

function list(value) {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function positiveInt(name) {
  const raw = env(name, undefined);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) <= 0) fail(`${name} must be a positive whole number of seconds, got "${raw}"`);
  return Number(raw);
}

// ---------------------------------------------------------------- configuration

const DATABASE_URL = env("DATABASE_URL", undefined);
if (!DATABASE_URL) fail("DATABASE_URL is required (e.g. postgres://postgres@127.0.0.1:5432/warden)");

const BETTER_AUTH_SECRET = env("BETTER_AUTH_SECRET", undefined);
if (!BETTER_AUTH_SECRET) fail("BETTER_AUTH_SECRET is required (at least 32 random characters, e.g. `openssl rand -base64 32`)");

const PORT = Number(env("PORT", "3000"));
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`PORT must be a port number, got "${process.env.PORT}"`);
const HOST = env("HOST", "0.0.0.0");

const BASE_URL = env("BETTER_AUTH_URL", "http://localhost:3000").replace(/\/+$/, "");
let baseOrigin;
try {
  baseOrigin = new URL(BASE_URL).origin;
} catch {
  fail(`BETTER_AUTH_URL is not a URL: "${BASE_URL}"`);
}

const KEY_PAIR_CONFIGS = {
  EdDSA: { alg: "EdDSA", crv: "Ed25519" },
  RS256: { alg: "RS256" },
  PS256: { alg: "PS256" },
  ES256: { alg: "ES256" },
  ES512: { alg: "ES512" },
};
const JWT_ALG = env("JWT_ALG", "EdDSA");
const keyPairConfig = KEY_PAIR_CONFIGS[JWT_ALG];
if (!keyPairConfig) fail(`JWT_ALG must be one of ${Object.keys(KEY_PAIR_CONFIGS).join(", ")}, got "${JWT_ALG}"`);

// A time span such as "15m", "900s", "1 hour"; bare digits are seconds. (A bare number would be
// taken by the jwt plugin as an absolute exp claim, so it is turned into "<n>s".)
let JWT_EXPIRATION = env("JWT_EXPIRATION", "15m");
if (/^\d+$/.test(JWT_EXPIRATION)) JWT_EXPIRATION = `${JWT_EXPIRATION}s`;
if (!/^\d+(\.\d+)? ?(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?)$/i.test(JWT_EXPIRATION)) {
  fail(`JWT_EXPIRATION must be a time span such as 15m, 900s, 1h or a number of seconds, got "${JWT_EXPIRATION}"`);
}
// Both in seconds, as the jwt plugin expects (jwks.rotationInterval / jwks.gracePeriod).
const JWKS_ROTATION_INTERVAL_SECS = positiveInt("JWKS_ROTATION_INTERVAL_SECS");
const JWKS_GRACE_PERIOD_SECS = positiveInt("JWKS_GRACE_PERIOD_SECS");

const trustedOrigins = [
  ...new Set([...list(env("TRUSTED_ORIGINS", "http://localhost:5173")), baseOrigin]),
];

const ADMIN_USER_IDS = list(env("ADMIN_USER_IDS", ""));

// Better-Auth's in-memory rate limiter is on by default only when NODE_ENV=production, and
// behind no proxy header it puts every client in one bucket (sign-in: 3 per 10 s), which
// breaks end-to-end tests. Here it is off unless RATE_LIMIT=1.
const RATE_LIMIT = env("RATE_LIMIT", "0");
if (RATE_LIMIT !== "0" && RATE_LIMIT !== "1") fail(`RATE_LIMIT must be 0 or 1, got "${RATE_LIMIT}"`);

const socialProviders = {};
for (const [id, prefix] of [
  ["google", "GOOGLE"],
  ["github", "GITHUB"],
]) {
  const clientId = env(`${prefix}_CLIENT_ID`, undefined);
  const clientSecret = env(`${prefix}_CLIENT_SECRET`, undefined);
  if (clientId && clientSecret) socialProviders[id] = { clientId, clientSecret };
  else if (clientId || clientSecret) console.warn(`auth-server: ${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET must both be set; ${id} sign-in stays off`);
}

// ---------------------------------------------------------------- Better-Auth

const pool = new pg.Pool({ connectionString: DATABASE_URL });
pool.on("error", (err) => console.error("auth-server: idle database connection error:", err.message));

const jwks = { keyPairConfig };
if (JWKS_ROTATION_INTERVAL_SECS) jwks.rotationInterval = JWKS_ROTATION_INTERVAL_SECS;
if (JWKS_GRACE_PERIOD_SECS) jwks.gracePeriod = JWKS_GRACE_PERIOD_SECS;

/** @type {import("better-auth").BetterAuthOptions} */
const options = {
  appName: "warden",
  baseURL: BASE_URL,
  basePath: "/api/auth",
  secret: BETTER_AUTH_SECRET,
  database: pool,
  trustedOrigins,
  telemetry: { enabled: false },
  rateLimit: { enabled: RATE_LIMIT === "1" },
  emailAndPassword: { enabled: true, requireEmailVerification: false },
  socialProviders,

  // Every model and field mapped to warden's snake_case schema.
  user: {
    modelName: "user",
    fields: { emailVerified: "email_verified", createdAt: "created_at", updatedAt: "updated_at" },
  },
  session: {
    modelName: "session",
    fields: {
      expiresAt: "expires_at",
      createdAt: "created_at",
      updatedAt: "updated_at",
      ipAddress: "ip_address",
      userAgent: "user_agent",
      userId: "user_id",
    },
  },
  account: {
    modelName: "account",
    fields: {
      accountId: "account_id",
      providerId: "provider_id",
      userId: "user_id",
      accessToken: "access_token",
      refreshToken: "refresh_token",
      idToken: "id_token",
      accessTokenExpiresAt: "access_token_expires_at",
      refreshTokenExpiresAt: "refresh_token_expires_at",
      createdAt: "created_at",
      updatedAt: "updated_at",
    },
  },
  verification: {
    modelName: "verification",
    fields: { expiresAt: "expires_at", createdAt: "created_at", updatedAt: "updated_at" },
  },

  plugins: [
    jwt({
      jwks,
      jwt: {
        expirationTime: JWT_EXPIRATION,
        // The default payload (the whole user) plus the session id, so warden can check that
        // the session still exists. iss and aud stay at their default, the base URL.
        definePayload: ({ user, session }) => ({ ...user, sid: session.id }),
      },
      schema: {
        jwks: {
          modelName: "jwks",
          fields: { publicKey: "public_key", privateKey: "private_key", createdAt: "created_at", expiresAt: "expires_at" },
        },
      },
    }),
    admin({
      ...(ADMIN_USER_IDS.length ? { adminUserIds: ADMIN_USER_IDS } : {}),
      schema: {
        user: { fields: { banReason: "ban_reason", banExpires: "ban_expires" } },
        session: { fields: { impersonatedBy: "impersonated_by" } },
      },
    }),
    bearer(),
  ],
};

const auth = betterAuth(options);

// ---------------------------------------------------------------- schema check

function describeFields(fields) {
  return Object.entries(fields)
    .map(([name, f]) => f.fieldName ?? name)
    .join(", ");
}

async function checkSchema() {
  if (env("AUTH_SCHEMA_CHECK", "1") === "0") return;
  const { toBeCreated, toBeAdded, toBeAddedIndexes, unsafeChanges, schemaProblems } = await getMigrations(options, {
    throwOnUnsafe: false,
  });
  const problems = [
    ...toBeCreated.map((t) => `missing table "${t.table}" (${describeFields(t.fields)})`),
    ...toBeAdded.map((t) => `table "${t.table}" is missing columns: ${describeFields(t.fields)}`),
    ...(unsafeChanges ?? []),
    ...(schemaProblems ?? []),
  ];
  for (const i of toBeAddedIndexes ?? []) {
    console.warn(`auth-server: warning: index "${i.name}" on "${i.table}" is missing (not fatal)`);
  }
  if (problems.length) {
    console.error("auth-server: the database schema is not what Better-Auth needs:");
    for (const p of problems) console.error(`  - ${p}`);
    console.error("auth-server: this server never migrates; run warden's migrations first (or set AUTH_SCHEMA_CHECK=0).");
    await pool.end().catch(() => {});
    process.exit(1);
  }
}

// Better-Auth signs with the newest live key of JWT_ALG, or else with the newest live key of any
// algorithm: changing JWT_ALG takes effect only once the old keys expire (rotation) or their
// rows are removed. Say so at start.
async function warnOnKeyAlgMismatch() {
  try {
    const { rows } = await pool.query(
      `select alg from "jwks" where expires_at is null or expires_at > now() order by created_at desc`,
    );
    // Rows without alg count as the configured algorithm (that is what Better-Auth assumes).
    if (rows.length && !rows.some((r) => r.alg === null || r.alg === JWT_ALG)) {
      console.warn(
        `auth-server: warning: JWT_ALG is ${JWT_ALG} but the live signing key in "jwks" is ${rows[0].alg}; ` +
          `Better-Auth keeps signing with it until it expires or its row is deleted`,
      );
    }
  } catch (err) {
    console.warn(`auth-server: warning: could not read "jwks": ${err.message}`);
  }
}

// ---------------------------------------------------------------- HTTP

const EXPOSED = ["set-auth-jwt", "set-auth-token"];
const isTrusted = (origin) => Boolean(origin) && trustedOrigins.includes(origin);

function corsHeaders(origin) {
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    vary: "Origin",
  };
}

// Better-Auth's handler wrapped so that responses to trusted origins carry CORS headers.
// Better-Auth itself writes Access-Control-Expose-Headers (set-auth-token, set-auth-jwt) on
// some responses; the lists are merged here, not overwritten.
async function authWithCors(request) {
  let response = await auth.handler(request);
  const origin = request.headers.get("origin");
  if (!isTrusted(origin)) return response;
  const expose = new Set(
    list(response.headers.get("access-control-expose-headers")).map((h) => h.toLowerCase()).concat(EXPOSED),
  );
  const extra = { ...corsHeaders(origin), "access-control-expose-headers": [...expose].join(", ") };
  try {
    for (const [k, v] of Object.entries(extra)) response.headers.set(k, v);
  } catch {
    // Immutable headers (e.g. a redirect response): copy into a new Response.
    const headers = new Headers(response.headers);
    for (const [k, v] of Object.entries(extra)) headers.set(k, v);
    response = new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
  return response;
}

const authNode = toNodeHandler(authWithCors);

const server = http.createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0];

  if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(req.method === "HEAD" ? undefined : "ok");
    return;
  }

  if (path === "/api/auth" || path.startsWith("/api/auth/")) {
    if (req.method === "OPTIONS") {
      const origin = req.headers.origin;
      if (!isTrusted(origin)) {
        res.writeHead(403, { "content-type": "text/plain; charset=utf-8" });
        res.end("origin not allowed");
        return;
      }
      res.writeHead(204, {
        ...corsHeaders(origin),
        "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
        "access-control-allow-headers": req.headers["access-control-request-headers"] || "content-type, authorization",
        "access-control-max-age": "600",
        vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
      });
      res.end();
      return;
    }
    authNode(req, res).catch((err) => {
      console.error("auth-server: request failed:", err);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end();
    });
    return;
  }

  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end("not found");
});

// ---------------------------------------------------------------- start / stop

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`auth-server: ${signal} received, shutting down`);
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  server.close(() => {
    pool.end().finally(() => process.exit(0));
  });
  server.closeIdleConnections?.();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

try {
  await checkSchema();
  await warnOnKeyAlgMismatch();
} catch (err) {
  await pool.end().catch(() => {});
  fail(`cannot check the database schema: ${err?.message ?? err}`);
}

server.on("error", (err) => fail(`cannot listen on ${HOST}:${PORT}: ${err.message}`));
server.listen(PORT, HOST, () => {
  const rotation = JWKS_ROTATION_INTERVAL_SECS ? `, key rotation every ${JWKS_ROTATION_INTERVAL_SECS}s` : "";
  console.log(
    `auth-server: listening on http://${HOST}:${PORT} (base URL ${BASE_URL}, JWT alg ${JWT_ALG}, expiry ${JWT_EXPIRATION}${rotation})`,
  );
});
