//! The engine's side of the watchlist: a symbol the exchange does not list is never watched
//! (its loads would be refused again and again), and one saved before symbols were checked
//! leaves the list once the exchange's symbols are known.
#![allow(clippy::unwrap_used)]

mod machine_support;

use crbot::engine::machine::Effect;
use crbot::engine::snapshot::Command;
use crbot::risk::Limits;
use machine_support::*;

fn watched(s: &Script) -> Vec<String> {
    s.snapshot()
        .watchlist
        .iter()
        .map(|w| w.symbol.to_string())
        .collect()
}

fn last_log(s: &Script) -> String {
    s.snapshot()
        .log
        .last()
        .map(|l| l.text.clone())
        .unwrap_or_default()
}

fn loads(fx: &Effects) -> usize {
    fx.0.iter()
        .filter(|e| {
            matches!(
                e,
                Effect::LoadCandles(_) | Effect::LoadBook(_) | Effect::SetWatchlist(_)
            )
        })
        .count()
}

#[test]
fn an_unknown_symbol_is_refused_with_a_log_line_and_loads_nothing() {
    let mut s = Script::started(Limits::default(), false, Vec::new());
    let before = watched(&s);
    let fx = s.command(Command::AddSymbol(sym("NOSUCHUSDT")));
    assert_eq!(loads(&fx), 0, "{:?}", fx.0);
    assert_eq!(watched(&s), before);
    assert!(
        last_log(&s).contains("NOSUCHUSDT not added: the exchange has no such symbol"),
        "{}",
        last_log(&s)
    );

    s.command(Command::RemoveSymbol(sym(ETH)));
    assert!(!watched(&s).contains(&ETH.to_string()));
    let fx = s.command(Command::AddSymbol(sym(ETH)));
    assert!(loads(&fx) > 0, "{:?}", fx.0);
    assert!(watched(&s).contains(&ETH.to_string()));
}

#[test]
fn before_the_rules_are_loaded_a_symbol_is_not_added_and_the_log_says_why() {
    let mut s = Script::new(Limits::default(), false);
    s.step(crbot::engine::machine::Input::Started);
    let fx = s.command(Command::AddSymbol(sym(ETH)));
    assert_eq!(loads(&fx), 0, "{:?}", fx.0);
    assert!(last_log(&s).contains("not loaded yet"), "{}", last_log(&s));
}

#[test]
fn a_watched_symbol_the_exchange_does_not_list_leaves_the_list_when_the_rules_arrive() {
    let mut s = Script::new(Limits::default(), false);
    let defaults = watched(&s);
    assert!(
        defaults.iter().any(|w| w != BTC && w != ETH),
        "the default list has more: {defaults:?}"
    );
    s.start_up(Vec::new(), Vec::new());
    // The exchange here lists BTCUSDT and ETHUSDT only.
    assert_eq!(watched(&s), vec![BTC.to_string(), ETH.to_string()]);
    let log: Vec<String> = s.snapshot().log.iter().map(|l| l.text.clone()).collect();
    let gone = defaults.iter().find(|w| *w != BTC && *w != ETH).unwrap();
    assert!(
        log.iter()
            .any(|l| l == &format!("{gone} left the watchlist: the exchange has no such symbol")),
        "{log:?}"
    );
    // Saved: a restart does not bring it back.
    let s = s.restarted(1_000, Limits::default(), false);
    assert_eq!(watched(&s), vec![BTC.to_string(), ETH.to_string()]);
}

#[test]
fn a_saved_watchlist_that_cannot_be_read_gives_the_default_list_and_says_so() {
    let s = Script::started(Limits::default(), false, Vec::new());
    s.journal().set_meta("watchlist", "[\"BTCUSDT\", oops").unwrap();
    let s = s.restarted(1_000, Limits::default(), false);
    assert_eq!(watched(&s).first().map(String::as_str), Some(BTC));
    assert!(watched(&s).len() > 2, "the default list: {:?}", watched(&s));
    let log: Vec<String> = s.snapshot().log.iter().map(|l| l.text.clone()).collect();
    assert!(
        log.iter()
            .any(|l| l.starts_with("the saved watchlist cannot be read")
                && l.ends_with("starting with the default list")),
        "{log:?}"
    );
}
