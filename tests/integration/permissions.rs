//! Permissions and organizations through the API: every admin route asks the permission
//! Better-Auth would, `has-permission` for users and members, the organization routes for
//! members only, and forward auth's organization headers. (The same decisions are compared
//! with the real Better-Auth in tests/e2e/permissions.rs.)

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::PgPool;
use warden::testing::auth::AccessControl;

use crate::support::{Env, warden_command};
use crate::world::{Setup, World};

/// The roles the tests use: `support` may list and read users and manage sessions, a
/// `moderator` may ban, and an organization role `editor` may manage teams.
pub const ACCESS_CONTROL: &str = r#"{
    "admin": {"user": ["create", "list", "set-role", "ban", "impersonate", "delete", "set-password",
                       "set-email", "set-phone", "get", "update"],
              "session": ["list", "revoke", "delete"], "audit": ["list"]},
    "user": {"user": [], "session": []},
    "support": {"user": ["list", "get"], "session": ["list", "revoke"]},
    "moderator": {"user": ["list", "get", "ban"]},
    "organization": {
        "owner": {"organization": ["update", "delete"], "member": ["create", "update", "delete"],
                  "invitation": ["create", "cancel"], "team": ["create", "update", "delete"],
                  "ac": ["create", "read", "update", "delete"]},
        "admin": {"organization": ["update"], "member": ["create", "update", "delete"],
                  "invitation": ["create", "cancel"], "team": ["create", "update", "delete"],
                  "ac": ["create", "read", "update", "delete"]},
        "member": {"ac": ["read"]},
        "editor": {"team": ["create", "update"]}
    }
}"#;

fn with_roles() -> Setup {
    let access = AccessControl::from_json("access-control.json", ACCESS_CONTROL).unwrap();
    Setup::default().policy(move |p| {
        p.assignable_roles = access.roles.keys().cloned().collect();
        p.access = Arc::new(access);
    })
}

/// Every admin route with the permission it asks, and a request that would succeed.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    vec![
        ("GET", "/admin/users", None, "user:list"),
        ("GET", "/admin/users/bob", None, "user:get"),
        (
            "PUT",
            "/admin/users/victim/role",
            Some(json!({"role": "user"})),
            "user:set-role",
        ),
        (
            "POST",
            "/admin/users/victim/ban",
            Some(json!({"reason": "spam"})),
            "user:ban",
        ),
        ("POST", "/admin/users/victim/unban", None, "user:ban"),
        ("GET", "/admin/users/victim/sessions", None, "session:list"),
        ("DELETE", "/admin/users/victim/sessions", None, "session:revoke"),
        ("DELETE", "/admin/sessions/s-victim", None, "session:revoke"),
        ("GET", "/admin/audit", None, "audit:list"),
        ("DELETE", "/admin/users/victim", None, "user:delete"),
    ]
}

#[sqlx::test]
async fn each_admin_route_asks_the_permission_better_auth_would(db: PgPool) {
    let w = World::with(db, with_roles()).await;
    w.exec(
        r#"UPDATE "user" SET role = 'support' WHERE id = 'alice';
           UPDATE "user" SET role = 'moderator' WHERE id = 'bob'"#,
    )
    .await;
    let grants = |role: &str, permission: &str| -> bool {
        match role {
            "admin" => true,
            "support" => ["user:list", "user:get", "session:list", "session:revoke"].contains(&permission),
            "moderator" => ["user:list", "user:get", "user:ban"].contains(&permission),
            _ => false,
        }
    };
    let mut checked = 0;
    for (caller, role) in [
        (w.as_alice(), "support"),
        (w.as_bob(), "moderator"),
        (w.as_admin(), "admin"),
    ] {
        for (method, path, body, permission) in routes() {
            // A fresh victim with a session, so every allowed write has something to do.
            w.exec(
                "INSERT INTO \"user\" (id, name, email, email_verified, updated_at, role)
                 VALUES ('victim', 'V', 'victim@example.com', false, now(), 'user') ON CONFLICT (id) DO NOTHING;
                 INSERT INTO session (id, expires_at, token, updated_at, user_id)
                 VALUES ('s-victim', now() + interval '1 hour', 'tok-victim', now(), 'victim') ON CONFLICT (id) DO NOTHING",
            )
            .await;
            let before = w.snapshot().await;
            let answer = caller.call(method, path, body).await;
            if grants(role, permission) {
                assert!(
                    answer.status.is_success(),
                    "{role} {method} {path}: {:?}",
                    answer.body
                );
            } else {
                assert_eq!(
                    answer.outcome(),
                    (403, Some("forbidden")),
                    "{role} {method} {path}"
                );
                let detail = answer.body["detail"].as_str().unwrap();
                assert!(detail.contains(permission), "{detail}");
                assert_eq!(
                    w.snapshot().await,
                    before,
                    "{role} {method} {path} changed nothing"
                );
            }
            checked += 1;
        }
    }
    eprintln!("{checked} route × role cases");
}

#[sqlx::test]
async fn has_permission_speaks_better_auths_body(db: PgPool) {
    let w = World::with(db, with_roles()).await;
    w.exec(r#"UPDATE "user" SET role = 'user,support' WHERE id = 'alice'"#)
        .await;
    let ask = async |body: Value| {
        let answer = w.as_alice().post("/users/me/has-permission", Some(body)).await;
        (answer.status.as_u16(), answer.body)
    };
    assert_eq!(
        ask(json!({"permissions": {"user": ["list"]}})).await,
        (200, json!({"error": null, "success": true}))
    );
    assert_eq!(
        ask(json!({"permission": {"user": ["list"]}})).await.1["success"],
        true
    );
    assert_eq!(
        ask(json!({"permissions": {"user": ["ban"]}})).await.1["success"],
        false
    );
    // One role grants everything asked, or nothing passes.
    let both = json!({"user": ["list"], "session": ["revoke"]});
    assert_eq!(ask(json!({"permissions": both})).await.1["success"], true);
    let mixed = json!({"user": ["ban"], "session": ["revoke"]});
    assert_eq!(ask(json!({"permissions": mixed})).await.1["success"], false);
    assert_eq!(
        ask(json!({"permissions": mixed, "connector": "OR"})).await.1["success"],
        true
    );
    assert_eq!(
        ask(json!({"permissions": {"nope": ["x"]}})).await.1["success"],
        false
    );
    for bad in [
        json!({}),
        json!({"permissions": {"user": ["list"]}, "permission": {"user": ["list"]}}),
        json!({"permissions": {"user": "list"}}),
        json!({"permissions": {"user": ["list"]}, "connector": "XOR"}),
    ] {
        assert_eq!(ask(bad.clone()).await.0, 422, "{bad}");
    }
    // ADMIN_USER_IDS pass whatever is asked.
    let ids = w
        .variant(with_roles().policy(|p| p.admin_user_ids = vec!["bob".into()]))
        .await;
    let answer = ids
        .as_bob()
        .post(
            "/users/me/has-permission",
            Some(json!({"permissions": {"user": ["impersonate-admins"]}})),
        )
        .await;
    assert_eq!(answer.body["success"], true);
}

/// An organization `acme` with alice as owner, bob as member; `globex` without them.
async fn organizations(w: &World) {
    w.exec(
        r#"INSERT INTO organization (id, name, slug, created_at) VALUES
             ('acme', 'Acme', 'acme', now()), ('globex', 'Globex', 'globex', now());
           INSERT INTO member (id, organization_id, user_id, role, created_at) VALUES
             ('m-alice', 'acme', 'alice', 'owner', now() - interval '1 day'),
             ('m-bob', 'acme', 'bob', 'member', now()),
             ('m-admin', 'globex', 'admin', 'owner', now())"#,
    )
    .await;
}

#[sqlx::test]
async fn organizations_are_for_their_members(db: PgPool) {
    let w = World::with(db, with_roles()).await;
    organizations(&w).await;
    w.exec("UPDATE session SET active_organization_id = 'acme' WHERE id = 's-bob'")
        .await;

    let mine = w.as_bob().get("/users/me/organizations").await;
    assert_eq!(mine.status, 200);
    assert_eq!(
        mine.body,
        json!([{
            "id": "acme", "name": "Acme", "slug": "acme", "logo": null, "role": "member",
            "roles": ["member"], "joinedAt": mine.body[0]["joinedAt"], "active": true
        }])
    );
    let answer = w.as_alice().get("/orgs/acme").await;
    assert_eq!(
        (answer.status.as_u16(), answer.body["role"].as_str()),
        (200, Some("owner"))
    );
    let members = w.as_bob().get("/orgs/acme/members").await;
    let ids: Vec<&str> = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["alice", "bob"]);
    // Outsiders learn nothing, not even that it exists.
    for path in [
        "/orgs/globex",
        "/orgs/globex/members",
        "/orgs/nope",
        "/orgs/nope/members",
    ] {
        assert_eq!(
            w.as_bob().get(path).await.outcome(),
            (404, Some("not_found")),
            "{path}"
        );
    }

    // Forward auth names the session's active organization.
    let verify = w.as_bob().get("/auth/verify").await;
    assert_eq!(verify.headers["x-auth-org-id"], "acme");
    assert_eq!(verify.headers["x-auth-org-role"], "member");
    let verify = w.as_alice().get("/auth/verify").await;
    assert!(
        verify.headers.get("x-auth-org-id").is_none(),
        "no active organization"
    );
    // An active organization the user is not (or no longer) a member of names none.
    w.exec("UPDATE session SET active_organization_id = 'globex' WHERE id = 's-alice-1'")
        .await;
    assert!(
        w.as_alice()
            .get("/auth/verify")
            .await
            .headers
            .get("x-auth-org-id")
            .is_none()
    );
}

#[sqlx::test]
async fn member_permissions_merge_dynamic_roles(db: PgPool) {
    let w = World::with(db, with_roles()).await;
    organizations(&w).await;
    let ask = async |who: &str, body: Value| {
        let caller = if who == "alice" { w.as_alice() } else { w.as_bob() };
        caller.post("/orgs/acme/has-permission", Some(body)).await.body["success"].clone()
    };
    assert_eq!(
        ask("alice", json!({"permissions": {"organization": ["delete"]}})).await,
        true
    );
    assert_eq!(
        ask("bob", json!({"permissions": {"organization": ["delete"]}})).await,
        false
    );
    assert_eq!(ask("bob", json!({"permissions": {"ac": ["read"]}})).await, true);
    assert_eq!(
        ask("bob", json!({"permissions": {"invitation": ["create"]}})).await,
        false
    );
    // A dynamic role adds to `member` in this organization only.
    w.exec(
        r#"INSERT INTO organization_role (id, organization_id, role, permission) VALUES
             ('r1', 'acme', 'member', '{"invitation": ["create"]}')"#,
    )
    .await;
    assert_eq!(
        ask("bob", json!({"permissions": {"invitation": ["create"]}})).await,
        true
    );
    // Roles from the file, and roles defined only dynamically.
    w.exec(r#"UPDATE member SET role = 'editor' WHERE id = 'm-bob'"#)
        .await;
    assert_eq!(
        ask("bob", json!({"permissions": {"team": ["create"]}})).await,
        true
    );
    w.exec(
        r#"INSERT INTO organization_role (id, organization_id, role, permission) VALUES
             ('r2', 'acme', 'auditor', '{"member": ["update"]}');
           UPDATE member SET role = 'auditor' WHERE id = 'm-bob'"#,
    )
    .await;
    assert_eq!(
        ask("bob", json!({"permissions": {"member": ["update"]}})).await,
        true
    );
    assert_eq!(
        ask("bob", json!({"permissions": {"team": ["create"]}})).await,
        false
    );
    // Not a member: 404 here too.
    let answer = w
        .as_admin()
        .post(
            "/orgs/acme/has-permission",
            Some(json!({"permissions": {"ac": ["read"]}})),
        )
        .await;
    assert_eq!(answer.outcome(), (404, Some("not_found")));
}

#[test]
fn a_bad_access_control_file_stops_the_start_naming_it() {
    let dir = std::env::temp_dir().join(format!("warden-ac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("access-control.json");
    std::fs::write(&file, r#"{"support": {"user": ["list", "fly"]}}"#).unwrap();
    let vars = [("DATABASE_URL", "postgres://127.0.0.1:1/none")];
    let output = warden_command(&["serve"], Env::Clean, &vars)
        .into_std()
        .env("ACCESS_CONTROL_FILE", &file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ACCESS_CONTROL_FILE is not valid: {}: role \"support\": unknown action \"fly\"",
            file.display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
