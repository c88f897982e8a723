//! The forward-auth recipes in `deploy/forward-auth/` and README's table of identity headers,
//! read as files and held to warden's one list (`IDENTITY_HEADERS`): each recipe clears every
//! name on it (and every spelling with underscores), sets only what warden answered, sets the
//! original method itself, and gates every spelling of `/admin`; the nginx recipe also keeps its
//! connections to warden and the app alive. nginx and Caddy also run as shipped in
//! `tests/e2e/gateway.rs`; Traefik cannot run here, so its file is checked here alone. Each test
//! names everything that is missing, not only the first.

use std::path::PathBuf;

use serde_norway::Value;
use warden::server::IDENTITY_HEADERS;

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file's lines without comments, trimmed.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn assert_none_missing(what: &str, missing: &[String]) {
    assert!(missing.is_empty(), "{what} lacks:\n  {}", missing.join("\n  "));
}

/// nginx's variable for a response header: `$upstream_http_x_auth_user_id`.
fn upstream_variable(name: &str) -> String {
    format!("$upstream_http_{}", name.to_ascii_lowercase().replace('-', "_"))
}

/// The nginx recipe's blocks opened by `keyword` (`location `, `upstream `), which hold no
/// block of their own: (the opening line, the lines inside).
fn nginx_blocks(lines: &[String], keyword: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in lines {
        if line.starts_with(keyword) {
            current = Some((line.clone(), Vec::new()));
        } else if line == "}" {
            if let Some(block) = current.take() {
                blocks.push(block);
            }
        } else if let Some((_, body)) = &mut current {
            body.push(line.clone());
        }
    }
    blocks
}

fn nginx_locations(lines: &[String]) -> Vec<(String, Vec<String>)> {
    nginx_blocks(lines, "location ")
}

/// The nginx recipe's `upstream` blocks: (name, the lines inside).
fn nginx_upstreams(lines: &[String]) -> Vec<(String, Vec<String>)> {
    nginx_blocks(lines, "upstream ")
        .into_iter()
        .map(|(line, body)| {
            let name = line
                .trim_start_matches("upstream ")
                .trim_end_matches('{')
                .trim()
                .to_owned();
            (name, body)
        })
        .collect()
}

/// Where a location's `proxy_pass` sends its requests: the host of its URL, and the addresses
/// of its `server` lines when that host names an upstream block (else the host itself).
fn nginx_proxy_target(body: &[String], upstreams: &[(String, Vec<String>)]) -> Option<(String, Vec<String>)> {
    let url = body.iter().find_map(|l| l.strip_prefix("proxy_pass "))?;
    let host = url
        .trim_end_matches(';')
        .trim_start_matches("http://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let servers = match upstreams.iter().find(|(name, _)| *name == host) {
        Some((_, lines)) => lines
            .iter()
            .filter_map(|l| l.strip_prefix("server "))
            .map(|s| {
                s.trim_end_matches(';')
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect(),
        None => vec![host.clone()],
    };
    Some((host, servers))
}

/// The lines of the nginx recipe's `server` block itself, outside its locations (what they
/// inherit).
fn nginx_server_level(lines: &[String]) -> Vec<String> {
    let mut level = Vec::new();
    let mut inside = None::<&str>;
    for line in lines {
        match inside {
            None if line == "server {" => inside = Some("server"),
            Some("server") if line.starts_with("location ") => inside = Some("location"),
            Some("location") if line == "}" => inside = Some("server"),
            Some("server") if line == "}" => inside = None,
            Some("server") => level.push(line.clone()),
            _ => {}
        }
    }
    level
}

#[test]
fn the_nginx_recipe_clears_every_identity_header_and_sets_the_method_itself() {
    let lines = lines(&read("deploy/forward-auth/nginx.conf"));
    let words = |l: &String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let mut missing = Vec::new();
    for needed in ["underscores_in_headers off;", "ignore_invalid_headers on;"] {
        if !lines.iter().any(|l| l == needed) {
            missing.push(format!("`{needed}` (headers with underscores reach the app)"));
        }
    }
    // Each name: set on the request to the app from warden's answer of that same name.
    for header in IDENTITY_HEADERS {
        let set = lines
            .iter()
            .map(words)
            .find(|w| w.len() == 3 && w[0] == "proxy_set_header" && w[1].eq_ignore_ascii_case(header.name));
        let Some(set) = set else {
            missing.push(format!("proxy_set_header {} $...;", header.name));
            continue;
        };
        let variable = set[2].trim_end_matches(';');
        let from = lines.iter().map(words).any(|w| {
            w.len() == 3
                && w[0] == "auth_request_set"
                && w[1] == variable
                && w[2] == format!("{};", upstream_variable(header.name))
        });
        if !from {
            missing.push(format!(
                "auth_request_set {variable} {};",
                upstream_variable(header.name)
            ));
        }
    }
    // Those are set at server level; a location that sets any header of its own inherits
    // none of them, so the locations that reach the app must set none.
    let locations = nginx_locations(&lines);
    let upstreams = nginx_upstreams(&lines);
    for (location, body) in &locations {
        let servers = nginx_proxy_target(body, &upstreams)
            .map(|(_, servers)| servers)
            .unwrap_or_default();
        let to_app = servers.iter().any(|s| s == APP);
        if to_app && body.iter().any(|l| l.starts_with("proxy_set_header")) {
            missing.push(format!(
                "{location} inheriting the identity headers (it sets its own)"
            ));
        }
        // The subrequests to warden: the method and URI come from nginx, never the client.
        if servers.iter().any(|s| s == WARDEN) {
            for needed in [
                "proxy_set_header X-Original-Method $request_method;",
                "proxy_set_header X-Forwarded-Method $request_method;",
                "proxy_set_header X-Original-URI $request_uri;",
                "proxy_set_header X-Forwarded-Uri $request_uri;",
            ] {
                if !body.iter().any(|l| words(l).join(" ") == needed) {
                    missing.push(format!("{location} `{needed}`"));
                }
            }
        }
    }
    // The admin gate: one case-insensitive location for everything under /admin.
    let admin: Vec<_> = locations
        .iter()
        .filter(|(_, body)| body.iter().any(|l| l.starts_with("auth_request /_warden_admin")))
        .map(|(location, _)| location.as_str())
        .collect();
    if admin != ["location ~* ^/admin {"] {
        missing.push(format!(
            "the admin gate `location ~* ^/admin {{` (found {admin:?})"
        ));
    }
    assert_none_missing("deploy/forward-auth/nginx.conf", &missing);
}

/// The recipes' example addresses of the app and of warden.
const APP: &str = "127.0.0.1:3001";
const WARDEN: &str = "127.0.0.1:8080";

/// nginx proxies with HTTP/1.0 and `Connection: close` unless told otherwise: a new TCP
/// connection to warden for every request (and to the app), its set-up and teardown paid each
/// time and a socket left in TIME-WAIT. Every location that proxies, the subrequests to warden
/// included, must go through an upstream block with `keepalive`, over
/// HTTP/1.1, with `Connection` emptied in the headers it actually sends (its own
/// `proxy_set_header` list when it has one, else the server's).
#[test]
fn the_nginx_recipe_keeps_its_connections_to_warden_and_the_app_alive() {
    let lines = lines(&read("deploy/forward-auth/nginx.conf"));
    let locations = nginx_locations(&lines);
    let upstreams = nginx_upstreams(&lines);
    let server = nginx_server_level(&lines);
    let mut missing = Vec::new();
    let words = |l: &String| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let sets = |block: &[String]| -> Vec<String> {
        block
            .iter()
            .filter(|l| l.starts_with("proxy_set_header "))
            .map(words)
            .collect()
    };
    let server_sets = sets(&server);
    let mut reached = Vec::new();
    for (location, body) in &locations {
        let Some((host, servers)) = nginx_proxy_target(body, &upstreams) else {
            continue;
        };
        reached.extend(servers.iter().cloned());
        match upstreams.iter().find(|(name, _)| *name == host) {
            None => missing.push(format!(
                "{location} proxying to an upstream block with keepalive (it names {host})"
            )),
            Some((name, upstream)) => {
                let keepalive = upstream.iter().find_map(|l| {
                    l.strip_prefix("keepalive ")?
                        .trim_end_matches(';')
                        .parse::<u32>()
                        .ok()
                });
                if keepalive.is_none_or(|n| n == 0) {
                    missing.push(format!("`keepalive N;` in upstream {name}"));
                }
            }
        }
        let version = body
            .iter()
            .chain(&server)
            .find(|l| l.starts_with("proxy_http_version "))
            .map(words);
        if version.as_deref() != Some("proxy_http_version 1.1;") {
            missing.push(format!("{location} `proxy_http_version 1.1;` (has {version:?})"));
        }
        let own = sets(body);
        let sent = if own.is_empty() { &server_sets } else { &own };
        if !sent.iter().any(|l| l == r#"proxy_set_header Connection "";"#) {
            missing.push(format!(
                "{location} `proxy_set_header Connection \"\";` ({})",
                if own.is_empty() {
                    "inherited from the server block"
                } else {
                    "it sets headers of its own, so it inherits none"
                }
            ));
        }
    }
    // Both the subrequests to warden and the requests to the app are among them.
    for (what, address) in [("warden", WARDEN), ("the app", APP)] {
        if !reached.iter().any(|s| s == address) {
            missing.push(format!(
                "a location proxying to {what} ({address}) through an upstream"
            ));
        }
    }
    let subrequests: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("auth_request "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    for subrequest in &subrequests {
        let location = locations
            .iter()
            .find(|(line, _)| *line == format!("location = {subrequest} {{"));
        let to_warden = location
            .and_then(|(_, body)| nginx_proxy_target(body, &upstreams))
            .is_some_and(|(_, servers)| servers.iter().any(|s| s == WARDEN));
        if !to_warden {
            missing.push(format!("`location = {subrequest}` proxying to warden"));
        }
    }
    assert!(subrequests.len() >= 2, "auth_request /_warden and /_warden_admin");
    assert_none_missing("deploy/forward-auth/nginx.conf (keep-alive)", &missing);
}

#[test]
fn the_caddy_recipe_clears_every_identity_header_and_sets_the_method_itself() {
    let lines = lines(&read("deploy/forward-auth/Caddyfile"));
    let mut missing = Vec::new();
    for header in IDENTITY_HEADERS {
        let clear = format!("request_header -{}", header.name);
        if !lines.contains(&clear) {
            missing.push(clear);
        }
        // Caddy 2.6 to 2.8 set a header warden did not answer to the placeholder's text.
        let unanswered = format!("{{http.reverse_proxy.header.{}}} == null", header.name);
        if !lines.iter().any(|l| l.contains(&unanswered)) {
            missing.push(format!("a matcher `{unanswered}` removing {}", header.name));
        }
    }
    if !lines.iter().any(|l| l == "request_header -*_*") {
        missing.push("request_header -*_* (headers with underscores reach the app)".to_owned());
    }
    let blocks = lines.iter().filter(|l| l.starts_with("forward_auth ")).count();
    for (what, needed) in [
        ("copy_headers", "copy_headers "),
        ("X-Original-Method", "header_up X-Original-Method {method}"),
        ("X-Original-URI", "header_up X-Original-URI {uri}"),
        ("the answered-only cleanup", "import warden_answered_only"),
    ] {
        let found = lines.iter().filter(|l| l.starts_with(needed)).count();
        if found != blocks {
            missing.push(format!(
                "{what} in each of the {blocks} forward_auth blocks (found {found})"
            ));
        }
    }
    for copy in lines.iter().filter(|l| l.starts_with("copy_headers ")) {
        for header in IDENTITY_HEADERS {
            if !copy.split_whitespace().any(|n| n == header.name) {
                missing.push(format!("{} in `{copy}`", header.name));
            }
        }
    }
    // A `uri` without `?` keeps the client's query: a client-chosen ?role=, or 422.
    for uri in lines.iter().filter(|l| l.starts_with("uri ")) {
        if !uri.contains('?') {
            missing.push(format!("a query (at least `?`) in `{uri}`"));
        }
    }
    if !lines.iter().any(|l| l == "handle /admin* {") {
        missing.push("the admin gate `handle /admin* {`".to_owned());
    }
    assert_none_missing("deploy/forward-auth/Caddyfile", &missing);
}

#[test]
fn the_traefik_recipe_clears_every_identity_header_and_gates_every_admin_spelling() {
    let file: Value = serde_norway::from_str(&read("deploy/forward-auth/traefik-dynamic.yml"))
        .expect("traefik-dynamic.yml is YAML");
    let http = &file["http"];
    let mut missing = Vec::new();

    // The strip middleware: every spelling of every name, deleted (an empty value).
    let strip = &http["middlewares"]["warden-strip"]["headers"]["customRequestHeaders"];
    for header in IDENTITY_HEADERS {
        for spelling in header.spellings() {
            if strip[spelling.as_str()].as_str() != Some("") {
                missing.push(format!("warden-strip: `{spelling}: \"\"`"));
            }
        }
    }

    // Each forwardAuth: every name copied from warden's answer (Traefik removes the name from
    // the request first), the method set by Traefik, only credential headers sent to warden.
    let forward_auths: Vec<(&str, &Value)> = http["middlewares"]
        .as_mapping()
        .expect("http.middlewares")
        .iter()
        .filter_map(|(name, m)| Some((name.as_str()?, m.get("forwardAuth")?)))
        .collect();
    assert!(forward_auths.len() >= 2, "warden and warden-admin");
    for (name, auth) in &forward_auths {
        let copied: Vec<&str> = auth["authResponseHeaders"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for header in IDENTITY_HEADERS {
            if !copied.iter().any(|c| c.eq_ignore_ascii_case(header.name)) {
                missing.push(format!("{name}: authResponseHeaders {}", header.name));
            }
        }
        if auth["trustForwardHeader"].as_bool() != Some(false) {
            missing.push(format!("{name}: trustForwardHeader: false"));
        }
        let sent: Vec<String> = auth["authRequestHeaders"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        for needed in [
            "authorization",
            "x-api-key",
            "cookie",
            "origin",
            "referer",
            "sec-fetch-site",
        ] {
            if !sent.iter().any(|s| s == needed) {
                missing.push(format!("{name}: authRequestHeaders {needed}"));
            }
        }
        for header in &sent {
            // The API key is a credential; any other x- header would be the client's own
            // (a forged X-Forwarded-Method, say).
            if header.starts_with("x-") && header != "x-api-key" {
                missing.push(format!("{name}: no client {header} sent to warden"));
            }
        }
    }

    // Routers: the strip runs first everywhere; the admin router covers every spelling and
    // comes before the catch-all.
    let routers = http["routers"].as_mapping().expect("http.routers");
    let mut admin_priority = None;
    let mut other_priorities = Vec::new();
    for (name, router) in routers {
        let name = name.as_str().unwrap_or_default();
        let middlewares: Vec<&str> = router["middlewares"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if middlewares.first() != Some(&"warden-strip") {
            missing.push(format!("router {name}: warden-strip first (has {middlewares:?})"));
        }
        let priority = router["priority"].as_i64();
        if middlewares.contains(&"warden-admin") {
            let rule = router["rule"].as_str().unwrap_or_default();
            let pattern = rule
                .strip_prefix("PathRegexp(`")
                .and_then(|r| r.strip_suffix("`)"))
                .unwrap_or_default();
            match regex::Regex::new(pattern) {
                Ok(re) if !pattern.is_empty() => {
                    // The paths as Traefik matches them: decoded and cleaned.
                    for path in [
                        "/admin",
                        "/admin/",
                        "/admin/users",
                        "/ADMIN/users",
                        "/Admin",
                        "/aDmIn/x",
                        "/admin;x/users",
                        "/admin.json",
                    ] {
                        if !re.is_match(path) {
                            missing.push(format!("router {name}: its rule {rule} matching {path}"));
                        }
                    }
                    if re.is_match("/notes") {
                        missing.push(format!("router {name}: its rule {rule} leaving /notes alone"));
                    }
                }
                _ => missing.push(format!("router {name}: a PathRegexp rule (has {rule:?})")),
            }
            admin_priority = priority;
        } else {
            other_priorities.push((name, priority));
        }
    }
    match admin_priority {
        None => missing.push("the admin router: an explicit priority".to_owned()),
        Some(admin) => {
            for (name, priority) in other_priorities {
                if priority.is_none_or(|p| p >= admin) {
                    missing.push(format!("router {name}: an explicit priority below {admin}"));
                }
            }
        }
    }
    assert_none_missing("deploy/forward-auth/traefik-dynamic.yml", &missing);
}

#[test]
fn the_readme_tables_every_identity_header() {
    let readme = read("README.md");
    let section = readme
        .split("## Put any backend behind warden")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README's section \"Put any backend behind warden\"");
    let mut missing = Vec::new();
    for header in IDENTITY_HEADERS {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", header.name)));
        match row {
            None => missing.push(format!("a row | `{}` | ... |", header.name)),
            Some(row) if !header.answered && !row.contains("reserved") => {
                missing.push(format!("`{}` marked reserved", header.name));
            }
            Some(_) => {}
        }
    }
    assert_none_missing("README.md's identity-header table", &missing);
}
