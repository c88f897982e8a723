//! Helpers both test crates use: a free port, random hex, the repository's root and the
//! `warden` binary's command line.
//!
//! `tests/integration/` and `tests/e2e/` are two crates, and one test crate cannot depend on
//! another, so each includes this file as its own module
//! (`#[path = "../support/mod.rs"] mod support;`): one copy in the tree, compiled into both.
//! Cargo makes test targets of `tests/*.rs` and `tests/*/main.rs` only, so this folder is none.
#![allow(dead_code, reason = "each test crate uses only part of this module")]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use tokio::process::Command;

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

/// The `warden` binary Cargo built for these tests.
pub fn warden_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_warden"))
}

/// What a spawned program's environment starts from.
#[derive(Clone, Copy, Debug)]
pub enum Env {
    /// Nothing but `PATH` and the variables given, run in the temp directory: no variable from
    /// the developer's shell and no `.env` file from the working tree (warden reads one).
    Clean,
    /// The test process's environment and working directory, the variables given on top.
    Inherited,
}

/// `program args` with the environment `env` plus `vars`, killed if its handle drops. Standard
/// streams are left to the caller (inherited by `spawn`, captured by `output`), as is anything
/// else a site needs (`current_dir`, `stdin`, more variables, `into_std` for a blocking test).
pub fn command(program: impl AsRef<OsStr>, args: &[&str], env: Env, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command.args(args).kill_on_drop(true);
    if let Env::Clean = env {
        command.env_clear().current_dir(std::env::temp_dir());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
    }
    for (k, v) in vars {
        command.env(k, v);
    }
    command
}

/// `warden args`: [`command`] for the test build's binary.
pub fn warden_command(args: &[&str], env: Env, vars: &[(&str, &str)]) -> Command {
    command(warden_binary(), args, env, vars)
}

pub mod redis;
