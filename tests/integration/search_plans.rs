//! The admin search's query plans on a seeded table: every kind of search and sort is served
//! by an index, not a sequential scan; totals without a text search are summed from
//! `warden_user_count`. (Timings on a million users: bench/admin_search.py.)

use serde_json::Value;
use sqlx::PgPool;
use warden::testing::db::users::{self, SearchField, SearchOperator, SortBy, SortDirection, UserQuery};

fn index_names(plan: &Value, out: &mut Vec<String>) {
    if let Some(name) = plan.get("Index Name").and_then(Value::as_str) {
        out.push(name.to_owned());
    }
    if let Some(node @ ("Gather" | "Gather Merge")) = plan.get("Node Type").and_then(Value::as_str) {
        out.push(node.to_uppercase());
    }
    if let Some(node) = plan.get("Node Type").and_then(Value::as_str)
        && node == "Seq Scan"
    {
        let table = plan.get("Relation Name").and_then(Value::as_str).unwrap_or("");
        out.push(format!("SEQ SCAN {table}"));
    }
    for key in ["Plan", "Plans"] {
        match plan.get(key) {
            Some(Value::Array(children)) => children.iter().for_each(|c| index_names(c, out)),
            Some(child @ Value::Object(_)) => index_names(child, out),
            _ => {}
        }
    }
}

async fn indexes_used(db: &PgPool, query: &UserQuery) -> (Vec<String>, Vec<String>) {
    let (count, page) = users::list_plans(db, query).await.unwrap();
    let (mut c, mut p) = (Vec::new(), Vec::new());
    index_names(&count[0], &mut c);
    index_names(&page[0], &mut p);
    (c, p)
}

fn query() -> UserQuery {
    UserQuery {
        search: None,
        role: None,
        banned: None,
        sort_by: SortBy::CreatedAt,
        direction: SortDirection::Desc,
        limit: 50,
        offset: 0,
        after: None,
        count_limit: None,
    }
}

/// 60,000 users (half at example.com, half at corp.test), analysed and vacuumed.
async fn seed(db: &PgPool) {
    sqlx::raw_sql(
        r#"INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at, role, banned)
           SELECT 'u' || g, 'Name ' || (ARRAY['Lovelace','Hopper','Turing','Liskov'])[1 + g % 4] || ' ' || g,
                  'user' || g || '@' || (ARRAY['example.com','corp.test'])[1 + g % 2], false,
                  now() - make_interval(secs => g), now(),
                  CASE WHEN g % 1000 = 0 THEN 'admin' ELSE 'user' END, g % 100 = 0
           FROM generate_series(1, 60000) AS g;
           -- Sample every row, so the statistics (and so the plans) are the same on every run.
           SET default_statistics_target = 1000;
           ANALYZE "user";"#,
    )
    .execute(db)
    .await
    .unwrap();
    // What autovacuum does after that many inserts: the visibility map lets counts read
    // indexes only.
    sqlx::query(r#"VACUUM "user""#).execute(db).await.unwrap();
}

#[sqlx::test]
async fn every_search_and_sort_uses_an_index(db: PgPool) {
    seed(&db).await;
    let search = |field, op, text: &str| UserQuery {
        search: Some((field, op, text.to_owned())),
        ..query()
    };
    let cases: Vec<(&str, UserQuery, &str, &str)> = vec![
        (
            "newest first",
            query(),
            "SEQ SCAN warden_user_count",
            "warden_user_created_at_idx",
        ),
        (
            "deep page",
            UserQuery {
                offset: 20_000,
                ..query()
            },
            "SEQ SCAN warden_user_count",
            "warden_user_created_at_idx",
        ),
        (
            "deep page, nearer the end",
            UserQuery {
                offset: 50_000,
                sort_by: SortBy::Email,
                ..query()
            },
            "SEQ SCAN warden_user_count",
            "warden_user_email_idx",
        ),
        (
            "email contains",
            search(SearchField::Email, SearchOperator::Contains, "user4242"),
            "warden_user_email_trgm_idx",
            "warden_user_email_trgm_idx",
        ),
        (
            "email starts_with",
            search(SearchField::Email, SearchOperator::StartsWith, "user5959"),
            "warden_user_email_prefix_idx",
            "",
        ),
        (
            "email starts_with, many",
            search(SearchField::Email, SearchOperator::StartsWith, "user1"),
            "warden_user_email_prefix_idx",
            "",
        ),
        (
            "email ends_with",
            search(SearchField::Email, SearchOperator::EndsWith, "4242@example.com"),
            "warden_user_email_suffix_idx",
            "",
        ),
        (
            "email ends_with, many",
            // A tenth of the table (at half of it, reading the table is the cheaper plan).
            search(SearchField::Email, SearchOperator::EndsWith, "1@corp.test"),
            "warden_user_email_suffix_idx",
            "",
        ),
        (
            "name starts_with",
            search(SearchField::Name, SearchOperator::StartsWith, "name hopper 31"),
            "warden_user_name_prefix_idx",
            "",
        ),
        (
            "name ends_with",
            search(SearchField::Name, SearchOperator::EndsWith, "turing 4242"),
            "warden_user_name_suffix_idx",
            "",
        ),
        (
            "name contains",
            search(SearchField::Name, SearchOperator::Contains, "hopper 313"),
            "warden_user_name_trgm_idx",
            "warden_user_name_trgm_idx",
        ),
        (
            "role filter",
            UserQuery {
                role: Some("admin".into()),
                ..query()
            },
            "SEQ SCAN warden_user_count",
            "",
        ),
        (
            "not banned",
            UserQuery {
                banned: Some(false),
                ..query()
            },
            "SEQ SCAN warden_user_count",
            "",
        ),
        (
            "banned filter",
            UserQuery {
                banned: Some(true),
                ..query()
            },
            "SEQ SCAN warden_user_count",
            "warden_user_banned_idx",
        ),
        (
            "sort by email",
            UserQuery {
                sort_by: SortBy::Email,
                direction: SortDirection::Asc,
                ..query()
            },
            "",
            "warden_user_email_idx",
        ),
        (
            "sort by name",
            UserQuery {
                sort_by: SortBy::Name,
                ..query()
            },
            "",
            "warden_user_name_idx",
        ),
    ];
    for (name, q, count_index, page_index) in cases {
        let (count, page) = indexes_used(&db, &q).await;
        if !count_index.is_empty() {
            assert!(
                count.iter().any(|i| i == count_index),
                "{name}: count plan uses {count:?}"
            );
        }
        // A total never reads the whole user table: an index, or the count's deltas.
        assert!(
            !count.iter().any(|i| i == "SEQ SCAN user"),
            "{name}: count plan {count:?}"
        );
        // A page may be served by the search's index or by walking the sort index (the
        // planner weighs the two); never by reading the whole table.
        assert!(
            !page.is_empty() && !page.iter().any(|i| i.starts_with("SEQ SCAN")),
            "{name}: page plan {page:?}"
        );
        if !page_index.is_empty() && page_index != count_index {
            assert!(
                page.iter().any(|i| i == page_index),
                "{name}: page plan uses {page:?}"
            );
        }
    }
}

#[sqlx::test]
async fn a_prefix_or_suffix_total_is_counted_without_parallel_workers(db: PgPool) {
    seed(&db).await;
    // Connections on which PostgreSQL's planner finds parallel workers free, so it would use
    // them wherever it may.
    let options = (*db.connect_options()).clone().options([
        ("parallel_setup_cost", "0"),
        ("parallel_tuple_cost", "0"),
        ("min_parallel_table_scan_size", "0"),
        ("min_parallel_index_scan_size", "0"),
    ]);
    let eager = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let search = |field, op, text: &str| UserQuery {
        search: Some((field, op, text.to_owned())),
        ..query()
    };
    // A substring match keeps the planner's choice: here, workers.
    let (count, _) = indexes_used(
        &eager,
        &search(SearchField::Email, SearchOperator::Contains, "example"),
    )
    .await;
    assert!(
        count.iter().any(|n| n == "GATHER"),
        "contains: count plan {count:?}"
    );
    for q in [
        search(SearchField::Email, SearchOperator::StartsWith, "user1"),
        search(SearchField::Email, SearchOperator::EndsWith, "@corp.test"),
        search(SearchField::Name, SearchOperator::StartsWith, "name"),
        search(SearchField::Name, SearchOperator::EndsWith, "1"),
    ] {
        let (count, page) = indexes_used(&eager, &q).await;
        assert!(
            !count.iter().chain(&page).any(|n| n.starts_with("GATHER")),
            "{:?}: plans {count:?} ; {page:?}",
            q.search
        );
        // The same answer as counting plainly.
        let (_, total) = users::list(&eager, &q).await.unwrap();
        let (pattern, email) = match &q.search {
            Some((field, SearchOperator::StartsWith, t)) => (format!("{t}%"), *field == SearchField::Email),
            Some((field, _, t)) => (format!("%{t}"), *field == SearchField::Email),
            None => unreachable!(),
        };
        let plain: i64 = sqlx::query_scalar(
            r#"SELECT count(*) FROM "user" WHERE lower(CASE WHEN $2 THEN email ELSE name END) LIKE $1"#,
        )
        .bind(pattern)
        .bind(email)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(total, plain, "{:?}", q.search);
        assert!(total > 0, "{:?}", q.search);
    }
}
