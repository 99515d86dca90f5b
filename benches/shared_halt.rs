//! A halt from another process, as the running engine sees it: the console engine
//! (`Runtime::run`, no screen) on a journal with 20 resting orders, and a second connection to
//! the same journal (as `crbot kill` in another shell, or on another host with the same
//! `DATABASE_URL`) writing a HALTED row. Measured from the moment that write returns (the
//! halt is durable) until the engine's snapshot shows HALTED.
//!
//! On SQLite the engine sees it at its next 250 ms tick (the poll of
//! `latest_trading_state_id`); on PostgreSQL the write's `NOTIFY` wakes it at once
//! (`journal::notify`), the tick staying as the fallback. Both stores, 20 rounds each, on a
//! local PostgreSQL cluster the bench starts (`PgCluster::start_durable`).
//!
//! The engine publishes its snapshot at most every 33 ms, so both include up to one frame.
//!
//! Run: `cargo bench --bench shared_halt` (prints median, p95 and max per store).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{StillMarket, full_run, ms, percentile, still_market_at};
use crbot::domain::Mode;
use crbot::engine::runtime::Runtime;
use crbot::journal::{Journal, Location, PgTarget, TicketSource, TradingStateCode, TradingStateRecord};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 20;
const SMOKE_ROUNDS: usize = 2;

async fn one_round(cluster: Option<&Arc<pg_support::PgCluster>>, round: u64) -> Duration {
    let db = cluster.map(|c| c.database());
    let sqlite = tempfile::tempdir().unwrap();
    let location = match &db {
        Some(db) => Location::Postgres(PgTarget::parse(&db.url()).unwrap()),
        None => Location::Sqlite(sqlite.path().join("journal.db")),
    };
    let StillMarket {
        sim,
        relay,
        core,
        rest,
        ..
    } = still_market_at(TicketSource::Tui, Some(location.clone())).await;
    let (snap_tx, mut snap_rx) = watch::channel(core.state.snapshot(common::now_ms()));
    let (_cmd_tx, cmd_rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(Runtime::run(
        core,
        rest,
        cmd_rx,
        snap_tx,
        cancel.clone(),
        false,
        None,
    ));
    // A console at rest: start-up traffic settled, the listener connected; the write lands at
    // a different moment of the 250 ms tick each round (else every round would see the same
    // share of the poll's interval).
    tokio::time::sleep(Duration::from_millis(1500 + round * 97 % 250)).await;

    let other = Journal::open_at(&location, Mode::Sim).unwrap();
    let halt = TradingStateRecord {
        time_ms: common::now_ms(),
        state: TradingStateCode::Halted,
        reason: "kill switch from another shell".into(),
        trigger: "CLI_KILL".into(),
        actor: "bench".into(),
    };
    other.record_trading_state(&halt).unwrap();
    let t0 = Instant::now();
    let seen = loop {
        if snap_rx.borrow_and_update().header.trading.is_halted() {
            break t0.elapsed();
        }
        tokio::time::timeout(Duration::from_secs(10), snap_rx.changed())
            .await
            .expect("the engine never showed the halt")
            .unwrap();
    };
    cancel.cancel();
    let _ = engine.await;
    relay.abort();
    sim.shutdown().await;
    seen
}

fn main() {
    let rounds = if full_run() { ROUNDS } else { SMOKE_ROUNDS };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cluster = Arc::new(pg_support::PgCluster::start_durable());
    for (name, on) in [("SQLite (poll)", None), ("PostgreSQL (NOTIFY)", Some(&cluster))] {
        let mut v: Vec<Duration> = (0..rounds as u64)
            .map(|i| rt.block_on(one_round(on, i)))
            .collect();
        v.sort();
        println!(
            "shared halt, {name:<20} {rounds} rounds: durable → engine shows HALTED median {:>10}  p95 {:>10}  max {:>10}",
            ms(percentile(&v, 0.5)),
            ms(percentile(&v, 0.95)),
            ms(v[v.len() - 1])
        );
    }
}
