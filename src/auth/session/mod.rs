//! The session-token path: Better-Auth's session tokens as credentials, and the session rows
//! behind every credential.
//!
//! - [`token`]: a session token as the bearer plugin or the session cookie presents it (raw,
//!   or `token.signature` under `BETTER_AUTH_SECRET`), parsed and its HMAC checked.
//! - [`refused`]: tokens, sessions and users found unknown, expired or gone, remembered for a
//!   minute.
//! - `known`: session tokens seen to name a session (by SHA-256), so a token seen before finds
//!   its session in the row cache.
//! - [`store`]: where sessions are found and ended: the `session` table, or Redis
//!   (Better-Auth's secondary storage) in each of its modes.
//!
//! Which session a credential needs, and whether it is live, is decided on the request side
//! ([`crate::auth::request::authenticate`]); the rows come from `db::sessions` and the row
//! cache (a cold JWT's rows are read in batches: `crate::auth::batch`).

pub(crate) mod known;
pub mod refused;
pub mod store;
pub mod token;
