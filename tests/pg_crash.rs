//! The PostgreSQL server stops under a running engine (`PgCluster::kill_server`: an immediate
//! shutdown, as a crash or a network cut looks to its clients), then comes back
//! (`restart_server`: crash recovery runs).
//!
//! - Server down at a ticket: the ticket is refused with a clear message and nothing reaches
//!   the exchange (never sent without being journaled); the kill switch still cancels; what
//!   was recorded before is kept; once the server is back, trading goes on.
//! - Server down while an order is in flight (placed, its answer held by the exchange): the
//!   answer and the fill cannot be journaled; after the server is back the engine reconciles
//!   at its next start: the order's row agrees with the exchange, every fill is journaled
//!   once, the order was never sent twice and its protection is placed once.
//!
//! Each test has a cluster of its own (it stops the server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crbot::domain::{LocalOrderState, OrderPurpose, OrderStatus};
use crbot::engine::snapshot::{Command, TicketOutcome};
use crbot::exchange::sim::Faults;
use engine_support::pg_support::PgCluster;
use engine_support::*;

const WAIT: Duration = Duration::from_secs(20);

fn home_on(cluster: &Arc<PgCluster>) -> Home {
    Home {
        dir: tempfile::tempdir().unwrap(),
        db: Some(cluster.database()),
    }
}

/// A protected position: both protective legs acknowledged by the exchange.
fn protected(s: &crbot::engine::snapshot::Snapshot, symbol: &str) -> bool {
    [OrderPurpose::StopLoss, OrderPurpose::TakeProfit]
        .iter()
        .all(|p| !open_with(s, symbol, *p).is_empty())
}

#[tokio::test]
async fn with_the_server_down_a_ticket_is_refused_unsent_the_kill_still_cancels_and_trading_resumes_after() {
    let cluster = Arc::new(PgCluster::start());
    let ex = exchange().await;
    let mut c = console_at(&ex, home_on(&cluster), limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a protected BTC position", |s| {
        protected(s, BTC)
    })
    .await;
    let recorded: Vec<_> = s.orders.iter().map(|o| o.client_order_id.clone()).collect();

    cluster.kill_server();
    let (bid, _) = ex.book(ETH).await;
    c.send(Command::SubmitTicket(resting_buy(ETH, "0.01", bid))).await;
    let s = wait_snapshot(
        &mut c.snap,
        WAIT,
        "the ticket refused for storage",
        |s| matches!(&s.ticket_result, Some(r) if r.draft.symbol == ETH),
    )
    .await;
    let Some(TicketOutcome::Rejected { message, .. }) = s.ticket_result.map(|r| r.outcome) else {
        panic!("expected a refusal")
    };
    assert!(
        message.contains("not sent") && message.contains("journal"),
        "clear message: {message}"
    );
    assert!(
        ex.all_orders(ETH).await.is_empty(),
        "nothing sent that could not be recorded"
    );
    for text in s.log.iter().map(|l| &l.text).chain(&s.header.warnings) {
        assert!(!text.contains(cluster.password()), "{text}");
    }

    // The kill switch does not need the journal to cancel.
    c.send(Command::Kill).await;
    wait_snapshot(&mut c.snap, WAIT, "HALTED and the sweep done", |s| {
        is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done)
    })
    .await;
    assert!(
        ex.open_orders().await.is_empty(),
        "the kill cancelled the protective legs"
    );

    // The server is back: what was recorded before is there, and the journal is written again.
    cluster.restart_server();
    let home = c.stop_home().await;
    let journal = home.open(crbot::domain::Mode::Sim);
    for cid in &recorded {
        assert!(journal.order(cid).unwrap().is_some(), "order {cid} kept");
    }
    assert!(
        !journal.fills_for(&sym(BTC)).unwrap().is_empty(),
        "the entry's fill kept"
    );
    journal.set_meta("after_restart", "1").unwrap();
    assert_eq!(journal.get_meta("after_restart").unwrap().as_deref(), Some("1"));
}

#[tokio::test]
async fn an_order_in_flight_when_the_server_stops_is_reconciled_once_it_is_back() {
    let cluster = Arc::new(PgCluster::start());
    let ex = exchange().await;
    let mut c = console_at(&ex, home_on(&cluster), limits("5"), false).await;
    // The exchange places the next order at once but holds its answer.
    ex.sim.faults().set(Faults {
        order_delay_ms: Some(3_000),
        ..Faults::default()
    });
    let (bid, _) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(resting_buy(BTC, "0.001", bid)))
        .await;
    // In flight: journaled (SENDING) and resting on the exchange, its answer not back yet.
    wait_until(WAIT, "the order on the exchange", || async {
        !ex.all_orders(BTC).await.is_empty()
    })
    .await;
    cluster.kill_server();
    // It fills while nothing can be recorded; its answer comes back then too.
    ex.sim
        .set_price(BTC, (bid.value() * dec("0.98")).round_dp(2))
        .unwrap();
    wait_until(WAIT, "the entry filled on the exchange", || async {
        !ex.trades(BTC).await.is_empty()
    })
    .await;
    wait_snapshot(&mut c.snap, WAIT, "the journal failure shown", |s| {
        s.header
            .warnings
            .iter()
            .any(|w| w.contains("journal cannot be written"))
    })
    .await;
    // The held answer arrives (3 s after the order was placed).
    tokio::time::sleep(Duration::from_secs(4)).await;
    ex.sim.faults().set(Faults::default());
    assert!(
        ex.open_orders().await.is_empty(),
        "no protective order sent while its legs could not be journaled"
    );

    cluster.restart_server();
    let home = c.stop_home().await;
    let rows = home.open(crbot::domain::Mode::Sim).recent_orders(100).unwrap();
    let entry = rows
        .iter()
        .find(|o| o.purpose == OrderPurpose::Entry)
        .expect("the entry was journaled before it was sent");
    let cid = entry.client_order_id.clone();
    assert_ne!(
        entry.state,
        LocalOrderState::Exchange(OrderStatus::Filled),
        "the journal never claims an outcome it did not record"
    );
    assert!(
        rows.iter().all(|o| o.purpose == OrderPurpose::Entry),
        "no leg recorded"
    );

    // The next start reconciles with the exchange.
    let mut c = console_at(&ex, home, limits("5"), false).await;
    wait_snapshot(
        &mut c.snap,
        WAIT,
        "the position protected after the restart",
        |s| protected(s, BTC),
    )
    .await;
    let journal = c.journal();
    let row = journal.order(&cid).unwrap().unwrap();
    assert_eq!(row.state, LocalOrderState::Exchange(OrderStatus::Filled));
    let on_exchange = ex.all_orders(BTC).await;
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for o in &on_exchange {
        *sent
            .entry(o["clientOrderId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(sent.get(cid.as_str()), Some(&1), "never sent twice");
    assert!(sent.values().all(|n| *n == 1), "no client id twice: {sent:?}");
    assert_eq!(
        on_exchange.iter().filter(|o| o["side"] == "BUY").count(),
        1,
        "one BUY for one ticket"
    );
    assert_eq!(
        on_exchange.iter().filter(|o| o["type"] == "LIMIT_MAKER").count(),
        1,
        "one protective OCO"
    );
    let traded: Vec<u64> = ex
        .trades(BTC)
        .await
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let mut journaled: Vec<u64> = journal
        .fills_for(&sym(BTC))
        .unwrap()
        .iter()
        .map(|f| f.trade_id)
        .collect();
    journaled.sort();
    let mut traded_sorted = traded.clone();
    traded_sorted.sort();
    assert!(!traded.is_empty());
    assert_eq!(journaled, traded_sorted, "every fill journaled exactly once");
    c.stop().await;
}
