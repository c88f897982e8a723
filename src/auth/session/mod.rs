//! The session-token path: Better-Auth's session tokens as credentials, and the session rows
//! behind every credential.
//!
//! - [`token`]: a session token as the bearer plugin or the session cookie presents it (raw,
//!   or `token.signature` under `BETTER_AUTH_SECRET`), parsed and its HMAC checked.
//! - [`refused`]: tokens, sessions and users found unknown, expired or gone, remembered for a
//!   minute.
//! - `batch`: a cold JWT's session and user, read with other requests' in one query.
//!
//! Which session a credential needs, and whether it is live, is decided on the request side
//! ([`crate::auth::request::authenticate`]); the rows come from `db::sessions` and the row
//! cache.

pub(crate) mod batch;
pub mod refused;
pub mod token;
