//! The crash harness at full size: ≥ 100 runs, each crashing one command of
//! a trading script at a random moment — a failpoint (an abort at an exact point of an order's
//! life) or a SIGKILL after a random delay — then restarting crbot and checking the journal
//! against the exchange (see `tests/crash_common/harness.rs`). Prints one line per run and
//! `crash harness: N runs, D discrepancies`; exits non-zero on any discrepancy.
//!
//! `cargo bench --bench crash` (CRASH_RUNS=n to change the count, CRASH_SEED=s the seed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/crash_common/harness.rs"]
mod harness;

use harness::{Harness, Rng, random_fault, run_all};

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` (CI) this is a smoke
    // run only: the sample test (`tests/crash_sample.rs`) covers every failpoint there.
    let full = std::env::args().any(|a| a == "--bench");
    let default_runs = if full { 100 } else { 2 };
    let runs: u64 = std::env::var("CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_runs);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261128);
    let h = Harness::new(env!("CARGO_BIN_EXE_crbot").into());
    let mut rng = Rng::new(seed);
    let faults = (0..runs)
        .map(|_| {
            let run_seed = rng.next();
            (run_seed, random_fault(&mut Rng::new(run_seed)))
        })
        .collect();
    let reports = run_all(&h, faults);
    if reports.iter().any(|r| !r.discrepancies.is_empty()) {
        std::process::exit(1);
    }
}
