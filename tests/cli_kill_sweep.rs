//! Stage one of the kill switch (`engine::kill::sweep`, shared by `crbot kill` and the
//! console) against the local exchange: every symbol cancelled, symbols the journal did not
//! know included, verified until the exchange shows nothing open, a 429 and a short ban
//! waited out, and a long ban reported as cancels not sent (never "all orders cancelled").
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use crbot::domain::{ClientOrderId, OrderRequest, OrderType, Side, Symbol, TimeInForce};
use crbot::engine::kill::{KillEvent, SweepConfig, sweep};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, Faults, SimConfig, SimHandle};
use tokio::sync::mpsc;

async fn exchange() -> (SimHandle, BinanceRest) {
    let config = SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    };
    let handle = sim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let rest = BinanceRest::without_ban_store(
        Endpoints::local(handle.addr()).unwrap(),
        Some(Credentials::hmac(&handle.api_key(), handle.api_secret().expose())),
        RestConfig::default(),
    )
    .unwrap();
    (handle, rest)
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// A resting limit buy well below the market.
async fn rest_order(rest: &BinanceRest, symbol: &str, qty: &str, price: &str, n: u32) {
    let req = OrderRequest {
        symbol: sym(symbol),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        qty: qty.parse().unwrap(),
        price: Some(price.parse().unwrap()),
        stop_price: None,
        client_order_id: ClientOrderId::new(&format!("test-{symbol}-{n}")).unwrap(),
    };
    assert!(
        rest.place_order_unchecked(&req).await.done().is_some(),
        "{symbol} not placed"
    );
}

fn drain(rx: &mut mpsc::UnboundedReceiver<KillEvent>) -> Vec<KillEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_cancels_known_and_unknown_symbols_until_none_is_open() {
    let (handle, rest) = exchange().await;
    rest_order(&rest, "BTCUSDT", "0.001", "95000", 1).await;
    rest_order(&rest, "BTCUSDT", "0.001", "94000", 2).await;
    rest_order(&rest, "ETHUSDT", "0.01", "3300", 1).await;
    rest_order(&rest, "SOLUSDT", "0.1", "178", 1).await;
    assert_eq!(rest.open_orders(None).await.unwrap().len(), 4);

    // The journal only knew BTCUSDT.
    let known: BTreeSet<Symbol> = [sym("BTCUSDT")].into_iter().collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let report = sweep(&rest, &known, &SweepConfig::default(), &tx).await;

    assert!(report.ok, "{report:?}");
    assert_eq!(report.cancelled, 4, "{report:?}");
    assert!(report.still_open.is_empty());
    let symbols: Vec<&str> = report.lines.iter().map(|l| l.symbol.as_str()).collect();
    assert_eq!(symbols, ["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    assert!(report.lines.iter().all(|l| l.ok == Some(true)), "{report:?}");
    assert!(rest.open_orders(None).await.unwrap().is_empty());
    let events = drain(&mut rx);
    assert!(
        matches!(events.last(), Some(KillEvent::Done { ok: true, .. })),
        "{events:?}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_with_nothing_open_is_ok_and_touches_no_symbol() {
    let (handle, rest) = exchange().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let report = sweep(&rest, &BTreeSet::new(), &SweepConfig::default(), &tx).await;
    assert!(report.ok);
    assert!(report.lines.is_empty());
    assert_eq!(report.cancelled, 0);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_waits_out_a_429_with_a_countdown_then_cancels() {
    let (handle, rest) = exchange().await;
    rest_order(&rest, "BTCUSDT", "0.001", "95000", 1).await;
    handle.faults().set(Faults {
        next_429: 1,
        ..Faults::default()
    });
    let known: BTreeSet<Symbol> = [sym("BTCUSDT")].into_iter().collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let report = sweep(&rest, &known, &SweepConfig::default(), &tx).await;
    assert!(report.ok, "{report:?}");
    assert!(rest.open_orders(None).await.unwrap().is_empty());
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, KillEvent::Countdown { secs } if *secs > 0)),
        "no countdown: {events:?}"
    );
    handle.shutdown().await;
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_waits_out_a_ban_that_ends_soon_then_cancels() {
    let (handle, rest) = exchange().await;
    rest_order(&rest, "BTCUSDT", "0.001", "95000", 1).await;
    // A 418 seen a moment ago, ending in 2 s: within what the sweep waits for.
    rest.note_ban(now_ms() + 2_000);
    let known: BTreeSet<Symbol> = [sym("BTCUSDT")].into_iter().collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let report = sweep(&rest, &known, &SweepConfig::default(), &tx).await;
    assert!(report.ok, "{report:?}");
    assert!(rest.open_orders(None).await.unwrap().is_empty());
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, KillEvent::Countdown { secs } if *secs > 0)),
        "the wait is shown: {events:?}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_during_a_long_ban_says_not_cancelled_and_never_all_orders_cancelled() {
    let (handle, rest) = exchange().await;
    rest_order(&rest, "BTCUSDT", "0.001", "95000", 1).await;
    rest.note_ban(now_ms() + 600_000);
    let known: BTreeSet<Symbol> = [sym("BTCUSDT")].into_iter().collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = SweepConfig {
        max_rounds: 2,
        ..SweepConfig::default()
    };
    let report = sweep(&rest, &known, &config, &tx).await;
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.cancelled, 0);
    let line = &report.lines[0];
    assert_eq!(line.ok, Some(false), "{line:?}");
    assert!(line.outcome.starts_with("not cancelled"), "{line:?}");
    let events = drain(&mut rx);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, KillEvent::Stage(crbot::engine::snapshot::KillStage::Cancelled))),
        "nothing was cancelled, so no 'all orders cancelled': {events:?}"
    );
    assert!(
        matches!(events.last(), Some(KillEvent::Done { ok: false, .. })),
        "{events:?}"
    );
    handle.shutdown().await;
}
