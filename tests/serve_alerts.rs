//! The headless automated kill switch and its alerts: `crbot serve` (sim mode, pointed at a
//! local exchange this test runs, no screen anywhere) holds BTC; the test moves the price down
//! through `/sim/control/price` and the engine, left alone, alerts the daily loss at 50 % and
//! 80 % of its limit, then goes to REDUCING (or, with `AUTO_HALT_ACTION=halt_flatten`, halts
//! and flattens) and alerts it; `GET /api/health` says so. A fill, a manual kill through the API
//! and repeated refused tokens alert too. A local HTTP listener is the webhook; every outcome is
//! in the journal's `alerts` table, and the webhook URL's secret is in no file serve wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod serve_support;
#[path = "sim_support/client.rs"]
mod sim_client;

use std::time::{Duration, Instant};

use crbot::api::auth::Scope;
use crbot::domain::Mode;
use crbot::exchange::sim::{SimConfig, SimHandle};
use crbot::journal::Journal;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use serve_support::{Serve, Webhook};

const HOOK_SECRET: &str = "hook-secret-123";

/// 10 000 USDT and 0.2 BTC; a market that moves only when the test moves it.
async fn exchange() -> SimHandle {
    let config = SimConfig {
        starting_balances: vec![
            ("USDT".into(), Decimal::from(10_000)),
            ("BTC".into(), Decimal::new(2, 1)),
        ],
        ..sim_client::still_config()
    };
    sim_client::start(config).await
}

fn serve_against(sim: &SimHandle, hook: &Webhook, extra: &[(&str, &str)]) -> Serve {
    let url = format!("{}/hook?token={HOOK_SECRET}", hook.url_base);
    let secret = sim.api_secret().expose().to_string();
    let mut env = vec![
        ("BINANCE_REST_URL", sim.rest_url()),
        ("BINANCE_WS_URL", sim.ws_url()),
        ("BINANCE_WS_API_URL", sim.ws_api_url()),
        ("BINANCE_API_KEY", sim.api_key()),
        ("BINANCE_API_SECRET", secret),
        ("ALERT_WEBHOOK_URL", url),
        ("RATE_LIMIT_REQUESTS", "1000".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = Serve::start(&env);
    assert!(serve.base.starts_with("http://127.0.0.1:"), "{}", serve.base);
    serve
}

async fn get(http: &reqwest::Client, url: String, token: Option<&str>) -> (u16, Value) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn wait_health(http: &reqwest::Client, serve: &Serve, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = get(http, format!("{}/api/health", serve.base), None).await;
        if body["status"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "health never became {want}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The BTC price at which the account has lost `share` of its 5 % daily-loss limit, from
/// `p0` with `btc` held and `usdt` (both known to the test).
fn price_at(p0: Decimal, usdt: Decimal, btc: Decimal, share: Decimal) -> String {
    let equity = usdt + btc * p0;
    let limit = equity * Decimal::new(5, 2);
    (p0 - share * limit / btc).round_dp(2).to_string()
}

async fn move_price(sim: &sim_client::Client, price: &str) {
    let r = sim
        .control("price", &json!({"symbol": "BTCUSDT", "price": price}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn btc_mid(sim: &SimHandle) -> Decimal {
    sim.mids()
        .into_iter()
        .find(|(s, _)| s == "BTCUSDT")
        .expect("BTCUSDT")
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn left_alone_serve_alerts_a_fill_the_daily_loss_reduces_and_a_manual_kill() {
    let sim = exchange().await;
    let client = sim_client::Client::new(&sim);
    let mut hook = Webhook::start().await;
    let mut serve = serve_against(&sim, &hook, &[]);
    let http = reqwest::Client::new();
    wait_health(&http, &serve, "ok").await;

    // A fill on the account: alerted with the documented fields, to the URL as configured.
    let r = client
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.01"),
        ])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let fill = hook.wait_for("FILL").await;
    assert_eq!(fill.query.as_deref(), Some("token=hook-secret-123"));
    assert_eq!(fill.body["mode"], "sim");
    assert_eq!(fill.body["severity"], "info");
    assert_eq!(fill.body["symbol"], "BTCUSDT");
    assert!(
        fill.body["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{}",
        fill.body
    );
    assert!(
        fill.body["message"].as_str().unwrap().contains("0.01"),
        "{}",
        fill.body
    );

    // Nobody at a screen: the price falls and the engine acts by itself.
    let (usdt, _) = client.balance("USDT").await;
    let (btc, _) = client.balance("BTC").await;
    let p0 = btc_mid(&sim);
    move_price(&client, &price_at(p0, usdt, btc, Decimal::new(65, 2))).await;
    let half = hook.wait_for("DAILY_LOSS").await;
    assert!(
        half.body["message"].as_str().unwrap().contains("50%"),
        "{}",
        half.body
    );
    move_price(&client, &price_at(p0, usdt, btc, Decimal::new(90, 2))).await;
    let most = hook.wait_for("DAILY_LOSS").await;
    assert!(
        most.body["message"].as_str().unwrap().contains("80%"),
        "{}",
        most.body
    );
    assert_eq!(most.body["severity"], "critical");
    move_price(&client, &price_at(p0, usdt, btc, Decimal::new(15, 1))).await;
    let reducing = hook.wait_for("REDUCING").await;
    assert!(
        reducing.body["message"].as_str().unwrap().contains("DAILY_LOSS"),
        "{}",
        reducing.body
    );
    wait_health(&http, &serve, "degraded").await;
    let read = serve.token(Scope::Read);
    let (_, risk) = get(&http, format!("{}/api/risk", serve.base), Some(&read)).await;
    assert_eq!(risk["trading"]["state"], "reducing", "{risk}");

    // The kill switch from a bare curl: halted, then the sweep's outcome.
    let trade = serve.token(Scope::Trade);
    let res = http
        .post(format!("{}/api/kill", serve.base))
        .bearer_auth(&trade)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let halted = hook.wait_for("HALTED").await;
    assert_eq!(halted.body["severity"], "critical");
    let kill = hook.wait_for("KILL").await;
    assert!(
        kill.body["message"]
            .as_str()
            .unwrap()
            .contains("every open order cancelled"),
        "{}",
        kill.body
    );
    wait_health(&http, &serve, "halted").await;

    // Someone guessing tokens.
    for _ in 0..5 {
        let (status, _) = get(&http, format!("{}/api/positions", serve.base), Some("guess")).await;
        assert_eq!(status, 401);
    }
    let auth = hook.wait_for("AUTH_FAILURES").await;
    assert!(
        auth.body["message"].as_str().unwrap().contains("127.0.0.1"),
        "{}",
        auth.body
    );

    let home = serve.home.path().to_path_buf();
    // Give the last delivery's outcome a moment to reach the journal before stopping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0));
    let journal = find(&home, "journal-sim.db").expect("the journal");
    let rows = Journal::open_read_only(&journal, Mode::Sim)
        .unwrap()
        .recent_alerts(100)
        .unwrap();
    let sent: Vec<&str> = rows
        .iter()
        .filter(|r| r.record.status == "SENT")
        .map(|r| r.record.kind.as_str())
        .collect();
    for kind in [
        "FILL",
        "DAILY_LOSS",
        "REDUCING",
        "HALTED",
        "KILL",
        "AUTH_FAILURES",
    ] {
        assert!(sent.contains(&kind), "{kind} not journaled as sent: {sent:?}");
    }
    assert_no_file_contains(&home, HOOK_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_halt_flatten_the_daily_loss_halts_and_sweeps_alerting_each_step() {
    let sim = exchange().await;
    let client = sim_client::Client::new(&sim);
    let mut hook = Webhook::start().await;
    let mut serve = serve_against(&sim, &hook, &[("AUTO_HALT_ACTION", "halt_flatten")]);
    let http = reqwest::Client::new();
    wait_health(&http, &serve, "ok").await;
    // crbot flattens only its own positions: the BTC bought outside is "external", so this
    // proves the halt and its sweep; the position stays for the operator.
    let (usdt, _) = client.balance("USDT").await;
    let (btc, _) = client.balance("BTC").await;
    move_price(&client, &price_at(btc_mid(&sim), usdt, btc, Decimal::new(15, 1))).await;
    let halted = hook.wait_for("HALTED").await;
    assert!(
        halted.body["message"]
            .as_str()
            .unwrap()
            .contains("automatic halt"),
        "{}",
        halted.body
    );
    hook.wait_for("KILL").await;
    wait_health(&http, &serve, "halted").await;
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0));
}

fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(p) = find(&path, name) {
                return Some(p);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

fn assert_no_file_contains(dir: &std::path::Path, needle: &str) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            assert_no_file_contains(&path, needle);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{} holds the webhook's secret", path.display());
        }
    }
}
