// Signing in through Better-Auth's own HTTP API, and the JWT for warden.
//
// Better-Auth keeps the session in its cookie (HttpOnly, on its own origin); every call here
// sends it (`credentials: "include"`). The JWT it hands out (`GET /api/auth/token`) lives in
// this module's memory only — never in localStorage — and is fetched again shortly before its
// `exp`, and after a reload, from the cookie session.

import { Problem } from "./problem.js";

// Empty: Better-Auth is on this origin (warden's AUTH_PROXY=true). Else its origin.
const base = document.documentElement.dataset.authUrl || "";
/** Where Better-Auth is, for messages. */
export const authOrigin = base || location.origin;

let jwt = null;
let expiresAt = 0;
let refreshTimer = 0;
let inflight = null;
const endListeners = new Set();

/** Calls `fn(reason)` when the session ends by itself (the refresh found no session). */
export function onSessionEnd(fn) {
  endListeners.add(fn);
}

/** This page's origin refused by Better-Auth's origin check: the fix, in words. */
function originRefused() {
  const origin = location.origin;
  return new Problem(
    `Better-Auth (${authOrigin}) refused this page's origin ${origin}; add ${origin} to Better-Auth's TRUSTED_ORIGINS (its trustedOrigins option).`,
    { status: 403, code: "origin_refused" },
  );
}

/**
 * Better-Auth's own refusals of where a request comes from, by its error codes
 * (@better-auth/core BASE_ERROR_CODES): each in words that say what to change.
 */
function originProblem(code) {
  switch (code) {
    case "INVALID_ORIGIN":
    case "INVALID_CALLBACK_URL":
    case "INVALID_ERROR_CALLBACK_URL":
      return originRefused();
    case "MISSING_OR_NULL_ORIGIN":
      return new Problem(
        `Better-Auth (${authOrigin}) refused the request: it arrived without this page's origin (${location.origin}). Something between the page and Better-Auth drops the Origin header.`,
        { status: 403, code: "origin_missing" },
      );
    default:
      return null;
  }
}

/**
 * Why a request to Better-Auth got no readable answer. The browser does not say: a server that
 * is down and a server that answered without CORS headers for this origin (Better-Auth when
 * this origin is not in its trusted origins) fail alike. A request whose answer the page may
 * not read (`no-cors`) tells them apart: it completes when the server answered.
 */
async function unreadable() {
  if (base) {
    try {
      await fetch(`${base}/api/auth/ok`, { mode: "no-cors", credentials: "omit", cache: "no-store" });
      return originRefused();
    } catch {
      // Not reachable at all: said below.
    }
  }
  return new Problem(`Cannot reach the sign-in server (${authOrigin}).`, { status: 0, code: "network" });
}

async function call(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(`${base}/api/auth${path}`, {
      method,
      credentials: "include",
      headers: body === undefined ? undefined : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw await unreadable();
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 403) {
      const refused = originProblem(data?.code);
      if (refused) throw refused;
    }
    // Better-Auth's errors are {code, message}; a proxy's may be problem+json.
    const message = data?.message || data?.detail || `The sign-in server answered ${response.status}.`;
    throw new Problem(message, { status: response.status, code: data?.code });
  }
  return { data, headers: response.headers };
}

function expiryOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === "number" ? exp * 1000 : Date.now() + 60_000;
  } catch {
    return Date.now() + 60_000;
  }
}

function keep(token) {
  jwt = token;
  expiresAt = expiryOf(token);
  clearTimeout(refreshTimer);
  // A minute before exp (at least 5 s from now); token() also checks, for a sleeping tab.
  const delay = Math.max(5_000, expiresAt - Date.now() - 60_000);
  refreshTimer = setTimeout(() => {
    refresh().catch((err) => {
      for (const fn of endListeners) fn(err);
    });
  }, delay);
}

/** Forgets the JWT (this tab only; the cookie session is Better-Auth's). */
export function forget() {
  jwt = null;
  expiresAt = 0;
  clearTimeout(refreshTimer);
}

/** A fresh JWT from the cookie session; one request at a time. */
export function refresh() {
  inflight ??= (async () => {
    try {
      const { data } = await call("/token");
      if (!data?.token) throw new Problem("The sign-in server gave no token.", { status: 502 });
      keep(data.token);
      return data.token;
    } catch (err) {
      forget();
      if (err instanceof Problem && err.status === 401) {
        throw new Problem("Your sign-in is over.", { status: 401, code: "signed_out" });
      }
      throw err;
    } finally {
      inflight = null;
    }
  })();
  return inflight;
}

/** The JWT to send to warden, refreshed when it is about to expire; null when signed out. */
export async function token() {
  if (!jwt) return null;
  if (Date.now() > expiresAt - 30_000) return refresh();
  return jwt;
}

/** After a reload: the session Better-Auth's cookie still holds (its user), or null. */
export async function resume() {
  const { data, headers } = await call("/get-session");
  if (!data?.session) {
    forget();
    return null;
  }
  // The jwt plugin hands a JWT out with the session; older or other servers may not expose it.
  const handed = headers.get("set-auth-jwt");
  if (handed) keep(handed);
  else await refresh();
  return data.user;
}

export async function signIn(email, password) {
  await call("/sign-in/email", { method: "POST", body: { email, password } });
  await refresh();
}

export async function signUp(name, email, password) {
  await call("/sign-up/email", { method: "POST", body: { name, email, password } });
  await refresh();
}

export async function signOut() {
  try {
    await call("/sign-out", { method: "POST", body: {} });
  } finally {
    forget();
  }
}

/**
 * The social providers to offer ("google", "github"), as warden's CONSOLE_SOCIAL_PROVIDERS
 * names them. Better-Auth has no endpoint that lists its providers, so the page never asks it.
 */
export function socialProviders() {
  return (document.documentElement.dataset.socialProviders || "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Starts a social sign-in: Better-Auth answers with the provider's URL, and back here after. */
export async function socialSignIn(provider) {
  const back = `${location.origin}/console`;
  const { data } = await call("/sign-in/social", {
    method: "POST",
    body: { provider, callbackURL: back, errorCallbackURL: `${back}#/sign-in`, disableRedirect: true },
  });
  if (!data?.url) throw new Problem("The sign-in server gave no address to continue at.", { status: 502 });
  location.assign(data.url);
}
