#![allow(clippy::unwrap_used, reason = "a benchmark tool")]
//! Mints Better-Auth-shaped JWTs for benchmarks: reads `user_id session_id` lines on stdin
//! (a line with a user id alone gets a stock Better-Auth token: no `sid`, as the jwt plugin
//! signs unless the app adds one),
//! writes `jwks.json` (the public key to serve) and `tokens.txt` (one JWT per line) into the
//! directory given as the first argument. The issuer and audience are the second argument.
//! With a fourth argument N > 1, each pair also gets N - 1 more tokens, issued a second apart
//! (so each is distinct), in `tokens.1.txt` … `tokens.{N-1}.txt`: the same users and sessions
//! under tokens warden has not seen.
//!
//!     cargo run --release --example mint_tokens -- /tmp/bench http://127.0.0.1:18091 [EdDSA|RS256|...] [N] < pairs.txt

use std::io::BufRead;

use serde_json::json;
use warden::testing::auth::keys::Alg;
use warden::testing::{TestKey, jwks_of};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let issuer = args.next().unwrap_or_else(|| "http://localhost:3000".into());
    let alg = args.next().unwrap_or_else(|| "EdDSA".into());
    let copies: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    let key = TestKey::generate(Alg::from_name(&alg).unwrap_or(Alg::EdDsa));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut tokens = vec![String::new(); copies];
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut fields = line.split_whitespace();
        let Some(user) = fields.next() else {
            continue;
        };
        let session = fields.next();
        for (copy, out) in (0..).zip(tokens.iter_mut()) {
            let iat = now - copy;
            let mut claims = json!({
                "sub": user, "id": user, "iat": iat, "exp": iat + 3600,
                "iss": issuer, "aud": issuer, "name": "Bench User", "email": format!("{user}@bench.test"),
                "emailVerified": true, "role": "user", "banned": false,
            });
            if let Some(session) = session {
                claims["sid"] = session.into();
            }
            out.push_str(&key.sign(&claims));
            out.push('\n');
        }
    }
    std::fs::write(format!("{dir}/jwks.json"), jwks_of(&[&key]).to_string())?;
    for (copy, out) in tokens.iter().enumerate() {
        let name = if copy == 0 {
            "tokens.txt".to_owned()
        } else {
            format!("tokens.{copy}.txt")
        };
        std::fs::write(format!("{dir}/{name}"), out)?;
    }
    Ok(())
}
