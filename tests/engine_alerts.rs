//! Step by step, which alerts the engine decides (`Effect::Alert`): a fill, a manual halt and
//! the kill's outcome, the daily loss passing 50 % and 80 % of its limit once each and then the
//! automatic REDUCING, a stream unreachable for 30 s, and each delivery's outcome journaled.
//! A scripted clock, no exchange and no webhook: the effects are the decisions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machine_support;

use crbot::alerts::{Alert, AlertKind, Delivery, Severity, Status};
use crbot::domain::OrderStatus;
use crbot::engine::kill::KillEvent;
use crbot::engine::machine::{Answer, Effect, Input, TickFacts};
use crbot::engine::snapshot::Command;
use crbot::exchange::binance::events::{MarketEvent, StreamStatus, UserEvent};
use crbot::journal::TradingStateCode;
use crbot::risk::Limits;
use machine_support::*;

fn alerts(fx: &Effects) -> Vec<&Alert> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn kinds(fx: &Effects) -> Vec<AlertKind> {
    alerts(fx).iter().map(|a| a.kind).collect()
}

/// Started, both streams connected, alerts on.
fn watched(balances: Vec<crbot::domain::Balance>) -> Script {
    let mut s = Script::started(Limits::default(), false, balances);
    s.step(Input::Market(MarketEvent::Status(StreamStatus::Connected {
        streams: 2,
    })));
    s.step(Input::User(UserEvent::Subscribed { subscription_id: 1 }));
    s.engine.watch_alerts(s.now);
    s
}

#[test]
fn without_watching_the_engine_decides_no_alert() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let fx = s.command(Command::Kill);
    assert_eq!(fx.sweeps(), 1);
    assert!(alerts(&fx).is_empty(), "{:?}", fx.0);
}

#[test]
fn a_fill_alerts_after_its_protection_and_a_manual_kill_alerts_its_halt_then_its_outcome_once() {
    let mut s = watched(usdt_only());
    let entry = s.command(Command::SubmitTicket(entry_draft())).one_place();
    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f = fill(&filled, 9001, "0.002", "50000", "0.000002", "BTC");
    let fx = s.step(placed(&entry, Some(entry_draft()), filled, vec![f]));
    assert_eq!(kinds(&fx), [AlertKind::Fill], "{:?}", fx.0);
    let a = alerts(&fx)[0];
    assert_eq!(a.symbol.as_deref(), Some(BTC));
    assert!(
        a.message.contains("0.002") && a.message.contains("50000"),
        "{}",
        a.message
    );
    assert_eq!(a.time_ms, s.now);
    assert!(
        matches!(fx.0.last(), Some(Effect::Alert(_))),
        "the OCO goes first: {:?}",
        fx.0
    );
    assert_eq!(fx.ocos().len(), 1);

    s.advance(1_000);
    let fx = s.command(Command::Kill);
    assert_eq!(s.trading_code(), TradingStateCode::Halted);
    assert!(
        matches!(fx.0.first(), Some(Effect::Sweep(_))),
        "the sweep first: {:?}",
        fx.0
    );
    assert_eq!(kinds(&fx), [AlertKind::Halted]);
    let halted = alerts(&fx)[0];
    assert_eq!(halted.severity, Severity::Critical);
    assert!(
        halted.message.contains("kill switch pressed"),
        "{}",
        halted.message
    );

    let fx = s.answer(Answer::Kill(KillEvent::Line {
        symbol: sym(BTC),
        ok: Some(true),
        outcome: "2 order(s) cancelled".into(),
    }));
    assert!(alerts(&fx).is_empty(), "not before the end: {:?}", fx.0);
    let done = KillEvent::Done {
        ok: true,
        summary: "all orders cancelled".into(),
    };
    let fx = s.answer(Answer::Kill(done));
    assert_eq!(kinds(&fx), [AlertKind::Kill]);
    assert!(
        alerts(&fx)[0].message.contains("every open order cancelled"),
        "{:?}",
        alerts(&fx)
    );
    let fx = s.step(Input::Tick(TickFacts::default()));
    assert!(!kinds(&fx).contains(&AlertKind::Kill), "told once: {:?}", fx.0);

    let fx = s.command(Command::Rearm { passphrase: None });
    assert_eq!(s.trading_code(), TradingStateCode::Active);
    assert_eq!(kinds(&fx), [AlertKind::Rearmed], "{:?}", fx.0);
    let text = &alerts(&fx)[0].message;
    assert!(
        text.contains("ACTIVE again") && text.contains("was HALTED: kill switch pressed"),
        "{text}"
    );
}

#[test]
fn an_incomplete_kill_is_a_critical_alert_naming_the_symbol() {
    let mut s = watched(usdt_only());
    s.command(Command::Kill);
    s.answer(Answer::Kill(KillEvent::Line {
        symbol: sym(ETH),
        ok: Some(false),
        outcome: "1 order still open".into(),
    }));
    let fx = s.answer(Answer::Kill(KillEvent::Done {
        ok: false,
        summary: "1 symbol not clean".into(),
    }));
    let a = alerts(&fx);
    assert_eq!(a.len(), 1, "{:?}", fx.0);
    assert_eq!(a[0].kind, AlertKind::Kill);
    assert_eq!(a[0].severity, Severity::Critical);
    assert!(
        a[0].message.contains("INCOMPLETE") && a[0].message.contains(ETH),
        "{}",
        a[0].message
    );
}

/// 10 000 USDT and 0.2 BTC (about 20 000 USDT at 50 000): the default 5 % limit is about
/// 1 000 USDT, so BTC at 47 000 has used 60 % of it, 45 900 82 %, 44 000 breaches it.
#[test]
fn the_daily_loss_alerts_at_50_and_80_percent_once_each_then_the_automatic_reducing() {
    let mut s = watched(vec![balance("USDT", "10000", "0"), balance("BTC", "0.2", "0")]);
    let fx = s.step(Input::Tick(TickFacts::default()));
    assert!(alerts(&fx).is_empty(), "the day starts here: {:?}", fx.0);

    let at = |s: &mut Script, price: &str| {
        s.advance(1_000);
        let ask = format!("{price}.01");
        s.step(quote(price, &ask, s.now));
        s.step(Input::Tick(TickFacts::default()))
    };
    let fx = at(&mut s, "47000");
    assert_eq!(kinds(&fx), [AlertKind::DailyLoss], "{:?}", fx.0);
    assert!(
        alerts(&fx)[0].message.contains("50%"),
        "{}",
        alerts(&fx)[0].message
    );
    assert_eq!(alerts(&fx)[0].severity, Severity::Warning);
    let fx = at(&mut s, "47100");
    assert!(alerts(&fx).is_empty(), "50 % once a day: {:?}", fx.0);

    let fx = at(&mut s, "45900");
    assert_eq!(kinds(&fx), [AlertKind::DailyLoss], "{:?}", fx.0);
    assert!(
        alerts(&fx)[0].message.contains("80%"),
        "{}",
        alerts(&fx)[0].message
    );
    assert_eq!(alerts(&fx)[0].severity, Severity::Critical);
    let fx = at(&mut s, "46500");
    assert!(alerts(&fx).is_empty(), "80 % once a day: {:?}", fx.0);

    let fx = at(&mut s, "44000");
    assert_eq!(s.trading_code(), TradingStateCode::Reducing);
    assert_eq!(kinds(&fx), [AlertKind::Reducing], "{:?}", fx.0);
    let a = alerts(&fx)[0];
    assert_eq!(a.severity, Severity::Critical);
    assert!(a.message.contains("DAILY_LOSS"), "{}", a.message);
}

#[test]
fn a_daily_loss_level_alerted_earlier_today_by_another_run_is_not_told_again() {
    let mut s = Script::started(
        Limits::default(),
        false,
        vec![balance("USDT", "10000", "0"), balance("BTC", "0.2", "0")],
    );
    // What an earlier run of the engine journaled this morning (and one from yesterday).
    for (time_ms, message) in [
        (
            s.now - 3_600_000,
            "daily loss passed 50% of its limit: today -2.6% (limit -5%)",
        ),
        (
            s.now - 86_400_000,
            "daily loss passed 80% of its limit: today -4.1% (limit -5%)",
        ),
    ] {
        let rec = crbot::journal::AlertRecord {
            time_ms,
            kind: "DAILY_LOSS".into(),
            severity: "warning".into(),
            message: message.into(),
            status: "SENT".into(),
            attempts: 1,
            last_error: None,
            done_ms: time_ms,
        };
        s.journal().record_alert(&rec).unwrap();
    }
    s.step(Input::Market(MarketEvent::Status(StreamStatus::Connected {
        streams: 2,
    })));
    s.step(Input::User(UserEvent::Subscribed { subscription_id: 1 }));
    s.engine.watch_alerts(s.now);
    s.step(Input::Tick(TickFacts::default()));
    let at = |s: &mut Script, price: &str| {
        s.advance(1_000);
        let ask = format!("{price}.01");
        s.step(quote(price, &ask, s.now));
        s.step(Input::Tick(TickFacts::default()))
    };
    let fx = at(&mut s, "47000");
    assert!(alerts(&fx).is_empty(), "50 % was told today already: {:?}", fx.0);
    let fx = at(&mut s, "45900");
    assert_eq!(
        kinds(&fx),
        [AlertKind::DailyLoss],
        "yesterday's 80 % does not count: {:?}",
        fx.0
    );
    assert!(
        alerts(&fx)[0].message.contains("80%"),
        "{}",
        alerts(&fx)[0].message
    );
}

#[test]
fn a_stream_unreachable_for_30_s_alerts_once_and_its_return_is_told() {
    let mut s = watched(usdt_only());
    let fx = s.step(Input::User(UserEvent::Disconnected {
        reason: "reset by peer".into(),
    }));
    assert!(alerts(&fx).is_empty(), "a blip is not news: {:?}", fx.0);
    s.advance(29_000);
    let fx = s.step(Input::Tick(TickFacts::default()));
    assert!(!kinds(&fx).contains(&AlertKind::Unreachable), "{:?}", fx.0);
    s.advance(1_000);
    let fx = s.step(Input::Tick(TickFacts::default()));
    let down: Vec<_> = alerts(&fx)
        .into_iter()
        .filter(|a| a.kind == AlertKind::Unreachable)
        .collect();
    assert_eq!(down.len(), 1, "{:?}", fx.0);
    assert!(
        down[0].message.contains("user data stream"),
        "{}",
        down[0].message
    );
    s.advance(10_000);
    let fx = s.step(Input::Tick(TickFacts::default()));
    assert!(
        !kinds(&fx).contains(&AlertKind::Unreachable),
        "once per outage: {:?}",
        fx.0
    );

    let fx = s.step(Input::User(UserEvent::Subscribed { subscription_id: 2 }));
    assert!(kinds(&fx).contains(&AlertKind::Reconnected), "{:?}", fx.0);
}

#[test]
fn each_delivery_outcome_is_journaled_and_a_failure_is_logged() {
    let mut s = watched(usdt_only());
    let sent = Delivery {
        alert: Alert::new(s.now - 5, AlertKind::Fill, Severity::Info, "fill BTCUSDT BUY"),
        status: Status::Sent,
        attempts: 1,
        last_error: None,
    };
    s.answer(Answer::AlertDelivered(Box::new(sent)));
    let failed = Delivery {
        alert: Alert::new(
            s.now - 3,
            AlertKind::Halted,
            Severity::Critical,
            "trading HALTED: x",
        ),
        status: Status::Failed,
        attempts: 5,
        last_error: Some("HTTP 503".into()),
    };
    s.answer(Answer::AlertDelivered(Box::new(failed)));

    let rows = s.journal().recent_alerts(10).unwrap();
    assert_eq!(rows.len(), 2);
    let (newest, oldest) = (&rows[0].record, &rows[1].record);
    assert_eq!(
        (oldest.kind.as_str(), oldest.status.as_str(), oldest.attempts),
        ("FILL", "SENT", 1)
    );
    assert_eq!(oldest.time_ms, s.now - 5);
    assert_eq!(
        (newest.kind.as_str(), newest.status.as_str(), newest.attempts),
        ("HALTED", "FAILED", 5)
    );
    assert_eq!(newest.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(newest.severity, "critical");
    let log = format!("{:?}", s.snapshot().log);
    assert!(log.contains("alert HALTED not delivered"), "{log}");
}
