//! The control API's router in process, over the demo snapshot and a scripted engine that
//! answers commands the way the real one publishes them: tokens, scopes, refusals, the rate
//! limit, CORS, /metrics through a real Prometheus parser, and the trade routes' commands.

mod support {
    pub mod demo;
}

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crbot::api::auth::{Scope, TokenKeys};
use crbot::api::{ApiSettings, EngineLink};
use crbot::config::Environment;
use crbot::engine::snapshot::{
    Command, KillProgress, KillSource, KillStage, Snapshot, StreamStatus, TradingState,
};
use crbot::secret::SecretString;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const KEY: &str = "an api test key of at least 32 characters";

struct Api {
    base: String,
    http: reqwest::Client,
    keys: TokenKeys,
    /// Every command the engine received, in order.
    commands: tokio::sync::Mutex<mpsc::UnboundedReceiver<Command>>,
    stop: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn settings(env: Environment, rate_limit: Option<(u32, Duration)>, cors: &[&str]) -> ApiSettings {
    ApiSettings {
        env,
        keys: TokenKeys::new(&SecretString::from(KEY)).unwrap(),
        rate_limit,
        cors_origins: cors.iter().map(|s| s.to_string()).collect(),
    }
}

/// A scripted engine: `Kill` halts, `Rearm` re-arms, every command is recorded.
async fn start(settings: ApiSettings) -> Api {
    start_with(settings, |_| {}).await
}

/// The same, from the demo snapshot as `edit` leaves it.
async fn start_with(settings: ApiSettings, edit: impl FnOnce(&mut Snapshot)) -> Api {
    let now = chrono::Utc::now().timestamp_millis();
    let mut snapshot = support::demo::snapshot(now);
    edit(&mut snapshot);
    // The demo draws no P&L document: give it the day-start equity its day P&L is measured from.
    snapshot.books.day_start_equity = Some(crbot::domain::Money::new(
        rust_decimal::Decimal::new(1_006_640, 2),
        crbot::domain::Asset::usdt(),
    ));
    let (snap_tx, snap_rx) = watch::channel(snapshot);
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(c) = cmd_rx.recv().await {
            snap_tx.send_modify(|s: &mut Snapshot| match &c {
                Command::Kill | Command::KillFrom(_) => {
                    let at = chrono::Utc::now().timestamp_millis();
                    s.header.trading = TradingState::Halted {
                        reason: "kill switch pressed".into(),
                        since_ms: at,
                    };
                    // The sweep finds nothing left open at once.
                    s.kill = Some(KillProgress {
                        started_ms: at,
                        stage: KillStage::Cancelled,
                        lines: Vec::new(),
                        done: true,
                    });
                }
                Command::Rearm { .. } => s.header.trading = TradingState::Active,
                _ => {}
            });
            let _ = seen_tx.send(c);
        }
    });
    let link = EngineLink {
        commands: cmd_tx,
        snapshots: snap_rx,
        rearm_passphrase: None,
        replies: Default::default(),
    };
    let app = crbot::api::router(link, settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(crbot::api::serve(listener, app, stop.clone()));
    Api {
        base,
        http: reqwest::Client::new(),
        keys: TokenKeys::new(&SecretString::from(KEY)).unwrap(),
        commands: tokio::sync::Mutex::new(seen_rx),
        stop,
    }
}

impl Api {
    fn token(&self, scope: Scope) -> String {
        self.keys
            .issue("test", scope, 1, chrono::Utc::now().timestamp())
            .unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn next_command(&self) -> Command {
        tokio::time::timeout(Duration::from_secs(5), self.commands.lock().await.recv())
            .await
            .expect("a command within 5 s")
            .expect("engine running")
    }
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
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

#[tokio::test]
async fn health_needs_no_token_and_says_no_account_data() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let (status, body) = api.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["role"], "leader");
    assert_eq!(body["mode"], "sim");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(["ok", "degraded", "halted"].contains(&body["status"].as_str().unwrap()));
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
}

#[tokio::test]
async fn health_is_degraded_while_a_stream_is_down_or_trading_is_reducing() {
    let down = start_with(settings(Environment::Development, None, &[]), |s| {
        s.header.user_stream.status = StreamStatus::Reconnecting { attempt: 2 };
    })
    .await;
    assert_eq!(down.get("/api/health", None).await.1["status"], "degraded");
    let reducing = start_with(settings(Environment::Development, None, &[]), |s| {
        s.header.trading = TradingState::Reducing {
            reason: "daily loss".into(),
            since_ms: s.now_ms,
            until_ms: None,
        };
    })
    .await;
    assert_eq!(reducing.get("/api/health", None).await.1["status"], "degraded");
    let ok = start(settings(Environment::Development, None, &[])).await;
    assert_eq!(ok.get("/api/health", None).await.1["status"], "ok");
}

#[tokio::test]
async fn every_read_route_refuses_a_missing_or_bad_token_and_answers_a_read_token() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let now = chrono::Utc::now().timestamp();
    let expired = api.keys.issue("test", Scope::Trade, 1, now - 7200).unwrap();
    let wrong_key = TokenKeys::new(&SecretString::from("another key, also 32 characters long"))
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
    let read = api.token(Scope::Read);
    for path in READ_ROUTES {
        let (status, body) = api.get(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_error(&body, "UNAUTHORIZED");
        for bad in [
            expired.as_str(),
            wrong_key.as_str(),
            alg_none.as_str(),
            "not.a.jwt",
            "x",
        ] {
            let (status, body) = api.get(path, Some(bad)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {bad}");
            assert_error(&body, "UNAUTHORIZED");
        }
        let res = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn read_documents_carry_the_cli_fields_with_decimals_as_strings() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let t = api.token(Scope::Read);
    let (_, positions) = api.get("/api/positions", Some(&t)).await;
    let first = &positions["positions"][0];
    assert_eq!(first["symbol"], "BTCUSDT");
    assert_eq!(first["qty"], "0.0052");
    assert_eq!(first["unrealized_pnl"], "6.36");
    let (_, orders) = api.get("/api/orders", Some(&t)).await;
    let ids: Vec<&str> = orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["crb-btc-sl-0001", "crb-btc-tp-0001", "crb-sol-en-0002"]);
    assert_eq!(orders["orders"][0]["purpose"], "STOP_LOSS");
    let (_, pnl) = api.get("/api/pnl", Some(&t)).await;
    for field in [
        "equity",
        "day_pnl",
        "daily_loss_limit_pct",
        "trades_used",
        "trading_state",
    ] {
        assert!(pnl.get(field).is_some(), "pnl lacks {field}: {pnl}");
    }
    assert_eq!(pnl["trading_state"], "ACTIVE");
    let (_, risk) = api.get("/api/risk", Some(&t)).await;
    assert_eq!(risk["trading"]["state"], "active");
    assert_eq!(risk["limits"]["trades_limit"], 10);
    let (_, balance) = api.get("/api/broker/balance", Some(&t)).await;
    assert!(
        balance["balances"].is_array() && balance.get("equity_usdt").is_some(),
        "{balance}"
    );
    let (_, equity) = api.get("/api/equity", Some(&t)).await;
    assert!(
        equity["curve"]["session"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    let (_, ping) = api.get("/api/broker/ping", Some(&t)).await;
    assert_eq!(ping["market_stream"]["status"], "connected");
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let res = api
        .http
        .get(format!("{}/metrics", api.base))
        .bearer_auth(api.token(Scope::Read))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                ref other => panic!("{name} is not a gauge: {other:?}"),
            })
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(value("crbot_open_orders", None), 3.0);
    assert_eq!(value("crbot_trading_state", Some(("state", "active"))), 1.0);
    assert_eq!(value("crbot_trading_state", Some(("state", "halted"))), 0.0);
    assert_eq!(value("crbot_trades_used", None), 4.0);
    assert_eq!(value("crbot_day_pnl_percent", None), -2.11);
    assert_eq!(value("crbot_rate_limit_weight_used", None), 84.0);
    assert!(value("crbot_equity_usdt", None) > 0.0);
    assert!(value("crbot_limit_used_ratio", Some(("limit", "daily_loss"))) > 0.0);
}

#[tokio::test]
async fn a_read_token_on_a_trade_route_is_forbidden_and_sends_nothing() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let read = api.token(Scope::Read);
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/api/kill",
            Some(json!({"flatten": false})),
        ),
        (
            reqwest::Method::POST,
            "/api/resume",
            Some(json!({"confirm": "RESUME"})),
        ),
        (reqwest::Method::DELETE, "/api/orders/crb-sol-en-0002", None),
        (
            reqwest::Method::POST,
            "/api/orders",
            Some(json!({"symbol": "BTCUSDT"})),
        ),
    ] {
        let (status, body) = api.send(method.clone(), path, &read, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_error(&body, "FORBIDDEN");
    }
    assert!(api.commands.lock().await.try_recv().is_err());
}

#[tokio::test]
async fn kill_halts_and_resume_needs_the_typed_confirmation() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let trade = api.token(Scope::Trade);
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/kill",
            &trade,
            Some(json!({"flatten": false})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["trading"]["state"], "halted");
    assert_eq!(api.next_command().await, Command::KillFrom(KillSource::Api));
    let (_, health) = api.get("/api/health", None).await;
    assert_eq!(health["status"], "halted");

    for bad in [json!({}), json!({"confirm": "resume"}), json!({"confirm": 1})] {
        let (status, body) = api
            .send(reqwest::Method::POST, "/api/resume", &trade, Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].is_string(), "{body}");
    }
    // A passphrase travels only over the unix socket: over TCP it is refused, nothing sent.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/resume",
            &trade,
            Some(json!({"confirm": "RESUME", "passphrase": "over tcp"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "PASSPHRASE_NOT_ALLOWED");
    assert!(!body.to_string().contains("over tcp"), "{body}");
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/resume",
            &trade,
            Some(json!({"confirm": "RESUME"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["trading"]["state"], "active");
    assert_eq!(api.next_command().await, Command::Rearm { passphrase: None });
}

#[tokio::test]
async fn kill_without_a_body_is_a_kill_without_flatten() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let res = api
        .http
        .post(format!("{}/api/kill", api.base))
        .bearer_auth(api.token(Scope::Trade))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["flatten"], false);
    assert_eq!(api.next_command().await, Command::KillFrom(KillSource::Api));
}

#[tokio::test]
async fn kill_with_flatten_flattens_everything_after_the_sweep() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let trade = api.token(Scope::Trade);
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/kill",
            &trade,
            Some(json!({"flatten": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["flatten"], true);
    assert_eq!(api.next_command().await, Command::KillFrom(KillSource::Api));
    assert_eq!(api.next_command().await, Command::Flatten { percent: 100 });
}

#[tokio::test]
async fn cancel_refuses_unknown_orders_and_unprotected_legs_without_the_flag() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let trade = api.token(Scope::Trade);
    let (status, body) = api
        .send(reqwest::Method::DELETE, "/api/orders/no-such-order", &trade, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "NOT_FOUND");
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            "/api/orders/crb-btc-sl-0001",
            &trade,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "PROTECTIVE_ORDER");
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            "/api/orders/crb-btc-sl-0001?unprotect=maybe",
            &trade,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for bad in [
        "/api/orders/crb-btc-sl-0001?unprotected=true",
        "/api/orders/%FF%FE",
    ] {
        let (status, body) = api.send(reqwest::Method::DELETE, bad, &trade, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_error(&body, "BAD_REQUEST");
    }
    assert!(api.commands.lock().await.try_recv().is_err(), "nothing sent yet");
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            "/api/orders/crb-btc-sl-0001?unprotect=true",
            &trade,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            "/api/orders/crb-sol-en-0002",
            &trade,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "CANCEL_REQUESTED");
    let cid = |s: &str| crbot::domain::ClientOrderId::new(s).unwrap();
    assert_eq!(
        api.next_command().await,
        Command::CancelOrder(cid("crb-btc-sl-0001"))
    );
    assert_eq!(
        api.next_command().await,
        Command::CancelOrder(cid("crb-sol-en-0002"))
    );
}

#[tokio::test]
async fn an_order_that_is_not_a_ticket_is_refused_before_the_engine_sees_it() {
    let api = start(settings(Environment::Development, None, &[])).await;
    for body in [
        json!({"symbol": "BTCUSDT", "side": "HOLD", "quantity": "0.001"}),
        json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "lots"}),
        json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "limit_price": "-1"}),
        json!({"symbol": "BTCUSDT", "side": "BUY"}),
        json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "leverage": 10}),
    ] {
        let (status, reply) = api
            .send(
                reqwest::Method::POST,
                "/api/orders",
                &api.token(Scope::Trade),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
        assert_error(&reply, "BAD_REQUEST");
    }
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/orders",
            &api.token(Scope::Read),
            Some(json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_bodies_are_4xx_json_errors() {
    let api = start(settings(Environment::Development, None, &[])).await;
    let trade = api.token(Scope::Trade);
    let url = format!("{}/api/kill", api.base);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode)> = vec![
        (
            api.http
                .post(&url)
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            api.http
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"flatten":"yes"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            api.http
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"flatten":false,"all":true}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            api.http.post(&url).body(r#"{"flatten":false}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            api.http
                .post(&url)
                .header("content-type", "application/json")
                .body(format!(r#"{{"flatten":false,"pad":"{}"}}"#, "x".repeat(1 << 20))),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (req, expected) in cases {
        let res = req.bearer_auth(&trade).send().await.unwrap();
        assert_eq!(res.status(), expected);
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, body) = api.get("/api/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "NOT_FOUND");
    let (status, body) = api.send(reqwest::Method::PUT, "/api/health", &trade, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "METHOD_NOT_ALLOWED");
    assert!(api.commands.lock().await.try_recv().is_err());
}

#[tokio::test]
async fn the_request_over_the_limit_gets_429_with_retry_after_even_without_a_token() {
    let api = start(settings(
        Environment::Development,
        Some((5, Duration::from_secs(60))),
        &[],
    ))
    .await;
    for _ in 0..5 {
        let (status, _) = api.get("/api/positions", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let res = api
        .http
        .get(format!("{}/api/health", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_error(&body, "RATE_LIMITED");
}

#[tokio::test]
async fn cors_allows_any_origin_in_development_and_only_the_listed_ones_elsewhere() {
    async fn allow_origin(api: &Api, origin: &str) -> Option<String> {
        let res = api
            .http
            .request(reqwest::Method::OPTIONS, format!("{}/api/positions", api.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        res.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    }
    let dev = start(settings(Environment::Development, None, &[])).await;
    assert_eq!(
        allow_origin(&dev, "https://anywhere.example").await.as_deref(),
        Some("*")
    );
    let prod = start(settings(
        Environment::Production,
        None,
        &["https://app.example.com"],
    ))
    .await;
    assert_eq!(
        allow_origin(&prod, "https://app.example.com").await.as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(allow_origin(&prod, "https://evil.example").await, None);
    let none = start(settings(Environment::Staging, None, &[])).await;
    assert_eq!(allow_origin(&none, "https://app.example.com").await, None);
}
