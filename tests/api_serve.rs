//! `crbot serve` as a process: the binary in sim mode (its own local exchange, as the console
//! starts in sim), a fresh home, a port picked by the system, driven over HTTP. Also
//! `crbot token issue` and serve's refusals, which need no server.

mod serve_support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crbot::api::auth::{Scope, TokenKeys};
use crbot::secret::SecretString;
use reqwest::StatusCode;
use serde_json::{Value, json};
use serve_support::{KEY, crbot, crbot_in};

/// `crbot serve` (see `serve_support`) and an HTTP client for it.
struct Serve {
    inner: serve_support::Serve,
    base: String,
    http: reqwest::Client,
}

impl Serve {
    /// Starts `crbot serve --addr 127.0.0.1:0` and waits for its `api=` line.
    fn start(env: &[(&str, &str)]) -> Serve {
        let inner = serve_support::Serve::start(env);
        let base = inner.base.clone();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Serve {
            inner,
            base,
            http: reqwest::Client::new(),
        }
    }

    fn token(&self, scope: Scope) -> String {
        self.inner.token(scope)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Polls `/api/health` until its status is `want`.
    async fn wait_health(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.get("/api/health", None).await;
            if body["status"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "health never became {want}: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends SIGTERM and returns the exit code and what it printed after `api=`.
    fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        self.inner.terminate()
    }
}

const READ_ROUTES: [&str; 8] = [
    "/api/positions",
    "/api/orders",
    "/api/pnl",
    "/api/risk",
    "/api/equity",
    "/api/broker/balance",
    "/api/broker/ping",
    "/metrics",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_and_without_a_token_then_kill_resume_and_sigterm() {
    let serve = Serve::start(&[("RATE_LIMIT_REQUESTS", "1000")]);
    let (status, health) = serve.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["role"], "leader");
    assert_eq!(health["mode"], "sim");

    let now = chrono::Utc::now().timestamp();
    let expired = TokenKeys::new(&SecretString::from(KEY))
        .unwrap()
        .issue("test", Scope::Trade, 1, now - 7200)
        .unwrap();
    let wrong_key = TokenKeys::new(&SecretString::from("not the server's key, 32+ characters"))
        .unwrap()
        .issue("test", Scope::Trade, 1, now)
        .unwrap();
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"x","iat":{now},"exp":{},"scope":"trade"}}"#,
        now + 3600
    ));
    let alg_none = format!(
        "{}.{claims}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let read = serve.token(Scope::Read);
    for path in READ_ROUTES {
        for bad in [
            None,
            Some(expired.as_str()),
            Some(wrong_key.as_str()),
            Some(alg_none.as_str()),
        ] {
            let (status, body) = serve.get(path, bad).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {bad:?}");
            assert_eq!(body["error"], "UNAUTHORIZED", "{path}: {body}");
        }
        let (status, body) = serve.get(path, Some(&read)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // The engine publishes before it has read the account: wait for the balances.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, balance) = serve.get("/api/broker/balance", Some(&read)).await;
        let usdt = balance["balances"]
            .as_array()
            .is_some_and(|b| b.iter().any(|r| r["asset"] == "USDT" && r["free"].is_string()));
        if usdt {
            break;
        }
        assert!(Instant::now() < deadline, "no USDT balance: {balance}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = serve.get("/metrics", Some(&read)).await;
    let text = metrics.as_str().unwrap().to_string();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(
        scrape.samples.iter().any(|s| s.metric == "crbot_open_orders"),
        "{text}"
    );

    // Trade routes: a read token is forbidden, and nothing happens.
    for (path, body) in [
        ("/api/kill", json!({"flatten": false})),
        ("/api/resume", json!({"confirm": "RESUME"})),
    ] {
        let (status, body) = serve.post(path, &read, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"], "FORBIDDEN");
    }
    let res = serve
        .http
        .delete(format!("{}/api/orders/no-such-order", serve.base))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let trade = serve.token(Scope::Trade);
    let res = serve
        .http
        .delete(format!("{}/api/orders/no-such-order", serve.base))
        .bearer_auth(&trade)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // An order without a side or quantity is no ticket (placing one: tests/engine_socket.rs).
    let (status, body) = serve
        .post("/api/orders", &trade, json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "BAD_REQUEST");

    // The kill switch through the API, then a typed re-arm.
    let (status, body) = serve.post("/api/kill", &trade, json!({"flatten": false})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["trading"]["state"], "halted", "{body}");
    serve.wait_health("halted").await;
    let (status, body) = serve.post("/api/resume", &trade, json!({"confirm": "yes"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, health) = serve.get("/api/health", None).await;
    assert_eq!(health["status"], "halted");
    let (status, body) = serve
        .post("/api/resume", &trade, json!({"confirm": "RESUME"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["trading"]["state"], "active", "{body}");
    let (_, health) = serve.get("/api/health", None).await;
    assert_ne!(health["status"], "halted", "{health}");

    let (code, lines) = serve.terminate();
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(lines, ["stopped: 0 open orders stay on the exchange"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_request_in_a_window_gets_429_with_retry_after() {
    let serve = Serve::start(&[]);
    for i in 0..100 {
        // Without a token: the limit counts before authentication.
        let path = if i % 2 == 0 {
            "/api/health"
        } else {
            "/api/positions"
        };
        let (status, _) = serve.get(path, None).await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "request {}", i + 1);
    }
    let res = serve
        .http
        .get(format!("{}/api/health", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
}

#[test]
fn token_issue_prints_only_a_token_the_server_key_verifies() {
    let home = tempfile::tempdir().unwrap();
    let out = crbot(home.path(), &[])
        .args(["token", "issue", "--scope", "trade", "--ttl", "2"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let claims = TokenKeys::new(&SecretString::from(KEY))
        .unwrap()
        .verify(stdout.trim())
        .unwrap();
    assert_eq!(claims.scope, Scope::Trade);
    assert_eq!(claims.exp - claims.iat, 2 * 3600);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(KEY));
}

#[test]
fn token_issue_defaults_to_read_and_jwt_expire_hours() {
    let home = tempfile::tempdir().unwrap();
    let out = crbot(home.path(), &[("JWT_EXPIRE_HOURS", "5")])
        .args(["token", "issue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let claims = TokenKeys::new(&SecretString::from(KEY))
        .unwrap()
        .verify(String::from_utf8(out.stdout).unwrap().trim())
        .unwrap();
    assert_eq!(claims.scope, Scope::Read);
    assert_eq!(claims.exp - claims.iat, 5 * 3600);
}

#[test]
fn token_issue_usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["token", "issue", "--scope", "admin"],
        vec!["token", "issue", "--ttl", "0"],
        vec!["token", "issue", "--ttl", "soon"],
        vec!["serve", "--addr", "localhost"],
    ] {
        let out = crbot(home.path(), &[]).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// Runs crbot (in sim unless `--mode` is among `args`) and returns its exit code and stderr,
/// which must be one line.
fn refused(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let (mode, args) = match args {
        ["--mode", mode, rest @ ..] => (*mode, rest),
        _ => ("sim", args),
    };
    let out = crbot_in(mode, home.path(), env).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    (out.status.code(), stderr)
}

#[test]
fn serve_refuses_with_one_line_what_it_cannot_serve_safely() {
    let (code, err) = refused(&[("ENV", "staging")], &["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no TLS"), "{err}");
    let (code, err) = refused(&[("ENV", "production"), ("SECRET_KEY", "")], &["serve"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("SECRET_KEY is required"), "{err}");
    let (code, err) = refused(&[("ENV", "staging"), ("SECRET_KEY", "short")], &["serve"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("SECRET_KEY is too short") && !err.contains("short\n"),
        "{err}"
    );
    let (code, err) = refused(&[], &["--mode", "testnet", "serve"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("CRBOT_PASSPHRASE_FILE"), "{err}");
}

#[test]
fn a_bad_api_variable_stops_start_up_with_one_line_naming_it() {
    for (name, value) in [
        ("RATE_LIMIT_REQUESTS", "many"),
        ("RATE_LIMIT_WINDOW_SECS", "0"),
        ("JWT_EXPIRE_HOURS", "-1"),
        ("CRBOT_API_ADDR", "8002"),
        ("CORS_ORIGINS", "not an origin"),
    ] {
        let (code, err) = refused(&[(name, value)], &["serve"]);
        assert_eq!(code, Some(1), "{name}");
        assert!(err.starts_with(&format!("crbot: {name}=")), "{err}");
    }
}

fn keys(doc: &Value) -> std::collections::BTreeSet<String> {
    doc.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_carry_the_fields_of_the_cli_json_documents() {
    let serve = Serve::start(&[("RATE_LIMIT_REQUESTS", "1000")]);
    let read = serve.token(Scope::Read);
    for (command, route) in [
        ("positions", "/api/positions"),
        ("orders", "/api/orders"),
        ("balance", "/api/broker/balance"),
        ("pnl", "/api/pnl"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let out = crbot(home.path(), &[])
            .args(["--json", command])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "crbot {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (status, api) = serve.get(route, Some(&read)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(keys(&api), keys(&cli), "{route} vs crbot {command} --json");
    }
}
