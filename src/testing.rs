//! For the crate's own tests, benchmarks, examples and fuzz targets (feature `testing`), not
//! for anyone else: signing keys of every algorithm Better-Auth uses and tokens shaped like
//! its own, and the library's internals under the paths they have inside the crate
//! ([`auth`], [`cache`], [`db`]), which the public surface keeps to itself.
#![allow(
    clippy::unwrap_used,
    reason = "test and benchmark tooling: key generation failing means a broken machine"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::auth::jwt::keys::Alg;

/// The `auth` module's parts, by their inner paths (and the former flat ones).
pub mod auth {
    pub use crate::auth::jwt::{self, jwks, keys, tokens, verifier, verify};
    pub use crate::auth::oauth;
    pub use crate::auth::policy::{self, access, organization};
    pub use crate::auth::request::{self, authenticate, client_ip, credential, extract, throttle};
    pub use crate::auth::session::{self, refused, token as session_token};
    pub use crate::auth::*;
}

/// The row cache and its listener.
pub mod cache {
    pub use crate::cache::*;
}

/// All SQL, one module per table; the migrations.
pub mod db {
    pub use crate::db::*;
}

/// The JWT verifier an [`crate::Auth`] was built with (its JWKS cache, for tests of it).
pub fn verifier_of(auth: &crate::Auth) -> &crate::auth::Verifier {
    auth.verifier()
}

/// Every algorithm Better-Auth can sign with, for tests that run once per algorithm.
pub const ALL_ALGS: [Alg; 5] = [Alg::EdDsa, Alg::Rs256, Alg::Ps256, Alg::Es256, Alg::Es512];

#[derive(Debug)]
enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key of one algorithm, with its public JWK.
#[derive(Debug)]
pub struct TestKey {
    /// A fresh `kid`: the algorithm's name and 16 random hex digits.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: Alg,
    pair: Pair,
}

impl TestKey {
    /// A new key pair for `alg` (RSA: 2048 bits).
    pub fn generate(alg: Alg) -> Self {
        let pair = match alg {
            Alg::EdDsa => Pair::Ed(Ed25519KeyPair::generate().unwrap()),
            Alg::Es256 => Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
            Alg::Es512 => Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).unwrap()),
            Alg::Rs256 | Alg::Ps256 => Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
        };
        let mut suffix = [0u8; 8];
        aws_lc_rs::rand::fill(&mut suffix).unwrap();
        let kid = format!(
            "{}-{}",
            alg.name(),
            suffix.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        Self { kid, alg, pair }
    }

    /// The public JWK as Better-Auth serves it: `alg` present, no `use`.
    pub fn jwk(&self) -> Value {
        let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match &self.pair {
            Pair::Ed(k) => {
                json!({"kty":"OKP","crv":"Ed25519","x":b(k.public_key().as_ref()),"alg":"EdDSA","kid":self.kid})
            }
            Pair::Ec(k) => {
                let point = k.public_key().as_ref();
                let n = (point.len() - 1) / 2;
                let crv = if self.alg == Alg::Es256 { "P-256" } else { "P-521" };
                json!({"kty":"EC","crv":crv,"x":b(&point[1..1 + n]),"y":b(&point[1 + n..]),"alg":self.alg.name(),"kid":self.kid})
            }
            Pair::Rsa(k) => {
                let c = PublicKeyComponents::<Vec<u8>>::from(k.public_key());
                json!({"kty":"RSA","n":b(&c.n),"e":b(&c.e),"alg":self.alg.name(),"kid":self.kid})
            }
        }
    }

    /// Signs `message` with this key's own algorithm.
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ed(k) => k.sign(message).as_ref().to_vec(),
            Pair::Ec(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Pair::Rsa(k) => {
                let padding = if self.alg == Alg::Rs256 {
                    &RSA_PKCS1_SHA256
                } else {
                    &RSA_PSS_SHA256
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A compact JWS with the given header and payload, signed by this key.
    pub fn sign_with_header(&self, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let sig = self.sign_raw(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// A token shaped like Better-Auth's: header `{alg, kid}`, no `typ`.
    pub fn sign(&self, payload: &Value) -> String {
        self.sign_with_header(&json!({"alg": self.alg.name(), "kid": self.kid}), payload)
    }
}

/// The JWKS document (`{"keys": [...]}`) of `keys`, as Better-Auth's endpoint serves it.
pub fn jwks_of(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}
