//! The console (`/console`) in a real browser: `tests/browser/console.test.mjs` drives Debian's
//! Chromium (playwright-core, `npm ci --prefix tests/browser`, which scripts/test does) through
//! the pages against the real Better-Auth and warden started here, and checks the database.
//!
//! Both servers are named `localhost` (different ports: the same site, two origins), so
//! Better-Auth's `SameSite=Lax` session cookie goes with the page's `fetch` to it.
//!
//! Needs `chromium` (apt-get install chromium). Without it the tests say so and pass, except
//! under CI (`CI` set), where they fail. `CHROMIUM` names another browser binary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::process::Command;

use crate::stack::{Options, Stack};
use crate::support::repo;

/// The browser to drive, or `None` (with a note) when it is not installed outside CI.
fn chromium() -> Option<String> {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{path} is missing (apt-get install chromium)"
    );
    eprintln!("SKIPPED: {path} is missing (apt-get install chromium)");
    None
}

/// Where a run's screenshots go: under the target directory, one folder per deployment shape.
fn screenshot_dir(mode: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screenshots")
        .join(mode)
}

/// Runs the browser script against `stack`; its output is printed, its exit status asserted.
async fn browse(stack: &Stack, mode: &str, chromium: &str) {
    assert!(
        repo().join("tests/browser/node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    let started = Instant::now();
    let output = Command::new("node")
        .arg("console.test.mjs")
        .current_dir(repo().join("tests/browser"))
        .env("WARDEN_URL", &stack.warden_url)
        .env("AUTH_URL", &stack.auth_url)
        .env("DATABASE_URL", &stack.db.url)
        .env("MODE", mode)
        .env("SCREENSHOT_DIR", screenshot_dir(mode))
        .env("CHROMIUM", chromium)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node is installed");
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    eprintln!(
        "browser test ({mode}) took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "the browser test failed ({})",
        output.status
    );
}

/// Better-Auth on its own origin: the console (served by warden) signs in there, with
/// Better-Auth trusting warden's origin. The whole walk-through: sign-up and sign-in, profile,
/// sessions, accounts, organizations, every admin page, a ban seen by the banned person,
/// sign-out, phone width, keyboard. The social buttons are the ones warden is told of
/// (`CONSOLE_SOCIAL_PROVIDERS=github`), though the auth server has Google too; the page never
/// asks the auth server for them.
#[tokio::test]
async fn console_with_better_auth_on_another_origin() {
    let Some(chromium) = chromium() else { return };
    let stack = Stack::start(Options {
        host: "localhost",
        trust_warden: true,
        // Never contacted: the browser test answers GitHub's authorize page itself.
        auth_env: vec![
            ("GOOGLE_CLIENT_ID", "console-test.apps.example".into()),
            ("GOOGLE_CLIENT_SECRET", "not-a-secret".into()),
            ("GITHUB_CLIENT_ID", "console-test-github-id".into()),
            ("GITHUB_CLIENT_SECRET", "not-a-secret".into()),
        ],
        warden_env: vec![("CONSOLE_SOCIAL_PROVIDERS", "github".into())],
        ..Options::default()
    })
    .await;
    browse(&stack, "two-origins", &chromium).await;
    stack.stop().await;
}

/// One origin (`AUTH_PROXY=true`): the page talks to nothing but warden's origin. JWTs live
/// 65 s here, so the page's refresh (a minute before `exp`) happens during the test.
#[tokio::test]
async fn console_on_one_origin_through_the_auth_proxy() {
    let Some(chromium) = chromium() else { return };
    let stack = Stack::start(Options {
        host: "localhost",
        trust_warden: true,
        auth_proxy: true,
        auth_env: vec![("JWT_EXPIRATION", "65s".into())],
        ..Options::default()
    })
    .await;
    browse(&stack, "proxy", &chromium).await;
    stack.stop().await;
}

/// Better-Auth not trusting warden's origin (a moved port missing from `TRUSTED_ORIGINS`): the
/// browser only says "failed to fetch", and the page must not call that "cannot reach the
/// sign-in server". It names the refused origin and the setting, on load and on sign-in.
#[tokio::test]
async fn console_says_when_better_auth_refuses_its_origin() {
    let Some(chromium) = chromium() else { return };
    let stack = Stack::start(Options {
        host: "localhost",
        trust_warden: false,
        ..Options::default()
    })
    .await;
    browse(&stack, "untrusted", &chromium).await;
    stack.stop().await;
}

/// The same through the auth proxy: Better-Auth answers 403 `INVALID_ORIGIN`, which the page
/// puts in the same words.
#[tokio::test]
async fn console_says_when_better_auth_refuses_its_origin_through_the_proxy() {
    let Some(chromium) = chromium() else { return };
    let stack = Stack::start(Options {
        host: "localhost",
        trust_warden: false,
        auth_proxy: true,
        ..Options::default()
    })
    .await;
    browse(&stack, "untrusted-proxy", &chromium).await;
    stack.stop().await;
}
