//! Step by step, a protective OCO that the exchange ends without a fill while crbot still holds
//! the position (a leg expired by self-trade prevention, the list cancelled from another app):
//! the engine says so loudly (an ERROR log line, the journal's `PROTECTION_LOST` event, a
//! critical `PROTECTION_LOST` alert), keeps the lost stop-loss and take-profit in the snapshot,
//! never re-places them by itself, and re-protects only when the trader asks, through the risk
//! gate (journaled; refused while halted). crbot's own ends of a list (a close, a cancel from
//! the screen, the kill switch) raise nothing. A scripted clock, no exchange.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machine_support;

use crbot::alerts::{Alert, AlertKind, Severity};
use crbot::domain::broker::{OcoRequest, OrderOutcome, OrderReport};
use crbot::domain::{ClientOrderId, Notional, OrderPurpose, OrderStatus, OrderType, Qty, Side};
use crbot::engine::machine::{Answer, Effect, Input};
use crbot::engine::snapshot::{Command, LogLevel};
use crbot::exchange::binance::events::{ExecutionType, MarketEvent, StreamStatus, UserEvent};
use crbot::journal::{EventKind, RiskEventRecord};
use crbot::risk::Limits;
use machine_support::*;

const LIST: i64 = 501;
const TP_ID: u64 = 7002;
const SL_ID: u64 = 7003;

fn alerts(fx: &Effects) -> Vec<&Alert> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// An entry of 0.002 BTC filled at 50 000 (stop-loss 49 000, take-profit 51 500), its OCO
/// placed (list 501: take-profit 7002, stop-loss 7003), both streams up, alerts on.
fn protected() -> (Script, OcoRequest) {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    s.step(Input::Market(MarketEvent::Status(StreamStatus::Connected {
        streams: 2,
    })));
    s.step(Input::User(UserEvent::Subscribed { subscription_id: 1 }));
    s.engine.watch_alerts(s.now);
    let entry = s.command(Command::SubmitTicket(entry_draft())).one_place();
    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f = fill(&filled, 9001, "0.002", "50000", "0.000002", "BTC");
    let oco = s
        .step(placed(&entry, Some(entry_draft()), filled, vec![f]))
        .one_oco();
    s.step(oco_placed(&oco, LIST, TP_ID));
    assert!(s.snapshot().unprotected().is_empty(), "protected to begin with");
    (s, oco)
}

/// The user-data report of one leg of `oco` at `status` (nothing executed).
fn leg(oco: &OcoRequest, purpose: OrderPurpose, status: OrderStatus, execution: ExecutionType) -> Input {
    let (cid, id, order_type, price, stop) = match purpose {
        OrderPurpose::TakeProfit => (
            &oco.take_profit_client_order_id,
            TP_ID,
            OrderType::LimitMaker,
            Some(oco.take_profit),
            None,
        ),
        _ => (
            &oco.stop_loss_client_order_id,
            SL_ID,
            OrderType::StopLoss,
            None,
            Some(oco.stop_loss),
        ),
    };
    let report = OrderReport {
        symbol: oco.symbol.clone(),
        order_id: id,
        order_list_id: Some(LIST),
        client_order_id: cid.to_string(),
        orig_client_order_id: None,
        side: Side::Sell,
        order_type,
        time_in_force: None,
        status,
        price,
        stop_price: stop,
        orig_qty: oco.qty,
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        time_ms: T0,
        update_ms: T0,
    };
    user_report(&report, execution, None)
}

fn lost_alerts(fx: &Effects) -> Vec<&Alert> {
    alerts(fx)
        .into_iter()
        .filter(|a| a.kind == AlertKind::ProtectionLost)
        .collect()
}

/// A protected position whose take-profit was expired by self-trade prevention and whose list
/// then ended its stop-loss: the position is left with no protection.
fn lost_by_self_trade() -> (Script, OcoRequest) {
    let (mut s, oco) = protected();
    s.step(leg(
        &oco,
        OrderPurpose::TakeProfit,
        OrderStatus::ExpiredInMatch,
        ExecutionType::TradePrevention,
    ));
    s.step(leg(
        &oco,
        OrderPurpose::StopLoss,
        OrderStatus::Expired,
        ExecutionType::Expired,
    ));
    (s, oco)
}

/// The risk decision journaled for a re-protection that sent nothing.
fn refused(s: &Script, fx: &Effects) -> RiskEventRecord {
    assert!(fx.ocos().is_empty(), "{:?}", fx.0);
    s.journal().recent_risk_events(1).unwrap()[0].record.clone()
}

#[test]
fn a_take_profit_expired_in_match_leaves_the_position_unprotected_and_says_so_loudly() {
    let (mut s, oco) = protected();

    // The trader's own buy crossed the resting take-profit: EXPIRE_MAKER expires it.
    let fx = s.step(leg(
        &oco,
        OrderPurpose::TakeProfit,
        OrderStatus::ExpiredInMatch,
        ExecutionType::TradePrevention,
    ));
    assert!(
        lost_alerts(&fx).is_empty(),
        "the stop-loss still works: {:?}",
        fx.0
    );
    assert!(s.snapshot().lost_protection.is_empty());
    // Its sibling still works, but the take-profit the trader counted on is gone: a warning.
    let snap = s.snapshot();
    let warned = snap
        .log
        .iter()
        .find(|l| l.level == LogLevel::Warn && l.text.contains("EXPIRED_IN_MATCH"))
        .expect("a WARN line for the expired leg");
    assert!(warned.text.contains("self-trade prevention"), "{}", warned.text);

    // The list ends its other leg.
    s.advance(5);
    let fx = s.step(leg(
        &oco,
        OrderPurpose::StopLoss,
        OrderStatus::Expired,
        ExecutionType::Expired,
    ));
    let told = lost_alerts(&fx);
    assert_eq!(told.len(), 1, "{:?}", fx.0);
    assert_eq!(told[0].severity, Severity::Critical);
    assert_eq!(told[0].symbol.as_deref(), Some(BTC));
    assert!(
        told[0].message.contains("position unprotected"),
        "{}",
        told[0].message
    );
    assert!(
        fx.ocos().is_empty() && fx.places().is_empty(),
        "never re-placed by itself: {:?}",
        fx.0
    );

    let snap = s.snapshot();
    assert_eq!(snap.unprotected(), vec![&sym(BTC)], "NO STOP");
    let [lost] = snap.lost_protection.as_slice() else {
        panic!("one lost protection: {:?}", snap.lost_protection);
    };
    assert_eq!(lost.symbol, sym(BTC));
    assert_eq!((lost.stop_loss, lost.take_profit), (p("49000"), p("51500")));
    assert_eq!(lost.leg, OrderPurpose::TakeProfit);
    assert_eq!(lost.status, OrderStatus::ExpiredInMatch);
    assert_eq!(
        lost.reason,
        "expired by self-trade prevention: another order of this account crossed it"
    );
    assert_eq!(lost.qty, Some(oco.qty), "what prepare_reprotection would send");
    assert_eq!(snap.protect_qty.get(&sym(BTC)), Some(&oco.qty));
    let error = snap
        .log
        .iter()
        .find(|l| l.level == LogLevel::Error && l.text.contains("protection lost"))
        .expect("an ERROR line");
    for words in [
        BTC,
        "take-profit leg EXPIRED_IN_MATCH",
        "expired by self-trade prevention: another order of this account crossed it",
        "position unprotected",
    ] {
        assert!(error.text.contains(words), "{words:?} in {}", error.text);
    }
    assert_eq!(s.events(EventKind::ProtectionLost).len(), 1);

    // Another input tells nothing again.
    let fx = s.step(quote("49990", "50000", s.now));
    assert!(lost_alerts(&fx).is_empty());
}

#[test]
fn the_trader_re_protects_through_the_risk_gate_and_the_loss_is_then_forgotten() {
    let (mut s, oco) = lost_by_self_trade();
    let lost = s.snapshot().lost_protection[0].clone();

    let fx = s.command(Command::Reprotect {
        symbol: sym(BTC),
        stop_loss: lost.stop_loss,
        take_profit: lost.take_profit,
    });
    let again = fx.one_oco();
    assert_eq!(
        (again.qty, again.stop_loss, again.take_profit),
        (oco.qty, p("49000"), p("51500"))
    );
    let decision = &s.journal().recent_risk_events(1).unwrap()[0].record;
    assert!(decision.approved, "{decision:?}");
    assert!(decision.reason.contains("re-protection"), "{}", decision.reason);
    assert_eq!(decision.ticket.stop_loss, Some(p("49000")));

    s.step(oco_placed(&again, 502, 7010));
    let snap = s.snapshot();
    assert!(snap.unprotected().is_empty(), "NO STOP goes away");
    assert!(snap.lost_protection.is_empty(), "{:?}", snap.lost_protection);
}

#[test]
fn a_halted_engine_refuses_the_re_protection_and_journals_why() {
    let (mut s, _) = lost_by_self_trade();
    s.command(Command::Kill);

    let fx = s.command(Command::Reprotect {
        symbol: sym(BTC),
        stop_loss: p("49000"),
        take_profit: p("51500"),
    });
    let decision = refused(&s, &fx);
    assert!(!decision.approved);
    assert_eq!(decision.codes, ["STATE_HALTED"]);
    assert!(
        s.snapshot()
            .log
            .iter()
            .any(|l| l.text.contains("REJECTED re-protection of BTCUSDT"))
    );
}

#[test]
fn a_re_protection_through_the_market_is_refused_with_its_reason() {
    let (mut s, _) = lost_by_self_trade();
    // The bid is 49 999.99: a stop at 50 000 would trigger at once.
    let fx = s.command(Command::Reprotect {
        symbol: sym(BTC),
        stop_loss: p("50000"),
        take_profit: p("51500"),
    });
    let decision = refused(&s, &fx);
    assert_eq!(decision.codes, ["NOT_PROTECTABLE"]);
    assert!(
        decision.reason.contains("stop-loss 50000 is at or above the bid"),
        "{}",
        decision.reason
    );
}

#[test]
fn a_re_protection_off_the_tick_is_refused_naming_the_tick() {
    let (mut s, _) = lost_by_self_trade();
    // As typed after `:protect`: a stop-loss between two ticks (BTCUSDT's tick is 0.01).
    let fx = s.command(Command::Reprotect {
        symbol: sym(BTC),
        stop_loss: p("49000.005"),
        take_profit: p("51500"),
    });
    let decision = refused(&s, &fx);
    assert_eq!(decision.codes, ["FILTER"]);
    assert!(
        decision.reason.contains("49000.005") && decision.reason.contains("0.01"),
        "{}",
        decision.reason
    );
}

#[test]
fn a_list_cancelled_outside_crbot_is_lost_protection_too() {
    let (mut s, oco) = protected();
    s.step(leg(
        &oco,
        OrderPurpose::StopLoss,
        OrderStatus::Canceled,
        ExecutionType::Canceled,
    ));
    // The stop-loss was cancelled first (the Binance app), the list ended the take-profit.
    s.advance(5);
    let fx = s.step(leg(
        &oco,
        OrderPurpose::TakeProfit,
        OrderStatus::Canceled,
        ExecutionType::Canceled,
    ));
    assert_eq!(lost_alerts(&fx).len(), 1, "{:?}", fx.0);
    let lost = &s.snapshot().lost_protection[0];
    assert_eq!(
        (lost.leg, lost.status),
        (OrderPurpose::StopLoss, OrderStatus::Canceled)
    );
    assert!(lost.reason.contains("cancelled outside crbot"), "{}", lost.reason);
}

#[test]
fn a_filled_leg_is_no_loss() {
    let (mut s, oco) = protected();
    // The stop triggered and filled; the list expired the take-profit.
    let mut filled = match leg(
        &oco,
        OrderPurpose::StopLoss,
        OrderStatus::Filled,
        ExecutionType::Trade,
    ) {
        Input::User(UserEvent::Order(o)) => o,
        _ => unreachable!(),
    };
    filled.cumulative_qty = oco.qty;
    let fx = s.step(Input::User(UserEvent::Order(filled)));
    assert!(lost_alerts(&fx).is_empty());
    let fx = s.step(leg(
        &oco,
        OrderPurpose::TakeProfit,
        OrderStatus::Expired,
        ExecutionType::Expired,
    ));
    assert!(lost_alerts(&fx).is_empty(), "{:?}", fx.0);
    assert!(s.snapshot().lost_protection.is_empty());
    assert!(s.events(EventKind::ProtectionLost).is_empty());
}

/// The legs of `oco` cancelled, as the exchange reports a cancelled list.
fn both_cancelled(s: &mut Script, oco: &OcoRequest) -> Vec<Alert> {
    let mut told = Vec::new();
    for purpose in [OrderPurpose::TakeProfit, OrderPurpose::StopLoss] {
        let fx = s.step(leg(oco, purpose, OrderStatus::Canceled, ExecutionType::Canceled));
        told.extend(lost_alerts(&fx).into_iter().cloned());
    }
    told
}

#[test]
fn crbots_own_close_cancel_and_kill_raise_nothing() {
    // A close: the OCO is cancelled first (it locks the balance).
    let (mut s, oco) = protected();
    let fx = s.command(Command::ClosePosition {
        symbol: sym(BTC),
        percent: 100,
    });
    assert!(
        fx.0.iter().any(|e| matches!(e, Effect::PrepareClose { .. })),
        "{:?}",
        fx.0
    );
    assert!(both_cancelled(&mut s, &oco).is_empty());
    assert!(s.snapshot().lost_protection.is_empty());

    // The trader cancels the protection from the screen (asked first there).
    let (mut s, oco) = protected();
    let fx = s.command(Command::CancelOrder(oco.stop_loss_client_order_id.clone()));
    assert_eq!(fx.cancels().len(), 1);
    assert!(both_cancelled(&mut s, &oco).is_empty());
    assert!(s.snapshot().lost_protection.is_empty());

    // The kill switch cancels everything.
    let (mut s, oco) = protected();
    let fx = s.command(Command::Kill);
    assert_eq!(fx.sweeps(), 1);
    assert!(both_cancelled(&mut s, &oco).is_empty());
    assert!(s.snapshot().lost_protection.is_empty());
    assert!(s.events(EventKind::ProtectionLost).is_empty());
}

#[test]
fn a_close_that_cancels_the_oco_answers_through_close_ready_without_a_loss() {
    let (mut s, oco) = protected();
    s.command(Command::ClosePosition {
        symbol: sym(BTC),
        percent: 100,
    });
    let cancelled = |cid: &ClientOrderId, id: u64| {
        let mut r = settled(&sym(BTC), cid.as_str(), id, OrderStatus::Canceled);
        r.order_list_id = Some(LIST);
        r
    };
    let fx = s.answer(Answer::CloseReady {
        symbol: sym(BTC),
        cancel: Box::new(OrderOutcome::Done(cancelled(
            &oco.take_profit_client_order_id,
            TP_ID,
        ))),
        open: Ok(Vec::new()),
        account: Box::new(Ok(account(
            vec![balance("USDT", "9900", "0"), balance("BTC", "0.001998", "0")],
            s.now,
        ))),
    });
    assert!(lost_alerts(&fx).is_empty(), "{:?}", fx.0);
    let fx = s.step(leg(
        &oco,
        OrderPurpose::StopLoss,
        OrderStatus::Canceled,
        ExecutionType::Canceled,
    ));
    assert!(lost_alerts(&fx).is_empty(), "{:?}", fx.0);
    assert!(s.events(EventKind::ProtectionLost).is_empty());
}
