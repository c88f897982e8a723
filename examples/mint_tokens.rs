#![allow(clippy::unwrap_used, reason = "a benchmark tool")]
//! Mints Better-Auth-shaped JWTs for benchmarks: reads `user_id session_id` lines on stdin,
//! writes `jwks.json` (the public key to serve) and `tokens.txt` (one JWT per line) into the
//! directory given as the first argument. The issuer and audience are the second argument.
//!
//!     cargo run --release --example mint_tokens -- /tmp/bench http://127.0.0.1:18091 [EdDSA|RS256|...] < pairs.txt

use std::io::BufRead;

use serde_json::json;
use warden::auth::keys::Alg;
use warden::testing::{TestKey, jwks_of};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let issuer = args.next().unwrap_or_else(|| "http://localhost:3000".into());
    let alg = args.next().unwrap_or_else(|| "EdDSA".into());
    let key = TestKey::generate(Alg::from_name(&alg).unwrap_or(Alg::EdDsa));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut tokens = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let Some((user, session)) = line.split_once(' ') else {
            continue;
        };
        let claims = json!({
            "sub": user, "id": user, "sid": session, "iat": now, "exp": now + 3600,
            "iss": issuer, "aud": issuer, "name": "Bench User", "email": format!("{user}@bench.test"),
            "emailVerified": true, "role": "user", "banned": false,
        });
        tokens.push_str(&key.sign(&claims));
        tokens.push('\n');
    }
    std::fs::write(format!("{dir}/jwks.json"), jwks_of(&[&key]).to_string())?;
    std::fs::write(format!("{dir}/tokens.txt"), tokens)?;
    Ok(())
}
