//! Scripted tests of `engine::core::Core`, the journal-first money path: each step is fed by
//! hand (an exchange answer, a fill, a halt) against a real journal and, where an order must
//! exist, the local exchange, and the journal and the state are checked after each step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use crbot::domain::broker::OrderOutcome;
use crbot::domain::{
    Asset, Balance, LocalOrderState, Mode, OrderPurpose, OrderStatus, Price, Qty, Side, Ticket, TicketKind,
};
use crbot::engine::core::{Core, Refusal};
use crbot::journal::{Journal, KillTrigger, TicketSource, TradingStateCode};
use crbot::risk::{Broker, Limits, TradingState, Trigger};
use engine_support::*;

fn qty(s: &str) -> Qty {
    s.parse().unwrap()
}

fn price(d: rust_decimal::Decimal) -> Price {
    Price::try_new(d.round_dp(2)).unwrap()
}

/// A BUY LIMIT on BTCUSDT crossing the ask, with a stop-loss and a take-profit.
fn entry(ask: Price) -> Ticket {
    let a = ask.value();
    Ticket {
        symbol: sym(BTC),
        side: Side::Buy,
        kind: TicketKind::Limit {
            price: price(a * dec("1.002")),
        },
        qty: qty("0.001"),
        stop_loss: Some(price(a * dec("0.98"))),
        take_profit: Some(price(a * dec("1.03"))),
    }
}

#[tokio::test]
async fn risk_refused_ticket_journals_its_codes_and_writes_no_order() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut core = primed_core(&ex, &journal_path(dir.path()), Limits::default(), now).await;
    let (_, ask) = ex.book(BTC).await;
    let naked = Ticket {
        stop_loss: None,
        take_profit: None,
        ..entry(ask)
    };

    let refusal = core.decide(&naked, OrderPurpose::Entry, false, now).unwrap_err();

    let Refusal::Risk(denials) = refusal else {
        panic!("expected a risk refusal, got {refusal:?}")
    };
    let codes: Vec<&str> = denials.iter().map(|d| d.code()).collect();
    assert!(
        codes.contains(&"MISSING_STOP_LOSS") && codes.contains(&"MISSING_TAKE_PROFIT"),
        "{codes:?}"
    );
    let events = core.journal.recent_risk_events(10).unwrap();
    assert_eq!(events.len(), 1, "exactly one risk decision journaled");
    let ev = &events[0].record;
    assert!(!ev.approved);
    assert!(
        ev.codes.contains(&"MISSING_STOP_LOSS".to_string()),
        "{:?}",
        ev.codes
    );
    assert!(
        ev.codes.contains(&"MISSING_TAKE_PROFIT".to_string()),
        "{:?}",
        ev.codes
    );
    assert_eq!(ev.ticket, naked);
    assert!(
        core.journal.recent_orders(10).unwrap().is_empty(),
        "a refused ticket has no order row"
    );
    assert!(core.state.orders.is_empty());
    assert!(
        ex.all_orders(BTC).await.is_empty(),
        "nothing reached the exchange"
    );
}

#[tokio::test]
async fn approved_ticket_is_journaled_as_sending_before_it_is_sent_then_follows_the_exchange() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut core = primed_core(&ex, &journal_path(dir.path()), Limits::default(), now).await;
    let (_, ask) = ex.book(BTC).await;

    let prepared = core.decide(&entry(ask), OrderPurpose::Entry, false, now).unwrap();

    let cid = prepared.request.client_order_id.clone();
    let events = core.journal.recent_risk_events(10).unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].record.approved && events[0].record.codes.is_empty());
    let row = core
        .journal
        .order(&cid)
        .unwrap()
        .expect("order row written by decide");
    assert_eq!(row.state, LocalOrderState::Sending);
    assert_eq!(row.purpose, OrderPurpose::Entry);
    assert_eq!((row.side, row.qty), (Side::Buy, qty("0.001")));
    assert!(ex.all_orders(BTC).await.is_empty(), "decide sends nothing itself");

    // The caller sends what decide returned and reports the answer back.
    let OrderOutcome::Done(placed) = ex.rest.place_order(&prepared.request).await else {
        panic!("the crossing limit should be accepted")
    };
    assert_eq!(placed.order.status, OrderStatus::Filled);
    let later = now + 50;
    let follow = core.on_exchange_order(&placed.order, later);
    for f in &placed.fills {
        assert!(core.on_fill(f, later));
    }
    assert_eq!(
        follow.len(),
        1,
        "a filled entry with SL/TP asks for its protective OCO: {follow:?}"
    );
    let row = core.journal.order(&cid).unwrap().unwrap();
    assert_eq!(row.state, LocalOrderState::Exchange(OrderStatus::Filled));
    assert_eq!(row.order_id, Some(placed.order.order_id));
    assert_eq!(row.executed_qty, qty("0.001"));

    // Each fill's log line carries its fee: in its own asset and, priced at the fill, in USDT.
    let snap = core.state.snapshot(later);
    // The screen gets the tick of the symbol it shows (the position's), to print its prices.
    let btc = crbot::domain::Symbol::new(BTC).unwrap();
    assert_eq!(
        snap.tick(&btc),
        core.state.rules[&btc].filters.price.as_ref().map(|f| f.tick_size)
    );
    assert!(snap.tick(&btc).is_some());
    let lines: Vec<&str> = snap
        .log
        .iter()
        .filter(|l| l.kind == crbot::engine::snapshot::LogKind::Fill)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(lines.len(), placed.fills.len(), "{lines:?}");
    for (line, f) in lines.iter().zip(&placed.fills) {
        let own = crbot::domain::Money::new(f.commission.value(), f.commission_asset.clone()).display();
        let value = crbot::domain::Money::new(
            f.commission.value() * f.price.value(),
            crbot::domain::Asset::usdt(),
        )
        .display();
        assert!(
            line.contains(&format!(", fee {own} ({value})")),
            "{line} (fee {own}, worth {value})"
        );
    }
}

#[tokio::test]
async fn a_late_status_never_reopens_a_terminal_order_and_a_duplicate_fill_is_ignored() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut core = primed_core(&ex, &journal_path(dir.path()), Limits::default(), now).await;
    let (_, ask) = ex.book(BTC).await;
    let prepared = core.decide(&entry(ask), OrderPurpose::Entry, false, now).unwrap();
    let cid = prepared.request.client_order_id.clone();
    let OrderOutcome::Done(placed) = ex.rest.place_order(&prepared.request).await else {
        panic!()
    };
    core.on_exchange_order(&placed.order, now + 1);
    let fill = placed.fills.first().cloned().expect("a taker fill");
    assert!(core.on_fill(&fill, now + 1), "the first copy of a fill is new");
    let position = core.state.positions.qty(&sym(BTC));
    assert!(!position.is_zero());

    // A late NEW (an out-of-order user-data event) and a late PARTIALLY_FILLED.
    let follow = core.apply_status(
        &cid,
        OrderStatus::New,
        Some(placed.order.order_id),
        None,
        Qty::ZERO,
        crbot::domain::Notional::ZERO,
        None,
        now + 2,
    );
    assert!(follow.is_empty());
    let mut stale = placed.order.clone();
    stale.status = OrderStatus::PartiallyFilled;
    stale.executed_qty = qty("0.0005");
    core.on_exchange_order(&stale, now + 3);

    let filled = LocalOrderState::Exchange(OrderStatus::Filled);
    assert_eq!(core.state.orders[&cid].state, filled);
    assert_eq!(core.state.orders[&cid].executed_qty, qty("0.001"));
    let row = core.journal.order(&cid).unwrap().unwrap();
    assert_eq!(
        (row.state, row.executed_qty),
        (filled, qty("0.001")),
        "the journal kept FILLED"
    );
    assert!(core.state.open_orders().is_empty());

    // The same fill again (user stream and REST both report it).
    assert!(!core.on_fill(&fill, now + 4), "a duplicate fill is not new");
    assert_eq!(
        core.journal.fills_for(&sym(BTC)).unwrap().len(),
        placed.fills.len()
    );
    assert_eq!(
        core.state.positions.qty(&sym(BTC)),
        position,
        "the position is booked once"
    );
}

#[tokio::test]
async fn halt_is_durable_and_a_restart_stays_halted_until_rearmed() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(dir.path());
    let now = now_ms();
    let mut core = primed_core(&ex, &path, Limits::default(), now).await;

    core.halt(KillTrigger::Key, "test halt", now).unwrap();
    assert!(matches!(core.state.trading, TradingState::Halted { .. }));
    drop(core);

    // Another connection (another process) sees it at once.
    let other = Journal::open(&path, Mode::Sim).unwrap();
    let latest = other.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(
        (latest.state, latest.reason.as_str()),
        (TradingStateCode::Halted, "test halt")
    );
    drop(other);

    // A restart restores HALTED, refuses entries, and writes no ACTIVE row of its own.
    let later = now + 1_000;
    let mut core = primed_core(&ex, &path, Limits::default(), later).await;
    assert!(matches!(core.state.trading, TradingState::Halted { ref reason, .. } if reason == "test halt"));
    let (_, ask) = ex.book(BTC).await;
    let Err(Refusal::Risk(denials)) = core.decide(&entry(ask), OrderPurpose::Entry, false, later) else {
        panic!("a halted console must refuse an entry")
    };
    assert!(denials.iter().any(|d| d.code() == "STATE_HALTED"), "{denials:?}");
    let latest = core.journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(latest.state, TradingStateCode::Halted);

    // Only an explicit re-arm leaves it, journaled.
    core.rearm("test", later + 1).unwrap();
    assert_eq!(core.state.trading, TradingState::Active);
    let latest = core.journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(
        (latest.state, latest.trigger.as_str()),
        (TradingStateCode::Active, "REARM")
    );
    assert!(
        core.decide(&entry(ask), OrderPurpose::Entry, false, later + 2)
            .is_ok()
    );
}

fn usdt_only(core: &mut Core, amount: &str) {
    core.state.set_balances(
        [Balance {
            asset: Asset::usdt(),
            free: qty(amount),
            locked: Qty::ZERO,
        }],
        true,
    );
}

#[tokio::test]
async fn reducing_by_drawdown_survives_a_restart_and_a_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(dir.path());
    let limits = Limits {
        max_drawdown_pct: dec("1"),
        max_daily_loss_pct: dec("50"),
        ..Limits::default()
    };
    let now = now_ms();
    let journal = Journal::open(&path, Mode::Sim).unwrap();
    let mut core = Core::restore(journal, Mode::Sim, limits.clone(), TicketSource::Tui, now).unwrap();

    usdt_only(&mut core, "10000");
    assert!(
        core.sample_equity(now, true).is_none(),
        "no breach at the high-water mark"
    );
    usdt_only(&mut core, "9850");
    let t = core
        .sample_equity(now + 1_000, true)
        .expect("a 1.5 % drawdown breaches 1 %");
    assert_eq!(t.trigger, Trigger::Drawdown);
    assert!(matches!(
        core.state.trading,
        TradingState::Reducing {
            trigger: Trigger::Drawdown,
            ..
        }
    ));
    let latest = core.journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(
        (latest.state, latest.trigger.as_str()),
        (TradingStateCode::Reducing, "DRAWDOWN")
    );
    drop(core);

    let later = now + 2_000;
    let journal = Journal::open(&path, Mode::Sim).unwrap();
    let mut core = Core::restore(journal, Mode::Sim, limits, TicketSource::Tui, later).unwrap();
    assert!(
        matches!(
            core.state.trading,
            TradingState::Reducing {
                trigger: Trigger::Drawdown,
                until_ms: None,
                ..
            }
        ),
        "restored as a reduce that waits for a person: {:?}",
        core.state.trading
    );
    // Equity recovers: a drawdown reduce is sticky, nothing re-arms it automatically.
    usdt_only(&mut core, "10000");
    assert!(core.sample_equity(later + 1_000, true).is_none());
    assert!(matches!(core.state.trading, TradingState::Reducing { .. }));
    let latest = core.journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(latest.state, TradingStateCode::Reducing);
}

#[tokio::test]
async fn a_fill_read_back_by_rest_without_a_client_id_is_booked_to_its_own_order() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut core = primed_core(&ex, &journal_path(dir.path()), Limits::default(), now).await;
    let (_, ask) = ex.book(BTC).await;
    let prepared = core.decide(&entry(ask), OrderPurpose::Entry, false, now).unwrap();
    let cid = prepared.request.client_order_id.clone();
    let OrderOutcome::Done(placed) = ex.rest.place_order(&prepared.request).await else {
        panic!()
    };
    core.on_exchange_order(&placed.order, now + 1);

    // What a resync reads from GET /api/v3/myTrades: the fill, without its client order id.
    let rest_fills = ex.rest.my_trades(&sym(BTC), None).await.unwrap();
    assert!(!rest_fills.is_empty() && rest_fills.iter().all(|f| f.client_order_id.is_none()));
    for f in &rest_fills {
        assert!(core.on_fill(f, now + 2));
    }

    assert!(
        !core.state.positions.qty(&sym(BTC)).is_zero(),
        "crbot's own fill builds its position"
    );
    let journaled = core.journal.fills_for(&sym(BTC)).unwrap();
    assert_eq!(journaled.len(), rest_fills.len());
    assert!(
        journaled.iter().all(|f| f.client_order_id.as_ref() == Some(&cid)),
        "{journaled:?}"
    );
}

#[tokio::test]
async fn a_lost_answer_after_the_exchange_reported_the_order_does_not_reopen_it() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut core = primed_core(&ex, &journal_path(dir.path()), Limits::default(), now).await;
    let (_, ask) = ex.book(BTC).await;
    let prepared = core.decide(&entry(ask), OrderPurpose::Entry, false, now).unwrap();
    let cid = prepared.request.client_order_id.clone();
    let OrderOutcome::Done(placed) = ex.rest.place_order(&prepared.request).await else {
        panic!()
    };
    // The user stream's report arrives first (FILLED) ...
    core.on_exchange_order(&placed.order, now + 1);
    // ... then the REST answer is lost (503, timeout): the runtime calls mark_unknown.
    core.mark_unknown(&cid, "HTTP 503 -1007", now + 2);

    let filled = LocalOrderState::Exchange(OrderStatus::Filled);
    assert_eq!(
        core.state.orders[&cid].state, filled,
        "a FILLED order is not reopened as UNKNOWN"
    );
    assert_eq!(core.journal.order(&cid).unwrap().unwrap().state, filled);
    assert!(core.state.open_orders().is_empty());
}

#[tokio::test]
async fn a_pnl_that_cannot_be_computed_fails_closed_to_reducing_and_refuses_entries() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut core = primed_core(&ex, &journal_path(dir.path()), Limits::default(), now).await;
    assert_eq!(core.state.trading, TradingState::Active);

    // A sample older than the last one (the clock stepped back) cannot be placed on the curve.
    let t = core
        .sample_equity(now - 60_000, true)
        .expect("an unusable sample is a transition");
    assert_eq!(t.trigger, Trigger::PnlUnavailable);
    assert!(matches!(
        core.state.trading,
        TradingState::Reducing {
            trigger: Trigger::PnlUnavailable,
            ..
        }
    ));
    let latest = core.journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(
        (latest.state, latest.trigger.as_str()),
        (TradingStateCode::Reducing, "PNL_UNAVAILABLE")
    );
    let (_, ask) = ex.book(BTC).await;
    let Err(Refusal::Risk(denials)) = core.decide(&entry(ask), OrderPurpose::Entry, false, now) else {
        panic!("no entry while the P&L is unknown")
    };
    let codes: Vec<&str> = denials.iter().map(|d| d.code()).collect();
    assert!(
        codes.contains(&"STATE_REDUCING") || codes.contains(&"PNL_UNAVAILABLE"),
        "{codes:?}"
    );
}

#[tokio::test]
async fn reducing_by_daily_loss_survives_a_restart_and_ends_at_the_next_utc_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(dir.path());
    let limits = Limits {
        max_daily_loss_pct: dec("1"),
        max_drawdown_pct: dec("50"),
        ..Limits::default()
    };
    // Noon UTC on a fixed day, so that "the next midnight" is unambiguous.
    let noon = 1_795_867_200_000 - 1_795_867_200_000 % 86_400_000 + 43_200_000;
    let journal = Journal::open(&path, Mode::Sim).unwrap();
    let mut core = Core::restore(journal, Mode::Sim, limits.clone(), TicketSource::Tui, noon).unwrap();
    usdt_only(&mut core, "10000");
    assert!(core.sample_equity(noon, true).is_none());
    usdt_only(&mut core, "9850");
    let t = core
        .sample_equity(noon + 1_000, true)
        .expect("-1.5 % today breaches 1 %");
    assert_eq!(t.trigger, Trigger::DailyLoss);
    drop(core);

    let journal = Journal::open(&path, Mode::Sim).unwrap();
    let mut core = Core::restore(journal, Mode::Sim, limits, TicketSource::Tui, noon + 2_000).unwrap();
    let midnight = crbot::risk::next_utc_midnight_ms(noon);
    assert!(
        matches!(core.state.trading,
            TradingState::Reducing { trigger: Trigger::DailyLoss, until_ms: Some(u), .. } if u == midnight),
        "restored as reducing until midnight: {:?}",
        core.state.trading
    );
    usdt_only(&mut core, "9850");
    assert!(
        core.sample_equity(midnight - 1_000, true).is_none(),
        "still the same day: stays reducing"
    );
    assert!(matches!(core.state.trading, TradingState::Reducing { .. }));

    let t = core
        .sample_equity(midnight + 1_000, true)
        .expect("the new UTC day ends the daily-loss reduce");
    assert_eq!(t.to, TradingState::Active);
    let latest = core.journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(latest.state, TradingStateCode::Active);
}

#[tokio::test]
async fn a_restart_restores_positions_from_own_fills_and_counts_todays_entries() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(dir.path());
    let limits = Limits {
        max_trades_per_day: 2,
        ..Limits::default()
    };
    let now = now_ms();
    let mut core = primed_core(&ex, &path, limits.clone(), now).await;
    let (_, ask) = ex.book(BTC).await;
    let prepared = core.decide(&entry(ask), OrderPurpose::Entry, false, now).unwrap();
    let OrderOutcome::Done(placed) = ex.rest.place_order(&prepared.request).await else {
        panic!()
    };
    core.on_exchange_order(&placed.order, now + 1);
    for f in &placed.fills {
        core.on_fill(f, now + 1);
    }
    let position = core.state.positions.qty(&sym(BTC));
    assert!(!position.is_zero());
    // A second entry that the risk gate refuses does not count as sent.
    let naked = Ticket {
        stop_loss: None,
        ..entry(ask)
    };
    assert!(core.decide(&naked, OrderPurpose::Entry, false, now + 2).is_err());
    drop(core);

    // A restart later the same UTC day (a run just before midnight must not count tomorrow).
    let day_ms = 86_400_000;
    let later = (now + 5_000).min((now / day_ms + 1) * day_ms - 1);
    let core = primed_core(&ex, &path, limits, later).await;
    assert_eq!(
        core.state.positions.qty(&sym(BTC)),
        position,
        "rebuilt from the journaled own fills"
    );
    assert_eq!(core.state.entries.count_on(later), 1, "one entry sent today");
    let mut core = core;
    let (_, ask) = ex.book(BTC).await;
    let Err(Refusal::Risk(denials)) = core.decide(&entry(ask), OrderPurpose::Entry, false, later) else {
        panic!("a second entry on a symbol with a position is refused")
    };
    assert!(
        denials.iter().any(|d| d.code() == "DUPLICATE_POSITION"),
        "{denials:?}"
    );
}
