//! Crash safety at the two moments of an order's life where the journal and the exchange can
//! disagree: the order row is journaled (SENDING) but the process dies before sending it, or
//! after sending it but before the answer is recorded. The first process is a `Core` that is
//! dropped at that moment (everything it wrote is durable: the journal commits each write);
//! the restart is a real `Runtime` on the same journal, which must reconcile before trading.
//! Each test runs on both stores, SQLite and PostgreSQL (`both_stores!` at the end).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::broker::OrderOutcome;
use crbot::domain::{LocalOrderState, OrderPurpose, OrderStatus, Price, Side, Ticket, TicketKind};
use crbot::engine::core::Prepared;
use crbot::journal::KillTrigger;
use crbot::risk::Broker;
use engine_support::*;

const WAIT: Duration = Duration::from_secs(10);

fn price(d: rust_decimal::Decimal) -> Price {
    Price::try_new(d.round_dp(2)).unwrap()
}

/// Journals an approved crossing BUY on BTCUSDT (SENDING) with its stop-loss and
/// take-profit, as the console does just before sending it.
async fn journaled_entry(ex: &Ex, home: &Home) -> Prepared {
    let now = now_ms();
    let mut core = primed_core_at(ex, home, limits("5"), now).await;
    let (_, ask) = ex.book(BTC).await;
    let a = ask.value();
    let ticket = Ticket {
        symbol: sym(BTC),
        side: Side::Buy,
        kind: TicketKind::Limit {
            price: price(a * dec("1.002")),
        },
        qty: "0.001".parse().unwrap(),
        stop_loss: Some(price(a * dec("0.98"))),
        take_profit: Some(price(a * dec("1.03"))),
    };
    let prepared = core.decide(&ticket, OrderPurpose::Entry, false, now).unwrap();
    let row = core
        .journal
        .order(&prepared.request.client_order_id)
        .unwrap()
        .unwrap();
    assert_eq!(row.state, LocalOrderState::Sending);
    prepared
    // `core` is dropped here: the process is gone.
}

async fn an_order_journaled_but_never_sent_is_marked_not_sent_after_a_restart(store: Store) {
    let ex = exchange().await;
    let home = Home::new(store);
    let prepared = journaled_entry(&ex, &home).await;
    let cid = prepared.request.client_order_id.clone();

    let mut c = console_at(&ex, home, limits("5"), false).await;
    let journal = c.journal();
    wait_until(WAIT, "the unsent order settled", || async {
        journal.order(&cid).unwrap().unwrap().state == LocalOrderState::NotSent
    })
    .await;
    assert!(ex.all_orders(BTC).await.is_empty(), "the restart did not send it");
    let s = wait_snapshot(&mut c.snap, WAIT, "nothing open", |s| s.orders.is_empty()).await;
    assert!(s.positions.iter().all(|p| p.symbol.as_str() != BTC || p.external));
    c.stop().await;
}

async fn an_order_sent_but_whose_answer_was_never_recorded_is_adopted_once_and_protected_after_a_restart(
    store: Store,
) {
    let ex = exchange().await;
    let home = Home::new(store);
    let prepared = journaled_entry(&ex, &home).await;
    let cid = prepared.request.client_order_id.clone();
    let OrderOutcome::Done(placed) = ex.rest.place_order(&prepared.request).await else {
        panic!()
    };
    assert_eq!(placed.order.status, OrderStatus::Filled);
    // The answer dies with the process.

    let mut c = console_at(&ex, home, limits("5"), false).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the position with its protective legs", |s| {
        let acked = |p| {
            s.orders.iter().any(|o| {
                o.symbol.as_str() == BTC
                    && o.purpose == p
                    && o.state == LocalOrderState::Exchange(OrderStatus::New)
            })
        };
        s.positions
            .iter()
            .any(|p| p.symbol.as_str() == BTC && !p.external && !p.qty.is_zero())
            && acked(OrderPurpose::StopLoss)
            && acked(OrderPurpose::TakeProfit)
    })
    .await;
    assert_eq!(open_with(&s, BTC, OrderPurpose::StopLoss).len(), 1);

    let journal = c.journal();
    let row = journal.order(&cid).unwrap().unwrap();
    assert_eq!(row.state, LocalOrderState::Exchange(OrderStatus::Filled));
    assert_eq!(row.order_id, Some(placed.order.order_id));
    let same = ex.all_orders(BTC).await;
    assert_eq!(
        same.iter().filter(|o| o["clientOrderId"] == cid.as_str()).count(),
        1,
        "never resent"
    );
    let fills = journal.fills_for(&sym(BTC)).unwrap();
    let own: Vec<u64> = fills
        .iter()
        .filter(|f| f.client_order_id.as_ref() == Some(&cid))
        .map(|f| f.trade_id)
        .collect();
    let mut traded: Vec<u64> = placed.fills.iter().map(|f| f.trade_id).collect();
    traded.sort();
    assert_eq!(own, traded, "each fill journaled once, as crbot's own");
    c.stop().await;
}

async fn a_daily_loss_found_at_restart_reduces_and_cancels_the_entries_left_open(store: Store) {
    let ex = exchange().await;
    let mut c = console_at(&ex, Home::new(store), limits("0.5"), false).await;
    let (bid, _) = ex.book(ETH).await;
    c.send(crbot::engine::snapshot::Command::SubmitTicket(resting_buy(
        ETH, "0.01", bid,
    )))
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a resting ETH entry", |s| {
        s.orders.iter().any(|o| {
            o.symbol.as_str() == ETH
                && o.purpose == OrderPurpose::Entry
                && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
    })
    .await;
    let entry = open_with(&s, ETH, OrderPurpose::Entry)[0].to_string();
    let home = c.stop_home().await;

    // While the console is closed the account loses ~1 % (0.5 BNB falls 30 %).
    let (bnb, _) = ex.book(BNB).await;
    ex.sim
        .set_price(BNB, (bnb.value() * dec("0.7")).round_dp(2))
        .unwrap();

    let mut c = console_at(&ex, home, limits("0.5"), false).await;
    wait_snapshot(&mut c.snap, WAIT, "REDUCING by daily loss", is_reducing).await;
    wait_until(WAIT, "the entry left open is cancelled", || async {
        ex.all_orders(ETH)
            .await
            .iter()
            .any(|o| o["clientOrderId"] == entry.as_str() && o["status"] == "CANCELED")
    })
    .await;
    c.stop().await;
}

/// crbot died in the middle of a kill switch: the halt is in the journal, but the sweep never
/// finished and an order still rests on the exchange. The next console start finishes the
/// sweep (and stays HALTED); a sweep that did finish is not repeated.
async fn a_kill_interrupted_by_a_crash_is_finished_at_the_next_start(store: Store) {
    let ex = exchange().await;
    let home = Home::new(store);
    {
        let now = now_ms();
        let mut core = primed_core_at(&ex, &home, limits("5"), now).await;
        let (bid, _) = ex.book(BTC).await;
        let ticket = Ticket {
            symbol: sym(BTC),
            side: Side::Buy,
            kind: TicketKind::Limit {
                price: price(bid.value() * dec("0.97")),
            },
            qty: "0.001".parse().unwrap(),
            stop_loss: Some(price(bid.value() * dec("0.95"))),
            take_profit: Some(price(bid.value() * dec("1.02"))),
        };
        let prepared = core.decide(&ticket, OrderPurpose::Entry, false, now).unwrap();
        let placed = ex.rest.place_order(&prepared.request).await;
        let OrderOutcome::Done(placed) = placed else {
            panic!("placed: {placed:?}")
        };
        core.on_exchange_order(&placed.order, now);
        core.halt(KillTrigger::Key, "kill switch pressed", now).unwrap();
        // The process dies here: halted, nothing cancelled yet.
    }
    assert_eq!(
        ex.open_orders().await.len(),
        1,
        "the resting entry is still on the exchange"
    );

    let mut c = console_at(&ex, home, limits("5"), false).await;
    wait_until(WAIT, "the interrupted sweep finished", || async {
        ex.open_orders().await.is_empty()
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the sweep reported", |s| {
        s.kill.as_ref().is_some_and(|k| k.done)
    })
    .await;
    assert!(
        s.header.trading.is_halted(),
        "still HALTED: a restart never re-arms"
    );
    let journal = c.journal();
    assert!(
        !crbot::engine::core::Core::restore(
            journal,
            crbot::domain::Mode::Sim,
            limits("5"),
            crbot::journal::TicketSource::Tui,
            now_ms()
        )
        .unwrap()
        .kill_sweep_pending(),
        "the finished sweep is journaled"
    );
    c.stop().await;
}

both_stores!(
    an_order_journaled_but_never_sent_is_marked_not_sent_after_a_restart,
    an_order_sent_but_whose_answer_was_never_recorded_is_adopted_once_and_protected_after_a_restart,
    a_daily_loss_found_at_restart_reduces_and_cancels_the_entries_left_open,
    a_kill_interrupted_by_a_crash_is_finished_at_the_next_start,
);
