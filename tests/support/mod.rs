//! Helpers both test crates use: a free port, random hex and the repository's root.
//!
//! `tests/integration/` and `tests/e2e/` are two crates, and one test crate cannot depend on
//! another, so each includes this file as its own module
//! (`#[path = "../support/mod.rs"] mod support;`): one copy in the tree, compiled into both.
//! Cargo makes test targets of `tests/*.rs` and `tests/*/main.rs` only, so this folder is none.
#![allow(dead_code, reason = "each test crate uses only part of this module")]

use std::path::PathBuf;

/// A port on 127.0.0.1 that was free a moment ago, for a server the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `bytes` random bytes as lowercase hex: unique names for databases, folders and tokens.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The repository's root (the crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
