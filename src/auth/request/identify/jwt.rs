//! Step 1 for a Better-Auth JWT that the token cache did not hold: the verifier's second half,
//! a JWKS fetch allowed only when the client's ticket allows dear work.

use super::{Checked, DearWork, Proof};
use crate::auth::Auth;
use crate::auth::jwt::verifier::{NotVerified, Unverified};
use crate::auth::request::throttle::Ticket;

impl Auth {
    pub(super) async fn identify_jwt(&self, unverified: Unverified<'_>, ticket: &mut Ticket<'_>) -> Checked {
        match unverified.check(|| ticket.allow_dear()).await {
            Ok(claims) => Ok(Ok(Proof::Jwt(claims))),
            Err(NotVerified::Refused(refusal)) => Ok(Err(refusal)),
            Err(NotVerified::FetchNotAllowed) => Err(DearWork),
        }
    }
}
