//! `/console` through the real router: the page and its assets, their cache validators, the
//! security headers on every answer under `/console` (errors and 304s too), where the page is
//! told Better-Auth is and which social buttons to show, and `CONSOLE=false`.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use sqlx::PgPool;

use crate::common::send_raw;
use crate::world::{Setup, World};

async fn get(w: &World, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send_raw(&w.app, request.body(Body::empty()).unwrap()).await
}

fn assert_secured(path: &str, headers: &HeaderMap) {
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"))
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https:;",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{path}: {directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{path}: {csp}");
    // People's pictures only over https: an admin's browser never fetches a plain-http (or
    // internal) address a user chose.
    let images = csp.split(';').map(str::trim).find(|d| d.starts_with("img-src"));
    assert_eq!(images, Some("img-src 'self' https:"), "{path}: {csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
    assert_eq!(headers["x-frame-options"], "DENY", "{path}");
}

/// The asset URLs the page names: `/console/assets/{version}/{file}`.
fn asset_urls(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|s| s.starts_with("/console/assets/"))
        .map(str::to_owned)
        .collect()
}

#[sqlx::test]
async fn page_and_assets_are_cached_and_secured(db: PgPool) {
    let w = World::new(db).await;
    let (status, headers, page) = get(&w, "/console", &[]).await;
    assert_eq!(status, 200);
    assert_secured("/console", &headers);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache", "a new release is picked up");
    assert!(
        page.contains(r#"data-auth-url="http://localhost:3000""#),
        "{page}"
    );
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "nothing inline"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("connect-src 'self' http://localhost:3000;"), "{csp}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, again, body) = get(&w, "/console/", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_secured("/console/ (304)", &again);
    assert_eq!(again["etag"].to_str().unwrap(), etag);

    let urls = asset_urls(&page);
    assert!(urls.iter().any(|u| u.ends_with("/app.js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with("/console.css")), "{urls:?}");
    for url in &urls {
        let (status, headers, body) = get(&w, url, &[]).await;
        assert_eq!(status, 200, "{url}");
        assert!(!body.is_empty(), "{url}");
        assert_secured(url, &headers);
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{url}"
        );
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let (status, headers, _) = get(&w, url, &[("if-none-match", &format!("\"x\", {etag}"))]).await;
        assert_eq!(status, 304, "{url}");
        assert_secured(url, &headers);
    }
    // The modules the entry imports are served beside it, with a script type.
    let app = urls.iter().find(|u| u.ends_with("/app.js")).unwrap();
    let base = app.trim_end_matches("app.js");
    for module in ["auth.js", "api.js", "problem.js", "dom.js", "me.js", "admin.js"] {
        let (status, headers, _) = get(&w, &format!("{base}{module}"), &[]).await;
        assert_eq!(status, 200, "{module}");
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    }

    // Another version's URL (a page from another release) still gets the file, not cached.
    let (status, headers, _) = get(&w, "/console/assets/0123456789ab/app.js", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-cache");
    // Unknown files and paths: the API's 404, still with the headers.
    for path in [
        "/console/assets/0123456789ab/secret.env",
        "/console/nope",
        "/console/assets/x/../../etc/passwd",
    ] {
        let (status, headers, body) = get(&w, path, &[]).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("not_found"), "{path}: {body}");
        assert_secured(path, &headers);
    }
    let request = Request::builder()
        .method("POST")
        .uri("/console")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send_raw(&w.app, request).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET, HEAD");
    assert_secured("POST /console", &headers);
}

#[sqlx::test]
async fn with_the_auth_proxy_the_page_signs_in_on_its_own_origin(db: PgPool) {
    let w = World::with(
        db,
        Setup::default().state(|s| {
            s.auth_proxy = Some("http://auth.internal:3000".into());
            s.better_auth_url = "http://auth.internal:3000".into();
        }),
    )
    .await;
    let (status, headers, page) = get(&w, "/console", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"data-auth-url="""#), "{page}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(!csp.contains("auth.internal"), "{csp}");
}

#[sqlx::test]
async fn better_auth_elsewhere_is_named_by_its_origin(db: PgPool) {
    let w = World::with(
        db,
        Setup::default().state(|s| s.better_auth_url = "https://auth.example.com/base/".into()),
    )
    .await;
    let (_, headers, page) = get(&w, "/console", &[]).await;
    assert!(
        page.contains(r#"data-auth-url="https://auth.example.com""#),
        "{page}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("connect-src 'self' https://auth.example.com;"),
        "{csp}"
    );
}

/// The social buttons are warden's setting (`CONSOLE_SOCIAL_PROVIDERS`), in the page: the page
/// never asks the auth server (only warden's own has an endpoint for it; any other Better-Auth
/// answers 404 there, in every visitor's browser console).
#[sqlx::test]
async fn the_social_buttons_come_from_warden_not_from_the_auth_server(db: PgPool) {
    let w = World::new(db).await;
    let (_, _, page) = get(&w, "/console", &[]).await;
    assert!(
        page.contains(r#"data-social-providers="""#),
        "none by default:\n{page}"
    );
    for url in asset_urls(&page) {
        let (status, _, body) = get(&w, &url, &[]).await;
        assert_eq!(status, 200, "{url}");
        assert!(
            !body.contains("social-providers"),
            "{url} asks the auth server for its providers"
        );
    }
}

#[sqlx::test]
async fn console_social_providers_are_written_into_the_page(db: PgPool) {
    let w = World::with(
        db,
        Setup::default().state(|s| s.console_social_providers = vec!["github".into(), "google".into()]),
    )
    .await;
    let (_, _, page) = get(&w, "/console", &[]).await;
    assert!(
        page.contains(r#"data-social-providers="github,google""#),
        "{page}"
    );
}

#[sqlx::test]
async fn console_false_is_a_404(db: PgPool) {
    let w = World::with(db, Setup::default().state(|s| s.console = false)).await;
    for path in ["/console", "/console/", "/console/assets/0123456789ab/app.js"] {
        let (status, headers, body) = get(&w, path, &[]).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("not_found"), "{path}: {body}");
        assert!(headers.get("content-security-policy").is_none(), "{path}");
    }
    // The API is untouched.
    assert_eq!(w.as_alice().get("/users/me").await.status, 200);
}
