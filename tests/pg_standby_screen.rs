//! A screen attached to a standby `crbot serve` on PostgreSQL: two `crbot serve` on one
//! database and one local exchange, and the attached screen's bridge (`attach::open`, what the
//! console runs with `CRBOT_API_URL`/`CRBOT_API_TOKEN`) on each.
//!
//! The standby's stream shows its own snapshot (the STANDBY banner naming the leader, no account
//! figure), the kill key on it halts the leader (its open orders are cancelled on the exchange)
//! and both screens show HALTED within a second; its other commands are refused with the
//! STANDBY message on the screen; when the standby takes over, the same screen reconnects and
//! draws the new leader's live snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;
mod serve_support;
#[path = "sim_support/client.rs"]
mod sim_client;

use std::time::{Duration, Instant};

use crbot::api::auth::Scope;
use crbot::attach::{self, Attached, Target};
use crbot::config::RemoteEngine;
use crbot::engine::snapshot::{Command, Snapshot};
use crbot::secret::SecretString;
use pg_support::PgDatabase;
use rust_decimal::Decimal;
use serde_json::Value;
use serve_support::Serve;

/// How long anything awaited here may take before the test fails (a bound, not a measure).
const WAIT: Duration = Duration::from_secs(30);
/// The bound on a kill reaching both screens: the design's second, doubled for a loaded
/// two-core CI machine (the measured figure is printed; it is typically a few hundred ms).
const HALT_WITHIN: Duration = Duration::from_secs(2);

fn env(sim: &crbot::exchange::sim::SimHandle, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BINANCE_REST_URL", sim.rest_url()),
        ("BINANCE_WS_URL", sim.ws_url()),
        ("BINANCE_WS_API_URL", sim.ws_api_url()),
        ("BINANCE_API_KEY", sim.api_key()),
        ("BINANCE_API_SECRET", sim.api_secret().expose().to_string()),
        ("RATE_LIMIT_REQUESTS", "0".to_string()),
        ("DATABASE_URL", url.to_string()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn health(base: &str) -> Value {
    match reqwest::get(format!("{base}/api/health")).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn wait_role(base: &str, role: &str) {
    let start = Instant::now();
    loop {
        let h = health(base).await;
        if h["role"] == role {
            return;
        }
        assert!(start.elapsed() < WAIT, "{base} never became {role}: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Until the leader has reconciled (a dry run is answered).
async fn wait_ready(serve: &Serve) {
    let start = Instant::now();
    let probe = serde_json::json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "dry_run": true});
    loop {
        let status = reqwest::Client::new()
            .post(format!("{}/api/orders", serve.base))
            .bearer_auth(serve.token(Scope::Trade))
            .json(&probe)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never reconciled",
            serve.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screen(serve: &Serve, scope: Scope) -> Attached {
    attach::open(Target::Remote(RemoteEngine {
        url: url::Url::parse(&serve.base).unwrap(),
        token: SecretString::new(serve.token(scope)),
    }))
    .await
    .expect("the screen attaches")
}

/// Waits until the screen's snapshot satisfies `cond`; how long that took.
async fn wait_screen(
    screen: &mut Attached,
    what: &str,
    within: Duration,
    cond: impl Fn(&Snapshot) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond(&screen.snapshots.borrow_and_update()) {
            return start.elapsed();
        }
        let left = within.saturating_sub(start.elapsed());
        let changed = tokio::time::timeout(left, screen.snapshots.changed()).await;
        assert!(
            matches!(changed, Ok(Ok(()))),
            "{what}: not within {within:?}; last: {:?} {:?}",
            screen.snapshots.borrow().header,
            screen.snapshots.borrow().standby
        );
    }
}

async fn open_orders(client: &sim_client::Client) -> usize {
    let r = client
        .signed("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_on_the_standby_sees_it_halts_the_leader_and_follows_the_takeover() {
    let db = PgDatabase::new();
    let sim = sim_client::start(sim_client::still_config()).await;
    let client = sim_client::Client::new(&sim);
    let env = env(&sim, &db.url());
    let mut leader = Serve::start(&borrowed(&env));
    wait_role(&leader.base, "leader").await;
    wait_ready(&leader).await;
    let standby = Serve::start(&borrowed(&env));
    wait_role(&standby.base, "standby").await;

    // A resting order with its protection on the leader.
    let mid = sim.mids().into_iter().find(|(s, _)| s == "BTCUSDT").unwrap().1;
    let price = |f: &str| (mid * f.parse::<Decimal>().unwrap()).round_dp(2).to_string();
    let placed = reqwest::Client::new()
        .post(format!("{}/api/orders", leader.base))
        .bearer_auth(leader.token(Scope::Trade))
        .json(&serde_json::json!({
            "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001",
            "limit_price": price("0.98"), "stop_loss": price("0.95"), "take_profit": price("1.05"),
        }))
        .send()
        .await
        .unwrap();
    assert!(
        placed.status().is_success(),
        "{}",
        placed.text().await.unwrap_or_default()
    );
    assert_eq!(open_orders(&client).await, 1);

    // A read-scope screen on the standby: its snapshot, the banner naming the leader, no figure.
    let mut on_standby = screen(&standby, Scope::Trade).await;
    let mut on_leader = screen(&leader, Scope::Read).await;
    wait_screen(&mut on_standby, "the leader named, the state read", WAIT, |s| {
        s.standby
            .as_ref()
            .is_some_and(|b| b.trading_known && b.leader_address.as_deref() == Some(leader.base.as_str()))
    })
    .await;
    {
        let s = on_standby.snapshots.borrow();
        assert!(!s.header.trading.is_halted(), "{:?}", s.header.trading);
        assert!(s.equity.is_none(), "no equity a standby does not know");
        assert!(s.books.balances.is_empty() && s.positions.is_empty() && s.orders.is_empty());
    }
    assert!(
        on_leader.snapshots.borrow().standby.is_none(),
        "the leader's own snapshot"
    );

    // Anything but the kill is the leader's: refused, and the screen says why.
    on_standby
        .commands
        .send(Command::Rearm { passphrase: None })
        .await
        .unwrap();
    wait_screen(&mut on_standby, "the STANDBY refusal on the screen", WAIT, |s| {
        s.header
            .warnings
            .first()
            .is_some_and(|w| w.contains("standby") && w.contains(&leader.base))
    })
    .await;

    // The kill key on the standby's screen: both screens show HALTED, the leader cancels.
    let pressed = Instant::now();
    on_standby.commands.send(Command::Kill).await.unwrap();
    let halted =
        |s: &Snapshot| s.header.trading.is_halted() && s.standby.as_ref().is_none_or(|b| b.trading_known);
    wait_screen(
        &mut on_standby,
        "HALTED on the standby's screen",
        HALT_WITHIN,
        halted,
    )
    .await;
    let on_standby_ms = pressed.elapsed().as_millis();
    wait_screen(
        &mut on_leader,
        "HALTED on the leader's screen",
        HALT_WITHIN,
        halted,
    )
    .await;
    let on_leader_ms = pressed.elapsed().as_millis();
    eprintln!(
        "kill key on the standby's screen: HALTED there after {on_standby_ms} ms, on the leader's after {on_leader_ms} ms"
    );
    assert_eq!(health(&leader.base).await["status"], "halted");
    let start = Instant::now();
    while open_orders(&client).await != 0 {
        assert!(
            start.elapsed() < WAIT,
            "the leader did not cancel after the standby's kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The leader goes: the standby leads, and the same screen shows its live snapshot.
    leader.terminate();
    wait_role(&standby.base, "leader").await;
    wait_screen(&mut on_standby, "the new leader's live snapshot", WAIT, |s| {
        s.standby.is_none() && s.header.trading.is_halted() && s.equity.is_some()
    })
    .await;
    drop(on_leader);
}
