//! The admin search's fast paths answer exactly what the plain SQL answers: `ends_with` on the
//! reversed string, deep pages found from the far end, the total from the `warden_user_count`
//! deltas. Each listing is compared with the straightforward query (lower(x) LIKE, ORDER BY ...
//! LIMIT ... OFFSET, count(*)) on a seeded table with awkward data: mixed case, non-ASCII,
//! `%`, `_` and `\` in the data, ties in every sort key.

use sqlx::PgPool;
use warden::testing::db::users::{self, SearchField, SearchOperator, SortBy, SortDirection, UserQuery};

const USERS: i64 = 2600;

async fn seed(db: &PgPool) {
    sqlx::raw_sql(
        r#"INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at, role, banned)
           SELECT 'u' || lpad(g::text, 5, '0'),
                  (ARRAY['Åsa','ÉMILE','Zoë','Bob','bob','Ann_e','Pct%','Back\slash'])[1 + g % 8]
                      || ' ' || (ARRAY['Lovelace','HOPPER','turing','Öberg'])[1 + (g / 8) % 4] || ' ' || (g % 97),
                  (ARRAY['a','B','c_','d%'])[1 + g % 4] || g || '@' || (ARRAY['Example.COM','corp.test','ünï.test'])[1 + g % 3],
                  false,
                  -- ties: 40 users share each created_at, 300 each updated_at
                  timestamptz '2026-01-01' + make_interval(mins => g / 40),
                  timestamptz '2026-06-01' + make_interval(hours => g / 300),
                  CASE WHEN g % 50 = 0 THEN 'admin' WHEN g % 7 = 0 THEN 'user, editor' ELSE 'user' END,
                  CASE WHEN g % 11 = 0 THEN true WHEN g % 13 = 0 THEN NULL ELSE false END
           FROM generate_series(1, 2600) AS g;
           ANALYZE "user";"#,
    )
    .execute(db)
    .await
    .unwrap();
}

fn base() -> UserQuery {
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

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The listing as the plain SQL gives it: ids of the page, and count(*).
async fn reference(db: &PgPool, q: &UserQuery) -> (Vec<String>, i64) {
    let mut filter_sql = String::from(" WHERE true");
    let mut binds: Vec<String> = Vec::new();
    if let Some((field, op, text)) = &q.search {
        let column = match field {
            SearchField::Email => "lower(email)",
            SearchField::Name => "lower(name)",
        };
        let t = like_escape(&text.to_lowercase());
        binds.push(match op {
            SearchOperator::Contains => format!("%{t}%"),
            SearchOperator::StartsWith => format!("{t}%"),
            SearchOperator::EndsWith => format!("%{t}"),
        });
        filter_sql.push_str(&format!(" AND {column} LIKE ${}", binds.len()));
    }
    if let Some(role) = &q.role {
        binds.push(role.clone());
        filter_sql.push_str(&format!(
            " AND ${} = ANY(string_to_array(coalesce(nullif(role, ''), 'user'), ','))",
            binds.len()
        ));
    }
    match q.banned {
        Some(true) => filter_sql.push_str(" AND banned IS TRUE"),
        Some(false) => filter_sql.push_str(" AND banned IS NOT TRUE"),
        None => {}
    }
    let column = match q.sort_by {
        SortBy::CreatedAt => "created_at",
        SortBy::UpdatedAt => "updated_at",
        SortBy::Email => "email",
        SortBy::Name => "name",
    };
    let dir = match q.direction {
        SortDirection::Asc => "ASC",
        SortDirection::Desc => "DESC",
    };
    let n = binds.len();
    let page_sql = format!(
        r#"SELECT id FROM "user"{filter_sql} ORDER BY {column} {dir}, id {dir} LIMIT ${} OFFSET ${}"#,
        n + 1,
        n + 2
    );
    let mut page = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(page_sql));
    for b in &binds {
        page = page.bind(b);
    }
    let ids = page.bind(q.limit).bind(q.offset).fetch_all(db).await.unwrap();
    let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
        r#"SELECT count(*) FROM "user"{filter_sql}"#
    )));
    for b in &binds {
        count = count.bind(b);
    }
    (ids, count.fetch_one(db).await.unwrap())
}

async fn check(db: &PgPool, q: &UserQuery) {
    let (found, total) = users::list(db, q).await.unwrap();
    let ids: Vec<String> = found.into_iter().map(|u| u.id).collect();
    assert_eq!((ids, total), reference(db, q).await, "{q:?}");
}

#[sqlx::test]
async fn every_shape_answers_what_the_plain_sql_answers(db: PgPool) {
    seed(&db).await;
    let searches = [
        (SearchField::Email, "example.com"),
        (SearchField::Email, "EXAMPLE.com"),
        (SearchField::Email, "@ÜNÏ.TEST"),
        (SearchField::Email, "c_1"),
        (SearchField::Email, "d%2"),
        (SearchField::Email, "7@corp.test"),
        (SearchField::Email, "a1"),
        (SearchField::Email, "_"),
        (SearchField::Email, "%"),
        (SearchField::Name, "åsa"),
        (SearchField::Name, "émile hopper"),
        (SearchField::Name, "ÖBERG 4"),
        (SearchField::Name, " 9"),
        (SearchField::Name, "back\\slash"),
        (SearchField::Name, "pct%"),
        (SearchField::Name, "ann_e"),
        (SearchField::Name, "zoë turing 1"),
        (SearchField::Name, "nothing like it"),
    ];
    let ops = [
        SearchOperator::Contains,
        SearchOperator::StartsWith,
        SearchOperator::EndsWith,
    ];
    for (field, text) in searches {
        for op in ops {
            for offset in [0, 3, 1000, 1200] {
                check(
                    &db,
                    &UserQuery {
                        search: Some((field, op, text.to_owned())),
                        offset,
                        ..base()
                    },
                )
                .await;
            }
        }
    }
    let sorts = [SortBy::CreatedAt, SortBy::UpdatedAt, SortBy::Email, SortBy::Name];
    let directions = [SortDirection::Asc, SortDirection::Desc];
    // Shallow, deep from the front, deep from the back, the last page cut short, beyond the end.
    let offsets = [
        0,
        999,
        1000,
        1299,
        1300,
        1301,
        2000,
        USERS - 50,
        USERS - 17,
        USERS,
        USERS + 5,
    ];
    for sort_by in sorts {
        for direction in directions {
            for offset in offsets {
                for limit in [1, 50, 200] {
                    check(
                        &db,
                        &UserQuery {
                            sort_by,
                            direction,
                            offset,
                            limit,
                            ..base()
                        },
                    )
                    .await;
                }
            }
        }
    }
    for role in ["admin", "editor", "user", "nobody"] {
        for offset in [0, 1000, 1500, 2400] {
            check(
                &db,
                &UserQuery {
                    role: Some(role.into()),
                    offset,
                    ..base()
                },
            )
            .await;
        }
    }
    for banned in [true, false] {
        for sort_by in sorts {
            for offset in [0, 1000, 1400, 2300, 2500] {
                check(
                    &db,
                    &UserQuery {
                        banned: Some(banned),
                        sort_by,
                        direction: SortDirection::Asc,
                        offset,
                        ..base()
                    },
                )
                .await;
            }
        }
    }
    // Search, role and banned together, deep.
    check(
        &db,
        &UserQuery {
            search: Some((SearchField::Email, SearchOperator::EndsWith, ".test".into())),
            role: Some("user".into()),
            banned: Some(false),
            sort_by: SortBy::Name,
            direction: SortDirection::Asc,
            offset: 1100,
            limit: 200,
            after: None,
            count_limit: None,
        },
    )
    .await;
}

async fn count_total(db: &PgPool) -> (i64, i64) {
    let (_, total) = users::list(db, &base()).await.unwrap();
    let real: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "user""#)
        .fetch_one(db)
        .await
        .unwrap();
    (total, real)
}

/// The totals kept by the triggers are count(*) through inserts, deletes, role and ban
/// changes, rollbacks, uncommitted writes, TRUNCATE and folding.
#[sqlx::test]
async fn the_user_count_stays_exact(db: PgPool) {
    let same = |(a, b): (i64, i64)| assert_eq!(a, b);
    same(count_total(&db).await);
    seed(&db).await;
    same(count_total(&db).await);
    sqlx::query(r#"DELETE FROM "user" WHERE id LIKE 'u000%'"#)
        .execute(&db)
        .await
        .unwrap();
    same(count_total(&db).await);
    for i in 0..5 {
        sqlx::query(r#"INSERT INTO "user" (id, name, email, email_verified) VALUES ($1, 'N', $1 || '@x.test', false)"#)
            .bind(format!("one{i}"))
            .execute(&db)
            .await
            .unwrap();
    }
    // Rolled back: neither the user nor its delta stays.
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        r#"INSERT INTO "user" (id, name, email, email_verified) VALUES ('gone', 'N', 'gone@x.test', false)"#,
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    // Uncommitted: not in another snapshot's total.
    let mut open = db.begin().await.unwrap();
    sqlx::query(
        r#"INSERT INTO "user" (id, name, email, email_verified) VALUES ('open', 'N', 'open@x.test', false)"#,
    )
    .execute(&mut *open)
    .await
    .unwrap();
    same(count_total(&db).await);
    let page = users::list_page(&db, &base()).await.unwrap();
    assert!(page.count_rows > 3, "{}", page.count_rows);
    assert!(users::compact_user_count(&db).await.unwrap() >= 1);
    let groups: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM (SELECT DISTINCT role, banned FROM "user") g"#)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(users::list_page(&db, &base()).await.unwrap().count_rows, groups);
    same(count_total(&db).await);
    open.commit().await.unwrap();
    same(count_total(&db).await);
    sqlx::query(r#"DELETE FROM "user" WHERE id = 'one1'"#)
        .execute(&db)
        .await
        .unwrap();
    same(count_total(&db).await);
    // Role and ban changes move users between the (role, banned) sums; other updates do not.
    sqlx::query(r#"UPDATE "user" SET role = 'admin, editor', banned = NOT coalesce(banned, false) WHERE id LIKE 'u01%'"#)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE "user" SET name = 'renamed', updated_at = now() WHERE id LIKE 'u02%'"#)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE "user" SET role = NULL, banned = NULL WHERE id LIKE 'u03%'"#)
        .execute(&db)
        .await
        .unwrap();
    same(count_total(&db).await);
    for role in [None, Some("admin"), Some("editor"), Some("user")] {
        for banned in [None, Some(true), Some(false)] {
            check(
                &db,
                &UserQuery {
                    role: role.map(str::to_owned),
                    banned,
                    ..base()
                },
            )
            .await;
        }
    }
    let (_, not_banned) = users::list(
        &db,
        &UserQuery {
            banned: Some(false),
            ..base()
        },
    )
    .await
    .unwrap();
    let real: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "user" WHERE banned IS NOT TRUE"#)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(not_banned, real);
    sqlx::query(r#"TRUNCATE "user" CASCADE"#)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(count_total(&db).await, (0, 0));
    sqlx::query(r#"INSERT INTO "user" (id, name, email, email_verified) VALUES ('again', 'N', 'again@x.test', false)"#)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(count_total(&db).await, (1, 1));
}

/// Walks a listing to its end by keyset pages (each page's `next`), and checks the pages
/// against the plain SQL's one long page, and every total.
async fn walk(db: &PgPool, q: &UserQuery) -> usize {
    let everything = UserQuery {
        limit: 100_000,
        offset: 0,
        after: None,
        ..q.clone()
    };
    let (all, total) = reference(db, &everything).await;
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = users::list_page(db, &UserQuery { after, ..q.clone() })
            .await
            .unwrap();
        assert_eq!(page.total, total, "{q:?}");
        seen.extend(page.users.iter().map(|u| u.id.clone()));
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages <= all.len() + 1, "{q:?}: the walk does not end");
    }
    assert_eq!(seen, all, "{q:?}: the keyset pages are not the listing");
    pages
}

#[sqlx::test]
async fn keyset_pages_walk_every_listing_exactly_once_in_order(db: PgPool) {
    seed(&db).await;
    let sorts = [SortBy::CreatedAt, SortBy::UpdatedAt, SortBy::Email, SortBy::Name];
    for sort_by in sorts {
        for direction in [SortDirection::Asc, SortDirection::Desc] {
            // Ties in every key (40 users share each created_at, 300 each updated_at, names
            // repeat): the id orders them, and a page boundary inside a tie loses nobody.
            let pages = walk(
                &db,
                &UserQuery {
                    sort_by,
                    direction,
                    limit: 173,
                    ..base()
                },
            )
            .await;
            assert_eq!(pages, 16, "2,600 users in pages of 173");
            // A full last page names no next page (it read one row ahead and found none).
            let pages = walk(
                &db,
                &UserQuery {
                    sort_by,
                    direction,
                    limit: 100,
                    ..base()
                },
            )
            .await;
            assert_eq!(pages, 26, "2,600 users in pages of 100");
            walk(
                &db,
                &UserQuery {
                    sort_by,
                    direction,
                    limit: 50,
                    search: Some((SearchField::Email, SearchOperator::EndsWith, "corp.test".into())),
                    banned: Some(false),
                    ..base()
                },
            )
            .await;
        }
    }
    walk(
        &db,
        &UserQuery {
            role: Some("editor".into()),
            search: Some((SearchField::Name, SearchOperator::Contains, "hopper".into())),
            limit: 7,
            ..base()
        },
    )
    .await;
    // An offset page names where the next page starts too; the last page names none.
    let page = users::list_page(
        &db,
        &UserQuery {
            offset: 2000,
            ..base()
        },
    )
    .await
    .unwrap();
    let next = users::list_page(
        &db,
        &UserQuery {
            after: page.next,
            ..base()
        },
    )
    .await
    .unwrap();
    let (expected, _) = reference(
        &db,
        &UserQuery {
            offset: 2050,
            ..base()
        },
    )
    .await;
    assert_eq!(
        next.users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        expected
    );
    let last = users::list_page(
        &db,
        &UserQuery {
            offset: USERS - 50,
            ..base()
        },
    )
    .await
    .unwrap();
    assert_eq!((last.users.len(), last.next), (50, None));
}

#[sqlx::test]
async fn a_capped_count_stops_at_its_cap_and_says_so(db: PgPool) {
    seed(&db).await;
    let broad = UserQuery {
        search: Some((SearchField::Email, SearchOperator::Contains, "example.com".into())),
        ..base()
    };
    let (all, exact_total) = reference(
        &db,
        &UserQuery {
            limit: 100_000,
            ..broad.clone()
        },
    )
    .await;
    assert!(exact_total > 800, "{exact_total}");
    // Under the matches: the cap, flagged; the page is the same page.
    for offset in [0, 60, 700, 1000, 1500] {
        let q = UserQuery {
            count_limit: Some(100),
            offset,
            ..broad.clone()
        };
        let page = users::list_page(&db, &q).await.unwrap();
        let (expected, _) = reference(&db, &q).await;
        assert_eq!(
            page.users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
            expected,
            "offset {offset}"
        );
        if offset == 0 || offset >= 1000 {
            assert_eq!((page.total, page.total_exact), (100, false), "offset {offset}");
        } else {
            // A lower bound: at least the users up to this page's last.
            assert_eq!(
                (page.total, page.total_exact),
                (offset + 50, false),
                "offset {offset}"
            );
        }
        // Past the cap the next page is still named while matches remain (a deep page is
        // placed from the front, never from a capped total's "end").
        let remain = exact_total - offset > 50;
        assert_eq!(page.next.is_some(), remain, "offset {offset}");
    }
    // A short page is its own total, exact, whatever the cap.
    let few = UserQuery {
        search: Some((SearchField::Email, SearchOperator::Contains, "7@corp".into())),
        count_limit: Some(3),
        limit: 200,
        ..base()
    };
    let (matches, n) = reference(&db, &few).await;
    let page = users::list_page(&db, &few).await.unwrap();
    assert!(n > 3 && n < 200, "{n}");
    assert_eq!(
        (page.total, page.total_exact, page.users.len()),
        (n, true, matches.len())
    );
    // At or over the matches: exact.
    for cap in [exact_total, exact_total + 1, 1_000_000] {
        let page = users::list_page(
            &db,
            &UserQuery {
                count_limit: Some(cap),
                ..broad.clone()
            },
        )
        .await
        .unwrap();
        assert_eq!((page.total, page.total_exact), (exact_total, true), "cap {cap}");
        assert_eq!(page.users[0].id, all[0]);
    }
    // Without a search the total is summed, always exact, the cap unused.
    let page = users::list_page(
        &db,
        &UserQuery {
            count_limit: Some(10),
            ..base()
        },
    )
    .await
    .unwrap();
    assert_eq!((page.total, page.total_exact), (USERS, true));
    // Keyset pages under a capped count walk the whole listing.
    let q = UserQuery {
        count_limit: Some(10),
        limit: 97,
        ..broad.clone()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = users::list_page(&db, &UserQuery { after, ..q.clone() })
            .await
            .unwrap();
        assert!(!page.total_exact);
        seen.extend(page.users.iter().map(|u| u.id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, all);
}
