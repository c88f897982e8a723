#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark: failing loudly is right"
)]
//! `cargo bench`: what one verification costs, per algorithm — the raw signature primitive
//! (aws-lc-rs), warden's full cold path (parse, key lookup, algorithm check, signature,
//! claims), and the cached path (a token verified before: hash + lookup).
//!
//! Prints a markdown table (nanoseconds per operation, median of 5 runs).

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P521_SHA512_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use warden::testing::auth::Verifier;
use warden::testing::auth::jwks::{JwksCache, JwksSource};
use warden::testing::auth::keys::{Alg, KeySet};
use warden::testing::auth::verify::{self, ClaimRules};
use warden::testing::{ALL_ALGS, TestKey, jwks_of};

const ISSUER: &str = "http://bench.test";

fn claims() -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({"sub": "user-1", "iat": now, "exp": now + 900, "iss": ISSUER, "aud": ISSUER, "sid": "s-1",
           "name": "Bench User", "email": "bench@example.com", "emailVerified": true, "role": "user"})
}

/// Median nanoseconds per call of `f` over 5 runs of `n` calls.
fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn b64(v: &serde_json::Value, field: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(v[field].as_str().unwrap_or_default())
        .unwrap_or_default()
}

/// The raw aws-lc-rs check of `signature` over `message` with the JWK's key.
fn primitive(alg: Alg, jwk: &serde_json::Value, message: &[u8], signature: &[u8]) -> bool {
    match alg {
        Alg::EdDsa => UnparsedPublicKey::new(&ED25519, b64(jwk, "x"))
            .verify(message, signature)
            .is_ok(),
        Alg::Es256 | Alg::Es512 => {
            let mut point = vec![4u8];
            point.extend(b64(jwk, "x"));
            point.extend(b64(jwk, "y"));
            let algorithm = if alg == Alg::Es256 {
                &ECDSA_P256_SHA256_FIXED
            } else {
                &ECDSA_P521_SHA512_FIXED
            };
            UnparsedPublicKey::new(algorithm, point)
                .verify(message, signature)
                .is_ok()
        }
        Alg::Rs256 | Alg::Ps256 => {
            let key = RsaPublicKeyComponents {
                n: b64(jwk, "n"),
                e: b64(jwk, "e"),
            };
            let params = if alg == Alg::Rs256 {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &RSA_PSS_2048_8192_SHA256
            };
            key.verify(params, message, signature).is_ok()
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rules = ClaimRules {
        issuer: ISSUER.into(),
        audience: vec![ISSUER.into()],
        leeway_secs: 30,
    };
    println!(
        "| algorithm | aws-lc-rs primitive | warden cold (full check) | warden cached (verified before) |"
    );
    println!("|---|---:|---:|---:|");
    for alg in ALL_ALGS {
        let key = TestKey::generate(alg);
        let token = key.sign(&claims());
        let jwks = jwks_of(&[&key]);
        let (set, _) = KeySet::from_jwks_json(jwks.to_string().as_bytes()).expect("jwks");
        let (input, signature) = token.rsplit_once('.').expect("token");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        let jwk = key.jwk();
        assert!(primitive(alg, &jwk, input.as_bytes(), &signature));

        let n = 2_000;
        let raw = per_op(n, || {
            black_box(primitive(alg, &jwk, black_box(input.as_bytes()), &signature));
        });
        let cold = per_op(n, || {
            let parsed = verify::parse(black_box(&token)).expect("parse");
            let k = set.get(&parsed.kid).expect("key");
            black_box(
                parsed
                    .verify(k, &rules, None, verify::now_secs())
                    .expect("verify"),
            );
        });

        // The cached path through the real Verifier, its keys from a JWKS server on 127.0.0.1.
        let cached = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
            let body = jwks.to_string();
            let app =
                axum::Router::new().route("/jwks", axum::routing::get(move || async move { body.clone() }));
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let cache = JwksCache::new(
                JwksSource {
                    url,
                    client: reqwest::Client::new(),
                    timeout: Duration::from_secs(2),
                    db: None,
                    db_grace: Duration::ZERO,
                },
                Duration::from_secs(5),
            );
            cache.refresh().await.expect("jwks fetch");
            let verifier = Verifier::new(cache, rules.clone());
            verifier.verify(&token).await.expect("first verification");
            let m = 200_000u32;
            let mut runs = Vec::new();
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..m {
                    black_box(verifier.verify(black_box(&token)).await.expect("cached"));
                }
                runs.push(start.elapsed().as_nanos() as f64 / f64::from(m));
            }
            server.abort();
            runs.sort_by(f64::total_cmp);
            runs[2]
        });
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.2} µs |",
            alg.name(),
            raw / 1000.0,
            cold / 1000.0,
            cached / 1000.0
        );
    }
}
