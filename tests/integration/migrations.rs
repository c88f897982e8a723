//! Migrations: idempotent, and compatible with a database Better-Auth created first.

use sqlx::PgPool;
use warden::db::MIGRATOR;

/// `(table, column, data type, nullable)` of every column, for comparing schemas.
async fn columns(db: &PgPool) -> Vec<(String, String, String, String)> {
    columns_in(db, "public").await
}

async fn columns_in(db: &PgPool, schema: &str) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = $1 AND table_name IN ('user','session','account','verification','jwks')
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

#[sqlx::test(migrations = false)]
async fn a_fresh_schema_is_exactly_the_one_better_auth_emits(db: PgPool) {
    MIGRATOR.run(&db).await.unwrap();
    let mut conn = db.acquire().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA ba; SET search_path TO ba;")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../fixtures/better-auth-1.7.25-postgres.sql"))
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
    sqlx::raw_sql(include_str!("../fixtures/better-auth-1.7.25-postgres.sql"))
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

#[sqlx::test(migrations = false)]
async fn migrations_add_plugin_columns_missing_from_an_older_database(db: PgPool) {
    sqlx::raw_sql(include_str!("../fixtures/better-auth-1.7.25-postgres.sql"))
        .execute(&db)
        .await
        .unwrap();
    let complete = columns(&db).await;
    // As if Better-Auth had run without the admin plugin and before jwks.alg/crv existed.
    sqlx::raw_sql(
        r#"ALTER TABLE "user" DROP COLUMN role, DROP COLUMN banned, DROP COLUMN ban_reason, DROP COLUMN ban_expires;
           ALTER TABLE session DROP COLUMN impersonated_by;
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
