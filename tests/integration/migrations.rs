//! Migrations: idempotent, and compatible with a database Better-Auth created first.

use sqlx::PgPool;
use warden::testing::db::MIGRATOR;

/// `(table, column, data type, nullable)` of every column, for comparing schemas.
async fn columns(db: &PgPool) -> Vec<(String, String, String, String)> {
    columns_in(db, "public").await
}

async fn columns_in(db: &PgPool, schema: &str) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = $1 AND table_name IN ('user','session','account','verification','jwks',
             'organization','organization_role','team','team_member','member','invitation',
             'oauth_client','oauth_resource','oauth_client_resource','oauth_refresh_token',
             'oauth_access_token','oauth_consent','oauth_client_assertion')
         ORDER BY table_name, column_name",
    )
    .bind(schema)
    .fetch_all(db)
    .await
    .unwrap()
}

/// Constraints and indexes, with the schema name taken out so two schemas compare.
async fn constraints_in(db: &PgPool, schema: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid)
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = $1
         UNION ALL
         SELECT tablename::text, indexdef FROM pg_indexes WHERE schemaname = $1",
    )
    .bind(schema)
    .fetch_all(db)
    .await
    .unwrap();
    for row in &mut rows {
        row.0 = row.0.replace(&format!("{schema}."), "");
        row.1 = row.1.replace(&format!("{schema}."), "");
    }
    rows.sort();
    rows
}

/// The api-key plugin's table as Better-Auth creates it, in whatever schema is current (the
/// fixture names `public`).
fn apikey_fixture() -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(
        include_str!("../fixtures/better-auth-1.7.25-apikey-postgres.sql").replace("public.", ""),
    )
}

/// The oauth-provider plugin's tables as Better-Auth creates them, in whatever schema is
/// current (the fixture names `public`; its foreign keys need `user` and `session` there).
fn oauth_provider_fixture() -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(
        include_str!("../fixtures/better-auth-1.7.25-oauth-provider-postgres.sql").replace("public.", ""),
    )
}

#[sqlx::test(migrations = false)]
async fn a_fresh_schema_is_exactly_the_one_better_auth_emits(db: PgPool) {
    MIGRATOR.run(&db).await.unwrap();
    let mut conn = db.acquire().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA ba; SET search_path TO ba;")
        .execute(&mut *conn)
        .await
        .unwrap();
    // Better-Auth with the organization plugin (teams, dynamic access control), the api-key
    // plugin and the oauth-provider plugin: warden's schema is exactly that, the plugins'
    // tables included.
    sqlx::raw_sql(include_str!(
        "../fixtures/better-auth-1.7.25-organization-postgres.sql"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::raw_sql(apikey_fixture()).execute(&mut *conn).await.unwrap();
    sqlx::raw_sql(oauth_provider_fixture())
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql("SET search_path TO public")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(columns_in(&db, "public").await, columns_in(&db, "ba").await);
    // Better-Auth's constraints and indexes, exactly; beyond them only warden's own tables and
    // its admin-search indexes (all named warden_*).
    let ours: Vec<_> = constraints_in(&db, "public")
        .await
        .into_iter()
        .filter(|(table, def)| {
            !table.starts_with("_sqlx") && !table.starts_with("warden_") && !def.contains(" warden_")
        })
        .collect();
    assert_eq!(ours, constraints_in(&db, "ba").await);
}

#[sqlx::test(migrations = false)]
async fn migrations_run_twice(db: PgPool) {
    MIGRATOR.run(&db).await.unwrap();
    MIGRATOR.run(&db).await.unwrap();
    let cols = columns(&db).await;
    assert!(cols.contains(&("jwks".into(), "alg".into(), "text".into(), "YES".into())));
    assert!(cols.contains(&(
        "user".into(),
        "ban_expires".into(),
        "timestamp with time zone".into(),
        "YES".into()
    )));
    // Re-running the SQL itself (a second warden with a fresh _sqlx_migrations) also passes.
    sqlx::raw_sql(include_str!(
        "../../migrations/20261127000001_better_auth_schema.sql"
    ))
    .execute(&db)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn migrations_accept_a_database_better_auth_created(db: PgPool) {
    sqlx::raw_sql(include_str!(
        "../fixtures/better-auth-1.7.25-organization-postgres.sql"
    ))
    .execute(&db)
    .await
    .unwrap();
    sqlx::raw_sql(apikey_fixture()).execute(&db).await.unwrap();
    sqlx::raw_sql(oauth_provider_fixture())
        .execute(&db)
        .await
        .unwrap();
    let before = columns(&db).await;
    MIGRATOR.run(&db).await.unwrap();
    assert_eq!(
        columns(&db).await,
        before,
        "warden's schema is exactly Better-Auth's"
    );
}

/// A database Better-Auth created without the organization plugin gets the plugin's tables
/// and session columns, exactly as Better-Auth would have made them.
#[sqlx::test(migrations = false)]
async fn migrations_add_the_organization_plugin_to_a_database_without_it(db: PgPool) {
    let mut conn = db.acquire().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA ba; SET search_path TO ba;")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../fixtures/better-auth-1.7.25-organization-postgres.sql"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::raw_sql(apikey_fixture()).execute(&mut *conn).await.unwrap();
    sqlx::raw_sql(oauth_provider_fixture())
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql("SET search_path TO public")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    sqlx::raw_sql(include_str!("../fixtures/better-auth-1.7.25-postgres.sql"))
        .execute(&db)
        .await
        .unwrap();
    MIGRATOR.run(&db).await.unwrap();
    assert_eq!(columns_in(&db, "public").await, columns_in(&db, "ba").await);
}

#[sqlx::test(migrations = false)]
async fn migrations_add_plugin_columns_missing_from_an_older_database(db: PgPool) {
    sqlx::raw_sql(include_str!(
        "../fixtures/better-auth-1.7.25-organization-postgres.sql"
    ))
    .execute(&db)
    .await
    .unwrap();
    // (The oauth-provider plugin's tables are compared too: they are there from the start.)
    sqlx::raw_sql(oauth_provider_fixture())
        .execute(&db)
        .await
        .unwrap();
    let complete = columns(&db).await;
    // As if Better-Auth had run without the admin plugin and before jwks.alg/crv existed.
    sqlx::raw_sql(
        r#"ALTER TABLE "user" DROP COLUMN role, DROP COLUMN banned, DROP COLUMN ban_reason, DROP COLUMN ban_expires;
           ALTER TABLE session DROP COLUMN impersonated_by, DROP COLUMN active_organization_id;
           ALTER TABLE jwks DROP COLUMN alg, DROP COLUMN crv;
           DROP INDEX session_user_id_idx;"#,
    )
    .execute(&db)
    .await
    .unwrap();
    MIGRATOR.run(&db).await.unwrap();
    assert_eq!(columns(&db).await, complete);
    let index: Option<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE indexname = 'session_user_id_idx'")
            .fetch_optional(&db)
            .await
            .unwrap();
    assert!(index.is_some());
}

/// Migration versions: the last one before the search indexes, and one index migration.
const BEFORE_SEARCH_INDEXES: i64 = 20261201000006;
const EMAIL_INDEX_MIGRATION: i64 = 20261201000106;

async fn invalid_or_missing_search_indexes(db: &PgPool) -> Vec<String> {
    let wanted = [
        "warden_user_email_trgm_idx",
        "warden_user_name_trgm_idx",
        "warden_user_created_at_idx",
        "warden_user_updated_at_idx",
        "warden_user_name_idx",
        "warden_user_email_idx",
        "warden_user_role_names_idx",
        "warden_user_banned_idx",
        "warden_user_email_prefix_idx",
        "warden_user_email_suffix_idx",
        "warden_user_name_prefix_idx",
        "warden_user_name_suffix_idx",
    ];
    let valid: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indisvalid",
    )
    .fetch_all(db)
    .await
    .unwrap();
    wanted
        .iter()
        .filter(|w| !valid.iter().any(|v| v == *w))
        .map(|w| (*w).to_owned())
        .collect()
}

/// On a user table that already has rows and writers, the search indexes build without
/// blocking writes: a sign-up during the build goes through (a plain CREATE INDEX would queue
/// it behind its lock, and the insert's 2 s lock_timeout would fail it).
#[sqlx::test(migrations = false)]
async fn search_indexes_build_without_blocking_writes(db: PgPool) {
    MIGRATOR.run_to(BEFORE_SEARCH_INDEXES, &db).await.unwrap();
    sqlx::query(
        r#"INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at)
           SELECT 'u' || g, 'User ' || g, 'u' || g || '@example.com', false, now(), now()
           FROM generate_series(1, 20000) g"#,
    )
    .execute(&db)
    .await
    .unwrap();
    // A writer in the middle of a transaction, as Better-Auth would be during a sign-up.
    let mut writer = db.begin().await.unwrap();
    sqlx::query(r#"INSERT INTO "user" (id, name, email, email_verified, updated_at) VALUES ('w1', 'W', 'w1@x.test', false, now())"#)
        .execute(&mut *writer)
        .await
        .unwrap();
    let migrating = {
        let db = db.clone();
        tokio::spawn(async move { warden::testing::db::migrate(&db).await })
    };
    // Wait until the index build is waiting on that writer.
    let start = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query ILIKE '%CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the build never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Another sign-up now: it must not wait behind the index build.
    let mut other = db.acquire().await.unwrap();
    sqlx::query("SET lock_timeout = '2s'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(r#"INSERT INTO "user" (id, name, email, email_verified, updated_at) VALUES ('w2', 'W', 'w2@x.test', false, now())"#)
        .execute(&mut *other)
        .await
        .expect("a write during the index build goes through");
    drop(other);
    writer.commit().await.unwrap();
    migrating.await.unwrap().unwrap();
    assert_eq!(invalid_or_missing_search_indexes(&db).await, Vec::<String>::new());
}

/// A database migrated by the first version of migration 3 (which built the indexes itself),
/// and an index left invalid by an interrupted build: `warden migrate` accepts the one and
/// rebuilds the other.
#[sqlx::test(migrations = false)]
async fn migrate_repairs_an_old_checksum_and_an_invalid_index(db: PgPool) {
    warden::testing::db::migrate(&db).await.unwrap();
    let old =
        "1ed4ed661f9c5e7b9540d844d5aebc9c0d3a10b57cdf4ff830b0c5192236c1af72c349532b689b0f20f39eb35cfc7c7f";
    sqlx::query("UPDATE _sqlx_migrations SET checksum = decode($1, 'hex') WHERE version = 20261127000003")
        .bind(old)
        .execute(&db)
        .await
        .unwrap();
    assert!(
        MIGRATOR.run(&db).await.is_err(),
        "plain sqlx refuses the old checksum"
    );
    sqlx::query(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'warden_user_email_idx'::regclass",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(EMAIL_INDEX_MIGRATION)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        invalid_or_missing_search_indexes(&db).await,
        vec!["warden_user_email_idx"]
    );
    warden::testing::db::migrate(&db).await.unwrap();
    assert_eq!(invalid_or_missing_search_indexes(&db).await, Vec::<String>::new());
    MIGRATOR.run(&db).await.unwrap();
}
