//! Kill switch latency: the console engine, driven without a screen, against
//! the local exchange started in this process, with 20 resting orders on 5 symbols.
//!
//! Measured from the moment `Command::Kill` is handed to the engine (the key press):
//! (a) until the first `DELETE /api/v3/openOrders` reaches the exchange's socket,
//! (b) until the last of the 5 has, and
//! (c) until the engine reports the exchange confirmed nothing is open (the snapshot the
//!     screen draws; published at most every 33 ms).
//! The wire times come from a byte-level TCP relay in front of the exchange's REST port
//! (the sim itself is untouched): the relay timestamps each request line as it reads it.
//!
//! Run: `cargo bench --bench kill_latency` (prints median and p95 of each figure).
//! `KILL_STORE=postgres`: the journal (where the halt is written before the first cancel) is a
//! database on a local PostgreSQL cluster the bench starts, syncing its WAL on commit as a
//! production server does (`tests/pg_support`, `PgCluster::start_durable`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::time::{Duration, Instant};

use common::{ORDERS_PER_SYMBOL, SYMBOLS, StillMarket, full_run, ms, now_ms, percentile, still_market_at};
use crbot::engine::runtime::Runtime;
use crbot::engine::snapshot::{Command, KillStage};
use crbot::journal::TicketSource;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Rounds under `cargo bench`; `cargo test --all-targets` (CI) runs a 2-round smoke.
const ROUNDS: usize = 20;
const SMOKE_ROUNDS: usize = 2;

struct Sample {
    first: Duration,
    all: Duration,
    confirmed: Duration,
}

async fn one_round(cluster: Option<&std::sync::Arc<pg_support::PgCluster>>) -> Sample {
    let db = cluster.map(|c| c.database());
    let journal = db
        .as_ref()
        .map(|db| crbot::journal::Location::Postgres(crbot::journal::PgTarget::parse(&db.url()).unwrap()));
    let StillMarket {
        sim: h,
        log,
        relay: relay_task,
        rest,
        core,
        dir: _dir,
    } = still_market_at(TicketSource::Tui, journal).await;

    let (snap_tx, mut snap_rx) = watch::channel(core.state.snapshot(now_ms()));
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(Runtime::run(
        core,
        rest.clone(),
        cmd_rx,
        snap_tx,
        cancel.clone(),
        false,
        None,
    ));
    // Let the start-up traffic (rules, candles, tickers, reconciliation) settle, so that
    // the figures are those of a console at rest, as when a trader reaches for the key.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    log.take();

    let t0 = Instant::now();
    cmd_tx.send(Command::Kill).await.unwrap();
    let confirmed = loop {
        snap_rx.changed().await.unwrap();
        let s = snap_rx.borrow_and_update().clone();
        if let Some(k) = &s.kill
            && k.done
            && k.stage == KillStage::Cancelled
        {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the kill never completed");
    };
    let wire = log.take();
    assert_eq!(wire.len(), SYMBOLS.len(), "one cancel-all per symbol expected");
    let left = rest.open_orders(None).await.unwrap();
    assert!(left.is_empty(), "{} orders still open after the kill", left.len());

    cancel.cancel();
    let _ = engine.await;
    relay_task.abort();
    h.shutdown().await;
    Sample {
        first: wire.iter().min().unwrap().duration_since(t0),
        all: wire.iter().max().unwrap().duration_since(t0),
        confirmed,
    }
}

fn main() {
    let rounds = if full_run() { ROUNDS } else { SMOKE_ROUNDS };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let postgres = matches!(
        std::env::var("KILL_STORE").as_deref(),
        Ok("postgres" | "postgresql" | "pg")
    );
    let cluster = postgres.then(|| std::sync::Arc::new(pg_support::PgCluster::start_durable()));
    let mut samples = Vec::new();
    for i in 0..rounds {
        let s = rt.block_on(one_round(cluster.as_ref()));
        eprintln!(
            "round {:>2}: first cancel {}, all cancels {}, confirmed {}",
            i + 1,
            ms(s.first),
            ms(s.all),
            ms(s.confirmed)
        );
        samples.push(s);
    }
    let report = |name: &str, target: Duration, f: &dyn Fn(&Sample) -> Duration| {
        let mut v: Vec<Duration> = samples.iter().map(f).collect();
        v.sort();
        let (med, p95) = (percentile(&v, 0.5), percentile(&v, 0.95));
        let verdict = if p95 <= target { "within" } else { "OVER" };
        println!(
            "kill latency {name:<40} median {:>10}  p95 {:>10}  (target ≤ {}, p95 {verdict})",
            ms(med),
            ms(p95),
            ms(target)
        );
    };
    println!(
        "kill latency: {rounds} rounds, {} open orders on {} symbols, journal in {}",
        SYMBOLS.len() * ORDERS_PER_SYMBOL,
        SYMBOLS.len(),
        if postgres { "PostgreSQL" } else { "SQLite" }
    );
    report(
        "(a) key → first cancel on the wire",
        Duration::from_millis(10),
        &|s| s.first,
    );
    report("(b) key → all cancels sent", Duration::from_millis(50), &|s| {
        s.all
    });
    report(
        "(c) key → exchange confirms none open",
        Duration::from_secs(1),
        &|s| s.confirmed,
    );
}
