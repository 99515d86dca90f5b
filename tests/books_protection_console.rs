//! Protection from the console engine (`Runtime::run` against the local exchange, no screen):
//! a stop the market has already crossed when the protection is placed, and a partial close
//! whose re-protection must cover crbot's position and never the user's own coins. Both on
//! each store, SQLite and PostgreSQL (`both_stores!` at the end).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::{LocalOrderState, OrderPurpose, OrderStatus, OrderType};
use crbot::engine::snapshot::{Command, StreamStatus};
use engine_support::*;
use rust_decimal::Decimal;

const WAIT: Duration = Duration::from_secs(10);

// The entry rests; while the console cannot see it (user stream down) the market falls
// through the entry's limit and then its stop-loss. When the console learns of the fill the
// exchange refuses the OCO (its stop would trigger at once): the console sells at market as
// the stop-loss, journals why, and says so in the log.
async fn a_stop_already_crossed_when_the_entry_fills_is_exited_at_market(store: Store) {
    let ex = exchange().await;
    let mut c = console_at(&ex, Home::new(store), limits("5"), false).await;
    let (bid, _) = ex.book(BTC).await;
    let draft = resting_buy(BTC, "0.001", bid);
    let stop: Decimal = draft.stop_loss.parse().unwrap();
    c.send(Command::SubmitTicket(draft)).await;
    wait_snapshot(&mut c.snap, WAIT, "a resting BTC entry", |s| {
        s.orders.iter().any(|o| {
            o.purpose == OrderPurpose::Entry && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
    })
    .await;

    ex.sim.faults().drop_ws_now();
    wait_snapshot(&mut c.snap, WAIT, "the user stream seen down", |s| {
        !matches!(s.header.user_stream.status, StreamStatus::Connected)
    })
    .await;
    // Through the limit (the fill becomes the last price), then under the stop.
    ex.sim.set_price(BTC, (stop * dec("0.99")).round_dp(2)).unwrap();
    ex.sim.set_price(BTC, (stop * dec("0.985")).round_dp(2)).unwrap();

    let s = wait_snapshot(&mut c.snap, WAIT, "the protection's outcome", |s| {
        logged(s, "already crossed") || logged(s, "unprotected") || logged(s, "protective OCO placed")
    })
    .await;
    let lines: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
    assert!(logged(&s, "already crossed"), "{lines:#?}");
    wait_until(WAIT, "the position sold at market", || async {
        ex.holding("BTC").await < dec("0.00001")
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the exit booked", |s| {
        s.positions
            .iter()
            .all(|p| p.symbol.as_str() != BTC || p.external || p.dust)
    })
    .await;
    assert!(
        s.positions
            .iter()
            .all(|p| p.symbol.as_str() != BTC || p.external || p.dust),
        "{:?}",
        s.positions
    );
    assert!(ex.open_orders().await.is_empty(), "nothing left resting");
    let journal = c.journal();
    let orders = journal.recent_orders(20).unwrap();
    assert!(
        orders
            .iter()
            .any(|o| o.purpose == OrderPurpose::StopLoss && o.order_type == OrderType::Market),
        "the exit is journaled as the stop-loss's action: {orders:?}"
    );
    let events = journal.recent_events(50).unwrap();
    assert!(
        events.iter().any(|e| e.record.kind == "PROTECTION_STOP_HIT"),
        "{events:?}"
    );
    c.stop().await;
}

// The user holds 0.5 BNB of their own. Closing half of crbot's protected BNB position sells
// half of crbot's position, and the new protection covers what is left of it, not the free
// balance (which includes the user's coins).
async fn closing_half_a_position_reprotects_crbots_rest_and_never_the_users_coins(store: Store) {
    let ex = exchange().await;
    let users_bnb = ex.holding("BNB").await;
    assert_eq!(users_bnb, dec("0.5"));
    let mut c = console_at(&ex, Home::new(store), limits("5"), false).await;
    let (_, ask) = ex.book(BNB).await;
    c.send(Command::SubmitTicket(crossing_buy(BNB, "0.7", ask))).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a protected BNB position", |s| {
        s.orders
            .iter()
            .filter(|o| o.purpose.is_protective() && o.state == LocalOrderState::Exchange(OrderStatus::New))
            .count()
            == 2
    })
    .await;
    let position = s
        .positions
        .iter()
        .find(|p| p.symbol.as_str() == BNB && !p.external)
        .unwrap()
        .qty
        .value();

    c.send(Command::ClosePosition {
        symbol: sym(BNB),
        percent: 50,
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a new OCO on the rest", |s| {
        let legs: Vec<_> = s
            .orders
            .iter()
            .filter(|o| o.purpose.is_protective() && o.state == LocalOrderState::Exchange(OrderStatus::New))
            .collect();
        legs.len() == 2 && legs.iter().all(|o| o.qty.value() < position)
    })
    .await;
    let rest = s
        .positions
        .iter()
        .find(|p| p.symbol.as_str() == BNB && !p.external)
        .unwrap()
        .qty
        .value();
    for leg in s
        .orders
        .iter()
        .filter(|o| o.purpose.is_protective() && o.state.is_open())
    {
        assert!(leg.qty.value() <= rest, "{leg:?} covers more than crbot's {rest}");
        assert!(
            rest - leg.qty.value() < dec("0.001"),
            "{leg:?} leaves a lot of {rest} bare"
        );
    }
    // The market falls through the stop: the user's 0.5 BNB is still there.
    let (bid, _) = ex.book(BNB).await;
    ex.sim
        .set_price(BNB, (bid.value() * dec("0.9")).round_dp(2))
        .unwrap();
    wait_until(WAIT, "the stop sold crbot's rest", || async {
        ex.holding("BNB").await < users_bnb + dec("0.001")
    })
    .await;
    assert!(
        ex.holding("BNB").await >= users_bnb,
        "the stop sold the user's own BNB"
    );
    c.stop().await;
}

both_stores!(
    a_stop_already_crossed_when_the_entry_fills_is_exited_at_market,
    closing_half_a_position_reprotects_crbots_rest_and_never_the_users_coins,
);
