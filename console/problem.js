// The one error shape the pages show: a sentence for people (warden's problem+json `detail`,
// Better-Auth's `message`), the HTTP status and warden's stable `code`.

export class Problem extends Error {
  constructor(message, { status = 0, code = undefined } = {}) {
    super(message);
    this.name = "Problem";
    this.status = status;
    this.code = code;
  }
}

/**
 * warden's codes after which this tab's session is over (the page goes back to signing in),
 * and `signed_out`: Better-Auth has no session for the cookie any more.
 */
export const SESSION_ENDED = new Set([
  "banned",
  "session_revoked",
  "user_not_found",
  "token_expired",
  "invalid_token",
  "missing_token",
  "signed_out",
]);

/** Words for any error: a Problem's own, or a plain one's. */
export function describe(err) {
  if (err instanceof Problem) return err.message;
  return `Something went wrong in this page: ${err?.message ?? err}`;
}
