//! The console engine end to end, without a screen: `Runtime::run` against the local exchange
//! with crbot's real client and a journal on disk, driven through its command channel and
//! watched through its snapshots, the journal, and the exchange itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::{LocalOrderState, OrderPurpose, OrderStatus};
use crbot::engine::snapshot::{Command, Snapshot, StreamStatus, TicketOutcome};
use crbot::exchange::binance::rest::RestConfig;
use crbot::exchange::sim::Faults;
use crbot::journal::{TradingStateCode, TradingStateRecord};
use engine_support::*;
use rust_decimal::Decimal;

const WAIT: Duration = Duration::from_secs(10);

fn exchange_status(o: &serde_json::Value) -> &str {
    o["status"].as_str().unwrap_or("")
}

/// Waits until the snapshot shows a crbot position on `symbol` and both protective legs
/// acknowledged by the exchange; returns their client ids (stop-loss, take-profit).
async fn protected_position(c: &mut Console, symbol: &str) -> (String, String) {
    let s = wait_snapshot(
        &mut c.snap,
        WAIT,
        "position with its stop-loss and take-profit",
        |s| {
            let acked = |p| {
                s.orders.iter().any(|o| {
                    o.symbol.as_str() == symbol
                        && o.purpose == p
                        && o.state == LocalOrderState::Exchange(OrderStatus::New)
                })
            };
            s.positions
                .iter()
                .any(|p| p.symbol.as_str() == symbol && !p.external && !p.qty.is_zero())
                && acked(OrderPurpose::StopLoss)
                && acked(OrderPurpose::TakeProfit)
        },
    )
    .await;
    let sl = open_with(&s, symbol, OrderPurpose::StopLoss);
    let tp = open_with(&s, symbol, OrderPurpose::TakeProfit);
    assert_eq!((sl.len(), tp.len()), (1, 1), "one protective OCO: {:?}", s.orders);
    (sl[0].to_string(), tp[0].to_string())
}

/// The ticket's outcome went UNKNOWN and was then settled by a query: only an Unknown
/// outcome is ever refreshed to "reconciled: …".
fn reconciled_ticket(s: &Snapshot) -> bool {
    matches!(&s.ticket_result, Some(r) if matches!(&r.outcome,
        TicketOutcome::Accepted { detail, .. } if detail.starts_with("reconciled")))
}

#[tokio::test]
async fn kill_halts_durably_cancels_everything_refuses_tickets_then_flatten_and_rearm_work() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;

    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let (sl, tp) = protected_position(&mut c, BTC).await;
    let open = ex.open_orders().await;
    let mut ids: Vec<&str> = open
        .iter()
        .map(|o| o["clientOrderId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![sl.as_str(), tp.as_str()];
    want.sort();
    assert_eq!(ids, want, "the exchange holds exactly the two protective legs");
    let types: Vec<&str> = open.iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"STOP_LOSS") && types.contains(&"LIMIT_MAKER"),
        "{types:?}"
    );

    c.send(Command::Kill).await;
    wait_snapshot(&mut c.snap, WAIT, "HALTED and the sweep done", |s| {
        is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done)
    })
    .await;
    let latest = c.journal().latest_trading_state().unwrap().unwrap().record;
    assert_eq!(latest.state, TradingStateCode::Halted);
    assert!(
        ex.open_orders().await.is_empty(),
        "the exchange shows no open orders after the kill"
    );
    // The outcome per symbol and the summary are journaled, and a backup was taken.
    let events = c.journal().recent_events(50).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.record.kind == "KILL_CANCEL" && e.record.symbol.as_ref() == Some(&sym(BTC))),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.record.kind == "KILL_DONE"), "{events:?}");
    let backups = std::fs::read_dir(c.dir.path().join("backups"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(backups, 1, "one online backup after the kill");

    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(
        &mut c.snap,
        WAIT,
        "the new ticket refused",
        |s| matches!(&s.ticket_result, Some(r) if matches!(r.outcome, TicketOutcome::RiskRejected { .. })),
    )
    .await;
    let Some(TicketOutcome::RiskRejected { reasons }) = s.ticket_result.map(|r| r.outcome) else {
        panic!()
    };
    assert!(reasons.iter().any(|r| r.code == "STATE_HALTED"), "{reasons:?}");
    assert_eq!(
        ex.all_orders(BTC)
            .await
            .iter()
            .filter(|o| o["side"] == "BUY")
            .count(),
        1,
        "no second buy"
    );

    // Stage two: the position is sold; what rounding leaves is below one lot step.
    let before = ex.holding("BTC").await;
    assert!(before >= dec("0.0009"), "bought {before}");
    c.send(Command::Flatten { percent: 100 }).await;
    wait_until(WAIT, "BTC sold down to dust", || async {
        ex.holding("BTC").await < dec("0.00001")
    })
    .await;
    let sells: Vec<_> = ex
        .all_orders(BTC)
        .await
        .into_iter()
        .filter(|o| o["side"] == "SELL" && o["type"] == "MARKET")
        .collect();
    assert_eq!(sells.len(), 1, "one market sell: {sells:?}");
    assert_eq!(exchange_status(&sells[0]), "FILLED");

    c.send(Command::Rearm { passphrase: None }).await;
    wait_snapshot(&mut c.snap, WAIT, "ACTIVE after re-arm", is_active).await;
    let latest = c.journal().latest_trading_state().unwrap().unwrap().record;
    assert_eq!(
        (latest.state, latest.trigger.as_str()),
        (TradingStateCode::Active, "REARM")
    );
    c.stop().await;
}

#[tokio::test]
async fn a_halt_written_by_another_process_shows_within_a_second_and_stops_tickets() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;

    // What `crbot kill` does to the journal: its own connection, one HALTED row.
    let other = c.journal();
    other
        .record_trading_state(&TradingStateRecord {
            time_ms: now_ms(),
            state: TradingStateCode::Halted,
            reason: "crbot kill from another shell".into(),
            trigger: "KILL_CLI".into(),
            actor: "cli".into(),
        })
        .unwrap();
    wait_snapshot(
        &mut c.snap,
        Duration::from_secs(1),
        "HALTED seen from the journal",
        is_halted,
    )
    .await;

    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the ticket refused", |s| {
        s.ticket_result.is_some()
    })
    .await;
    let Some(TicketOutcome::RiskRejected { reasons }) = s.ticket_result.map(|r| r.outcome) else {
        panic!("expected a risk refusal")
    };
    assert!(reasons.iter().any(|r| r.code == "STATE_HALTED"), "{reasons:?}");
    assert!(ex.all_orders(BTC).await.is_empty());

    // `crbot resume` from that shell re-arms the running console the same way.
    other
        .record_trading_state(&TradingStateRecord {
            time_ms: now_ms(),
            state: TradingStateCode::Active,
            reason: "crbot resume".into(),
            trigger: "REARM".into(),
            actor: "cli".into(),
        })
        .unwrap();
    wait_snapshot(
        &mut c.snap,
        Duration::from_secs(1),
        "ACTIVE seen from the journal",
        is_active,
    )
    .await;
    c.stop().await;
}

#[tokio::test]
async fn an_order_whose_answer_is_lost_is_resolved_by_query_and_never_resent() {
    let ex = exchange_with(Faults::default(), RestConfig::default()).await;
    let mut c = console(&ex, limits("5"), false).await;
    // The exchange places the next order, then answers 503 -1007.
    ex.sim.faults().set(Faults {
        order_503: 1,
        ..Faults::default()
    });
    let (_, ask) = ex.book(BTC).await;

    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(
        &mut c.snap,
        WAIT,
        "the unknown outcome reconciled",
        reconciled_ticket,
    )
    .await;
    let Some(TicketOutcome::Accepted {
        client_order_id: cid, ..
    }) = s.ticket_result.map(|r| r.outcome)
    else {
        panic!()
    };
    protected_position(&mut c, BTC).await;

    let same: Vec<_> = ex
        .all_orders(BTC)
        .await
        .into_iter()
        .filter(|o| o["clientOrderId"] == cid.as_str())
        .collect();
    assert_eq!(
        same.len(),
        1,
        "exactly one order with the client id on the exchange"
    );
    let on_exchange = &same[0];
    let journal = c.journal();
    let row = journal.order(&cid).unwrap().unwrap();
    assert_eq!(
        row.state.as_code(),
        exchange_status(on_exchange),
        "journal state matches the exchange"
    );
    assert_eq!(row.order_id, on_exchange["orderId"].as_u64());
    assert_eq!(
        row.executed_qty.value(),
        on_exchange["executedQty"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap()
    );
    let order_id = on_exchange["orderId"].as_u64().unwrap();
    let trades = ex
        .trades(BTC)
        .await
        .into_iter()
        .filter(|t| t["orderId"].as_u64() == Some(order_id))
        .count();
    let fills = journal
        .fills_for(&sym(BTC))
        .unwrap()
        .into_iter()
        .filter(|f| f.order_id == order_id)
        .count();
    assert_eq!(fills, trades, "every fill of the order journaled once");
    c.stop().await;
}

#[tokio::test]
async fn a_daily_loss_breach_reduces_cancels_entries_and_keeps_protection() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("0.5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let (sl, tp) = protected_position(&mut c, BTC).await;
    let (bid, _) = ex.book(ETH).await;
    c.send(Command::SubmitTicket(resting_buy(ETH, "0.01", bid))).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a resting ETH entry", |s| {
        s.orders.iter().any(|o| {
            o.symbol.as_str() == ETH
                && o.purpose == OrderPurpose::Entry
                && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
    })
    .await;
    let entry = open_with(&s, ETH, OrderPurpose::Entry)[0].to_string();

    // The account holds 0.5 BNB (~326 USDT): a 30 % fall costs ~1 % of equity.
    let (bnb, _) = ex.book(BNB).await;
    ex.sim
        .set_price(BNB, (bnb.value() * dec("0.7")).round_dp(2))
        .unwrap();

    wait_snapshot(&mut c.snap, WAIT, "REDUCING by daily loss", is_reducing).await;
    let latest = c.journal().latest_trading_state().unwrap().unwrap().record;
    assert_eq!(
        (latest.state, latest.trigger.as_str()),
        (TradingStateCode::Reducing, "DAILY_LOSS")
    );
    assert!(
        latest.reason.contains("DAILY"),
        "the numbers are journaled: {}",
        latest.reason
    );
    wait_until(WAIT, "the ETH entry cancelled on the exchange", || async {
        ex.all_orders(ETH)
            .await
            .iter()
            .any(|o| o["clientOrderId"] == entry.as_str() && exchange_status(o) == "CANCELED")
    })
    .await;
    let open = ex.open_orders().await;
    let ids: Vec<&str> = open
        .iter()
        .map(|o| o["clientOrderId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&sl.as_str()) && ids.contains(&tp.as_str()),
        "protective legs stay: {ids:?}"
    );
    assert_eq!(ids.len(), 2, "only the protective legs are open: {ids:?}");
    let s = wait_snapshot(&mut c.snap, WAIT, "the entry closed locally", |s| {
        open_with(s, ETH, OrderPurpose::Entry).is_empty()
    })
    .await;
    assert_eq!(open_with(&s, BTC, OrderPurpose::StopLoss).len(), 1);
    assert_eq!(open_with(&s, BTC, OrderPurpose::TakeProfit).len(), 1);

    // Reducing: a new entry is refused.
    let (bid, _) = ex.book(ETH).await;
    c.send(Command::SubmitTicket(resting_buy(ETH, "0.01", bid))).await;
    let s = wait_snapshot(
        &mut c.snap,
        WAIT,
        "the new entry refused",
        |s| matches!(&s.ticket_result, Some(r) if matches!(r.outcome, TicketOutcome::RiskRejected { .. })),
    )
    .await;
    let Some(TicketOutcome::RiskRejected { reasons }) = s.ticket_result.map(|r| r.outcome) else {
        panic!()
    };
    assert!(reasons.iter().any(|r| r.code == "STATE_REDUCING"), "{reasons:?}");
    assert_eq!(ex.all_orders(ETH).await.len(), 1, "no second ETH order");
    c.stop().await;
}

#[tokio::test]
async fn a_fill_while_the_user_stream_is_down_is_journaled_once_and_protected_after_reconnect() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (bid, _) = ex.book(ETH).await;
    let draft = resting_buy(ETH, "0.01", bid);
    let limit: Decimal = draft.price.parse().unwrap();
    c.send(Command::SubmitTicket(draft)).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a resting ETH entry", |s| {
        s.orders.iter().any(|o| {
            o.symbol.as_str() == ETH
                && o.purpose == OrderPurpose::Entry
                && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
    })
    .await;
    let cid = open_with(&s, ETH, OrderPurpose::Entry)[0].clone();

    ex.sim.faults().drop_ws_now();
    wait_snapshot(&mut c.snap, WAIT, "the user stream seen down", |s| {
        !matches!(s.header.user_stream.status, StreamStatus::Connected)
    })
    .await;
    // While it is down (the client waits at least 250 ms before reconnecting), the price falls
    // through the resting buy.
    ex.sim.set_price(ETH, (limit * dec("0.995")).round_dp(2)).unwrap();
    let filled = ex.all_orders(ETH).await;
    assert!(
        filled
            .iter()
            .any(|o| o["clientOrderId"] == cid.as_str() && exchange_status(o) == "FILLED"),
        "the sim filled the entry: {filled:?}"
    );

    wait_snapshot(&mut c.snap, WAIT, "reconnected and the entry FILLED", |s| {
        matches!(s.header.user_stream.status, StreamStatus::Connected)
            && s.positions
                .iter()
                .any(|p| p.symbol.as_str() == ETH && !p.external)
    })
    .await;
    let journal = c.journal();
    wait_until(WAIT, "the entry FILLED in the journal", || async {
        journal.order(&cid).unwrap().unwrap().state == LocalOrderState::Exchange(OrderStatus::Filled)
    })
    .await;
    let trades: Vec<u64> = ex
        .trades(ETH)
        .await
        .iter()
        .filter(|t| t["isBuyer"] == true)
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let fills: Vec<u64> = journal
        .fills_for(&sym(ETH))
        .unwrap()
        .into_iter()
        .filter(|f| f.client_order_id.as_ref() == Some(&cid))
        .map(|f| f.trade_id)
        .collect();
    assert!(!trades.is_empty());
    assert_eq!(fills, trades, "each fill journaled exactly once");

    // The entry had a stop-loss and take-profit: its protective OCO must follow the fill even
    // though the fill was learned from the resync.
    protected_position(&mut c, ETH).await;
    c.stop().await;
}

#[tokio::test]
async fn an_order_whose_answer_times_out_is_resolved_by_query_and_never_resent() {
    let config = RestConfig {
        order_timeout: Duration::from_millis(300),
        ..RestConfig::default()
    };
    let ex = exchange_with(Faults::default(), config).await;
    let mut c = console(&ex, limits("5"), false).await;
    // The exchange places the next orders but holds each answer past the client's timeout.
    ex.sim.faults().set(Faults {
        order_delay_ms: Some(1_500),
        ..Faults::default()
    });
    let (_, ask) = ex.book(BTC).await;

    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    wait_snapshot(
        &mut c.snap,
        WAIT,
        "the timed-out order reconciled",
        reconciled_ticket,
    )
    .await;
    ex.sim.faults().set(Faults::default());
    let entry = c.journal().recent_orders(10).unwrap();
    let cid = entry
        .iter()
        .find(|o| o.purpose == OrderPurpose::Entry)
        .unwrap()
        .client_order_id
        .clone();
    protected_position(&mut c, BTC).await;

    let same: Vec<_> = ex
        .all_orders(BTC)
        .await
        .into_iter()
        .filter(|o| o["clientOrderId"] == cid.as_str())
        .collect();
    assert_eq!(
        same.len(),
        1,
        "exactly one order with the client id on the exchange"
    );
    let row = c.journal().order(&cid).unwrap().unwrap();
    assert_eq!(
        row.state.as_code(),
        exchange_status(&same[0]),
        "journal state matches the exchange"
    );
    assert_eq!(row.state, LocalOrderState::Exchange(OrderStatus::Filled));
    c.stop().await;
}

#[tokio::test]
async fn an_entry_whose_answer_and_stream_report_are_both_lost_still_gets_its_protection() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    // A network hiccup: the user stream drops and the next order's answer is lost (503).
    ex.sim.faults().set(Faults {
        order_503: 1,
        ..Faults::default()
    });
    ex.sim.faults().drop_ws_now();
    wait_snapshot(&mut c.snap, WAIT, "the user stream seen down", |s| {
        !matches!(s.header.user_stream.status, StreamStatus::Connected)
    })
    .await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    wait_snapshot(
        &mut c.snap,
        WAIT,
        "the unknown outcome reconciled",
        reconciled_ticket,
    )
    .await;

    // The query says FILLED; the fills come from the resync once the stream is back. The
    // protective OCO must still be placed, sized from those fills.
    protected_position(&mut c, BTC).await;
    let entry = c.journal().recent_orders(10).unwrap();
    let entry = entry
        .iter()
        .find(|o| o.purpose == OrderPurpose::Entry)
        .unwrap()
        .clone();
    let order_id = entry.order_id.unwrap();
    let trades = ex
        .trades(BTC)
        .await
        .into_iter()
        .filter(|t| t["orderId"].as_u64() == Some(order_id))
        .count();
    let fills = c.journal().fills_for(&sym(BTC)).unwrap();
    let own = fills
        .iter()
        .filter(|f| f.client_order_id.as_ref() == Some(&entry.client_order_id))
        .count();
    assert_eq!(
        (own, fills.len()),
        (trades, trades),
        "every fill journaled once, as crbot's own"
    );
    c.stop().await;
}

#[tokio::test]
async fn a_daily_loss_breach_with_halt_and_flatten_configured_cancels_and_sells_the_position() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("0.5"), true).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    protected_position(&mut c, BTC).await;
    assert!(ex.holding("BTC").await >= dec("0.0009"));

    let (bnb, _) = ex.book(BNB).await;
    ex.sim
        .set_price(BNB, (bnb.value() * dec("0.7")).round_dp(2))
        .unwrap();

    wait_snapshot(&mut c.snap, WAIT, "HALTED by the breach", is_halted).await;
    let latest = c.journal().latest_trading_state().unwrap().unwrap().record;
    assert_eq!(latest.state, TradingStateCode::Halted);
    wait_until(WAIT, "nothing open and BTC sold down to dust", || async {
        ex.open_orders().await.is_empty() && ex.holding("BTC").await < dec("0.00001")
    })
    .await;
    c.stop().await;
}

#[tokio::test]
async fn an_entry_filled_while_the_console_was_closed_is_booked_once_and_protected_after_restart() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (bid, _) = ex.book(ETH).await;
    let draft = resting_buy(ETH, "0.01", bid);
    let limit: Decimal = draft.price.parse().unwrap();
    c.send(Command::SubmitTicket(draft)).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a resting ETH entry", |s| {
        s.orders.iter().any(|o| {
            o.symbol.as_str() == ETH
                && o.purpose == OrderPurpose::Entry
                && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
    })
    .await;
    let cid = open_with(&s, ETH, OrderPurpose::Entry)[0].clone();
    let dir = c.stop().await;

    // While the console is closed the entry fills.
    ex.sim.set_price(ETH, (limit * dec("0.995")).round_dp(2)).unwrap();
    let on_exchange = ex.all_orders(ETH).await;
    assert!(
        on_exchange
            .iter()
            .any(|o| o["clientOrderId"] == cid.as_str() && exchange_status(o) == "FILLED")
    );

    let mut c = console_in(&ex, dir, limits("5"), false).await;
    protected_position(&mut c, ETH).await;
    let journal = c.journal();
    assert_eq!(
        journal.order(&cid).unwrap().unwrap().state,
        LocalOrderState::Exchange(OrderStatus::Filled)
    );
    let trades: Vec<u64> = ex
        .trades(ETH)
        .await
        .iter()
        .filter(|t| t["isBuyer"] == true)
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let fills: Vec<u64> = journal
        .fills_for(&sym(ETH))
        .unwrap()
        .into_iter()
        .filter(|f| f.client_order_id.as_ref() == Some(&cid))
        .map(|f| f.trade_id)
        .collect();
    assert!(!trades.is_empty());
    assert_eq!(fills, trades, "each fill journaled exactly once, as crbot's own");
    c.stop().await;
}

#[tokio::test]
async fn the_kill_switch_waits_out_a_rate_limit_then_cancels_everything() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    protected_position(&mut c, BTC).await;
    assert_eq!(ex.open_orders().await.len(), 2);

    // The next request is answered 429 with a Retry-After of 1 s. (One symbol only: the sim
    // bans the IP for any request that arrives during the back-off, and concurrent cancels
    // for several symbols are already in flight when the first 429 comes back.)
    ex.sim.faults().set(Faults {
        next_429: 1,
        ..Faults::default()
    });
    c.send(Command::Kill).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the sweep done", |s| {
        is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done)
    })
    .await;
    assert!(logged(&s, "rate-limited"), "the countdown is shown");
    let log: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
    assert!(
        logged(&s, "the exchange shows nothing open"),
        "the sweep verified: {log:#?}"
    );
    assert!(ex.open_orders().await.is_empty());
    c.stop().await;
}

// The protective OCO locks the whole position: closing cancels it first, sells once the
// balance is free, and leaves nothing behind.
#[tokio::test]
async fn closing_a_protected_position_sells_it() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    protected_position(&mut c, BTC).await;

    c.send(Command::ClosePosition {
        symbol: sym(BTC),
        percent: 100,
    })
    .await;
    wait_until(WAIT, "BTC sold down to dust", || async {
        ex.holding("BTC").await < dec("0.00001")
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "nothing left open", |s| s.orders.is_empty()).await;
    assert!(
        s.positions
            .iter()
            .all(|p| p.symbol.as_str() != BTC || p.qty < "0.00001".parse().unwrap())
    );
    assert!(ex.open_orders().await.is_empty(), "no protective leg left behind");
    c.stop().await;
}

// A partial close cancels the OCO, sells half, and protects the other half again at the
// same stop-loss and take-profit.
#[tokio::test]
async fn closing_half_a_protected_position_protects_the_rest_again() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.002", ask)))
        .await;
    protected_position(&mut c, BTC).await;
    let before: Vec<_> = ex.open_orders().await;
    assert_eq!(before.len(), 2, "the OCO's two legs rest on the exchange");

    c.send(Command::ClosePosition {
        symbol: sym(BTC),
        percent: 50,
    })
    .await;
    wait_until(WAIT, "half of the BTC sold", || async {
        ex.holding("BTC").await < dec("0.0011")
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a new OCO on the remainder", |s| {
        let legs: Vec<_> = s.orders.iter().filter(|o| o.purpose.is_protective()).collect();
        legs.len() == 2 && legs.iter().all(|o| o.qty < dec_qty("0.0011") && !o.qty.is_zero())
    })
    .await;
    let legs: Vec<_> = s.orders.iter().filter(|o| o.purpose.is_protective()).collect();
    let old_ids: Vec<String> = before.iter().map(|o| o.to_string()).collect();
    assert!(
        legs.iter()
            .all(|l| !old_ids.iter().any(|o| o.contains(l.client_order_id.as_str()))),
        "the remainder is protected by a new OCO"
    );
    wait_until(WAIT, "the new legs rest on the exchange", || async {
        ex.open_orders().await.len() == 2
    })
    .await;
    c.stop().await;
}

// The kill switch cancels every symbol concurrently: when the first cancel is answered 429,
// another is already in flight. Binance bans for *repeatedly* failing to back off, so the
// local exchange answers that one request with another 429; the sweep waits out Retry-After
// and finishes.
#[tokio::test]
async fn the_kill_switch_waits_out_a_rate_limit_on_several_symbols() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    protected_position(&mut c, BTC).await;
    let (bid, _) = ex.book(ETH).await;
    c.send(Command::SubmitTicket(resting_buy(ETH, "0.01", bid))).await;
    wait_snapshot(&mut c.snap, WAIT, "a resting ETH entry", |s| {
        s.orders.iter().any(|o| {
            o.symbol.as_str() == ETH
                && o.purpose == OrderPurpose::Entry
                && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
    })
    .await;
    assert_eq!(ex.open_orders().await.len(), 3);

    ex.sim.faults().set(Faults {
        next_429: 1,
        ..Faults::default()
    });
    c.send(Command::Kill).await;
    let s = wait_snapshot(&mut c.snap, Duration::from_secs(20), "the sweep done", |s| {
        is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done)
    })
    .await;
    let log: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
    assert!(
        logged(&s, "the exchange shows nothing open"),
        "the sweep verified: {log:#?}"
    );
    c.stop().await;
}

#[tokio::test]
async fn the_kill_switch_works_while_both_streams_are_down() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    protected_position(&mut c, BTC).await;

    // Every WebSocket (market data and user data) is cut, and cut again each second.
    ex.sim.faults().set(Faults {
        drop_ws_every_secs: Some(1),
        ..Faults::default()
    });
    ex.sim.faults().drop_ws_now();
    wait_snapshot(&mut c.snap, WAIT, "both streams seen down", |s| {
        !matches!(s.header.user_stream.status, StreamStatus::Connected)
            && !matches!(s.header.market_stream.status, StreamStatus::Connected)
    })
    .await;
    c.send(Command::Kill).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the sweep done", |s| {
        is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done)
    })
    .await;
    assert!(logged(&s, "the exchange shows nothing open"));
    assert!(ex.open_orders().await.is_empty());
    c.stop().await;
}

fn dec_qty(s: &str) -> crbot::domain::Qty {
    s.parse().expect("test literal")
}

/// Tightening a limit takes effect at once; loosening needs the typed
/// confirmation; both are journaled, and a wrong phrase changes nothing.
#[tokio::test]
async fn a_tighter_limit_applies_at_once_and_a_looser_one_only_when_confirmed() {
    use crbot::engine::snapshot::LimitName;
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    c.send(Command::ProposeLimit {
        name: LimitName::TradesPerDay,
        value: Decimal::new(3, 0),
    })
    .await;
    wait_snapshot(&mut c.snap, WAIT, "trades limit 3 in force", |s| {
        s.limits.trades_limit == 3
    })
    .await;

    c.send(Command::ProposeLimit {
        name: LimitName::DailyLoss,
        value: Decimal::new(9, 0),
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a loosening waits", |s| {
        s.limit_change_pending.is_some()
    })
    .await;
    assert_eq!(
        s.limits.daily_loss_limit_pct,
        Decimal::new(5, 0),
        "not in force before the phrase"
    );
    let phrase = s.limit_change_pending.as_ref().unwrap().phrase.clone();

    c.send(Command::ConfirmLimit { typed: "yes".into() }).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "refused", |s| logged(s, "limit not changed")).await;
    assert_eq!(s.limits.daily_loss_limit_pct, Decimal::new(5, 0));

    c.send(Command::ProposeLimit {
        name: LimitName::DailyLoss,
        value: Decimal::new(9, 0),
    })
    .await;
    wait_snapshot(&mut c.snap, WAIT, "a loosening waits again", |s| {
        s.limit_change_pending.is_some()
    })
    .await;
    c.send(Command::ConfirmLimit { typed: phrase }).await;
    wait_snapshot(&mut c.snap, WAIT, "9% in force", |s| {
        s.limits.daily_loss_limit_pct == Decimal::new(9, 0)
    })
    .await;
    let changes = c.journal().limit_changes().unwrap();
    let names: Vec<&str> = changes.iter().map(|c| c.record.limit.as_str()).collect();
    assert_eq!(
        names,
        vec!["MAX_TRADES_PER_DAY", "MAX_DAILY_LOSS_PERCENT"],
        "{changes:?}"
    );
    c.stop().await;
}
