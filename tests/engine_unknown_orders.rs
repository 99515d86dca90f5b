//! The console engine and orders whose outcome is unknown: an entry left UNKNOWN by another
//! process is reconciled at the console's start as crbot's own order, with everything its
//! ticket asked for; and a ticket's result never says "accepted" before the exchange does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::{LocalOrderState, OrderPurpose, OrderStatus};
use crbot::engine::snapshot::{Command, TicketOutcome};
use crbot::engine::ticket::parse_draft;
use crbot::exchange::binance::rest::RestConfig;
use crbot::exchange::sim::Faults;
use crbot::risk::Broker;
use engine_support::*;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn an_entry_left_unknown_is_reconciled_at_the_console_start_as_crbots_own_and_protected() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    // Another crbot process decided, journaled and sent an entry, and never heard back.
    let mut core = primed_core(&ex, &journal_path(dir.path()), limits("5"), now).await;
    let (_, ask) = ex.book(BTC).await;
    let draft = crossing_buy(BTC, "0.001", ask);
    let quote = core.state.quotes.get(&sym(BTC)).copied();
    let ticket = parse_draft(&draft, quote.as_ref()).unwrap();
    let prepared = core.decide(&ticket, OrderPurpose::Entry, false, now).unwrap();
    let cid = prepared.request.client_order_id.clone();
    assert!(ex.rest.place_order(&prepared.request).await.done().is_some());
    core.mark_unknown(&cid, "no answer (test)", now);
    drop(core);

    let mut c = console_in(&ex, dir, limits("5"), false).await;
    let s = wait_snapshot(
        &mut c.snap,
        WAIT,
        "crbot's position with both protective legs",
        |s| {
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
        },
    )
    .await;
    assert_eq!(open_with(&s, BTC, OrderPurpose::StopLoss).len(), 1);
    let journal = c.journal();
    assert_eq!(
        journal.order(&cid).unwrap().unwrap().state,
        LocalOrderState::Exchange(OrderStatus::Filled)
    );
    let fills = journal.fills_for(&sym(BTC)).unwrap();
    assert!(!fills.is_empty());
    assert!(
        fills.iter().all(|f| f.client_order_id.as_ref() == Some(&cid)),
        "its fills carry its client order id: {fills:?}"
    );
    let buys = ex
        .all_orders(BTC)
        .await
        .into_iter()
        .filter(|o| o["side"] == "BUY")
        .count();
    assert_eq!(buys, 1, "never sent twice");
    c.stop().await;
}

#[tokio::test]
async fn a_ticket_result_says_sent_until_the_exchange_answers_then_accepted() {
    // The exchange holds each order's answer for 2 s (the order is placed at once).
    let ex = exchange_with(
        Faults {
            order_delay_ms: Some(2_000),
            ..Faults::default()
        },
        RestConfig::default(),
    )
    .await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a result for the ticket", |s| {
        s.ticket_result.is_some()
    })
    .await;
    let outcome = s.ticket_result.map(|r| r.outcome);
    assert!(
        matches!(outcome, Some(TicketOutcome::Sent { .. })),
        "nothing but the exchange's answer may say accepted: {outcome:?}"
    );
    wait_snapshot(&mut c.snap, WAIT, "the exchange's answer", |s| {
        matches!(
            s.ticket_result.as_ref().map(|r| &r.outcome),
            Some(TicketOutcome::Accepted { .. })
        )
    })
    .await;
    c.stop().await;
}
