//! `scripts/dev` up to the point where it would build and start something: a port already
//! taken (here by a server answering `/healthz`, as an earlier scripts/dev would) stops it with
//! the port named and a free one suggested, and a moved `WARDEN_PORT` is an origin Better-Auth
//! is told to trust.
//!
//! The script runs with a `cargo` that fails loudly ahead of the real one and a `DATABASE_URL`
//! that nothing answers at: a script that went past its checks says so in its output.

use std::path::PathBuf;
use std::time::Duration;

use axum::routing::get;
use tokio::process::Command;

use crate::support::{free_port, random_hex};

/// What the stand-in `cargo` prints: the script got as far as building.
const CARGO_RAN: &str = "cargo ran: scripts/dev went past its checks";

/// A folder holding the stand-in `cargo`, removed on drop.
struct FakeCargo(PathBuf);

impl FakeCargo {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("warden-dev-script-{}", random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let cargo = dir.join("cargo");
        std::fs::write(&cargo, format!("#!/bin/sh\necho '{CARGO_RAN}' >&2\nexit 97\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self(dir)
    }
}

impl Drop for FakeCargo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `scripts/dev <args>` with only `vars` (and PATH, HOME): whether it succeeded, and its
/// stdout and stderr together.
async fn dev(args: &[&str], vars: &[(&str, String)]) -> (bool, String) {
    let fake = FakeCargo::new();
    let path = format!(
        "{}:{}",
        fake.0.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dev"))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        // Nothing listens on port 1: the old script stopped there, past the port checks.
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/never")
        .kill_on_drop(true);
    for (k, v) in vars {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("scripts/dev finished within 60 s")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A server on a port of its own that answers `GET /healthz` with 200, as warden and
/// Better-Auth do: its port.
async fn healthz_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

#[tokio::test]
async fn a_taken_port_stops_scripts_dev_before_it_builds_anything() {
    for taken_var in ["WARDEN_PORT", "AUTH_PORT"] {
        let taken = healthz_server().await;
        let other_var = if taken_var == "WARDEN_PORT" {
            "AUTH_PORT"
        } else {
            "WARDEN_PORT"
        };
        let (ok, out) = dev(
            &[],
            &[
                (taken_var, taken.to_string()),
                (other_var, free_port().to_string()),
            ],
        )
        .await;
        assert!(!ok, "{taken_var} taken, yet scripts/dev succeeded:\n{out}");
        assert!(
            out.contains(&format!("port {taken} ({taken_var}")),
            "the taken port is not named:\n{out}"
        );
        assert!(
            out.contains("answers /healthz"),
            "what answers there is not said:\n{out}"
        );
        assert!(
            out.contains(&format!("{taken_var}=")) && out.contains(" scripts/dev"),
            "no other port suggested:\n{out}"
        );
        assert!(
            !out.contains("Ready."),
            "Ready. for a server it did not start:\n{out}"
        );
        assert!(
            !out.contains(CARGO_RAN),
            "it built before checking the ports:\n{out}"
        );
    }
}

#[tokio::test]
async fn scripts_dev_has_better_auth_trust_the_console_on_a_moved_port() {
    let (auth, warden) = (free_port(), free_port());
    let ports = || {
        vec![
            ("AUTH_PORT", auth.to_string()),
            ("WARDEN_PORT", warden.to_string()),
        ]
    };
    let console = format!("http://localhost:{warden}");

    let (ok, out) = dev(&["--check"], &ports()).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "Better-Auth would trust http://localhost:5173,{console}\n"
        )),
        "{out}"
    );
    assert!(!out.contains(CARGO_RAN), "{out}");

    // An explicit TRUSTED_ORIGINS is kept, with a warning when it leaves the console out.
    let mut vars = ports();
    vars.push(("TRUSTED_ORIGINS", "http://localhost:5173".into()));
    let (ok, out) = dev(&["--check"], &vars).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("does not name the console's origin, {console}")),
        "{out}"
    );
    assert!(
        out.contains("Better-Auth would trust http://localhost:5173\n"),
        "{out}"
    );

    // The social buttons follow the providers the auth server turns on.
    let mut vars = ports();
    vars.push(("GITHUB_CLIENT_ID", "id".into()));
    vars.push(("GITHUB_CLIENT_SECRET", "secret".into()));
    vars.push(("GOOGLE_CLIENT_ID", "only-half".into()));
    let (ok, out) = dev(&["--check"], &vars).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("the console would offer social sign-in with: github\n"),
        "{out}"
    );
}

#[tokio::test]
async fn scripts_dev_keeps_sessions_in_redis_when_asked() {
    let ports = || {
        vec![
            ("AUTH_PORT", free_port().to_string()),
            ("WARDEN_PORT", free_port().to_string()),
        ]
    };
    let mut vars = ports();
    vars.push(("REDIS", "1".into()));
    vars.push(("REDIS_URL", "redis://127.0.0.1:6390".into()));
    let (ok, out) = dev(&["--check"], &vars).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("sessions would be kept in Redis: redis://127.0.0.1:6390\n"),
        "{out}"
    );
    let (ok, out) = dev(&["--check"], &ports()).await;
    assert!(ok && !out.contains("Redis"), "{out}");
    let mut vars = ports();
    vars.push(("REDIS", "yes".into()));
    let (ok, out) = dev(&["--check"], &vars).await;
    assert!(!ok && out.contains("REDIS must be 0 or 1"), "{out}");
    assert!(!out.contains(CARGO_RAN), "{out}");
}
