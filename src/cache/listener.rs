//! The LISTEN side of cache invalidation: one dedicated connection (a direct one: poolers in
//! transaction mode do not carry LISTEN) receives the ids the triggers of migration
//! `..._change_notifications` and `..._organization_plugin` send (user and session ids, the
//! user whose memberships changed, the organization whose dynamic roles changed; from
//! `..._api_key_notifications`, the stored form of an API key that changed), and drops
//! those entries; a `TRUNCATE` of one of those tables (migration `..._truncate_notifications`)
//! empties that whole cache.
//!
//! The cache is trusted only while this connection is known good: on any error it is marked
//! untrusted and cleared (notices may have been missed) and the connection is re-established
//! with backoff. Every few seconds of silence, a ping is sent through the listening connection
//! itself and must come back within a second; a listener that cannot send or hear its own ping
//! is treated as down.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::RowCache;

/// Payload: the id of a `"user"` row that was updated or deleted.
pub const USER_CHANNEL: &str = "warden_user";
/// Payload: the id of a `session` row that was updated or deleted.
pub const SESSION_CHANNEL: &str = "warden_session";
/// Payload: the user whose memberships changed.
pub const MEMBER_CHANNEL: &str = "warden_member";
/// Payload: the organization whose dynamic roles changed.
pub const ORGANIZATION_ROLE_CHANNEL: &str = "warden_organization_role";
/// Payload: the stored form of an API key whose verdict may have changed, or that went away.
pub const API_KEY_CHANNEL: &str = "warden_api_key";
/// Payload: the hex SHA-256 of the stored form of an opaque OAuth access token that changed or
/// went away.
pub const OAUTH_TOKEN_CHANNEL: &str = "warden_oauth_token";
/// Payload: the `client_id` of an OAuth client that was disabled, enabled or deleted.
pub const OAUTH_CLIENT_CHANNEL: &str = "warden_oauth_client";
/// Payload: the table (`user`, `session`, `member`, `organization_role`, `apikey`) that was
/// truncated.
pub const TRUNCATE_CHANNEL: &str = "warden_truncate";
const PING_CHANNEL: &str = "warden_ping";
/// Silence longer than this triggers a ping.
const PING_AFTER: Duration = Duration::from_secs(5);
/// A ping must come back within this.
const PING_DEADLINE: Duration = Duration::from_secs(1);

/// Starts the listener task. `options` should reach PostgreSQL directly.
pub fn spawn(cache: Arc<RowCache>, options: PgConnectOptions) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            match listen(&cache, &options).await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(err) => {
                    tracing::warn!(error = %err, "cache listener down: reading the database on every request");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
            cache.set_trusted(false);
            tokio::time::sleep(backoff).await;
        }
    })
}

/// One listening session: returns when the connection is lost or stops answering.
async fn listen(cache: &RowCache, options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let options = options.clone().application_name("warden-cache-listener");
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener
        .listen_all([
            USER_CHANNEL,
            SESSION_CHANNEL,
            MEMBER_CHANNEL,
            ORGANIZATION_ROLE_CHANNEL,
            API_KEY_CHANNEL,
            OAUTH_TOKEN_CHANNEL,
            OAUTH_CLIENT_CHANNEL,
            TRUNCATE_CHANNEL,
            PING_CHANNEL,
        ])
        .await?;
    cache.set_trusted(true);
    tracing::info!("cache listener up: user and session changes invalidate the cache");

    let ping_token = format!("{:x}", std::process::id());
    loop {
        match tokio::time::timeout(PING_AFTER, listener.try_recv()).await {
            Ok(Ok(Some(notice))) => handle(cache, notice.channel(), notice.payload()),
            // The connection was lost: notices may have been missed.
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(err)) => return Err(err),
            Err(_silence) => {
                // Through the listening connection itself: the ping proves that connection works.
                let sent = tokio::time::timeout(
                    PING_DEADLINE,
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(PING_CHANNEL)
                        .bind(&ping_token)
                        .execute(&mut listener),
                )
                .await;
                match sent {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(err),
                    Err(_) => {
                        tracing::warn!("cache listener could not send its ping in time; reconnecting");
                        return Ok(());
                    }
                }
                let heard = tokio::time::timeout(PING_DEADLINE, async {
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) if n.channel() == PING_CHANNEL && n.payload() == ping_token => {
                                return Ok(());
                            }
                            Ok(Some(n)) => handle(cache, n.channel(), n.payload()),
                            Ok(None) => return Err(sqlx::Error::PoolClosed),
                            Err(err) => return Err(err),
                        }
                    }
                })
                .await;
                match heard {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => return Err(err),
                    Err(_) => {
                        tracing::warn!("cache listener did not hear its own ping; reconnecting");
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn handle(cache: &RowCache, channel: &str, id: &str) {
    match channel {
        USER_CHANNEL => cache.invalidate_user(id),
        SESSION_CHANNEL => cache.invalidate_session(id),
        MEMBER_CHANNEL => cache.invalidate_memberships(id),
        ORGANIZATION_ROLE_CHANNEL => cache.invalidate_org_roles(id),
        API_KEY_CHANNEL => cache.invalidate_api_key(id),
        OAUTH_TOKEN_CHANNEL => cache.invalidate_access_token(id),
        OAUTH_CLIENT_CHANNEL => cache.invalidate_oauth_client(id),
        TRUNCATE_CHANNEL => match id {
            "user" => cache.clear_users(),
            "session" => cache.clear_sessions(),
            "member" => cache.clear_memberships(),
            "organization_role" => cache.clear_org_roles(),
            "apikey" => cache.clear_api_keys(),
            "oauth_access_token" | "oauth_client" => cache.clear_oauth(),
            _ => cache.clear(),
        },
        _ => {}
    }
}
