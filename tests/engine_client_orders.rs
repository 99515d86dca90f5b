//! Step-by-step tests of a client's ticket (`Command::Order`, what `POST /api/orders` and a
//! `crbot order` run against an engine send): the same gate as a screen ticket, and the
//! engine's `Effect::Reply` — at once for a refusal or a dry run, after the exchange's answer
//! for an order sent (or when its outcome is unknown: said so, never sent twice).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machine_support;

use crbot::domain::{LocalOrderState, OrderStatus, OrderType, Side, Ticket, TicketKind};
use crbot::engine::machine::{Effect, Placement, Reply};
use crbot::engine::snapshot::Command;
use crbot::risk::Limits;
use machine_support::*;

fn entry_ticket() -> Ticket {
    Ticket {
        symbol: sym(BTC),
        side: Side::Buy,
        kind: TicketKind::Limit { price: p("50100") },
        qty: q("0.002"),
        stop_loss: Some(p("49000")),
        take_profit: Some(p("51500")),
    }
}

fn order(request: u64, ticket: Ticket, dry_run: bool) -> Command {
    Command::Order {
        request,
        ticket,
        dry_run,
    }
}

/// The replies among the effects, with their request ids.
fn replies(fx: &Effects) -> Vec<(u64, Reply)> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Reply { request, reply } => Some((*request, reply.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn an_approved_client_order_is_answered_when_the_exchange_answers_and_protected_after_its_fill() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let fx = s.command(order(7, entry_ticket(), false));
    let entry = fx.one_place();
    assert!(
        replies(&fx).is_empty(),
        "no answer before the exchange's: {:?}",
        fx.0
    );
    assert_eq!(entry.order_type, OrderType::Limit);
    assert_eq!(s.journaled(&entry.client_order_id), LocalOrderState::Sending);
    assert_eq!(s.snapshot().limits.trades_used, 1, "counted once, by the engine");

    let filled = report(&entry, 7001, OrderStatus::Filled, "0.002", "50000");
    let f = fill(&filled, 9001, "0.002", "50000", "0.000002", "BTC");
    let fx = s.step(placed(&entry, None, filled, vec![f]));
    // The engine protects a client's entry as it protects a screen ticket's.
    let oco = fx.one_oco();
    assert_eq!(oco.stop_loss, p("49000"));
    assert_eq!(oco.take_profit, p("51500"));
    let r = replies(&fx);
    assert_eq!(r.len(), 1, "{r:?}");
    let (
        request,
        Reply::Sent {
            placement,
            order,
            protective,
        },
    ) = &r[0]
    else {
        panic!("expected Sent, got {r:?}");
    };
    assert_eq!(*request, 7);
    assert_eq!(*placement, Placement::Accepted);
    let order = order.as_ref().expect("the order");
    assert_eq!(order.client_order_id, entry.client_order_id);
    assert_eq!(order.state, LocalOrderState::Exchange(OrderStatus::Filled));
    assert_eq!(protective.len(), 2, "both legs journaled: {protective:?}");
    assert_eq!(s.snapshot().limits.trades_used, 1, "still once");
}

#[test]
fn a_second_entry_on_the_same_symbol_is_refused_at_once_as_a_duplicate() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let first = s.command(order(1, entry_ticket(), false)).one_place();
    let fx = s.command(order(2, entry_ticket(), false));
    assert!(fx.places().is_empty(), "nothing sent: {:?}", fx.0);
    let r = replies(&fx);
    let [(2, Reply::RiskRejected { denials, .. })] = r.as_slice() else {
        panic!("expected one rejection for request 2, got {r:?}");
    };
    assert!(
        denials.iter().any(|d| d.code() == "DUPLICATE_POSITION"),
        "{denials:?}"
    );
    assert_eq!(s.journaled(&first.client_order_id), LocalOrderState::Sending);
}

#[test]
fn trades_per_day_counts_client_orders_and_screen_tickets_together() {
    let limits = Limits {
        max_trades_per_day: 1,
        ..Limits::default()
    };
    let mut s = Script::started(limits, false, usdt_only());
    s.command(Command::SubmitTicket(resting_eth())).one_place();
    let fx = s.command(order(3, entry_ticket(), false));
    assert!(fx.places().is_empty(), "{:?}", fx.0);
    let r = replies(&fx);
    let [(3, Reply::RiskRejected { denials, .. })] = r.as_slice() else {
        panic!("expected a rejection, got {r:?}");
    };
    assert!(
        denials.iter().any(|d| d.code() == "TRADES_PER_DAY"),
        "{denials:?}"
    );
}

#[test]
fn an_unknown_outcome_is_answered_as_unknown_and_settled_by_query_never_resent() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let entry = s.command(order(9, entry_ticket(), false)).one_place();
    let fx = s.step(placed_unknown(&entry, None));
    assert!(fx.places().is_empty(), "never resent: {:?}", fx.0);
    assert_eq!(fx.resolves().len(), 1, "settled by client order id");
    let r = replies(&fx);
    let [(9, Reply::Sent { placement, .. })] = r.as_slice() else {
        panic!("expected Sent, got {r:?}");
    };
    assert_eq!(*placement, Placement::Unknown);
}

#[test]
fn a_dry_run_answers_the_verdict_and_the_exact_order_and_sends_nothing() {
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let fx = s.command(order(4, entry_ticket(), true));
    assert!(fx.places().is_empty(), "{:?}", fx.0);
    let r = replies(&fx);
    let [(4, Reply::DryRun { lines, verdict, .. })] = r.as_slice() else {
        panic!("expected a dry run, got {r:?}");
    };
    let approved = verdict.as_ref().expect("approved");
    assert_eq!(approved.qty, q("0.002"));
    assert_eq!(approved.price, Some(p("50100")));
    assert!(lines.iter().all(|l| l.passed), "{lines:?}");
    assert_eq!(s.snapshot().limits.trades_used, 0, "a dry run is no trade");
    // And a real one afterwards is not a duplicate of it.
    s.command(order(5, entry_ticket(), false)).one_place();
}

#[test]
fn before_the_start_up_reconciliation_nothing_is_decided_and_the_client_is_told() {
    let mut s = Script::new(Limits::default(), false);
    let fx = s.command(order(6, entry_ticket(), false));
    assert!(fx.places().is_empty());
    let r = replies(&fx);
    assert_eq!(r, vec![(6, Reply::NotReady)]);
}

#[test]
fn a_client_backup_runs_off_the_loop_and_is_answered_with_its_outcome() {
    use crbot::engine::backup::{BackupOutcome, Reason};
    use crbot::engine::machine::Answer;
    let mut s = Script::started(Limits::default(), false, usdt_only());
    let dest = std::path::PathBuf::from("/backups/copy.db");
    let fx = s.command(Command::Backup {
        request: 11,
        dest: dest.clone(),
    });
    assert!(
        replies(&fx).is_empty(),
        "answered when the copy is done: {:?}",
        fx.0
    );
    assert!(
        fx.0.iter()
            .any(|e| matches!(e, Effect::Backup { dest: d, reason: Reason::Command, .. } if *d == dest)),
        "{:?}",
        fx.0
    );
    let fx = s.answer(Answer::Backup(Box::new(BackupOutcome {
        reason: Reason::Command,
        path: dest.clone(),
        result: Ok(4096),
        pruned: Vec::new(),
        prune_failures: Vec::new(),
    })));
    let r = replies(&fx);
    let [(11, Reply::Backup { dest: d, result, .. })] = r.as_slice() else {
        panic!("expected the backup's reply, got {r:?}");
    };
    assert_eq!(d, &dest);
    assert_eq!(result, &Ok(4096));
    assert_eq!(
        s.events(crbot::journal::EventKind::Backup).len(),
        1,
        "journaled once"
    );
}
