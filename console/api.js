// warden's API, on this page's own origin, with `Authorization: Bearer <jwt>`. Errors come back
// as a Problem carrying warden's problem+json `detail` and `code`.

import { refresh, token } from "./auth.js";
import { Problem } from "./problem.js";

/** `query` values that are empty, null or undefined are left out. */
function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** One call; a JWT that expired on the way is refreshed and the call sent once more. */
export async function api(path, { method = "GET", body, query } = {}) {
  const url = withQuery(path, query);
  for (let attempt = 0; ; attempt += 1) {
    const jwt = await token();
    if (!jwt) throw new Problem("You are signed out.", { status: 401, code: "signed_out" });
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${jwt}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new Problem("Cannot reach warden: check the connection and try again.", { status: 0, code: "network" });
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const code = data?.code;
    if (response.status === 401 && attempt === 0 && (code === "token_expired" || code === "invalid_token")) {
      await refresh();
      continue;
    }
    throw new Problem(data?.detail || data?.title || `warden answered ${response.status}.`, {
      status: response.status,
      code,
    });
  }
}

/** What the console may show, asked as Better-Auth asks it: resource:action → bool. */
export const PERMISSIONS = [
  "user:list",
  "user:get",
  "user:set-role",
  "user:ban",
  "user:delete",
  "session:list",
  "session:revoke",
  "audit:list",
];

export async function permissions() {
  const answers = await Promise.all(
    PERMISSIONS.map((permission) => {
      const [resource, action] = permission.split(":");
      return api("/users/me/has-permission", {
        method: "POST",
        body: { permissions: { [resource]: [action] } },
      });
    }),
  );
  return Object.fromEntries(PERMISSIONS.map((p, i) => [p, answers[i]?.success === true]));
}
