//! Integration tests against a real PostgreSQL (`DATABASE_URL`; `#[sqlx::test]` gives each
//! test its own database) and JWKS servers started on 127.0.0.1 by the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod api_keys;
mod auth_proxy;
mod binary;
mod common;
mod console;
mod dev_script;
mod faults;
mod forward;
mod forward_recipes;
mod freshness;
mod hostile;
mod http_fuzz;
mod jwks_cache;
mod library;
mod migrations;
mod oauth;
mod operability;
mod permissions;
mod redis_api_keys;
mod redis_sessions;
mod roles;
mod search_paths;
mod search_plans;
mod security;
#[path = "../support/mod.rs"]
mod support;
mod users_api;
mod users_me;
mod verify;
mod world;
