//! `examples/mcp.rs` (an MCP tool server behind warden's extractors) with the real Better-Auth
//! OAuth provider, as an MCP client meets it: refused without a token, it follows the
//! challenge's `resource_metadata` to the metadata, from there to Better-Auth's discovery
//! document, gets a token for the MCP resource by the authorization code flow, and holds an MCP
//! session (initialize, list tools, call tools); a tool whose scope the token lacks is 403
//! `insufficient_scope` naming it, and a token with it works.

use serde_json::{Value, json};
use tokio::process::Child;

use crate::oauth_flows::{OAuthClient, REDIRECT_URI, SCOPES, register_client};
use crate::stack::{Options, Stack};
use crate::support::free_port;

struct McpServer {
    url: String,
    _child: Child,
    http: reqwest::Client,
}

impl McpServer {
    async fn start(stack: &Stack, port: u16) -> Self {
        let child = crate::stack::start_example(
            stack,
            "mcp",
            port,
            &[
                ("RESOURCE_URL", format!("http://127.0.0.1:{port}/mcp")),
                ("OAUTH_SCOPES", "notes:read notes:write".into()),
            ],
            "/mcp",
        )
        .await;
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            http: reqwest::Client::new(),
        }
    }

    /// One JSON-RPC message to `/mcp` as an MCP client sends it: status, `WWW-Authenticate`,
    /// body.
    async fn send(&self, token: Option<&str>, message: Value) -> (u16, Option<String>, Value) {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.url))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&message);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, response.json().await.unwrap_or(Value::Null))
    }
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[tokio::test]
async fn an_mcp_client_discovers_better_auth_gets_a_token_and_calls_the_tools_its_scopes_allow() {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let stack = Stack::start(Options {
        auth_env: vec![
            ("E2E_ENDPOINTS", "1".into()),
            ("OAUTH_RESOURCES", resource.clone()),
        ],
        ..Options::default()
    })
    .await;
    let mcp = McpServer::start(&stack, port).await;
    let initialize = call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}),
    );

    // 1. No token: 401, and the challenge says where the metadata is.
    let (status, challenge, body) = mcp.send(None, initialize.clone()).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("missing_token")));
    let challenge = challenge.unwrap();
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"))
        .to_owned();
    assert_eq!(
        metadata_url,
        format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp")
    );
    // 2. The metadata names the resource and Better-Auth; Better-Auth's own metadata (RFC
    //    8414, path inserted) says where to authorize and get tokens.
    let metadata: Value = mcp
        .http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], resource.as_str());
    assert_eq!(metadata["scopes_supported"], json!(["notes:read", "notes:write"]));
    let issuer = metadata["authorization_servers"][0].as_str().unwrap().to_owned();
    assert_eq!(issuer, format!("{}/api/auth", stack.auth_url));
    let (origin, issuer_path) = issuer.split_at(issuer.find("/api").unwrap());
    let server: Value = mcp
        .http
        .get(format!(
            "{origin}/.well-known/oauth-authorization-server{issuer_path}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(server["issuer"], issuer.as_str());
    assert_eq!(server["token_endpoint"], format!("{issuer}/oauth2/token"));

    // 3. A client for the MCP resource; a user grants it notes:read.
    let client: OAuthClient = register_client(
        &stack.auth_url,
        json!({
            "client_name": "e2e MCP client", "redirect_uris": [REDIRECT_URI], "application_type": "native",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "scope": SCOPES, "resources": [resource], "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    let session = stack.sign_up_and_in("Agent Owner", "owner@mcp.test").await;
    let tokens = client
        .authorization_code_with_pkce(&session, "notes:read", Some(&resource))
        .await;
    let read_only = tokens["access_token"].as_str().unwrap().to_owned();

    // 4. The MCP session.
    let (status, _, body) = mcp.send(Some(&read_only), initialize.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(body["result"]["serverInfo"]["name"], "warden-mcp-notes");
    let (status, _, _) = mcp
        .send(
            Some(&read_only),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, _, body) = mcp.send(Some(&read_only), call(2, "tools/list", json!({}))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["list_notes", "add_note"]);
    let (status, _, body) = mcp
        .send(
            Some(&read_only),
            call(3, "tools/call", json!({"name": "list_notes", "arguments": {}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "[]");
    // 5. A tool beyond the token's scopes: 403 naming the scope to ask for.
    let add = call(
        4,
        "tools/call",
        json!({"name": "add_note", "arguments": {"text": "from an agent"}}),
    );
    let (status, challenge, body) = mcp.send(Some(&read_only), add.clone()).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("insufficient_scope")));
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="notes:write""#),
        "{challenge}"
    );
    // ... which a token with it passes; the note is the user's.
    let tokens = client
        .authorization_code_with_pkce(&session, "notes:read notes:write", Some(&resource))
        .await;
    let read_write = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, _, body) = mcp.send(Some(&read_write), add).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "added");
    let (_, _, body) = mcp
        .send(
            Some(&read_only),
            call(5, "tools/call", json!({"name": "list_notes", "arguments": {}})),
        )
        .await;
    assert_eq!(body["result"]["content"][0]["text"], r#"["from an agent"]"#);
    // 6. A person's own session JWT is not an access token.
    let (status, _, body) = mcp
        .send(Some(&stack.jwt(&session).await), call(6, "ping", json!({})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("access_token_required"))
    );
    stack.stop().await;
}
