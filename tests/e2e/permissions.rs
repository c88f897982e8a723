//! Permissions and organizations decided exactly as Better-Auth decides them, checked against
//! the real Better-Auth with the same `access-control.json`:
//!
//! - the agreement grid: for users of every kind (admin, user, support, moderator, a
//!   `"user,support"` user, role strings written by hand such as `"user, support"`,
//!   `" admin"`, `"ad min"`, `"admin,"` and `""`, an `ADMIN_USER_IDS` user) and permission sets (single, several,
//!   across resources, unknown action and resource, empty), warden's
//!   `POST /users/me/has-permission` answers what Better-Auth's
//!   `POST /api/auth/admin/has-permission` answers; `OR` cases (which Better-Auth's endpoint
//!   cannot take) are compared with Better-Auth's own `authorize(request, "OR")`;
//! - each admin route admits exactly the users Better-Auth says hold its permission, and a
//!   refusal changes nothing;
//! - an organization's life through Better-Auth's own API (create, invite and accept, set
//!   active, change a role, a dynamic role, remove): warden's routes, guards and forward-auth
//!   headers follow each change on the next request.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::stack::{Options, Stack};

const ACCESS_CONTROL: &str = r#"{
    "admin": {"user": ["create", "list", "set-role", "ban", "impersonate", "delete", "set-password",
                       "set-email", "set-phone", "get", "update"],
              "session": ["list", "revoke", "delete"], "audit": ["list"]},
    "user": {"user": [], "session": []},
    "support": {"user": ["list", "get"], "session": ["list", "revoke"]},
    "moderator": {"user": ["list", "get", "ban"]}
}"#;

fn access_control_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("warden-e2e-ac-{}.json", crate::support::random_hex(6)));
    std::fs::write(&path, ACCESS_CONTROL).unwrap();
    path
}

fn options(file: &std::path::Path, admin_user_ids: &str) -> Options {
    let file = file.display().to_string();
    Options {
        warden_env: vec![
            ("ACCESS_CONTROL_FILE", file.clone()),
            ("ADMIN_USER_IDS", admin_user_ids.to_owned()),
        ],
        auth_env: vec![
            ("ACCESS_CONTROL_FILE", file),
            ("ADMIN_USER_IDS", admin_user_ids.to_owned()),
        ],
        ..Options::default()
    }
}

struct Person {
    name: &'static str,
    id: String,
    session: String,
    jwt: String,
}

/// Better-Auth's `authorize` with a connector, through tests/e2e/authorize.mjs.
async fn better_auth_decides(admin_user_ids: &[String], cases: &[Value]) -> Vec<bool> {
    let root = crate::support::repo();
    let mut child = tokio::process::Command::new("node")
        .arg(root.join("tests/e2e/authorize.mjs"))
        .arg(crate::stack::auth_server_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let input = json!({
        "accessControl": serde_json::from_str::<Value>(ACCESS_CONTROL).unwrap(),
        "adminUserIds": admin_user_ids,
        "cases": cases,
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn permissions_agree_with_better_auth() {
    let file = access_control_file();
    let mut stack = Stack::start(options(&file, "")).await;
    let mut people = Vec::new();
    for (name, role) in [
        ("admin", "admin"),
        ("plain", "user"),
        ("support", "support"),
        ("moderator", "moderator"),
        ("both", "user,support"),
        // Role strings written by hand: Better-Auth splits on "," and trims nothing.
        ("spaced", "user, support"),
        ("padded", " admin"),
        ("gapped", "ad min"),
        ("trailing", "admin,"),
        ("empty", ""),
        ("root", "user"),
    ] {
        let email = format!("{name}@grid.test");
        let session = stack.sign_up_and_in(name, &email).await;
        sqlx::query(r#"UPDATE "user" SET role = $1 WHERE email = $2"#)
            .bind(role)
            .bind(&email)
            .execute(&stack.pool)
            .await
            .unwrap();
        let id: String = sqlx::query_scalar(r#"SELECT id FROM "user" WHERE email = $1"#)
            .bind(&email)
            .fetch_one(&stack.pool)
            .await
            .unwrap();
        people.push(Person {
            name,
            id,
            session,
            jwt: String::new(),
        });
    }
    // `root` is listed in ADMIN_USER_IDS on both servers (known only once it exists).
    let root_id = people.iter().find(|p| p.name == "root").unwrap().id.clone();
    stack.restart(options(&file, &root_id)).await;
    for p in &mut people {
        p.jwt = stack.jwt(&p.session).await;
    }

    let sets: Vec<Value> = vec![
        json!({"user": ["list"]}),
        json!({"user": ["get"]}),
        json!({"user": ["list", "get"]}),
        json!({"user": ["ban"]}),
        json!({"user": ["delete"]}),
        json!({"user": ["set-role"]}),
        json!({"user": ["impersonate-admins"]}),
        json!({"session": ["list"]}),
        json!({"session": ["revoke"]}),
        json!({"audit": ["list"]}),
        json!({"user": ["list"], "session": ["revoke"]}),
        json!({"user": ["ban"], "session": ["revoke"]}),
        json!({"user": ["fly"]}),
        json!({"nope": ["x"]}),
        json!({"user": []}),
        json!({"user": ["list"], "nope": ["x"]}),
    ];
    let mut agreed = 0;
    for p in &people {
        for set in &sets {
            let (status, _, theirs) = stack
                .auth_post(
                    "/admin/has-permission",
                    Some(&p.session),
                    json!({"permissions": set}),
                )
                .await;
            assert_eq!(status, 200, "Better-Auth: {theirs}");
            let ours = stack
                .http
                .post(format!("{}/users/me/has-permission", stack.warden_url))
                .bearer_auth(&p.jwt)
                .json(&json!({"permissions": set}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            assert_eq!(ours, theirs, "{} asking {set}", p.name);
            agreed += 1;
        }
    }
    // OR, which Better-Auth's endpoint cannot take: against its own authorize().
    let or_sets = [
        json!({"user": ["ban"], "session": ["revoke"]}),
        json!({"nope": ["x"], "user": ["list"]}),
        json!({"user": ["fly"], "session": ["list"]}),
        json!({"audit": ["list"], "user": ["delete"]}),
    ];
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for p in &people {
        let role: Option<String> = sqlx::query_scalar(r#"SELECT role FROM "user" WHERE id = $1"#)
            .bind(&p.id)
            .fetch_one(&stack.pool)
            .await
            .unwrap();
        for set in &or_sets {
            cases.push(json!({"userId": p.id, "role": role, "permissions": set, "connector": "OR"}));
            let answer = stack
                .http
                .post(format!("{}/users/me/has-permission", stack.warden_url))
                .bearer_auth(&p.jwt)
                .json(&json!({"permissions": set, "connector": "OR"}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            ours.push(answer["success"].as_bool().unwrap());
        }
    }
    let theirs = better_auth_decides(std::slice::from_ref(&root_id), &cases).await;
    assert_eq!(ours, theirs);
    eprintln!(
        "agreement grid: {} users × {} AND sets = {agreed} cases equal to Better-Auth's endpoint, \
         {} OR cases equal to its authorize()",
        people.len(),
        sets.len(),
        ours.len()
    );

    // Each admin route admits exactly whom Better-Auth says holds its permission.
    let victim = stack.sign_up_and_in("Victim", "victim@grid.test").await;
    let victim_id: String = sqlx::query_scalar(r#"SELECT id FROM "user" WHERE email = 'victim@grid.test'"#)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    let _ = victim;
    let routes: Vec<(reqwest::Method, String, Option<Value>, Value)> = vec![
        (
            reqwest::Method::GET,
            "/admin/users".into(),
            None,
            json!({"user": ["list"]}),
        ),
        (
            reqwest::Method::GET,
            format!("/admin/users/{victim_id}"),
            None,
            json!({"user": ["get"]}),
        ),
        (
            reqwest::Method::PUT,
            format!("/admin/users/{victim_id}/role"),
            Some(json!({"role": "user"})),
            json!({"user": ["set-role"]}),
        ),
        (
            reqwest::Method::POST,
            format!("/admin/users/{victim_id}/ban"),
            Some(json!({"reason": "grid"})),
            json!({"user": ["ban"]}),
        ),
        (
            reqwest::Method::POST,
            format!("/admin/users/{victim_id}/unban"),
            None,
            json!({"user": ["ban"]}),
        ),
        (
            reqwest::Method::GET,
            format!("/admin/users/{victim_id}/sessions"),
            None,
            json!({"session": ["list"]}),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/users/{victim_id}/sessions"),
            None,
            json!({"session": ["revoke"]}),
        ),
        (
            reqwest::Method::GET,
            "/admin/audit".into(),
            None,
            json!({"audit": ["list"]}),
        ),
    ];
    let mut route_cases = 0;
    for p in &people {
        for (method, path, body, permission) in &routes {
            let (_, _, allowed) = stack
                .auth_post(
                    "/admin/has-permission",
                    Some(&p.session),
                    json!({"permissions": permission}),
                )
                .await;
            let allowed = allowed["success"].as_bool().unwrap();
            let before: i64 = sqlx::query_scalar("SELECT count(*) FROM warden_audit_log")
                .fetch_one(&stack.pool)
                .await
                .unwrap();
            let mut request = stack
                .http
                .request(method.clone(), format!("{}{path}", stack.warden_url))
                .bearer_auth(&p.jwt);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            if allowed {
                assert!(
                    (200..300).contains(&status),
                    "{} {method} {path}: {status}",
                    p.name
                );
            } else {
                assert_eq!(status, 403, "{} {method} {path}", p.name);
                let after: i64 = sqlx::query_scalar("SELECT count(*) FROM warden_audit_log")
                    .fetch_one(&stack.pool)
                    .await
                    .unwrap();
                assert_eq!(after, before, "a refusal writes nothing");
            }
            route_cases += 1;
        }
    }
    eprintln!(
        "admin routes: {route_cases} user × route cases admitted exactly as Better-Auth's permissions say"
    );
    stack.stop().await;
    let _ = std::fs::remove_file(file);
}

/// Polls warden until `seen` holds (changes reach warden's cache by notification, in ms).
async fn until<F: AsyncFn() -> T, T: std::fmt::Debug>(what: &str, get: F, seen: impl Fn(&T) -> bool) -> T {
    let start = Instant::now();
    loop {
        let value = get().await;
        if seen(&value) {
            return value;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{what}: still {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn organizations_follow_better_auth_on_the_next_request() {
    let stack = Stack::start(Options::default()).await;
    let owner = stack.sign_up_and_in("Owner", "owner@org.test").await;
    let member = stack.sign_up_and_in("Member", "member@org.test").await;
    let outsider = stack.sign_up_and_in("Outsider", "outsider@org.test").await;
    let (owner_jwt, outsider_jwt) = (stack.jwt(&owner).await, stack.jwt(&outsider).await);
    let mut log = Vec::new();

    let (status, _, org) = stack
        .auth_post(
            "/organization/create",
            Some(&owner),
            json!({"name": "Acme", "slug": "acme"}),
        )
        .await;
    assert_eq!(status, 200, "{org}");
    let org_id = org["id"].as_str().unwrap().to_owned();
    let (status, mine) = stack.warden_get("/users/me/organizations", &owner_jwt).await;
    assert_eq!((status, mine[0]["role"].as_str()), (200, Some("owner")), "{mine}");
    log.push(format!("owner created {org_id}: warden lists it with role owner"));
    assert_eq!(
        stack
            .warden_get(&format!("/orgs/{org_id}"), &outsider_jwt)
            .await
            .0,
        404
    );
    log.push("outsider: GET /orgs/{id} → 404".to_owned());

    let (status, _, invitation) = stack
        .auth_post(
            "/organization/invite-member",
            Some(&owner),
            json!({"email": "member@org.test", "role": "member", "organizationId": org_id}),
        )
        .await;
    assert_eq!(status, 200, "{invitation}");
    let (status, _, accepted) = stack
        .auth_post(
            "/organization/accept-invitation",
            Some(&member),
            json!({"invitationId": invitation["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    let member_id = accepted["member"]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = stack
        .auth_post(
            "/organization/set-active",
            Some(&member),
            json!({"organizationId": org_id}),
        )
        .await;
    assert_eq!(status, 200);
    // The JWT names the session, whose active organization Better-Auth just set.
    let member_jwt = stack.jwt(&member).await;
    let org_headers = async || {
        let response = stack
            .http
            .get(format!("{}/auth/verify", stack.warden_url))
            .bearer_auth(&member_jwt)
            .send()
            .await
            .unwrap();
        let header = |n: &str| response.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        (header("x-auth-org-id"), header("x-auth-org-role"))
    };
    let headers = until("membership", org_headers, |h| h.1.as_deref() == Some("member")).await;
    assert_eq!(headers.0.as_deref(), Some(org_id.as_str()));
    let (_, mine) = stack.warden_get("/users/me/organizations", &member_jwt).await;
    assert_eq!(mine[0]["active"], true);
    log.push(
        "member accepted the invitation and set it active: X-Auth-Org-Role member, active: true".to_owned(),
    );

    // Organization permissions: warden's answer is Better-Auth's.
    let agree = async |what: &str, permissions: Value| -> bool {
        let (status, _, theirs) = stack
            .auth_post(
                "/organization/has-permission",
                Some(&member),
                json!({"permissions": permissions, "organizationId": org_id}),
            )
            .await;
        assert_eq!(status, 200, "{theirs}");
        let ours: Value = until(
            what,
            async || {
                stack
                    .http
                    .post(format!("{}/orgs/{org_id}/has-permission", stack.warden_url))
                    .bearer_auth(&member_jwt)
                    .json(&json!({"permissions": permissions}))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            },
            |ours| ours["success"] == theirs["success"],
        )
        .await;
        ours["success"].as_bool().unwrap()
    };
    assert!(!agree("member may not invite", json!({"invitation": ["create"]})).await);
    assert!(agree("member may read roles", json!({"ac": ["read"]})).await);

    let (status, _, body) = stack
        .auth_post(
            "/organization/update-member-role",
            Some(&owner),
            json!({"memberId": member_id, "role": "admin", "organizationId": org_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until("role change", org_headers, |h| h.1.as_deref() == Some("admin")).await;
    assert!(agree("an admin may invite", json!({"invitation": ["create"]})).await);
    log.push(
        "owner made them admin: X-Auth-Org-Role admin, invitation:create granted (as Better-Auth says)"
            .to_owned(),
    );

    let (status, _, body) = stack
        .auth_post(
            "/organization/create-role",
            Some(&owner),
            json!({"role": "auditor", "permission": {"member": ["update"], "ac": ["read"]}, "organizationId": org_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = stack
        .auth_post(
            "/organization/update-member-role",
            Some(&owner),
            json!({"memberId": member_id, "role": "auditor", "organizationId": org_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until("dynamic role", org_headers, |h| h.1.as_deref() == Some("auditor")).await;
    assert!(
        agree(
            "the dynamic role grants member:update",
            json!({"member": ["update"]})
        )
        .await
    );
    assert!(!agree("but not invitations", json!({"invitation": ["create"]})).await);
    log.push(
        "a dynamic role auditor {member: [update], ac: [read]}: granted and refused as Better-Auth says"
            .to_owned(),
    );

    let (status, _, body) = stack
        .auth_post(
            "/organization/remove-member",
            Some(&owner),
            json!({"memberIdOrEmail": member_id, "organizationId": org_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until("removal", org_headers, |h| h.1.is_none()).await;
    let (status, _) = stack.warden_get(&format!("/orgs/{org_id}"), &member_jwt).await;
    assert_eq!(status, 404);
    log.push("owner removed them: no X-Auth-Org-* headers, GET /orgs/{id} → 404".to_owned());
    eprintln!("organization walk-through:\n  {}", log.join("\n  "));
    stack.stop().await;
}
