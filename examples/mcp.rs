//! An MCP server behind warden: a small notes tool server for AI agents and other MCP clients,
//! whose tools require OAuth scopes, with the metadata and challenges an MCP client needs to
//! find Better-Auth, get a token there, and come back with it (MCP's authorization
//! specification, 2025-06-18: RFC 9728 metadata, RFC 6750 challenges, RFC 8707 resources).
//!
//! - `POST /mcp`: MCP's streamable-HTTP transport, each JSON-RPC request answered with one JSON
//!   response (no server-sent stream: these tools answer at once), no session id. Every message
//!   needs an access token of Better-Auth's OAuth provider issued for this resource: none is 401
//!   with `WWW-Authenticate: Bearer resource_metadata="..."`, which an MCP client follows.
//!   - `initialize`, `ping`, `tools/list`: any token for this resource.
//!   - `tools/call` `list_notes`: scope `notes:read`; `add_note` (`{"text": ...}`): scope
//!     `notes:write`. A token without it is 403 `insufficient_scope` naming the scope, so the
//!     client can ask the user for more (MCP's step-up).
//! - `GET /.well-known/oauth-protected-resource/mcp`: the metadata naming Better-Auth.
//!
//! Notes are kept in memory, per user (or per client, for a client acting for itself).
//!
//! This is a plain JSON-RPC route rather than the Rust MCP SDK (`rmcp`): warden's extractors
//! decide per HTTP request, and a tool's scope is checked where the tool runs, with the same
//! refusal the extractors give. Same environment as the warden server, with `RESOURCE_URL` (the
//! MCP endpoint's URL, e.g. `http://127.0.0.1:8091/mcp`) and `BIND_ADDR` (default
//! `127.0.0.1:8091`):
//!
//!     RESOURCE_URL=http://127.0.0.1:8091/mcp DATABASE_URL=postgres://postgres@127.0.0.1:5432/warden_dev \
//!       cargo run --example mcp

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use warden::{ApiError, Auth, Client};

/// The MCP protocol versions this server speaks; the newest is offered when the client's is
/// not one of them.
const PROTOCOL_VERSIONS: [&str; 2] = ["2025-06-18", "2025-03-26"];

#[derive(Clone)]
struct App {
    auth: Auth,
    notes: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl FromRef<App> for Auth {
    fn from_ref(app: &App) -> Self {
        app.auth.clone()
    }
}

/// One tool: its name, the scope it needs, what it says of itself, its input.
struct Tool {
    name: &'static str,
    scope: &'static str,
    description: &'static str,
    input: fn() -> Value,
}

const TOOLS: [Tool; 2] = [
    Tool {
        name: "list_notes",
        scope: "notes:read",
        description: "List your notes, newest first (scope notes:read).",
        input: || json!({"type": "object", "properties": {}, "additionalProperties": false}),
    },
    Tool {
        name: "add_note",
        scope: "notes:write",
        description: "Add a note (scope notes:write).",
        input: || {
            json!({
                "type": "object",
                "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000}},
                "required": ["text"],
                "additionalProperties": false
            })
        },
    },
];

/// A JSON-RPC answer to `id`.
fn result(id: &Value, result: Value) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})).into_response()
}

/// `POST /mcp`: one JSON-RPC message from a client holding an access token for this resource.
async fn mcp(
    client: Client,
    State(app): State<App>,
    Json(message): Json<Value>,
) -> Result<Response, ApiError> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return Ok(rpc_error(&id, -32600, "not a JSON-RPC request"));
    };
    // A notification (no id) is taken and not answered.
    if message.get("id").is_none() {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    Ok(match method {
        "initialize" => {
            let asked = params["protocolVersion"].as_str().unwrap_or_default();
            let version = PROTOCOL_VERSIONS
                .iter()
                .find(|v| **v == asked)
                .unwrap_or(&PROTOCOL_VERSIONS[0]);
            result(
                &id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "warden-mcp-notes", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
        }
        "ping" => result(&id, json!({})),
        "tools/list" => {
            let tools: Vec<Value> = TOOLS
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "inputSchema": (t.input)()}))
                .collect();
            result(&id, json!({"tools": tools}))
        }
        "tools/call" => call_tool(&app, &client, &id, &params)?,
        _ => rpc_error(&id, -32601, "method not found"),
    })
}

/// `tools/call`: the tool's scope first (403 `insufficient_scope` without it), then the tool.
fn call_tool(app: &App, client: &Client, id: &Value, params: &Value) -> Result<Response, ApiError> {
    let name = params["name"].as_str().unwrap_or_default();
    let Some(tool) = TOOLS.iter().find(|t| t.name == name) else {
        return Ok(rpc_error(id, -32602, "unknown tool"));
    };
    app.auth.require_scopes(client, &[tool.scope])?;
    // Whose notes: the user who granted the token, or the client acting for itself.
    let owner = client
        .user
        .as_ref()
        .map_or_else(|| format!("client:{}", client.client_id()), |u| u.id.clone());
    let mut notes = app
        .notes
        .lock()
        .map_err(|_| ApiError::Internal("notes lock poisoned".into()))?;
    let text = match tool.name {
        "list_notes" => {
            let mine = notes.get(&owner).cloned().unwrap_or_default();
            json!(mine.iter().rev().collect::<Vec<_>>()).to_string()
        }
        _ => {
            let Some(text) = params["arguments"]["text"]
                .as_str()
                .filter(|t| !t.is_empty() && t.len() <= 2000)
            else {
                return Ok(result(
                    id,
                    json!({"content": [{"type": "text", "text": "text must be 1 to 2000 characters"}], "isError": true}),
                ));
            };
            notes.entry(owner).or_default().push(text.to_owned());
            "added".to_owned()
        }
    };
    Ok(result(
        id,
        json!({"content": [{"type": "text", "text": text}], "isError": false}),
    ))
}

/// RFC 9728 metadata: where an MCP client that was refused learns of Better-Auth.
async fn metadata(State(app): State<App>) -> Result<Json<warden::ResourceMetadata>, ApiError> {
    app.auth.resource_metadata().map(Json).ok_or(ApiError::NotFound)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let auth = Auth::from_env().await?;
    let Some(meta) = auth.resource_metadata() else {
        return Err("set RESOURCE_URL to this server's MCP endpoint, e.g. http://127.0.0.1:8091/mcp".into());
    };
    let path = warden::OAUTH_METADATA_PATH;
    let resource_path = meta
        .resource
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].trim_end_matches('/').to_owned()))
        .unwrap_or_default();
    let app = App {
        auth,
        notes: Arc::default(),
    };
    let mut router = Router::new().route("/mcp", post(mcp)).route(path, get(metadata));
    if !resource_path.is_empty() {
        router = router.route(&format!("{path}{resource_path}"), get(metadata));
    }
    let router = router.with_state(app);
    let addr: SocketAddr = std::env::var("BIND_ADDR")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:8091".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, resource = %meta.resource, "MCP notes example listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
