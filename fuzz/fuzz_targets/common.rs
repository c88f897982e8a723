#![allow(dead_code)]
// Shared by the fuzz targets: one key of each algorithm, created once, and the claim rules.
use std::sync::OnceLock;

use warden::testing::auth::keys::KeySet;
use warden::testing::auth::verify::ClaimRules;
use warden::testing::{ALL_ALGS, TestKey, jwks_of};

pub const ISSUER: &str = "http://fuzz.test";

pub struct Fixture {
    pub keys: Vec<TestKey>,
    pub set: KeySet,
    pub rules: ClaimRules,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys: Vec<TestKey> = ALL_ALGS.into_iter().map(TestKey::generate).collect();
        let doc = jwks_of(&keys.iter().collect::<Vec<_>>());
        let (set, _) = KeySet::from_jwks_json(doc.to_string().as_bytes()).unwrap();
        let rules = ClaimRules {
            issuer: ISSUER.into(),
            audience: vec![ISSUER.into()],
            leeway_secs: 30,
        };
        Fixture { keys, set, rules }
    })
}
