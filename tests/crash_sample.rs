//! A fast sample of the crash harness for the normal test suite: one run per
//! failpoint, each crashing crbot at that exact point of an order's life, then the journal
//! checked against the exchange after a restart. The full randomised set (≥ 100 runs, with
//! SIGKILLs) is `cargo bench --bench crash`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "crash_common/harness.rs"]
mod harness;

use harness::{Harness, Rng, Store, failpoint_fault, run_all};

#[test]
fn every_failpoint_leaves_the_journal_matching_the_exchange_after_a_restart() {
    every_failpoint(Store::Sqlite);
}

/// The same with the journal in PostgreSQL (`DATABASE_URL=postgresql://…`).
#[test]
fn every_failpoint_leaves_the_postgresql_journal_matching_the_exchange_after_a_restart() {
    every_failpoint(Store::Postgres);
}

fn every_failpoint(store: Store) {
    let h = Harness::with_store(env!("CARGO_BIN_EXE_crbot").into(), store);
    let mut rng = Rng::new(7);
    let faults = harness::POINTS
        .iter()
        .enumerate()
        .map(|(i, p)| (1000 + i as u64, failpoint_fault(p, &mut rng)))
        .collect();
    let reports = run_all(&h, faults);
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| !r.discrepancies.is_empty())
        .map(|r| r.to_string())
        .collect();
    assert!(bad.is_empty(), "discrepancies:\n{}", bad.join("\n"));
    // A failpoint that is never reached would make its run prove nothing.
    let missed: Vec<String> = reports
        .iter()
        .filter(|r| !r.fired)
        .map(|r| r.fault.to_string())
        .collect();
    assert!(missed.is_empty(), "failpoints never reached: {missed:?}");
}

/// The checks themselves: a journal that lost its fills is reported (fills and balances),
/// on both stores.
#[test]
fn the_harness_reports_a_journal_that_lost_its_fills() {
    lost_fills_are_reported(Store::Sqlite);
}

#[test]
fn the_harness_reports_a_postgresql_journal_that_lost_its_fills() {
    lost_fills_are_reported(Store::Postgres);
}

fn lost_fills_are_reported(store: Store) {
    let h = Harness::with_store(env!("CARGO_BIN_EXE_crbot").into(), store);
    let fault = failpoint_fault("kill_mid_sweep", &mut Rng::new(1));
    let clean = h.run(2000, fault.clone());
    assert!(clean.discrepancies.is_empty(), "{clean}");
    let tampered = h.run_tampered(2001, fault, Some("DELETE FROM trades"));
    let text = tampered.discrepancies.join("\n");
    assert!(
        text.contains("not in the journal"),
        "a lost fill went unseen:\n{tampered}"
    );
    assert!(
        text.contains("journal fills imply"),
        "balances went unchecked:\n{tampered}"
    );
}
