//! The order path on the CPU, per call, with percentiles (criterion reports means; the budgets are
//! p99):
//! - the risk check of a full ticket: every rule of `risk::RULES` and the symbol's filters, for an
//!   entry that passes and for one that fails several rules (a rejection builds its reasons);
//! - a ticket to the signed request bytes: the risk check, rounding to the filters, the request
//!   with its client order id, `POST /api/v3/order`'s parameters as the REST client builds them
//!   (`rest::order_params`, `recvWindow`, `timestamp`), URL-encoding and HMAC-SHA256 signing.
//!
//! - the journal making an order row, then a fill, durable: SQLite in WAL mode with
//!   `synchronous=FULL` (each commit an fsync), on a file in the system's temporary folder (the
//!   machine's disk here; set `TMPDIR` to measure another).
//!
//! Budgets: risk check p99 ≤ 5 µs; ticket → signed bytes ≤ 50 µs; order row and fill durable,
//! p99 ≤ 5 ms each.
//! Run: `cargo bench --bench order_path`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{full_run, percentile};
use crbot::domain::{
    Asset, Balance, ClientOrderId, Fill, Filters, LocalOrderState, LotSize, Mode, Money, Notional,
    NotionalFilter, Order, OrderPurpose, OrderType, PercentPriceBySide, Price, PriceFilter, Qty, Quote, Side,
    Symbol, SymbolRules, SymbolStatus, Ticket, TicketKind,
};
use crbot::exchange::binance::rest::order_params;
use crbot::exchange::binance::sign::{KeyMaterial, sign_rest};
use crbot::journal::Journal;
use crbot::risk::{self, DailyCount, Limits, RiskContext, TradingState, utc_day};
use crbot::secret::SecretString;
use rust_decimal::Decimal;

/// Noon UTC on day 20000.
const NOW: i64 = 20_000 * 86_400_000 + 43_200_000;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn asset(s: &str) -> Asset {
    Asset::new(s).unwrap()
}

/// BTCUSDT with every filter Binance lists for it.
fn rules() -> SymbolRules {
    SymbolRules {
        symbol: sym("BTCUSDT"),
        status: SymbolStatus::Trading,
        base_asset: asset("BTC"),
        quote_asset: asset("USDT"),
        order_types: vec![OrderType::Market, OrderType::Limit, OrderType::StopLossLimit],
        oco_allowed: true,
        filters: Filters {
            price: Some(PriceFilter {
                min_price: d("0.01"),
                max_price: d("1000000"),
                tick_size: d("0.01"),
            }),
            lot_size: Some(LotSize {
                min_qty: d("0.00001"),
                max_qty: d("9000"),
                step_size: d("0.00001"),
            }),
            market_lot_size: Some(LotSize {
                min_qty: d("0"),
                max_qty: d("100"),
                step_size: d("0"),
            }),
            notional: Some(NotionalFilter {
                min_notional: d("5"),
                apply_min_to_market: true,
                max_notional: Some(d("9000000")),
                apply_max_to_market: false,
            }),
            percent_price_by_side: Some(PercentPriceBySide {
                bid_multiplier_up: d("5"),
                bid_multiplier_down: d("0.2"),
                ask_multiplier_up: d("5"),
                ask_multiplier_down: d("0.2"),
            }),
            max_num_orders: Some(200),
        },
    }
}

/// An account of 10 000 USDT with a fresh BTCUSDT quote, five symbols' worth of positions and
/// rules (so the maps are not trivially small), nothing sent today.
fn context() -> RiskContext {
    let usdt = |s: &str| Money::new(d(s), Asset::usdt());
    let bal = |a: &str, free: &str| {
        (
            asset(a),
            Balance {
                asset: asset(a),
                free: free.parse().unwrap(),
                locked: Qty::ZERO,
            },
        )
    };
    let mut rules_by = BTreeMap::new();
    let mut quotes = BTreeMap::new();
    for (name, bid, ask) in [
        ("BTCUSDT", "97250.00", "97250.01"),
        ("ETHUSDT", "3600.10", "3600.11"),
        ("SOLUSDT", "182.40", "182.41"),
        ("BNBUSDT", "651.90", "651.95"),
        ("XRPUSDT", "2.1000", "2.1001"),
    ] {
        let mut r = rules();
        r.symbol = sym(name);
        rules_by.insert(sym(name), r);
        quotes.insert(
            sym(name),
            Quote {
                bid: bid.parse().unwrap(),
                ask: ask.parse().unwrap(),
                time_ms: NOW - 100,
            },
        );
    }
    RiskContext {
        state: TradingState::Active,
        equity: Some(usdt("10000")),
        day_start_equity: Some(usdt("10100")),
        high_water_mark: Some(usdt("10400")),
        pnl_ok: true,
        entries: DailyCount {
            utc_day: utc_day(NOW),
            count: 3,
        },
        positions: [(sym("ETHUSDT"), "0.1".parse().unwrap())].into(),
        held_by_open_sells: BTreeMap::new(),
        open_entry_orders: BTreeSet::new(),
        quotes,
        rules: rules_by,
        balances: [bal("USDT", "10000"), bal("BTC", "0"), bal("ETH", "0.1")].into(),
        exit_confirmed: false,
        sell_external: false,
    }
}

fn price(s: &str) -> Price {
    s.parse().unwrap()
}

/// A BTCUSDT limit entry with its stop-loss and take-profit that every rule approves.
fn passing_entry() -> Ticket {
    Ticket {
        symbol: sym("BTCUSDT"),
        side: Side::Buy,
        kind: TicketKind::Limit {
            price: price("97200.00"),
        },
        qty: "0.004".parse().unwrap(),
        stop_loss: Some(price("95200.00")),
        take_profit: Some(price("101200.00")),
    }
}

/// An entry too big, with a take-profit too close for the reward/risk rule: two rejections.
fn failing_entry() -> Ticket {
    Ticket {
        qty: "0.05".parse().unwrap(),
        take_profit: Some(price("97300.00")),
        ..passing_entry()
    }
}

/// Per-call times of `f`, `n` calls after `n / 10` of warm-up, sorted.
fn sample(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..n / 10 {
        f();
    }
    let mut out: Vec<Duration> = (0..n)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .collect();
    out.sort();
    out
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn report(name: &str, budget: Duration, sorted: &[Duration]) {
    let p99 = percentile(sorted, 0.99);
    println!(
        "{name:<44} p50 {:>10}  p99 {:>10}  (budget p99 ≤ {}, {})",
        us(percentile(sorted, 0.5)),
        us(p99),
        us(budget),
        if p99 <= budget { "within" } else { "OVER" }
    );
}

/// Per-write times of `n` order rows, then of `n` fills, each its own durable commit.
fn journal_writes(n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db"), Mode::Sim).unwrap();
    let mut orders = Vec::with_capacity(n);
    let mut fills = Vec::with_capacity(n);
    for i in 0..n {
        let cid = ClientOrderId::generate(NOW, i as u64);
        let order = Order {
            client_order_id: cid.clone(),
            order_id: Some(i as u64 + 1),
            order_list_id: None,
            symbol: sym("BTCUSDT"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(price("97200.00")),
            stop_price: None,
            qty: "0.004".parse().unwrap(),
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Pending,
            purpose: OrderPurpose::Entry,
            created_ms: NOW + i as i64,
            updated_ms: NOW + i as i64,
        };
        let t0 = Instant::now();
        journal.insert_order(&order).unwrap();
        orders.push(t0.elapsed());
        let fill = Fill {
            symbol: sym("BTCUSDT"),
            trade_id: i as u64 + 1,
            order_id: i as u64 + 1,
            client_order_id: Some(cid),
            side: Side::Buy,
            price: price("97200.00"),
            qty: "0.004".parse().unwrap(),
            commission: "0.000004".parse().unwrap(),
            commission_asset: asset("BTC"),
            time_ms: NOW + i as i64,
            is_maker: true,
        };
        let t0 = Instant::now();
        assert!(journal.insert_fill(&fill).unwrap(), "a new fill must be recorded");
        fills.push(t0.elapsed());
    }
    orders.sort();
    fills.sort();
    (orders, fills)
}

fn ms_report(name: &str, budget: Duration, sorted: &[Duration]) {
    let p99 = percentile(sorted, 0.99);
    println!(
        "{name:<44} p50 {:>10}  p99 {:>10}  (budget p99 ≤ {}, {})",
        common::ms(percentile(sorted, 0.5)),
        common::ms(p99),
        common::ms(budget),
        if p99 <= budget { "within" } else { "OVER" }
    );
}

fn main() {
    let n = if full_run() { 200_000 } else { 1_000 };
    let limits = Limits::default();
    let ctx = context();
    let (pass, fail) = (passing_entry(), failing_entry());
    assert!(
        risk::check(&limits, &ctx, &pass, NOW).is_ok(),
        "the passing ticket must pass"
    );
    let denials = risk::check(&limits, &ctx, &fail, NOW).expect_err("the failing ticket must fail");
    assert!(denials.len() >= 2, "{denials:?}");

    report(
        "risk check, full ticket, approved",
        Duration::from_micros(5),
        &sample(n, || {
            black_box(risk::check(&limits, black_box(&ctx), black_box(&pass), NOW).is_ok());
        }),
    );
    report(
        "risk check, full ticket, two rejections",
        Duration::from_micros(5),
        &sample(n, || {
            black_box(risk::check(&limits, black_box(&ctx), black_box(&fail), NOW).is_err());
        }),
    );

    let key = KeyMaterial::hmac(SecretString::from(
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ));
    let mut seq = 0u64;
    report(
        "ticket → signed request bytes",
        Duration::from_micros(50),
        &sample(n, || {
            seq += 1;
            let approved = risk::check(&limits, &ctx, black_box(&pass), NOW).unwrap();
            let request = approved.into_request(ClientOrderId::generate(NOW, seq));
            let mut params = order_params(&request);
            params.push(("recvWindow", "5000".to_string()));
            params.push(("timestamp", NOW.to_string()));
            black_box(sign_rest(&key, &params).unwrap());
        }),
    );

    let (orders, fills) = journal_writes(if full_run() { 2_000 } else { 20 });
    ms_report("journal: order row durable", Duration::from_millis(5), &orders);
    ms_report("journal: fill durable", Duration::from_millis(5), &fills);
}
