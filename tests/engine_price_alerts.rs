//! Price alerts in the engine, step by step with a scripted price path: an alert fires once,
//! on the crossing by the last price (a log line, and the webhook's alert when alerts are on),
//! stays listed as fired until cleared, is not re-armed, and survives a restart.
#![allow(clippy::unwrap_used)]

mod machine_support;

use crbot::alerts::AlertKind;
use crbot::engine::machine::Effect;
use crbot::engine::snapshot::{Command, Crossing, PriceAlert};
use crbot::risk::Limits;
use machine_support::*;

fn set(s: &mut Script, symbol: &str, crossing: Crossing, price: &str) {
    s.command(Command::SetPriceAlert {
        symbol: sym(symbol),
        crossing,
        price: p(price),
    });
}

fn alerts(s: &Script) -> Vec<PriceAlert> {
    s.snapshot().price_alerts
}

fn log_texts(s: &Script) -> Vec<String> {
    s.snapshot().log.iter().map(|l| l.text.clone()).collect()
}

fn price_alerts_out(fx: &Effects) -> Vec<String> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Alert(a) if a.kind == AlertKind::Price => Some(a.message.clone()),
            _ => None,
        })
        .collect()
}

/// The next quote on BTCUSDT, a second later (its mid is the last price here).
fn price(s: &mut Script, bid: &str, ask: &str) -> Effects {
    s.advance(1_000);
    let at = s.now;
    s.step(quote_for(BTC, bid, ask, at))
}

#[test]
fn an_alert_fires_once_on_the_crossing_and_stays_listed_as_fired() {
    let mut s = Script::started(Limits::default(), false, Vec::new());
    s.engine.watch_alerts(s.now);
    set(&mut s, BTC, Crossing::Above, "50100");
    assert_eq!(alerts(&s).len(), 1);
    assert!(alerts(&s)[0].fired.is_none());
    assert!(
        log_texts(&s)
            .iter()
            .any(|l| l.starts_with("alert set: BTCUSDT above 50100")),
        "{:?}",
        log_texts(&s)
    );

    // Below the price: nothing.
    assert!(price_alerts_out(&price(&mut s, "50050", "50060")).is_empty());
    assert!(alerts(&s)[0].fired.is_none());

    // The crossing: one log line, one webhook alert.
    let fx = price(&mut s, "50100", "50110");
    let out = price_alerts_out(&fx);
    assert_eq!(out.len(), 1, "{:?}", fx.0);
    assert!(out[0].contains("ALERT BTCUSDT above 50100"), "{out:?}");
    let fired = alerts(&s)[0].fired.expect("fired");
    assert_eq!(fired.0, s.now);
    assert_eq!(fired.1, p("50105"));
    let lines = log_texts(&s)
        .iter()
        .filter(|l| l.starts_with("ALERT BTCUSDT"))
        .count();
    assert_eq!(lines, 1);

    // Further up, back down and up again: not told again (not re-armed).
    for (bid, ask) in [("50200", "50210"), ("50000", "50010"), ("50300", "50310")] {
        assert!(price_alerts_out(&price(&mut s, bid, ask)).is_empty());
    }
    assert_eq!(
        log_texts(&s)
            .iter()
            .filter(|l| l.starts_with("ALERT BTCUSDT"))
            .count(),
        1
    );
    assert_eq!(alerts(&s).len(), 1, "listed as fired until cleared");

    s.command(Command::ClearPriceAlerts(None));
    assert!(alerts(&s).is_empty());
}

#[test]
fn a_below_alert_fires_when_the_price_falls_to_it_and_without_webhooks_only_logs() {
    let mut s = Script::started(Limits::default(), false, Vec::new());
    set(&mut s, BTC, Crossing::Below, "49900");
    let fx = price(&mut s, "49899", "49901");
    assert!(price_alerts_out(&fx).is_empty(), "alerts are off: no webhook");
    assert!(alerts(&s)[0].fired.is_some());
    assert!(
        log_texts(&s)
            .iter()
            .any(|l| l.starts_with("ALERT BTCUSDT below 49900"))
    );
}

#[test]
fn an_alert_the_price_is_already_past_or_on_an_unknown_symbol_is_refused_saying_why() {
    let mut s = Script::started(Limits::default(), false, Vec::new());
    set(&mut s, BTC, Crossing::Above, "40000");
    assert!(alerts(&s).is_empty());
    assert!(
        log_texts(&s)
            .last()
            .unwrap()
            .contains("not set: the last price 50000.00 is already above 40000.00"),
        "{:?}",
        log_texts(&s)
    );
    set(&mut s, "NOSUCHUSDT", Crossing::Above, "1");
    assert!(alerts(&s).is_empty());
    assert!(
        log_texts(&s)
            .last()
            .unwrap()
            .contains("the exchange has no such symbol")
    );
}

#[test]
fn alerts_survive_a_restart_fired_or_armed_and_clearing_a_symbol_removes_its_own() {
    let mut s = Script::started(Limits::default(), false, Vec::new());
    set(&mut s, BTC, Crossing::Above, "50100");
    set(&mut s, ETH, Crossing::Below, "2900");
    price(&mut s, "50100", "50110");
    let before = alerts(&s);
    assert_eq!(before.len(), 2);
    let mut s = s.restarted(60_000, Limits::default(), false);
    assert_eq!(alerts(&s), before);
    s.command(Command::ClearPriceAlerts(Some(sym(ETH))));
    assert_eq!(alerts(&s).len(), 1);
    assert_eq!(alerts(&s)[0].symbol, sym(BTC));
    let s = s.restarted(1_000, Limits::default(), false);
    assert_eq!(alerts(&s).len(), 1);
}
