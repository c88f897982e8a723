//! One rule for role lists: every place warden asks "does this user hold role X" answers as
//! Better-Auth's admin plugin does, `(role || "user").split(",")` with nothing trimmed, for the
//! same `role` strings: the `Admin` and `RequireRole` extractors, `/auth/verify?role=`,
//! permissions (`/admin` routes, `has-permission`), the admin listing's `?role=` filter, and the
//! last-admin rule in SQL. (Better-Auth itself is asked the same grid in the e2e suite.)

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use warden::{Admin, Auth, RequireRole, RoleName};

use crate::common;
use crate::world::World;

struct AdminRole;
impl RoleName for AdminRole {
    const ROLE: &'static str = "admin";
}

fn guarded(auth: Auth) -> Router {
    Router::new()
        .route(
            "/admin-extractor",
            get(|_: Admin| async { axum::Json(json!({})) }),
        )
        .route(
            "/require-role",
            get(|_: RequireRole<AdminRole>| async { axum::Json(json!({})) }),
        )
        .with_state(auth)
}

#[sqlx::test]
async fn every_path_reads_a_role_list_as_better_auth_does(db: PgPool) {
    let w = World::new(db).await;
    let app = guarded(w.state.auth.clone());
    // (the `role` column, whether Better-Auth's admin plugin takes it to hold `admin`)
    let grid: [(Option<&str>, bool); 15] = [
        (Some("admin"), true),
        (Some("user,admin"), true),
        (Some("admin,user"), true),
        (Some("editor,admin"), true),
        (Some("admin,"), true),
        (Some(",admin"), true),
        (Some("user"), false),
        (Some("user, admin"), false),
        (Some(" admin"), false),
        (Some("admin "), false),
        (Some("ad min"), false),
        (Some("Admin"), false),
        (Some("adm"), false),
        (Some(""), false),
        (None, false),
    ];
    let mut transcript = Vec::new();
    for (role, admin) in grid {
        sqlx::query(r#"UPDATE "user" SET role = $1 WHERE id = 'bob'"#)
            .bind(role)
            .execute(&w.db)
            .await
            .unwrap();
        let library = async |path: &str| {
            let request = Request::get(path)
                .header("authorization", format!("Bearer {}", w.bob))
                .body(Body::empty())
                .unwrap();
            common::send(&app, request).await.status.as_u16() == 200
        };
        let verified = w.as_bob().get("/auth/verify?role=admin").await;
        let verify = verified.status == 200;
        // What apps and the console are told: the same names, split the same way.
        let header = w.as_bob().get("/auth/verify").await.headers["x-auth-user-role"]
            .to_str()
            .unwrap()
            .to_owned();
        let said = header.split(',').any(|r| r == "admin");
        let me = w.as_bob().get("/users/me").await.body["roles"].clone();
        let shown = me.as_array().unwrap().iter().any(|r| r == "admin");
        let permission = w.as_bob().get("/admin/users").await.status == 200;
        let asked = w
            .as_bob()
            .post(
                "/users/me/has-permission",
                Some(json!({"permissions": {"user": ["list"]}})),
            )
            .await;
        let listed = w.as_admin().get("/admin/users?role=admin&limit=200").await.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == "bob");
        // The last-admin rule: the admin may step down exactly when bob counts as another admin.
        let stepped_down = w
            .as_admin()
            .put("/admin/users/admin/role", json!({"role": "user"}))
            .await
            .status
            == 200;
        w.exec(r#"UPDATE "user" SET role = 'admin' WHERE id = 'admin'"#)
            .await;
        let answers = [
            ("Admin extractor", library("/admin-extractor").await),
            ("RequireRole", library("/require-role").await),
            ("/auth/verify?role=admin", verify),
            ("user:list permission", permission),
            ("has-permission", asked.body["success"] == true),
            ("?role=admin listing", listed),
            ("X-Auth-User-Role, split on commas", said),
            ("/users/me roles", shown),
            ("last-admin rule", stepped_down),
        ];
        for (path, answer) in answers {
            assert_eq!(
                answer, admin,
                "{path} with role {role:?}: Better-Auth says admin = {admin}"
            );
        }
        transcript.push(format!(
            "{role:?} → admin = {admin} on all {} paths",
            answers.len()
        ));
    }
    eprintln!("role lists:\n  {}", transcript.join("\n  "));
}
