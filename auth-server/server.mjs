// warden's Better-Auth server: sign-up / sign-in / OAuth / sessions, JWTs and JWKS.
//
// The database schema is owned by warden (its migrations); this server never migrates.
// At start it asks Better-Auth whether the schema it would need differs from the database
// and refuses to run when tables or columns are missing.
//
// Configuration comes from the environment; see README.md for every variable.

import dns from "node:dns";
import http from "node:http";
import net from "node:net";
import process from "node:process";

import pg from "pg";
import { betterAuth } from "better-auth";
import fs from "node:fs";
import { admin, bearer, jwt, organization } from "better-auth/plugins";
import { createAccessControl } from "better-auth/plugins/access";
import { defaultStatements as adminStatements, adminAc, userAc } from "better-auth/plugins/admin/access";
import {
  defaultStatements as orgStatements,
  adminAc as orgAdminAc,
  memberAc as orgMemberAc,
  ownerAc as orgOwnerAc,
} from "better-auth/plugins/organization/access";
import { createAuthEndpoint } from "better-auth/api";
import { apiKey } from "@better-auth/api-key";
import { oauthProvider } from "@better-auth/oauth-provider";
import { redisStorage } from "@better-auth/redis-storage";
import { Redis } from "ioredis";
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
  ...new Set([...list(env("TRUSTED_ORIGINS", "http://localhost:5173,http://localhost:8080")), baseOrigin]),
];

const ADMIN_USER_IDS = list(env("ADMIN_USER_IDS", ""));

// The jwt plugin: GET /api/auth/token, the JWKS warden verifies against, and a fresh JWT in the
// set-auth-jwt header of every get-session. On unless JWT_PLUGIN=0 (then warden cannot verify
// anything this server issues: for setups that only use sessions, and for benchmarks).
const JWT_PLUGIN = env("JWT_PLUGIN", "1");
if (JWT_PLUGIN !== "0" && JWT_PLUGIN !== "1") fail(`JWT_PLUGIN must be 0 or 1, got "${JWT_PLUGIN}"`);

// Better-Auth's session cookie cache (session.cookieCache, "compact" strategy): get-session
// answers from a signed better-auth.session_data cookie for up to this many seconds instead of
// reading the database, so a ban or a sign-out is not seen there until the cookie expires.
// Unset: off (Better-Auth's default).
const SESSION_COOKIE_CACHE_SECS = positiveInt("SESSION_COOKIE_CACHE_SECS");

// Better-Auth's rate limiter (sign-in and sign-up: 3 requests per 10 s per client address and
// path; anything else: 100 per 10 s). On by default when NODE_ENV=production (the Docker image),
// as in Better-Auth itself; RATE_LIMIT=0 turns it off, RATE_LIMIT=1 turns it on anywhere.
const RATE_LIMIT = env("RATE_LIMIT", process.env.NODE_ENV === "production" ? "1" : "0");
if (RATE_LIMIT !== "0" && RATE_LIMIT !== "1") fail(`RATE_LIMIT must be 0 or 1, got "${RATE_LIMIT}"`);

// The proxies whose X-Forwarded-For is believed: addresses, CIDR ranges or host names (resolved
// now and every 30 s, e.g. a compose service name). Empty: the socket's peer is the client.
const TRUSTED_PROXIES = list(env("TRUSTED_PROXIES", "").replace(/\s+/g, ","));

// The api-key plugin (@better-auth/api-key): keys for scripts and servers, which warden
// verifies as the plugin's verifyApiKey does. Two configurations: "default" (a user's keys) and
// "org" (an organization's keys, references: "organization"); warden is told which
// configurations are organizations' (API_KEY_ORGANIZATION_CONFIGS=org in the compose file).
// API_KEY_RATE_LIMIT=0 turns the plugin's per-key rate limiting off (rateLimit.enabled, on by
// default as in the plugin: 10 requests a day per key unless a key says otherwise); warden's
// API_KEY_RATE_LIMIT must say the same. API_KEY_SESSIONS=1 lets a user's key stand in for a
// session on Better-Auth's own endpoints (enableSessionForAPIKeys; off by default, as in the plugin).
// (Both also take true and false: API_KEY_RATE_LIMIT is warden's variable too, in one .env.)
function switchOf(name, fallback) {
  const value = env(name, fallback).toLowerCase();
  if (value === "1" || value === "true") return "1";
  if (value === "0" || value === "false") return "0";
  fail(`${name} must be 0 or 1 (or true or false), got "${value}"`);
}
const API_KEY_RATE_LIMIT = switchOf("API_KEY_RATE_LIMIT", "1");
const API_KEY_SESSIONS = switchOf("API_KEY_SESSIONS", "0");
// Where the plugin keeps keys (its storage option): API_KEY_STORAGE=database (the default) or
// secondary-storage (Redis: SESSION_STORE=redis), and API_KEY_FALLBACK_TO_DATABASE=1 for
// fallbackToDatabase (the table decides; Redis holds copies). warden is told the same.
const API_KEY_STORAGE = env("API_KEY_STORAGE", "database");
if (API_KEY_STORAGE !== "database" && API_KEY_STORAGE !== "secondary-storage") fail(`API_KEY_STORAGE must be database or secondary-storage, got "${API_KEY_STORAGE}"`);
const API_KEY_FALLBACK_TO_DATABASE = switchOf("API_KEY_FALLBACK_TO_DATABASE", "0");
if (API_KEY_FALLBACK_TO_DATABASE === "1" && API_KEY_STORAGE !== "secondary-storage") fail("API_KEY_FALLBACK_TO_DATABASE=1 applies to keys in secondary storage: set API_KEY_STORAGE=secondary-storage");

// The oauth-provider plugin (@better-auth/oauth-provider): this server is also an OAuth 2.1 /
// OpenID Connect authorization server (/api/auth/oauth2/authorize, token, introspect, revoke,
// userinfo; discovery at /api/auth/.well-known/openid-configuration, issuer
// <BETTER_AUTH_URL>/api/auth). A token request naming a resource (RFC 8707 `resource`) gets a
// JWT access token for it (typ at+jwt, aud the resource, signed with the jwt plugin's keys),
// which warden verifies; one naming none gets an opaque token, stored hashed. The plugin signs
// with the jwt plugin, so it is on only with JWT_PLUGIN=1; OAUTH_PROVIDER=0 leaves it out.
let OAUTH_PROVIDER = switchOf("OAUTH_PROVIDER", JWT_PLUGIN);
if (OAUTH_PROVIDER === "1" && JWT_PLUGIN === "0") fail("OAUTH_PROVIDER=1 needs the jwt plugin (JWT_PLUGIN=1): it signs the OAuth tokens");
// The resources (absolute URIs, comma-separated) a token may name: each becomes an
// oauth_resource row at start (rows already there are left as they are: insert only). Default:
// warden at its default address. A client gets tokens for a resource only when linked to it
// (oauth_client_resource: the plugin's enforcePerClientResources, on by default), which only a
// server-side (admin) registration does.
const OAUTH_RESOURCES = list(env("OAUTH_RESOURCES", "http://localhost:8080"));
for (const r of OAUTH_RESOURCES) {
  // The plugin's own rule (RFC 8707): an absolute URI without a fragment. It would skip a bad one.
  if (!URL.canParse(r) || r.includes("#")) fail(`OAUTH_RESOURCES: "${r}" is not an absolute URI without a fragment`);
}
// Scopes beyond openid, profile, email and offline_access (space- or comma-separated): the
// resources' own. A client_credentials token can carry only these, and only those the server
// granted the client (client_credentials_scopes, set by an admin's registration).
const OAUTH_BASE_SCOPES = ["openid", "profile", "email", "offline_access"];
const OAUTH_EXTRA_SCOPES = env("OAUTH_SCOPES", "notes:read notes:write").split(/[\s,]+/).filter(Boolean);
for (const s of OAUTH_EXTRA_SCOPES) {
  if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) fail(`OAUTH_SCOPES: "${s}" is not a valid scope`);
}
const OAUTH_SCOPES = [...new Set([...OAUTH_BASE_SCOPES, ...OAUTH_EXTRA_SCOPES])];
// The frontend's pages /oauth2/authorize sends the browser to, with the authorization request
// signed in the query string: the login page when nobody is signed in (it signs in with
// `oauth_query` = that query string in the sign-in body, and gets back where to go), the consent
// page when the user has not yet granted the client these scopes (it posts
// {accept, scope?, oauth_query} to /api/auth/oauth2/consent with the session and gets
// {redirect: true, url}). This server has no pages: the defaults are a frontend dev server's.
function pageUrl(name, value) {
  if (!value.startsWith("/") && !URL.canParse(value)) fail(`${name} must be an absolute URL or a path, got "${value}"`);
  return value;
}
const OAUTH_LOGIN_PAGE = pageUrl("OAUTH_LOGIN_PAGE", env("OAUTH_LOGIN_PAGE", "http://localhost:5173/sign-in"));
const OAUTH_CONSENT_PAGE = pageUrl("OAUTH_CONSENT_PAGE", env("OAUTH_CONSENT_PAGE", "http://localhost:5173/consent"));

// Where sessions live. SESSION_STORE=database (the default): the session table, as in
// Better-Auth without secondary storage. SESSION_STORE=redis: Better-Auth's secondaryStorage,
// the official @better-auth/redis-storage on REDIS_URL with keys under REDIS_KEY_PREFIX (its
// default "better-auth:"); sessions then live in Redis only, unless STORE_SESSION_IN_DATABASE=1
// (session.storeSessionInDatabase: both hold them) and PRESERVE_SESSION_IN_DATABASE=1
// (session.preserveSessionInDatabase: ended rows are kept with expires_at moved to the end).
// warden must be told the same four settings (its variables have the same names).
const SESSION_STORE = env("SESSION_STORE", "database");
if (SESSION_STORE !== "database" && SESSION_STORE !== "redis") fail(`SESSION_STORE must be database or redis, got "${SESSION_STORE}"`);
if (API_KEY_STORAGE === "secondary-storage" && SESSION_STORE !== "redis") fail("API_KEY_STORAGE=secondary-storage keeps keys in Better-Auth's secondary storage: set SESSION_STORE=redis");
const REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379");
const REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", "better-auth:");
const STORE_SESSION_IN_DATABASE = switchOf("STORE_SESSION_IN_DATABASE", "0");
const PRESERVE_SESSION_IN_DATABASE = switchOf("PRESERVE_SESSION_IN_DATABASE", "0");
if (PRESERVE_SESSION_IN_DATABASE === "1" && STORE_SESSION_IN_DATABASE !== "1") {
  fail("PRESERVE_SESSION_IN_DATABASE=1 needs STORE_SESSION_IN_DATABASE=1 (it keeps the rows that one writes)");
}
// The oauth-provider plugin refuses to start on sessions kept in secondary storage alone (its
// tokens name sessions by row): off by default then, and an error when asked for.
if (SESSION_STORE === "redis" && STORE_SESSION_IN_DATABASE === "0" && OAUTH_PROVIDER === "1") {
  if (env("OAUTH_PROVIDER", undefined) !== undefined) fail("OAUTH_PROVIDER=1 needs sessions in the database: with SESSION_STORE=redis set STORE_SESSION_IN_DATABASE=1");
  OAUTH_PROVIDER = "0";
}

// Endpoints for end-to-end tests only, never for production: POST /e2e/api-key/create and
// /e2e/api-key/verify call the plugin's server-only createApiKey and verifyApiKey with the
// JSON body as given (quotas, rate limits and permissions can only be set from the server; a
// key can only be verified there); POST /e2e/oauth/client calls the oauth-provider plugin's
// server-only adminCreateOAuthClient with the JSON body as given (client_credentials scopes and
// resource links can only be set there), as an admin user it makes for that
// (e2e-oauth-admin@warden.test). Off unless E2E_ENDPOINTS=1, and only on a loopback address.
const E2E_ENDPOINTS = env("E2E_ENDPOINTS", "0");
if (E2E_ENDPOINTS !== "0" && E2E_ENDPOINTS !== "1") fail(`E2E_ENDPOINTS must be 0 or 1, got "${E2E_ENDPOINTS}"`);

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

// Better-Auth has no endpoint that says which social providers are on; this one says it
// (GET /api/auth/social-providers → {"providers": ["google"]}) for frontends that want it.
// warden's console does not ask: warden tells it (CONSOLE_SOCIAL_PROVIDERS), so that it works
// against any Better-Auth.
const socialProvidersPlugin = {
  id: "warden-social-providers",
  endpoints: {
    socialProviders: createAuthEndpoint("/social-providers", { method: "GET" }, async (ctx) =>
      ctx.json({ providers: Object.keys(socialProviders) }),
    ),
  },
};

// ---------------------------------------------------------------- client address

// Better-Auth keys its rate limiter (and records session.ip_address) by an address it reads from
// a request header, X-Forwarded-For by default, which any client can send: with it a client picks
// its own bucket, and without it every client shares one. So the address is decided here, from
// the socket, and handed to Better-Auth in a header that only this server writes.
const CLIENT_IP_HEADER = "x-warden-client-ip";

/** "1.2.3.4", "::ffff:1.2.3.4", "[::1]:80", "1.2.3.4:80", "fe80::1%eth0" → a plain address, or undefined. */
function normalizeAddress(raw) {
  if (typeof raw !== "string") return undefined;
  let a = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracketed) a = bracketed[1];
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(":"));
  const zone = a.indexOf("%");
  if (zone > 0) a = a.slice(0, zone);
  if (/^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(a)) a = a.slice(7);
  return net.isIP(a) ? a.toLowerCase() : undefined;
}

function parseProxyEntry(entry) {
  const slash = entry.indexOf("/");
  const address = normalizeAddress(slash === -1 ? entry : entry.slice(0, slash));
  if (!address) return undefined;
  const family = net.isIP(address) === 4 ? "ipv4" : "ipv6";
  const bits = family === "ipv4" ? 32 : 128;
  if (slash === -1) return { address, family, prefix: bits };
  const prefixText = entry.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix > bits) return undefined;
  return { address, family, prefix };
}

const proxyNets = [];
const proxyHosts = [];
for (const entry of TRUSTED_PROXIES) {
  const parsed = parseProxyEntry(entry);
  if (parsed) proxyNets.push(parsed);
  else if (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(entry) && !/^[\d.]+$/.test(entry)) proxyHosts.push(entry);
  else fail(`TRUSTED_PROXIES: "${entry}" is not an address, a CIDR range or a host name`);
}

let trustedProxies = buildBlockList([]);
function buildBlockList(resolved) {
  const bl = new net.BlockList();
  for (const n of [...proxyNets, ...resolved]) {
    if (n.prefix === (n.family === "ipv4" ? 32 : 128)) bl.addAddress(n.address, n.family);
    else bl.addSubnet(n.address, n.prefix, n.family);
  }
  return bl;
}
const resolvedHosts = new Map(); // host → its last resolved addresses (kept when a lookup fails)
async function resolveProxyHosts() {
  for (const host of proxyHosts) {
    try {
      const found = await dns.promises.lookup(host, { all: true, verbatim: true });
      resolvedHosts.set(
        host,
        found.map((f) => normalizeAddress(f.address)).filter(Boolean),
      );
    } catch (err) {
      if (!resolvedHosts.has(host)) console.warn(`auth-server: TRUSTED_PROXIES: cannot resolve "${host}" yet (${err.code ?? err.message}); retrying`);
    }
  }
  const resolved = [...resolvedHosts.values()].flat().map((a) => parseProxyEntry(a));
  trustedProxies = buildBlockList(resolved);
}
if (proxyHosts.length) setInterval(resolveProxyHosts, 30_000).unref();

const isTrustedProxy = (address) => trustedProxies.check(address, net.isIP(address) === 4 ? "ipv4" : "ipv6");

/**
 * The client's address: the socket's peer, unless that peer is a trusted proxy; then the
 * X-Forwarded-For chain is walked from the right, skipping trusted proxies, and the first address
 * no trusted proxy vouches for is the client. (Entries left of it were written by the client.)
 */
function clientAddress(req) {
  let address = normalizeAddress(req.socket?.remoteAddress);
  if (!address || !isTrustedProxy(address)) return address;
  const forwarded = req.headers["x-forwarded-for"];
  const hops = (Array.isArray(forwarded) ? forwarded.join(",") : forwarded ?? "").split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    if (hops[i].trim() === "") continue;
    const hop = normalizeAddress(hops[i]);
    // A malformed hop written by a trusted proxy: stop at the last address known good.
    if (!hop) return address;
    address = hop;
    if (!isTrustedProxy(hop)) return hop;
  }
  return address;
}

// ---------------------------------------------------------------- access control

// Roles are defined once, in access-control.json (ACCESS_CONTROL_FILE), which warden reads too:
// admin-plugin roles at the top level, organization roles under "organization", each in
// Better-Auth's shape ({"user": ["list", "get"], "session": ["revoke"]}). warden adds one
// statement, audit: [list] (its audit log); Better-Auth only needs to know it exists. Without a
// file, Better-Auth's default roles, with audit: [list] granted to admin as warden grants it.
const ADMIN_AC = createAccessControl({ ...adminStatements, audit: ["list"] });
const ORG_AC = createAccessControl(orgStatements);

function loadAccessControl() {
  const file = env("ACCESS_CONTROL_FILE", undefined);
  const defaults = {
    roles: {
      admin: ADMIN_AC.newRole({ ...adminAc.statements, audit: ["list"] }),
      user: ADMIN_AC.newRole(userAc.statements),
    },
    organization: { owner: orgOwnerAc, admin: orgAdminAc, member: orgMemberAc },
  };
  if (!file) return defaults;
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    fail(`ACCESS_CONTROL_FILE: ${file}: ${err.message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) fail(`ACCESS_CONTROL_FILE: ${file}: not a JSON object of roles`);
  const build = (ac, known, where, role, statements) => {
    if (!statements || typeof statements !== "object" || Array.isArray(statements)) fail(`ACCESS_CONTROL_FILE: ${file}: role "${where}${role}" must map resources to lists of actions`);
    for (const [resource, actions] of Object.entries(statements)) {
      if (!known[resource]) fail(`ACCESS_CONTROL_FILE: ${file}: role "${where}${role}": unknown resource "${resource}"`);
      if (!Array.isArray(actions)) fail(`ACCESS_CONTROL_FILE: ${file}: role "${where}${role}": "${resource}" must be a list of actions`);
      for (const action of actions) {
        if (!known[resource].includes(action)) fail(`ACCESS_CONTROL_FILE: ${file}: role "${where}${role}": unknown action "${action}" of "${resource}"`);
      }
    }
    return ac.newRole(statements);
  };
  const { organization: orgRoles, ...adminRoles } = parsed;
  const roles = {};
  for (const [role, statements] of Object.entries(adminRoles)) roles[role] = build(ADMIN_AC, ADMIN_AC.statements, "", role, statements);
  let organization = defaults.organization;
  if (orgRoles !== undefined) {
    organization = {};
    for (const [role, statements] of Object.entries(orgRoles)) organization[role] = build(ORG_AC, orgStatements, "organization.", role, statements);
  }
  return { roles: Object.keys(roles).length ? roles : defaults.roles, organization };
}
const accessControl = loadAccessControl();

// ---------------------------------------------------------------- rate-limit storage

// Better-Auth's own memory store keeps at most 100,000 keys (client|path) and, when full, drops
// the oldest: one client requesting many made-up paths could push everyone's sign-in counters out
// (its own included, and guess again). This store bounds the keys per client instead: a client
// over MAX_KEYS_PER_CLIENT live keys is refused (429) for new paths until they expire, and only
// past MAX_CLIENTS distinct clients is the least recently seen client forgotten.
const MAX_KEYS_PER_CLIENT = 64;
const MAX_CLIENTS = 50_000;
const clients = new Map(); // client → Map(path → { count, resetAt }), least recently seen first

function expireClient(client, buckets, now) {
  for (const [path, b] of buckets) if (now >= b.resetAt) buckets.delete(path);
  if (buckets.size === 0) clients.delete(client);
}
setInterval(() => {
  const now = Date.now();
  for (const [client, buckets] of clients) expireClient(client, buckets, now);
}, 60_000).unref();

/** @type {import("better-auth").BetterAuthOptions["rateLimit"]["customStorage"]} */
const rateLimitStorage = {
  async consume(key, rule) {
    const cut = key.indexOf("|");
    const client = cut === -1 ? key : key.slice(0, cut);
    const path = cut === -1 ? "" : key.slice(cut + 1);
    const now = Date.now();
    let buckets = clients.get(client);
    if (buckets) clients.delete(client); // re-inserted below: most recently seen last
    else buckets = new Map();
    clients.set(client, buckets);
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value);

    const bucket = buckets.get(path);
    if (!bucket || now >= bucket.resetAt) {
      if (!bucket && buckets.size >= MAX_KEYS_PER_CLIENT) {
        expireClient(client, buckets, now);
        clients.set(client, buckets);
        if (buckets.size >= MAX_KEYS_PER_CLIENT) return { allowed: false, retryAfter: rule.window };
      }
      buckets.set(path, { count: 1, resetAt: now + rule.window * 1000 });
      return { allowed: true, retryAfter: null };
    }
    if (bucket.count >= rule.max) {
      return { allowed: false, retryAfter: Math.max(1, Math.ceil((bucket.resetAt - now) / 1000)) };
    }
    bucket.count += 1;
    return { allowed: true, retryAfter: null };
  },
};

// ---------------------------------------------------------------- Better-Auth

const pool = new pg.Pool({ connectionString: DATABASE_URL });

let redis;
if (SESSION_STORE === "redis") {
  // ioredis reconnects by itself; while Redis is away, session reads fail (Better-Auth answers 500).
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on("error", (err) => console.error("auth-server: redis:", err.message));
}
pool.on("error", (err) => console.error("auth-server: idle database connection error:", err.message));

const jwks = { keyPairConfig };
if (JWKS_ROTATION_INTERVAL_SECS) jwks.rotationInterval = JWKS_ROTATION_INTERVAL_SECS;
if (JWKS_GRACE_PERIOD_SECS) jwks.gracePeriod = JWKS_GRACE_PERIOD_SECS;

// The jwt plugin's settings (used unless JWT_PLUGIN=0).
const jwtPlugin = jwt({
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
});

// The oauth-provider plugin's settings (used when OAUTH_PROVIDER=1), its tables and columns in
// snake_case like every other.
const oauthProviderPlugin = oauthProvider({
  scopes: OAUTH_SCOPES,
  resources: OAUTH_RESOURCES,
  loginPage: OAUTH_LOGIN_PAGE,
  consentPage: OAUTH_CONSENT_PAGE,
  // Who may do what to OAuth clients. Granting client_credentials scopes (a token with no user
  // behind it) is for admins: the role admin, or a user in ADMIN_USER_IDS. Anything else is as
  // without this hook: a signed-in user manages the clients they own.
  clientPrivileges: ({ action, user }) => action !== "configure-client-credentials-scopes" || isAdmin(user),
  schema: {
    oauthClient: {
      modelName: "oauth_client",
      fields: {
        clientId: "client_id",
        clientSecret: "client_secret",
        clientDiscoveryId: "client_discovery_id",
        skipConsent: "skip_consent",
        enableEndSession: "enable_end_session",
        subjectType: "subject_type",
        clientCredentialsScopes: "client_credentials_scopes",
        userId: "user_id",
        createdAt: "created_at",
        updatedAt: "updated_at",
        softwareId: "software_id",
        softwareVersion: "software_version",
        softwareStatement: "software_statement",
        redirectUris: "redirect_uris",
        postLogoutRedirectUris: "post_logout_redirect_uris",
        backchannelLogoutUri: "backchannel_logout_uri",
        backchannelLogoutSessionRequired: "backchannel_logout_session_required",
        tokenEndpointAuthMethod: "token_endpoint_auth_method",
        applicationType: "application_type",
        jwksUri: "jwks_uri",
        grantTypes: "grant_types",
        responseTypes: "response_types",
        requirePKCE: "require_pkce",
        dpopBoundAccessTokens: "dpop_bound_access_tokens",
        referenceId: "reference_id",
      },
    },
    oauthResource: {
      modelName: "oauth_resource",
      fields: {
        accessTokenTtl: "access_token_ttl",
        refreshTokenTtl: "refresh_token_ttl",
        signingAlgorithm: "signing_algorithm",
        signingKeyId: "signing_key_id",
        allowedScopes: "allowed_scopes",
        customClaims: "custom_claims",
        dpopBoundAccessTokensRequired: "dpop_bound_access_tokens_required",
        createdAt: "created_at",
        updatedAt: "updated_at",
        policyVersion: "policy_version",
      },
    },
    oauthClientResource: {
      modelName: "oauth_client_resource",
      fields: { clientId: "client_id", resourceId: "resource_id", createdAt: "created_at" },
    },
    oauthRefreshToken: {
      modelName: "oauth_refresh_token",
      fields: {
        clientId: "client_id",
        sessionId: "session_id",
        userId: "user_id",
        referenceId: "reference_id",
        authorizationCodeId: "authorization_code_id",
        requestedUserInfoClaims: "requested_user_info_claims",
        expiresAt: "expires_at",
        createdAt: "created_at",
        rotatedAt: "rotated_at",
        rotationReplayResponse: "rotation_replay_response",
        rotationReplayExpiresAt: "rotation_replay_expires_at",
        authTime: "auth_time",
      },
    },
    oauthAccessToken: {
      modelName: "oauth_access_token",
      fields: {
        clientId: "client_id",
        sessionId: "session_id",
        userId: "user_id",
        referenceId: "reference_id",
        authorizationCodeId: "authorization_code_id",
        requestedUserInfoClaims: "requested_user_info_claims",
        refreshId: "refresh_id",
        expiresAt: "expires_at",
        createdAt: "created_at",
      },
    },
    oauthConsent: {
      modelName: "oauth_consent",
      fields: {
        clientId: "client_id",
        userId: "user_id",
        referenceId: "reference_id",
        requestedUserInfoClaims: "requested_user_info_claims",
        createdAt: "created_at",
        updatedAt: "updated_at",
      },
    },
    oauthClientAssertion: {
      modelName: "oauth_client_assertion",
      fields: { expiresAt: "expires_at" },
    },
  },
});

/** An admin as the admin plugin sees one: a role admin (roles are comma-separated) or ADMIN_USER_IDS. */
function isAdmin(user) {
  if (!user) return false;
  if (ADMIN_USER_IDS.includes(user.id)) return true;
  return String(user.role ?? "")
    .split(",")
    .map((r) => r.trim())
    .includes("admin");
}

/** @type {import("better-auth").BetterAuthOptions} */
const options = {
  appName: "warden",
  baseURL: BASE_URL,
  basePath: "/api/auth",
  secret: BETTER_AUTH_SECRET,
  database: pool,
  ...(redis ? { secondaryStorage: redisStorage({ client: redis, keyPrefix: REDIS_KEY_PREFIX }) } : {}),
  trustedOrigins,
  telemetry: { enabled: false },
  rateLimit: { enabled: RATE_LIMIT === "1", customStorage: rateLimitStorage },
  advanced: {
    // The client address is the one clientAddress() wrote into this header (see above);
    // Better-Auth collapses IPv6 addresses to their /64.
    ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
  },
  emailAndPassword: { enabled: true, requireEmailVerification: false },
  socialProviders,

  // Every model and field mapped to warden's snake_case schema.
  user: {
    modelName: "user",
    fields: { emailVerified: "email_verified", createdAt: "created_at", updatedAt: "updated_at" },
  },
  session: {
    modelName: "session",
    ...(SESSION_COOKIE_CACHE_SECS ? { cookieCache: { enabled: true, maxAge: SESSION_COOKIE_CACHE_SECS } } : {}),
    ...(redis
      ? {
          storeSessionInDatabase: STORE_SESSION_IN_DATABASE === "1",
          preserveSessionInDatabase: PRESERVE_SESSION_IN_DATABASE === "1",
        }
      : {}),
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
    ...(JWT_PLUGIN === "1" ? [jwtPlugin] : []),
    admin({
      ...(ADMIN_USER_IDS.length ? { adminUserIds: ADMIN_USER_IDS } : {}),
      ac: ADMIN_AC,
      roles: accessControl.roles,
      schema: {
        user: { fields: { banReason: "ban_reason", banExpires: "ban_expires" } },
        session: { fields: { impersonatedBy: "impersonated_by" } },
      },
    }),
    bearer(),
    socialProvidersPlugin,
    organization({
      teams: { enabled: true },
      dynamicAccessControl: { enabled: true },
      ac: ORG_AC,
      roles: accessControl.organization,
      schema: {
        organization: { fields: { createdAt: "created_at" } },
        member: { fields: { organizationId: "organization_id", userId: "user_id", createdAt: "created_at" } },
        invitation: {
          fields: {
            organizationId: "organization_id",
            teamId: "team_id",
            expiresAt: "expires_at",
            createdAt: "created_at",
            inviterId: "inviter_id",
          },
        },
        team: {
          fields: {
            organizationId: "organization_id",
            memberCount: "member_count",
            createdAt: "created_at",
            updatedAt: "updated_at",
          },
        },
        teamMember: {
          modelName: "team_member",
          fields: { teamId: "team_id", userId: "user_id", membershipKey: "membership_key", createdAt: "created_at" },
        },
        organizationRole: {
          modelName: "organization_role",
          fields: { organizationId: "organization_id", createdAt: "created_at", updatedAt: "updated_at" },
        },
        session: { fields: { activeOrganizationId: "active_organization_id", activeTeamId: "active_team_id" } },
      },
    }),
    apiKey(
      [
        { configId: "default", ...apiKeyOptions() },
        { configId: "org", references: "organization", ...apiKeyOptions() },
      ],
      {
        schema: {
          apikey: {
            modelName: "apikey",
            fields: {
              configId: "config_id",
              referenceId: "reference_id",
              refillInterval: "refill_interval",
              refillAmount: "refill_amount",
              lastRefillAt: "last_refill_at",
              rateLimitEnabled: "rate_limit_enabled",
              rateLimitTimeWindow: "rate_limit_time_window",
              rateLimitMax: "rate_limit_max",
              requestCount: "request_count",
              lastRequest: "last_request",
              expiresAt: "expires_at",
              createdAt: "created_at",
              updatedAt: "updated_at",
            },
          },
        },
      },
    ),
    ...(OAUTH_PROVIDER === "1" ? [oauthProviderPlugin] : []),
  ],
};

function apiKeyOptions() {
  return {
    enableMetadata: true,
    rateLimit: { enabled: API_KEY_RATE_LIMIT === "1" },
    enableSessionForAPIKeys: API_KEY_SESSIONS === "1",
    storage: API_KEY_STORAGE,
    fallbackToDatabase: API_KEY_FALLBACK_TO_DATABASE === "1",
  };
}

const auth = betterAuth(options);

// GET /version: the installed Better-Auth and plugin versions, which `warden check` prints.
function installedVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
  } catch {
    return null;
  }
}
const VERSIONS = {
  betterAuth: installedVersion("better-auth"),
  plugins: Object.fromEntries(
    ["@better-auth/api-key", "@better-auth/oauth-provider", "@better-auth/redis-storage"].map((n) => [n, installedVersion(n)]),
  ),
};

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

  if (path === "/version" && req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(VERSIONS));
    return;
  }

  if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(req.method === "HEAD" ? undefined : "ok");
    return;
  }

  if (E2E_ENDPOINTS === "1" && req.method === "POST" && (path === "/e2e/api-key/create" || path === "/e2e/api-key/verify")) {
    e2eApiKey(path, req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(err?.message ?? err) }));
    });
    return;
  }

  if (E2E_ENDPOINTS === "1" && OAUTH_PROVIDER === "1" && req.method === "POST" && path === "/e2e/oauth/client") {
    e2eOAuthClient(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(err?.message ?? err) }));
    });
    return;
  }

  // The authorization server's metadata where RFC 8414 puts it for the issuer
  // <BETTER_AUTH_URL>/api/auth (the plugin answers it; /api/auth/.well-known/* is served too).
  const metadataPath = OAUTH_PROVIDER === "1" && path === "/.well-known/oauth-authorization-server/api/auth";
  if (metadataPath || path === "/api/auth" || path.startsWith("/api/auth/")) {
    // Whatever the client sent under this name is replaced.
    const client = clientAddress(req);
    if (client) req.headers[CLIENT_IP_HEADER] = client;
    else delete req.headers[CLIENT_IP_HEADER];
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

// The test-only endpoints (E2E_ENDPOINTS=1): the plugin's server-side calls, answered as JSON.
// A refusal of createApiKey is {"status": <code>, "error": <body>}.
async function e2eApiKey(path, req, res) {
  let text = "";
  for await (const chunk of req) text += chunk;
  const body = JSON.parse(text || "{}");
  let answer;
  try {
    answer = path.endsWith("/create") ? await auth.api.createApiKey({ body }) : await auth.api.verifyApiKey({ body });
  } catch (err) {
    answer = { status: err?.statusCode ?? 500, error: err?.body ?? String(err?.message ?? err) };
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(answer));
}

// POST /e2e/oauth/client: the plugin's adminCreateOAuthClient with the body as given
// (redirect_uris, grant_types, scope, client_credentials_scopes, resources (linked to the
// client), token_endpoint_auth_method, application_type, skip_consent, require_pkce,
// dpop_bound_access_tokens, ...), made by an admin user kept for this (created on first use,
// role admin) through a session opened for the call and deleted after it. Answers the client
// (client_id, client_secret once, ...), or {"status": <code>, "error": <body>} on a refusal.
const E2E_OAUTH_ADMIN_EMAIL = "e2e-oauth-admin@warden.test";
async function e2eOAuthClient(req, res) {
  let text = "";
  for await (const chunk of req) text += chunk;
  const body = JSON.parse(text || "{}");
  const ctx = await auth.$context;
  let admin = (await ctx.internalAdapter.findUserByEmail(E2E_OAUTH_ADMIN_EMAIL))?.user;
  if (!admin) {
    admin = await ctx.internalAdapter.createUser({ email: E2E_OAUTH_ADMIN_EMAIL, name: "e2e OAuth admin", emailVerified: true, role: "admin" });
  }
  const session = await ctx.internalAdapter.createSession(admin.id);
  let answer;
  try {
    answer = await auth.api.adminCreateOAuthClient({ body, headers: new Headers({ authorization: `Bearer ${session.token}` }) });
  } catch (err) {
    answer = { status: err?.statusCode ?? 500, error: err?.body ?? String(err?.message ?? err) };
  } finally {
    await ctx.internalAdapter.deleteSession(session.token).catch(() => {});
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(answer));
}

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
  if (proxyHosts.length) await resolveProxyHosts();
  await checkSchema();
  if (JWT_PLUGIN === "1") await warnOnKeyAlgMismatch();
} catch (err) {
  await pool.end().catch(() => {});
  fail(`cannot check the database schema: ${err?.message ?? err}`);
}

server.on("error", (err) => fail(`cannot listen on ${HOST}:${PORT}: ${err.message}`));
if (E2E_ENDPOINTS === "1" && !["127.0.0.1", "::1", "localhost"].includes(HOST)) {
  fail(`E2E_ENDPOINTS=1 verifies and makes API keys and OAuth clients for anyone who asks: it needs HOST=127.0.0.1, got "${HOST}"`);
}
server.listen(PORT, HOST, () => {
  const rotation = JWKS_ROTATION_INTERVAL_SECS ? `, key rotation every ${JWKS_ROTATION_INTERVAL_SECS}s` : "";
  const proxies = TRUSTED_PROXIES.length ? `X-Forwarded-For from ${TRUSTED_PROXIES.join(", ")}` : "no proxy trusted";
  const limiter = RATE_LIMIT === "1" ? `rate limit on, per client address (${proxies})` : "rate limit OFF";
  const jwtInfo = JWT_PLUGIN === "1" ? `JWT alg ${JWT_ALG}, expiry ${JWT_EXPIRATION}${rotation}` : "jwt plugin OFF";
  const cookieCache = SESSION_COOKIE_CACHE_SECS ? `; session cookie cache ${SESSION_COOKIE_CACHE_SECS}s` : "";
  const oauth = OAUTH_PROVIDER === "1" ? `; OAuth provider on, resources ${OAUTH_RESOURCES.join(" ") || "none"}` : "; OAuth provider OFF";
  console.log(
    `auth-server: listening on http://${HOST}:${PORT} (base URL ${BASE_URL}, ${jwtInfo}${cookieCache}${oauth}; ${limiter})`,
  );
});
