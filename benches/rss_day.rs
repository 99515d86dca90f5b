//! Memory over an accelerated day: the console's engine and screen, in this process, fed two
//! days of a trading account's inputs as fast as they are handled, with the process's resident
//! memory (`VmRSS`) read after each day.
//!
//! How: a journal is first filled through the journal API with a day of history — 5 000 of
//! crbot's own orders (market buys and sells on the six watched symbols), their 10 000 fills
//! and 86 400 one-second equity samples — and the engine (`Engine`, the state machine the
//! console's executor drives) is restored from it, as a console started the next morning is.
//! Its start-up effects are answered by the local exchange running in this process (rules,
//! the start-up reconciliation, balances), so it is reconciled and values its equity. Then
//! each simulated second, with the engine's clock (time is an input) advancing by 1 s:
//! - the six symbols stream: a `@bookTicker` each; every 5 s a `@miniTicker` and `@kline_1m`
//!   each; the selected symbol's `@aggTrade` and `@depth@100ms` diff (its book live) —
//!   decoded from the wire text by the stream parser, as the market stream does;
//! - the 1 s tick (one equity sample each: 86 400 a day, one journaled a minute);
//! - every 8.64 s a fill: half of the day's 5 000 orders each report NEW then two TRADEs as
//!   the user-data stream does (10 000 fills a day, journaled, logged, in the history);
//! - every 10 s the snapshot is built and drawn at 160×48 (the history read answered from the
//!   journal, the book snapshot given when asked).
//!
//! Printed: `VmRSS` after the restore, after day 1 and after day 2, and the peak (`VmHWM`).
//! Budget: ≤ 50 MB, and flat over the second day.
//!
//! Run: `cargo bench --bench rss_day`. `BENCH_SMOKE=1` (or `cargo test --bench rss_day`):
//! ten minutes and 200 fills instead of a day, same checks, figures not quotable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/frames.rs"]
mod frames;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::rest_via;
use crbot::domain::{
    Asset, ClientOrderId, Fill, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderStatus, OrderType,
    Price, Qty, Side, Symbol, SymbolRules,
};
use crbot::engine::core::Core;
use crbot::engine::machine::{Answer, Effect, Engine, FocusAnswer, FocusEffect, Input, TickFacts};
use crbot::engine::snapshot::BookStatus;
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::events::{
    ExecutionType, MarketFrame, OrderUpdate, UserEvent, parse_market_frame,
};
use crbot::exchange::binance::reconcile::resync;
use crbot::exchange::binance::rest::BinanceRest;
use crbot::exchange::binance::wire::Depth;
use crbot::exchange::sim::{self, SimConfig};
use crbot::journal::{Journal, TicketSource};
use crbot::risk::Limits;
use crbot::ui::{self, Action, App, UiConfig};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rust_decimal::Decimal;

/// The binary's allocator, so that the figures are the ones the `crbot` process gets.
#[global_allocator]
static ALLOCATOR: crbot::secret::WipeOnFree = crbot::secret::WipeOnFree;

const DAY_S: i64 = 86_400;
const SMOKE_DAY_S: i64 = 600;
const FILLS_PER_DAY: i64 = 10_000;
const SMOKE_FILLS_PER_DAY: i64 = 200;
/// The budget: resident memory after either day.
const BUDGET_MB: f64 = 50.0;
/// "Flat": what the second day may add.
const FLAT_MB: f64 = 1.0;
/// 2026-11-28 00:00 UTC: the morning after the journal's day of history.
const T0: i64 = 1_764_288_000_000;

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// One watched symbol: its name, rules and the exchange's price at the start.
struct Market {
    symbol: Symbol,
    rules: SymbolRules,
    mid: Decimal,
}

impl Market {
    /// ~20 USDT of it at `price`, on its lot size.
    fn small_qty(&self, price: Decimal) -> Qty {
        let raw = (Decimal::from(20) / price).round_dp(8);
        self.rules
            .round_qty(OrderType::Market, Qty::try_new(raw).unwrap())
    }

    /// The price `s` seconds into the run: a slow wave of ±0.5 % on the tick.
    fn price(&self, s: i64) -> Price {
        let wave = Decimal::from((s / 30) % 200 - 100) / Decimal::from(20_000);
        let raw = (self.mid * (Decimal::ONE + wave)).round_dp(8);
        self.rules.round_price(Side::Buy, Price::try_new(raw).unwrap())
    }
}

fn order(m: &Market, cid: ClientOrderId, order_id: u64, side: Side, qty: Qty, time_ms: i64) -> Order {
    Order {
        client_order_id: cid,
        order_id: Some(order_id),
        order_list_id: None,
        symbol: m.symbol.clone(),
        side,
        order_type: OrderType::Market,
        price: None,
        stop_price: None,
        qty,
        executed_qty: qty,
        cumulative_quote_qty: Notional::try_new(Decimal::from(20)).unwrap(),
        state: LocalOrderState::Exchange(OrderStatus::Filled),
        purpose: if side == Side::Buy {
            OrderPurpose::Entry
        } else {
            OrderPurpose::Exit
        },
        created_ms: time_ms,
        updated_ms: time_ms,
    }
}

fn fill(
    m: &Market,
    order_id: u64,
    cid: Option<ClientOrderId>,
    trade_id: u64,
    side: Side,
    qty: Qty,
    time_ms: i64,
) -> Fill {
    Fill {
        symbol: m.symbol.clone(),
        trade_id,
        order_id,
        client_order_id: cid,
        side,
        price: m.price(0),
        qty,
        commission: Qty::ZERO,
        commission_asset: Asset::usdt(),
        time_ms,
        is_maker: false,
    }
}

/// The day before `T0`, written through the journal API (orders and fills), and its equity
/// curve in one transaction (86 400 commits of their own would take minutes, not what is
/// measured).
fn prefill(path: &std::path::Path, markets: &[Market], day_s: i64, fills: i64) {
    let journal = Journal::open(path, Mode::Sim).unwrap();
    let start = T0 - day_s * 1000;
    let orders = fills / 2;
    for i in 0..orders {
        let m = &markets[i as usize % markets.len()];
        let t = start + i * day_s * 1000 / orders;
        // Each symbol alternates buys and sells of the same size: positions stay small.
        let side = if (i / markets.len() as i64) % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = m.small_qty(m.mid);
        let half = m.rules.round_qty(
            OrderType::Market,
            Qty::try_new(qty.value() / Decimal::TWO).unwrap(),
        );
        let cid = ClientOrderId::generate(t, i as u64);
        let oid = 1_000_000 + i as u64;
        journal
            .insert_order(&order(m, cid.clone(), oid, side, qty, t))
            .unwrap();
        let rest = Qty::try_new(qty.value() - half.value()).unwrap();
        for (n, q) in [(0, half), (1, rest)] {
            let f = fill(
                m,
                oid,
                Some(cid.clone()),
                1_000_000 + 2 * i as u64 + n,
                side,
                q,
                t,
            );
            journal.insert_fill_priced(&f, None).unwrap();
        }
    }
    drop(journal);
    let mut db = rusqlite::Connection::open(path).unwrap();
    let tx = db.transaction().unwrap();
    {
        let mut insert = tx
            .prepare("INSERT INTO equity_curve (time_ms, equity, asset) VALUES (?1, ?2, 'USDT')")
            .unwrap();
        for s in 0..day_s {
            let equity = format!("{}", 10_000 + (s % 600) - 300);
            insert
                .execute(rusqlite::params![start + s * 1000, equity])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Answers the engine's effects as the console's executor would, in process: start-up reads
/// from the local exchange, the history from the journal, the book's snapshot in step with
/// the diffs. Orders are not expected (none is sent) and are counted.
struct Executor {
    rest: BinanceRest,
    rules: Vec<SymbolRules>,
    reader: Journal,
    /// The depth diffs' last update id, for the snapshot.
    depth_id: u64,
    unexpected: usize,
}

impl Executor {
    async fn answer(&mut self, effect: Effect) -> Option<Answer> {
        Some(match effect {
            Effect::LoadRules { .. } => Answer::Info(Ok(self.rules.clone())),
            Effect::SyncClock => Answer::Clock(Ok(0)),
            Effect::Resync(req) => Answer::Resynced(Box::new(
                resync(&self.rest, &req).await.map_err(|e| e.to_string()),
            )),
            Effect::LoadCandles(s) => Answer::Klines(s, Vec::new()),
            Effect::LoadTickers(_) => Answer::Tickers(Vec::new()),
            Effect::LoadBook(s) => Answer::LoadFailed {
                what: format!("{s} book"),
                error: "not read in this bench".into(),
            },
            Effect::Focus(FocusEffect::LoadDepth { symbol, .. }) => Answer::Focus(FocusAnswer::Depth {
                symbol,
                depth: Ok(Depth {
                    last_update_id: self.depth_id,
                    bids: Vec::new(),
                    asks: Vec::new(),
                }),
            }),
            Effect::Focus(FocusEffect::LoadHistory { rows, .. }) => {
                let read = self
                    .reader
                    .recent_fills(rows)
                    .and_then(|f| Ok((f, self.reader.recent_orders(rows)?)))
                    .map_err(|e| e.to_string());
                Answer::Focus(FocusAnswer::History(read))
            }
            Effect::Place { .. } | Effect::PlaceOco(_) | Effect::Cancel { .. } | Effect::Sweep(_) => {
                self.unexpected += 1;
                return None;
            }
            _ => return None,
        })
    }

    /// One input and every answer it leads to.
    async fn step(&mut self, engine: &mut Engine, input: Input, now: i64) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for effect in engine.update(input, now) {
                if let Some(a) = self.answer(effect).await {
                    queue.push_back(Input::Answer(a));
                }
            }
        }
    }
}

/// The user-data stream's report of an order crbot did not place (a trade by hand on the
/// same account): NEW, then one TRADE per fill.
fn report(
    m: &Market,
    n: u64,
    side: Side,
    qty: Qty,
    fill: Option<(u64, Qty, Qty, bool)>,
    now: i64,
) -> UserEvent {
    let (execution, status, cumulative, fill) = match fill {
        None => (ExecutionType::New, OrderStatus::New, Qty::ZERO, None),
        Some((trade_id, q, cumulative, last)) => (
            ExecutionType::Trade,
            if last {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            },
            cumulative,
            Some(Fill {
                symbol: m.symbol.clone(),
                trade_id,
                order_id: n,
                client_order_id: None,
                side,
                price: m.price(0),
                qty: q,
                commission: Qty::ZERO,
                commission_asset: Asset::usdt(),
                time_ms: now,
                is_maker: false,
            }),
        ),
    };
    UserEvent::Order(Box::new(OrderUpdate {
        symbol: m.symbol.clone(),
        client_order_id: format!("web_{n}"),
        orig_client_order_id: None,
        order_id: n,
        order_list_id: None,
        side,
        order_type: OrderType::Market,
        execution,
        status,
        reject_reason: "NONE".into(),
        qty,
        price: None,
        stop_price: None,
        cumulative_qty: cumulative,
        cumulative_quote: Notional::try_new(Decimal::from(20)).unwrap(),
        fill,
        event_ms: now,
        transaction_ms: now,
    }))
}

/// What a day fed.
#[derive(Default)]
struct Fed {
    messages: u64,
    fills: u64,
    ticks: u64,
    frames: u64,
}

struct Day<'a> {
    markets: &'a [Market],
    engine: &'a mut Engine,
    exec: &'a mut Executor,
    app: &'a mut App,
    terminal: &'a mut Terminal<TestBackend>,
    day_s: i64,
    fills: i64,
}

impl Day<'_> {
    async fn market(&mut self, text: &str, now: i64, fed: &mut Fed) {
        match parse_market_frame(text, now).unwrap() {
            MarketFrame::Event(ev) => self.exec.step(self.engine, Input::Market(ev), now).await,
            other => panic!("not an event: {other:?}"),
        }
        fed.messages += 1;
    }

    /// Day `d` (1, 2, …): its seconds after `T0 + (d - 1) days`.
    async fn run(&mut self, d: i64, fed: &mut Fed) {
        let orders = self.fills / 2;
        for s in 0..self.day_s {
            let clock = (d - 1) * self.day_s + s;
            let now = T0 + clock * 1000;
            for m in self.markets {
                let p = m.price(clock).value();
                let tick = m
                    .rules
                    .filters
                    .price
                    .as_ref()
                    .map_or(Decimal::new(1, 8), |f| f.tick_size);
                let text = frames::book_ticker(m.symbol.as_str(), clock as u64, p - tick, p);
                self.market(&text, now, fed).await;
                if s % 5 == 0 {
                    self.market(&frames::mini_ticker(m.symbol.as_str(), now, p), now, fed)
                        .await;
                    let open = now - now % 60_000;
                    let kline = frames::kline(m.symbol.as_str(), "1m", now, open, p, s % 60 == 55);
                    self.market(&kline, now, fed).await;
                }
            }
            let btc = &self.markets[0];
            let p = btc.price(clock).value();
            let trade = frames::agg_trade("BTCUSDT", clock as u64, now, p, s % 2 == 0);
            self.market(&trade, now, fed).await;
            let (first, last) = if self.exec.depth_id == 0 {
                (1, 1_000)
            } else {
                (self.exec.depth_id + 1, self.exec.depth_id + 1)
            };
            self.exec.depth_id = last;
            self.market(&frames::depth_diff("BTCUSDT", now, first, last, p), now, fed)
                .await;
            // A fill every 8.64 s: order k reports NEW at its first fill, FILLED at its second.
            let due = |t: i64| t * self.fills / self.day_s;
            if due(s + 1) > due(s) {
                let i = due(s);
                let k = (d - 1) * orders + i / 2;
                let m = &self.markets[k as usize % self.markets.len()];
                let side = if (k / 6) % 2 == 0 { Side::Buy } else { Side::Sell };
                let qty = m.small_qty(m.mid);
                let half = m.rules.round_qty(
                    OrderType::Market,
                    Qty::try_new(qty.value() / Decimal::TWO).unwrap(),
                );
                let n = 5_000_000 + k as u64;
                if i % 2 == 0 {
                    let new = report(m, n, side, qty, None, now);
                    self.exec.step(self.engine, Input::User(new), now).await;
                    let f = report(m, n, side, qty, Some((2 * n, half, half, false)), now);
                    self.exec.step(self.engine, Input::User(f), now).await;
                } else {
                    let rest = Qty::try_new(qty.value() - half.value()).unwrap();
                    let f = report(m, n, side, qty, Some((2 * n + 1, rest, qty, true)), now);
                    self.exec.step(self.engine, Input::User(f), now).await;
                }
                fed.fills += 1;
            }
            self.exec
                .step(self.engine, Input::Tick(TickFacts::default()), now)
                .await;
            fed.ticks += 1;
            if s % 10 == 0 {
                let snap = self.engine.snapshot(now);
                ui::update(self.app, Action::SnapshotArrived, &snap);
                self.terminal.draw(|f| ui::view(self.app, &snap, f)).unwrap();
                fed.frames += 1;
            }
        }
    }
}

async fn bench(day_s: i64, fills_per_day: i64) {
    let config = SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    };
    let sim = sim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let rest = rest_via(Endpoints::local(sim.addr()).unwrap(), &sim);
    let rules = rest.exchange_info(&[]).await.unwrap().symbols;
    let mids = sim.mids();
    let markets: Vec<Market> = frames::SYMBOLS
        .iter()
        .map(|name| {
            let symbol = Symbol::new(name).unwrap();
            Market {
                rules: rules.iter().find(|r| r.symbol == symbol).unwrap().clone(),
                mid: mids.iter().find(|(s, _)| s == name).unwrap().1,
                symbol,
            }
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let t = Instant::now();
    prefill(&path, &markets, day_s, fills_per_day);
    // The peak so far is the filling's (this process wrote the history): said apart from
    // the restore's, which is the console's.
    eprintln!(
        "journal filled with a day of history in {:.1} s; VmRSS {:.1} MB, peak VmHWM {:.1} MB so far",
        t.elapsed().as_secs_f64(),
        mb(status_kb("VmRSS:")),
        mb(status_kb("VmHWM:"))
    );
    let journal = Journal::open(&path, Mode::Sim).unwrap();
    let core = Core::restore(journal, Mode::Sim, Limits::default(), TicketSource::Tui, T0).unwrap();
    let mut engine = Engine::new(core, false, None, T0);
    let mut exec = Executor {
        rest,
        rules,
        reader: Journal::open_read_only(&path, Mode::Sim).unwrap(),
        depth_id: 0,
        unexpected: 0,
    };
    exec.step(&mut engine, Input::Started, T0).await;
    let subscribed = UserEvent::Subscribed { subscription_id: 1 };
    exec.step(&mut engine, Input::User(subscribed), T0).await;
    assert!(engine.reconciled(), "the start-up reconciliation answered");
    // The exchange answered the start-up; it is not the console's memory.
    sim.shutdown().await;
    let snap = engine.snapshot(T0);
    let mut app = App::new(UiConfig::default(), &snap);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let restored = status_kb("VmRSS:");
    eprintln!(
        "restored and reconciled: VmRSS {:.1} MB, peak VmHWM {:.1} MB so far",
        mb(restored),
        mb(status_kb("VmHWM:"))
    );

    let mut day = Day {
        markets: &markets,
        engine: &mut engine,
        exec: &mut exec,
        app: &mut app,
        terminal: &mut terminal,
        day_s,
        fills: fills_per_day,
    };
    let mut after = Vec::new();
    for d in 1..=2 {
        let t = Instant::now();
        let mut fed = Fed::default();
        day.run(d, &mut fed).await;
        let rss = status_kb("VmRSS:");
        eprintln!(
            "day {d}: {} market messages, {} fills, {} ticks, {} frames in {:.1} s; VmRSS {:.1} MB, peak VmHWM {:.1} MB so far",
            fed.messages,
            fed.fills,
            fed.ticks,
            fed.frames,
            t.elapsed().as_secs_f64(),
            mb(rss),
            mb(status_kb("VmHWM:"))
        );
        after.push((rss, fed));
    }
    // The console's peak, read before the checks below: counting the journal's fills reads
    // them all into this process (30 000 at 10 000 a day), which the console never does.
    let peak = status_kb("VmHWM:");
    let end = T0 + 2 * day_s * 1000;
    let snap = engine.snapshot(end);
    assert_eq!(snap.focus.book.status, BookStatus::Live, "the book stayed live");
    assert_eq!(exec.unexpected, 0, "no order was sent");
    let fills = engine.core().journal.recent_fills(1_000_000).unwrap().len();
    assert_eq!(
        fills as i64,
        fills_per_day * 3,
        "every fill journaled: the history's and two days'"
    );
    let (day1, day2) = (after[0].0, after[1].0);
    let growth = mb(day2) - mb(day1);
    let verdict = |ok: bool| if ok { "within" } else { "OVER" };
    println!(
        "rss_day: {} s a day, {} fills a day, 6 symbols streaming{}",
        day_s,
        after[0].1.fills,
        if day_s < DAY_S {
            "  [smoke run: 10 minutes, 200 fills]"
        } else {
            ""
        }
    );
    println!(
        "VmRSS after the restore (a day of history): {:.1} MB",
        mb(restored)
    );
    println!(
        "VmRSS after day 1: {:.1} MB, after day 2: {:.1} MB (budget ≤ {BUDGET_MB} MB: {}); day 2 added {:+.1} MB (flat ≤ {FLAT_MB} MB: {}); peak VmHWM {:.1} MB",
        mb(day1),
        mb(day2),
        verdict(mb(day1.max(day2)) <= BUDGET_MB),
        growth,
        verdict(growth <= FLAT_MB),
        mb(peak)
    );
}

fn main() {
    let smoke = std::env::var_os("BENCH_SMOKE").is_some() || !common::full_run();
    let (day_s, mut fills) = if smoke {
        (SMOKE_DAY_S, SMOKE_FILLS_PER_DAY)
    } else {
        (DAY_S, FILLS_PER_DAY)
    };
    // `RSS_FILLS=n`: n fills a day instead (each is a durable journal write: on a slow disk
    // the day's 10 000 take most of the run).
    if let Some(n) = std::env::var("RSS_FILLS").ok().and_then(|v| v.parse().ok()) {
        fills = n;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(day_s, fills));
}
