//! Step-by-step tests of the console's engine as a state machine (`Engine::update`): a
//! scripted clock, no exchange at all — every exchange answer is built by hand and fed back as
//! `Input::Answer` — and every assertion on the returned effects, the snapshot and the journal.
//!
//! What each test proves is the order of decisions: what is journaled before an effect is even
//! returned, which effects an input may (and may never) produce, and what a restart restores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machine_support;

use crbot::domain::{LocalOrderState, OrderStatus, OrderType, Side};
use crbot::engine::machine::{Answer, Input, TickFacts};
use crbot::engine::snapshot::Command;
use crbot::exchange::binance::events::ExecutionType;
use crbot::journal::TradingStateCode;
use crbot::risk::Limits;
use machine_support::*;

/// Scenario 1 up to the open OCO: the entry's request, its FILLED report, and the OCO sent.
struct Protected {
    script: Script,
    entry: crbot::domain::OrderRequest,
    oco: crbot::domain::broker::OcoRequest,
}

/// Submits the usual entry, answers it FILLED (0.002 at 50 000, 0.000002 BTC commission),
/// and answers the OCO placed. Asserts nothing beyond what it needs to go on.
fn protected_position() -> Protected {
    protected_position_with(Limits::default(), false, usdt_only())
}

fn protected_position_with(
    limits: Limits,
    auto_flatten: bool,
    balances: Vec<crbot::domain::Balance>,
) -> Protected {
    let mut s = Script::started(limits, auto_flatten, balances);
    let entry = s.command(Command::SubmitTicket(entry_draft())).one_place();
    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f = fill(&filled, 9001, "0.002", "50000", "0.000002", "BTC");
    let oco = s
        .step(placed(&entry, Some(entry_draft()), filled, vec![f]))
        .one_oco();
    s.step(oco_placed(&oco, 501, 7002));
    Protected {
        script: s,
        entry,
        oco,
    }
}

#[test]
fn ticket_is_journaled_sent_filled_and_protected_by_an_oco_sized_from_its_fill() {
    let mut s = Script::started(Limits::default(), false, usdt_only());

    // Typed off the filters: the request carries the values rounded to them (the quantity and a
    // buy's price down, never up).
    let draft = buy("0.0020049", "50100.009", "49000", "51500");
    let fx = s.command(Command::SubmitTicket(draft.clone()));
    let entry = fx.one_place();
    assert_eq!(fx.ocos().len(), 0, "nothing is protected before a fill");
    assert_eq!(entry.symbol.as_str(), BTC);
    assert_eq!(entry.side, Side::Buy);
    assert_eq!(entry.order_type, OrderType::Limit);
    assert_eq!(entry.qty, q("0.002"));
    assert_eq!(entry.price, Some(p("50100")));
    // Journal first: the order is SENDING before the effect that sends it is returned.
    assert_eq!(s.journaled(&entry.client_order_id), LocalOrderState::Sending);
    let row = s.journal_order(&entry.client_order_id);
    assert_eq!(
        (row.qty, row.price),
        (entry.qty, entry.price),
        "journaled as sent"
    );

    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f = fill(&filled, 9001, "0.002", "50000", "0.000002", "BTC");
    let fx = s.step(placed(&entry, Some(draft), filled, vec![f]));
    let oco = fx.one_oco();
    assert!(fx.places().is_empty(), "no second order: {:?}", fx.0);
    assert_eq!(
        s.journaled(&entry.client_order_id),
        LocalOrderState::Exchange(OrderStatus::Filled)
    );
    // The legs cover what the fill left after its commission in BTC, rounded down to the step.
    assert_eq!(s.position(), q("0.001998"));
    assert_eq!(oco.qty, q("0.00199"));
    assert_eq!(oco.stop_loss, p("49000"));
    assert_eq!(oco.take_profit, p("51500"));
    assert_eq!(s.journal().fills().unwrap().len(), 1, "the fill is booked once");
    for leg in oco_legs(&oco) {
        assert_eq!(
            s.journaled(&leg),
            LocalOrderState::Sending,
            "leg {leg} journaled before sending"
        );
    }

    let fx = s.step(oco_placed(&oco, 501, 7002));
    assert!(fx.places().is_empty() && fx.ocos().is_empty(), "{:?}", fx.0);
    let open: Vec<_> = s.open_orders().into_iter().map(|o| o.client_order_id).collect();
    assert_eq!(open.len(), 2, "both legs open: {open:?}");
    for leg in oco_legs(&oco) {
        assert!(open.contains(&leg), "{leg} open");
        assert_eq!(s.journaled(&leg), LocalOrderState::Exchange(OrderStatus::New));
    }
}

#[test]
fn a_partial_fill_is_booked_but_protected_only_once_the_entry_is_filled_in_full() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let entry = s.command(Command::SubmitTicket(entry_draft())).one_place();
    let new = report(&entry, 7001, OrderStatus::New, "0", "50000");
    let fx = s.step(placed(&entry, Some(entry_draft()), new, Vec::new()));
    assert!(
        fx.ocos().is_empty(),
        "nothing filled, nothing to protect: {:?}",
        fx.0
    );

    let partial = report(&entry, 7001, OrderStatus::PartiallyFilled, "0.0012", "50000");
    let f1 = fill(&partial, 9001, "0.0012", "50000", "0.06", "USDT");
    let fx = s.step(user_report(&partial, ExecutionType::Trade, Some(f1)));
    // Protection waits for the entry to finish: one OCO for the whole fill, not one per part.
    assert!(fx.ocos().is_empty() && fx.places().is_empty(), "{:?}", fx.0);
    assert_eq!(s.position(), q("0.0012"));
    assert_eq!(
        s.journaled(&entry.client_order_id),
        LocalOrderState::Exchange(OrderStatus::PartiallyFilled)
    );

    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f2 = fill(&filled, 9002, "0.0008", "50000", "0.04", "USDT");
    let fx = s.step(user_report(&filled, ExecutionType::Trade, Some(f2)));
    let oco = fx.one_oco();
    assert_eq!(s.position(), q("0.002"));
    assert_eq!(
        oco.qty,
        q("0.002"),
        "the OCO covers both parts (fees paid in USDT)"
    );
    assert_eq!(s.journal().fills().unwrap().len(), 2);
}

#[test]
fn an_unknown_placement_is_resolved_by_query_never_resent_and_booked_once_when_found() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let entry = s.command(Command::SubmitTicket(entry_draft())).one_place();
    let cid = entry.client_order_id.clone();

    let fx = s.step(placed_unknown(&entry, Some(entry_draft())));
    assert_eq!(s.journaled(&cid), LocalOrderState::Unknown);
    assert_eq!(fx.resolves().len(), 1, "{:?}", fx.0);
    assert_eq!(fx.resolves()[0].0, &cid);
    assert!(
        fx.places().is_empty(),
        "an unknown order is never resent: {:?}",
        fx.0
    );

    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f = fill(&filled, 9001, "0.002", "50000", "0.1", "USDT");
    let found = crbot::exchange::binance::reconcile::Resolution::Found(filled.clone());
    let fx = s.step(resolved(&cid, found, vec![f.clone()]));
    assert!(fx.places().is_empty(), "{:?}", fx.0);
    let oco = fx.one_oco();
    assert_eq!(oco.qty, q("0.002"));
    assert_eq!(s.journaled(&cid), LocalOrderState::Exchange(OrderStatus::Filled));
    assert_eq!(s.position(), q("0.002"));

    // The same fill heard again on the stream is not booked twice, nor protected twice.
    let fx = s.step(user_report(&filled, ExecutionType::Trade, Some(f)));
    assert!(fx.ocos().is_empty() && fx.places().is_empty(), "{:?}", fx.0);
    assert_eq!(s.journal().fills().unwrap().len(), 1);
    assert_eq!(s.position(), q("0.002"));
}

#[test]
fn an_unknown_placement_still_unknown_is_queried_again_later_and_not_found_is_not_sent() {
    use crbot::exchange::binance::reconcile::Resolution;
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let entry = s.command(Command::SubmitTicket(entry_draft())).one_place();
    let cid = entry.client_order_id.clone();
    let mut sent_again = s.step(placed_unknown(&entry, Some(entry_draft()))).places().len();

    s.advance(1_000);
    let still = Resolution::StillUnknown {
        reason: "HTTP 503".into(),
    };
    let fx = s.step(resolved(&cid, still, Vec::new()));
    sent_again += fx.places().len();
    let again = fx.resolves();
    assert_eq!(again.len(), 1, "{:?}", fx.0);
    assert_eq!(again[0].0, &cid);
    assert!(!again[0].1.is_zero(), "the retry waits: {:?}", again[0].1);
    assert_eq!(s.journaled(&cid), LocalOrderState::Unknown);

    s.advance(5_000);
    let fx = s.step(resolved(&cid, Resolution::NotFound, Vec::new()));
    sent_again += fx.places().len();
    assert!(fx.resolves().is_empty() && fx.ocos().is_empty(), "{:?}", fx.0);
    assert_eq!(s.journaled(&cid), LocalOrderState::NotSent);
    assert_eq!(sent_again, 0, "an unknown order is never resent");
    assert_eq!(s.position(), q("0"));
}

#[test]
fn kill_journals_halted_before_its_only_effect_the_sweep_and_books_a_straggler() {
    use crbot::engine::kill::KillEvent;
    use crbot::journal::EventKind;
    let Protected { script: mut s, .. } = protected_position();
    let resting = resting_eth();
    let fx = s.command(Command::SubmitTicket(resting.clone()));
    assert_eq!(fx.places().len(), 1, "{:?}", s.snapshot().ticket_result);
    let rest_req = fx.one_place();
    let new = report(&rest_req, 7010, OrderStatus::New, "0", "2990");
    s.step(placed(&rest_req, Some(resting), new, Vec::new()));
    assert_eq!(s.open_orders().len(), 3, "an entry and two legs open");

    s.advance(1_000);
    let fx = s.command(Command::Kill);
    assert_eq!(
        s.trading_code(),
        TradingStateCode::Halted,
        "journaled before any effect runs"
    );
    assert_eq!(fx.0.len(), 1, "the sweep and nothing before it: {:?}", fx.0);
    assert_eq!(fx.sweeps(), 1);

    s.answer(Answer::SweepStarted {
        reason: Some("kill switch pressed".into()),
    });
    assert_eq!(s.events(EventKind::Kill), vec!["kill switch pressed".to_string()]);
    let line = KillEvent::Line {
        symbol: sym(BTC),
        ok: Some(true),
        outcome: "3 order(s) cancelled".into(),
    };
    s.answer(Answer::Kill(line));
    assert_eq!(
        s.events(EventKind::KillCancel),
        vec!["3 order(s) cancelled".to_string()]
    );
    let done = KillEvent::Done {
        ok: true,
        summary: "all orders cancelled".into(),
    };
    let fx = s.answer(Answer::Kill(done));
    assert_eq!(s.events(EventKind::KillDone).len(), 1);
    assert_eq!(fx.backups(), 1, "{:?}", fx.0);
    assert!(fx.resync().is_some(), "{:?}", fx.0);

    // The resting entry had filled on the exchange after the halt: booked, not protected.
    let filled = report(&rest_req, 7010, OrderStatus::Filled, "0.03", "2990");
    let f = fill(&filled, 9020, "0.03", "2990", "0.0897", "USDT");
    let fx = s.step(user_report(&filled, ExecutionType::Trade, Some(f)));
    assert!(
        fx.ocos().is_empty() && fx.places().is_empty(),
        "halted: {:?}",
        fx.0
    );
    assert_eq!(s.position_of(ETH), q("0.03"));
    assert_eq!(
        s.journaled(&rest_req.client_order_id),
        LocalOrderState::Exchange(OrderStatus::Filled)
    );

    let fx = s.command(Command::SubmitTicket(entry_draft()));
    assert!(fx.places().is_empty(), "{:?}", fx.0);
    let result = format!("{:?}", s.snapshot().ticket_result);
    assert!(result.contains("STATE_HALTED"), "{result}");
}

/// 10 000 USDT and 0.2 BTC held outside crbot: about 20 000 USDT of equity at 50 000, so the
/// default 5 % daily-loss limit is about 1 000 USDT, and a fall of BTC to 44 000 (a loss of
/// about 1 200, 6 %) breaches it while staying inside the 10 % drawdown limit.
fn with_btc() -> Vec<crbot::domain::Balance> {
    vec![balance("USDT", "10000", "0"), balance("BTC", "0.2", "0")]
}

/// A protected BTC position (its legs open) and a resting ETH entry, on `with_btc` balances.
fn breach_ready(
    auto_flatten: bool,
) -> (
    Script,
    crbot::domain::OrderRequest,
    [crbot::domain::ClientOrderId; 2],
) {
    let Protected {
        script: mut s, oco, ..
    } = protected_position_with(Limits::default(), auto_flatten, with_btc());
    let rest_req = s.command(Command::SubmitTicket(resting_eth())).one_place();
    let new = report(&rest_req, 7010, OrderStatus::New, "0", "2990");
    s.step(placed(&rest_req, Some(resting_eth()), new, Vec::new()));
    assert_eq!(s.open_orders().len(), 3);
    s.advance(2_000);
    s.step(quote("44000", "44000.01", s.now));
    s.step(quote_for(ETH, "2999.99", "3000", s.now));
    (s, rest_req, oco_legs(&oco))
}

#[test]
fn the_days_loss_limit_reduces_at_the_tick_cancelling_entries_but_not_protection() {
    let (mut s, rest_req, legs) = breach_ready(false);
    assert_eq!(
        s.trading_code(),
        TradingStateCode::Active,
        "a quote alone decides nothing"
    );

    let fx = s.step(Input::Tick(TickFacts::default()));
    assert_eq!(s.trading_code(), TradingStateCode::Reducing);
    assert_eq!(s.trading_trigger(), "DAILY_LOSS");
    let cancels = fx.cancels();
    assert_eq!(cancels, vec![&rest_req.client_order_id], "{:?}", fx.0);
    for leg in &legs {
        assert!(!cancels.contains(&leg), "protective leg {leg} stays");
    }
    assert_eq!(fx.sweeps(), 0, "reducing is not a halt: {:?}", fx.0);
    assert!(fx.places().is_empty(), "{:?}", fx.0);
}

#[test]
fn with_auto_flatten_the_days_loss_limit_halts_sweeps_then_flattens_after_the_resync() {
    use crbot::engine::kill::KillEvent;
    use crbot::exchange::binance::reconcile::Resolution;
    let (mut s, _, _) = breach_ready(true);

    let fx = s.step(Input::Tick(TickFacts::default()));
    assert_eq!(s.trading_code(), TradingStateCode::Halted);
    assert_eq!(s.trading_trigger(), "DAILY_LOSS");
    assert_eq!(fx.sweeps(), 1, "{:?}", fx.0);
    assert!(
        fx.cancels().is_empty() && fx.places().is_empty(),
        "the sweep cancels: {:?}",
        fx.0
    );

    s.answer(Answer::SweepStarted {
        reason: Some("automatic halt".into()),
    });
    let done = KillEvent::Done {
        ok: true,
        summary: "all orders cancelled".into(),
    };
    let fx = s.answer(Answer::Kill(done));
    assert!(
        fx.places().is_empty(),
        "no flatten before balances are read again: {:?}",
        fx.0
    );
    let request = fx.resync().cloned().expect("a resync after the sweep");
    assert_eq!(request.unfinished.len(), 3, "{:?}", request.unfinished);

    // The exchange: every order cancelled by the sweep, the position's BTC free again.
    let orders = request
        .unfinished
        .iter()
        .enumerate()
        .map(|(i, (symbol, cid))| {
            let o = settled(symbol, cid, 8000 + i as u64, OrderStatus::Canceled);
            (cid.clone(), Resolution::Found(o))
        })
        .collect();
    let balances = vec![balance("USDT", "9900", "0"), balance("BTC", "0.201998", "0")];
    let fx = s.answer(resynced_settling(balances, orders, s.now));
    let flatten = fx.one_place();
    assert_eq!(flatten.symbol.as_str(), BTC);
    assert_eq!(flatten.side, Side::Sell);
    assert_eq!(flatten.order_type, OrderType::Market);
    assert_eq!(
        flatten.qty,
        q("0.00199"),
        "crbot's position, rounded down; not the 0.2 held outside"
    );
    assert_eq!(s.journaled(&flatten.client_order_id), LocalOrderState::Sending);
}

#[test]
fn a_restart_restores_the_position_and_its_open_legs_and_asks_the_exchange_about_them() {
    let Protected { script, entry, oco } = protected_position();
    let mut s = script.restarted(3_600_000, Limits::default(), false);

    let mut open: Vec<String> = s
        .open_orders()
        .iter()
        .map(|o| o.client_order_id.to_string())
        .collect();
    open.sort();
    let mut legs: Vec<String> = oco_legs(&oco).iter().map(|c| c.to_string()).collect();
    legs.sort();
    assert_eq!(open, legs);
    assert!(matches!(
        s.snapshot().header.trading,
        crbot::engine::snapshot::TradingState::Active
    ));
    assert!(
        !s.engine.reconciled(),
        "a restart reconciles again before any ticket"
    );

    s.step(Input::Started);
    let fx = s.answer(Answer::Info(Ok(info())));
    let request = fx.resync().cloned().expect("the rules start the resync");
    // Fills are booked against their symbol's filters: the position is rebuilt once the rules
    // are in, before the exchange has answered anything about it.
    assert_eq!(s.position(), q("0.001998"));
    let mut unfinished: Vec<String> = request.unfinished.iter().map(|(_, c)| c.clone()).collect();
    unfinished.sort();
    assert_eq!(unfinished, legs, "the open legs, not the filled entry");
    assert!(!unfinished.contains(&entry.client_order_id.to_string()));
    assert!(request.unfinished.iter().all(|(sy, _)| sy.as_str() == BTC));
}

#[test]
fn a_restart_after_an_unfinished_sweep_sweeps_again_once_reconciled() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    assert_eq!(s.command(Command::Kill).sweeps(), 1);
    s.answer(Answer::SweepStarted {
        reason: Some("kill switch pressed".into()),
    });
    // crbot dies here: no KILL_DONE in the journal.
    let mut s = s.restarted(60_000, Limits::default(), false);
    assert_eq!(s.trading_code(), TradingStateCode::Halted);

    assert_eq!(
        s.step(Input::Started).sweeps(),
        0,
        "not before the exchange is read"
    );
    let fx = s.answer(Answer::Info(Ok(info())));
    assert_eq!(fx.sweeps(), 0, "{:?}", fx.0);
    assert!(fx.resync().is_some());
    let fx = s.answer(resynced(usdt_only(), Vec::new(), s.now));
    assert_eq!(fx.sweeps(), 1, "the interrupted sweep is finished: {:?}", fx.0);
    assert!(fx.places().is_empty(), "{:?}", fx.0);
}
