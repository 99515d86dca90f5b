//! Journal write latency on both stores: how long the engine waits for an order row
//! (`insert_order`, journaled before the order is sent) and a fill (`insert_fill`) to be
//! durable, on SQLite (WAL, `synchronous=FULL`) and on PostgreSQL (a local server started for
//! the run, `fsync=on`, `synchronous_commit=on`, over loopback TCP). Prints p50, p99 and max.
//!
//! `cargo bench --bench journal_latency` (JOURNAL_BENCH_N=n writes of each kind per store;
//! default 2000, 20 outside `cargo bench`). Needs Debian's `postgresql` package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crbot::domain::{
    Asset, ClientOrderId, Fill, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderType, Qty, Side,
    Symbol,
};
use crbot::journal::{Journal, Location, PgTarget};

fn order(i: u64) -> Order {
    Order {
        client_order_id: ClientOrderId::new(&format!("cr-bench-{i}")).unwrap(),
        order_id: None,
        order_list_id: None,
        symbol: Symbol::new("BTCUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some("97250.01".parse().unwrap()),
        stop_price: None,
        qty: "0.00103".parse().unwrap(),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Sending,
        purpose: OrderPurpose::Entry,
        created_ms: 1_764_331_200_000 + i as i64,
        updated_ms: 1_764_331_200_000 + i as i64,
    }
}

fn fill(i: u64) -> Fill {
    Fill {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        trade_id: i + 1,
        order_id: i + 1,
        client_order_id: Some(ClientOrderId::new(&format!("cr-bench-{i}")).unwrap()),
        side: Side::Buy,
        price: "97250.01".parse().unwrap(),
        qty: "0.00103".parse().unwrap(),
        commission: "0.00000103".parse().unwrap(),
        commission_asset: Asset::new("BTC").unwrap(),
        time_ms: 1_764_331_200_000 + i as i64,
        is_maker: false,
    }
}

/// (order rows, fills) latencies.
fn measure(j: &Journal, n: u64) -> (Vec<Duration>, Vec<Duration>) {
    let (mut orders, mut fills) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        j.insert_order(&order(i)).unwrap();
        orders.push(t.elapsed());
        let t = Instant::now();
        assert!(j.insert_fill(&fill(i)).unwrap());
        fills.push(t.elapsed());
    }
    (orders, fills)
}

fn line(store: &str, what: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    let us = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e6);
    println!(
        "| {store} | {what} | {} | {} | {} | {} |",
        v.len(),
        us(at(50)),
        us(at(99)),
        us(*v.last().unwrap())
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("JOURNAL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 2000 } else { 20 });

    let dir = tempfile::tempdir().unwrap();
    let sqlite = Journal::open(&dir.path().join("journal-sim.db"), Mode::Sim).unwrap();
    let (so, sf) = measure(&sqlite, n);

    let cluster = Arc::new(pg_support::PgCluster::start_durable());
    let db = cluster.database();
    let target = PgTarget::parse(&db.url()).unwrap();
    let pg = Journal::open_at(&Location::Postgres(target), Mode::Sim).unwrap();
    let (po, pf) = measure(&pg, n);

    println!("| store | write | n | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|");
    line("SQLite", "order row", so);
    line("SQLite", "fill", sf);
    line("PostgreSQL", "order row", po);
    line("PostgreSQL", "fill", pf);
}
