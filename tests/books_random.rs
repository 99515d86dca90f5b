//! The books audit as a test: thousands of seeded random fills through crbot's real money path
//! (`Core` and crbot's REST client against the local exchange), then every figure crbot shows
//! recomputed from the exchange's own records by an independent model
//! (`books_support/model.rs`, no call into `crbot::portfolio`) and compared exactly.
//!
//! What the run contains: six symbols; entries as market orders that walk several book levels,
//! crossing limits that fill in part and rest, and resting limits filled later by price moves;
//! exits of part or all of a position; cancels of partly filled orders; external orders
//! (placed on the account by someone else, naming no self-trade prevention mode, so that
//! those walking up to a resting order of crbot's expire it, `EXPIRED_IN_MATCH`, as Binance's
//! default EXPIRE_MAKER does); three fee regimes (base/quote at 0.1 %, BNB at
//! 0.1 % less 25 %, base/quote at 0.075 %) switched by restarting the exchange on its state
//! file; deposits and withdrawals; restarts of crbot (some right after an order was sent but
//! before its answer was recorded, so the restart's reconciliation must adopt it); and a UTC
//! day rollover on the clock `Core` is given.
//!
//! Size and reproduction: `BOOKS_FILLS` sets the number of fills (default
//! [`DEFAULT_FILLS`]; the audit's full size is 10 000), `BOOKS_SEED` the seed (printed at the
//! start; a failure names it), `BOOKS_DEBUG=1` prints every order and refusal,
//! `BOOKS_STORE=postgres` puts crbot's journal in PostgreSQL (a throw-away cluster). The two
//! restart cases at the end run on both stores.
//!
//! Where crbot's figures follow a convention that changed over time, the comparison is
//! one named switch or hook below (`FLOWS_KEPT_OUT_OF_PNL`, `FEE_VALUE_KEPT_FROM_FILL_TIME`
//! with `crbot_fees`); everything else is compared to the last decimal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;
#[path = "books_support/model.rs"]
mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crbot::domain::broker::OrderOutcome;
use crbot::domain::{ClientOrderId, Mode, OrderPurpose, Price, Qty, Quote, Side, Symbol, Ticket, TicketKind};
use crbot::engine::core::{Core, FollowUp};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::reconcile::{Resolution, ResyncReport, resync};
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, RateLimits, SimConfig};
use crbot::journal::{Journal, Location, PgTarget, TicketSource};
use crbot::risk::Limits;
use engine_support::{Ex, Store, client, dec, journal_path, pg_support, sym};
use model::{Books, Marks, Trade};
use rust_decimal::Decimal;
use serde_json::{Value, json};

// ------------------------------------------------------------------------------------------
// Switches for accounting conventions. Each one names what turning it on compares; off, the
// convention crbot had before the feature is compared exactly instead (kept so that a change
// of convention shows up as one switch, not as a rewrite of the model).

/// Capital flows kept out of P&L: crbot's day start and high-water mark are restated by a
/// deposit or withdrawal (scaled by `(equity before + flow value) / equity before`, as a fund
/// issues units). On: crbot, told of each flow by [`tell_crbot_of_flow`], is compared with the
/// model's flow-restated marks. Off: with the raw marks (first sample of the day, largest
/// sample), the convention before flows were detected.
const FLOWS_KEPT_OUT_OF_PNL: bool = true;

/// A third-asset (BNB) commission is valued at the BNBUSDT mid of its fill time, and keeps
/// that value across a restart of crbot. On (crbot journals the value with the fill): every
/// BNB commission is expected so, and crbot's fee report (paid per asset, USDT value, nothing
/// unpriced) is compared with the model's; a fill made before crbot started (found by its
/// start-up reconciliation) has no quote of its time, and is valued at the first after. Off: the convention before fee values were
/// journaled, compared as exactly: a commission is valued at
/// the BNBUSDT quote crbot holds when it books the fill (later than the fill when the fill
/// comes from a reconciliation), and fills replayed from the journal at a restart carry it
/// *unpriced* (left out of cost and P&L, listed as unpriced).
const FEE_VALUE_KEPT_FROM_FILL_TIME: bool = true;

/// crbot's fee report over every fill it booked (`Positions::fees_total`): the amount paid
/// per commission asset, the fill-time quote value of them all in USDT (every symbol of the
/// run quotes USDT, and crbot sums values per quote asset), and what stayed unpriced.
struct CrbotFees {
    paid: BTreeMap<String, Decimal>,
    value_usdt: Decimal,
    unpriced: BTreeMap<String, Decimal>,
}

fn crbot_fees(core: &Core) -> CrbotFees {
    let tally = core.state.positions.fees_total().unwrap();
    let by_name = |m: &BTreeMap<crbot::domain::Asset, Decimal>| -> BTreeMap<String, Decimal> {
        m.iter().map(|(a, v)| (a.to_string(), *v)).collect()
    };
    assert!(
        tally.value.keys().all(|q| q.as_str() == "USDT"),
        "fee values outside USDT: {:?}",
        tally.value
    );
    CrbotFees {
        paid: by_name(&tally.paid),
        value_usdt: tally.value.values().copied().sum(),
        unpriced: by_name(&tally.unpriced),
    }
}

/// Hands crbot a capital flow the way its runtime learns one (`balanceUpdate`): balances and
/// the P&L baselines change together, the flow and the restated marks are journaled.
fn tell_crbot_of_flow(core: &mut Core, asset: &str, delta: Decimal, now_ms: i64) {
    core.on_balance_update(&crbot::domain::Asset::new(asset).unwrap(), delta, now_ms);
}

// ------------------------------------------------------------------------------------------

/// Fills of a default run: the audit's full size (about a minute in a debug build on two cores
/// once the journal sits in memory-backed `/dev/shm`); `BOOKS_FILLS` makes it smaller or larger.
const DEFAULT_FILLS: usize = 10_000;

const SYMBOLS: [&str; 6] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT"];
/// Where external orders trade: not BNBUSDT (whose moves would need fencing, as the price of
/// BNB commissions) nor BTCUSDT.
const EXTERNAL_SYMBOLS: [&str; 4] = ["ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"];
/// 2026-12-03 21:00:00 UTC: the run crosses 00:00 UTC on the clock given to `Core`.
const CLOCK_START_MS: i64 = 1_796_331_600_000;
/// Full audits per run besides those at the regime changes, the rollover and the end: each
/// reads every record again, so they are counted rather than spaced by a fixed number.
const CHECKPOINTS: usize = 8;

/// A fee regime, put in force by restarting the exchange with it.
#[derive(Debug, Clone, Copy)]
struct Regime {
    rate: Decimal,
    bnb: bool,
}

fn regimes() -> [Regime; 3] {
    [
        Regime {
            rate: Decimal::new(1, 3),
            bnb: false,
        },
        Regime {
            rate: Decimal::new(1, 3),
            bnb: true,
        },
        Regime {
            rate: Decimal::new(75, 5),
            bnb: false,
        },
    ]
}

/// Price step of each of the sim's symbols (its PRICE_FILTER tick).
fn tick(symbol: &str) -> Decimal {
    match symbol {
        "XRPUSDT" => dec("0.0001"),
        "DOGEUSDT" => dec("0.00001"),
        _ => dec("0.01"),
    }
}

/// SplitMix64: the test's choices depend on the seed only.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in [lo, hi] with 4 decimals.
    fn between(&mut self, lo: &str, hi: &str) -> Decimal {
        let (lo, hi) = (dec(lo), dec(hi));
        lo + (hi - lo) * Decimal::new(self.below(10_001) as i64, 4)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

/// The folder for crbot's journal and the exchange's state file: in memory where the system
/// has one (`/dev/shm`). The journal syncs every write to disk (`synchronous=FULL`), which on
/// a busy CI disk costs more than everything else in the run; on a memory filesystem the
/// same code runs and the sync is free, so the run measures crbot rather than the disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Waits until the wall clock is past `t` (a millisecond boundary, at most ~1 ms), so that
/// exchange timestamps before and after this point cannot be equal.
fn past(t: i64) -> i64 {
    loop {
        let now = wall_ms();
        if now > t {
            return now;
        }
        std::thread::yield_now();
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid number")),
        Err(_) => default,
    }
}

fn limits() -> Limits {
    Limits {
        max_daily_loss_pct: dec("100"),
        max_drawdown_pct: dec("100"),
        max_trades_per_day: 1_000_000,
        max_position_size_pct: dec("100"),
        min_risk_reward: Decimal::ONE,
        ..Limits::default()
    }
}

fn price(v: Decimal) -> Price {
    Price::try_new(v.round_dp(8)).unwrap()
}

fn qty(v: Decimal) -> Qty {
    Qty::try_new(v.round_dp(8)).unwrap()
}

/// Counts of what the run did, printed at the end (and checked: a run that did not exercise
/// something proves nothing about it).
#[derive(Debug, Default)]
struct Stats {
    entries: usize,
    exits: usize,
    refused: BTreeMap<String, usize>,
    cancels: usize,
    moves: usize,
    flows: usize,
    external_orders: usize,
    /// External orders sent to meet a resting order of crbot's (`expire_crbots_order`).
    external_meetings: usize,
    /// crbot's orders the exchange ended `EXPIRED_IN_MATCH` (seen at the last checkpoint).
    expired_in_match: usize,
    crbot_restarts: usize,
    answers_lost: usize,
    exchange_restarts: usize,
    checkpoints: usize,
    /// Distinct fills of crbot's orders seen so far (a reconciliation may report a fill the
    /// order's answer already carried: counted once).
    fills_seen: usize,
    /// Time spent per kind of step (where a slow run goes).
    time: BTreeMap<&'static str, Duration>,
}

/// The run: the exchange, crbot's `Core`, the clock, and what the test itself did (flows,
/// price moves, the regimes) that the model needs besides the exchange's records.
struct Run {
    seed: u64,
    rng: Rng,
    dir: tempfile::TempDir,
    /// The journal's database, when it is in PostgreSQL (else the file in `dir`).
    db: Option<pg_support::PgDatabase>,
    state_file: PathBuf,
    /// `None` only while the exchange restarts.
    ex: Option<Ex>,
    core: Option<Core>,
    clock: i64,
    regime: usize,
    /// (wall ms from which it applies, regime) — for checking every commission.
    regime_log: Vec<(i64, Regime)>,
    /// (wall ms from which it applies, BNBUSDT mid) — the price of a BNB commission.
    bnb_log: Vec<(i64, Decimal)>,
    /// The fills behind `stats.fills_seen`.
    seen_fills: BTreeSet<(String, u64)>,
    /// Latest book tickers: symbol → (bid, ask).
    book: BTreeMap<String, (Decimal, Decimal)>,
    /// The larger of the best bid's and best ask's quantity (sizes orders in book levels).
    top_qty: BTreeMap<String, Decimal>,
    /// Client order ids of every order crbot created (the model's "own" orders).
    own: BTreeSet<String>,
    /// Fills crbot had booked when it last restarted (replayed from its journal).
    replayed: BTreeSet<(String, u64)>,
    /// The BNBUSDT mid crbot held when it booked each fill (what it values a BNB commission
    /// at today), and how many of those differ from the mid at fill time.
    booked_bnb_px: BTreeMap<(String, u64), Decimal>,
    /// BNB commissions of fills made before crbot last started (found by its start-up
    /// reconciliation): crbot saw no price of their time, and values them at the first quote
    /// after, when that came within its window. The model does the same for these.
    before_start: BTreeSet<(String, u64)>,
    /// When crbot last started, on the exchange's clock.
    started_ms: i64,
    late_bnb_valuations: usize,
    raw_marks: Marks,
    adj_marks: Marks,
    stats: Stats,
}

fn sim_config(seed: u64, state: &std::path::Path, r: Regime) -> SimConfig {
    SimConfig {
        seed,
        state_file: Some(state.to_path_buf()),
        // The market moves only when the test moves it: every price the model uses is one
        // the test saw.
        step_interval: Duration::from_secs(24 * 3600),
        commission_rate: r.rate,
        bnb_fees: r.bnb,
        starting_balances: vec![("USDT".into(), dec("50000000")), ("BNB".into(), dec("2000"))],
        rate_limits: RateLimits {
            weight_per_minute: 100_000_000,
            orders_per_10s: 100_000_000,
            orders_per_day: 100_000_000,
            ..RateLimits::default()
        },
        ..SimConfig::default()
    }
}

async fn start_exchange(seed: u64, state: &std::path::Path, r: Regime) -> Ex {
    let sim = sim::start("127.0.0.1:0".parse().unwrap(), sim_config(seed, state, r))
        .await
        .unwrap();
    let creds = Credentials::hmac(&sim.api_key(), sim.api_secret().expose());
    let rest = BinanceRest::without_ban_store(
        Endpoints::local(sim.addr()).unwrap(),
        Some(creds),
        RestConfig::default(),
    )
    .unwrap();
    let raw = client::Client::new(&sim);
    Ex { sim, rest, raw }
}

/// `BOOKS_STORE=postgres` runs the randomized audit with its journal in PostgreSQL.
fn store_from_env() -> Store {
    match std::env::var("BOOKS_STORE").as_deref() {
        Ok("postgres" | "postgresql" | "pg") => Store::Postgres,
        _ => Store::Sqlite,
    }
}

impl Run {
    async fn new(seed: u64) -> Run {
        Run::on(seed, store_from_env()).await
    }

    /// A run whose journal is in `store`.
    async fn on(seed: u64, store: Store) -> Run {
        let dir = scratch_dir();
        let db = (store == Store::Postgres).then(pg_support::PgDatabase::new);
        let state_file = dir.path().join("sim-state.json");
        let regime = regimes()[0];
        let t0 = wall_ms();
        let ex = start_exchange(seed, &state_file, regime).await;
        let mut run = Run {
            seed,
            rng: Rng(seed),
            state_file,
            db,
            ex: Some(ex),
            core: None,
            clock: CLOCK_START_MS,
            regime: 0,
            regime_log: vec![(t0, regime)],
            bnb_log: Vec::new(),
            seen_fills: BTreeSet::new(),
            book: BTreeMap::new(),
            top_qty: BTreeMap::new(),
            own: BTreeSet::new(),
            replayed: BTreeSet::new(),
            booked_bnb_px: BTreeMap::new(),
            before_start: BTreeSet::new(),
            started_ms: 0,
            late_bnb_valuations: 0,
            raw_marks: Marks::default(),
            adj_marks: Marks::default(),
            stats: Stats::default(),
            dir,
        };
        run.refresh_quotes(t0).await;
        run.start_crbot().await;
        run
    }

    fn ex(&self) -> &Ex {
        self.ex.as_ref().expect("the exchange is running")
    }

    fn core(&mut self) -> &mut Core {
        self.core.as_mut().expect("crbot is running")
    }

    fn tick(&mut self) {
        self.clock += 1_000;
    }

    // ---------------------------------------------------------------- inputs

    /// Reads every book ticker (the hand-written client), feeds crbot the quotes stamped with
    /// its clock, and logs the BNBUSDT mid from `since` (wall ms) when it changed.
    async fn refresh_quotes(&mut self, since: i64) {
        let r = self.ex().raw.public("/api/v3/ticker/bookTicker", &[]).await;
        assert_eq!(r.status, 200, "bookTicker: {}", r.body);
        for t in r.body.as_array().unwrap() {
            let s = t["symbol"].as_str().unwrap().to_string();
            self.top_qty
                .insert(s.clone(), model::d(&t["bidQty"]).max(model::d(&t["askQty"])));
            self.book
                .insert(s, (model::d(&t["bidPrice"]), model::d(&t["askPrice"])));
        }
        let bnb = self.mid("BNBUSDT");
        if self.bnb_log.last().is_none_or(|(_, m)| *m != bnb) {
            self.bnb_log.push((since, bnb));
        }
        // As the console hears the book: this price from `since` on the exchange's clock (what
        // values a BNB commission of a fill booked later), then on the day clock for the gate.
        self.feed_quotes_at(since);
        self.feed_quotes();
    }

    /// Feeds crbot the quotes stamped with its (day) clock, which its risk gate reads them by.
    fn feed_quotes(&mut self) {
        self.feed_quotes_at(self.clock);
    }

    /// Books fills with the quotes stamped on the exchange's clock, as the console stamps a
    /// quote when it arrives: crbot prices a third-asset commission only with a quote of the
    /// fill's time, and the fills carry the exchange's time, not the run's day clock. The
    /// quotes are stamped back on the day clock afterwards for the risk gate.
    fn book_on_exchange_time<T>(&mut self, book: impl FnOnce(&mut Self) -> T) -> T {
        self.feed_quotes_at(wall_ms());
        let out = book(self);
        self.feed_quotes();
        out
    }

    fn feed_quotes_at(&mut self, now: i64) {
        let quotes: Vec<(Symbol, Quote)> = self
            .book
            .iter()
            .map(|(s, (b, a))| {
                (
                    sym(s),
                    Quote {
                        bid: price(*b),
                        ask: price(*a),
                        time_ms: now,
                    },
                )
            })
            .collect();
        if let Some(core) = self.core.as_mut() {
            for (s, q) in quotes {
                core.state.on_quote(s, q);
            }
        }
    }

    fn mid(&self, symbol: &str) -> Decimal {
        let (b, a) = self.book[symbol];
        (b + a) / Decimal::TWO
    }

    fn mids(&self) -> BTreeMap<String, Decimal> {
        self.book.keys().map(|s| (s.clone(), self.mid(s))).collect()
    }

    /// Runs an exchange action that may move the BNBUSDT book (a trade or a price move on
    /// it): fenced by millisecond boundaries so that every other fill is unambiguously before
    /// or after it, then the new mid is logged from the fence.
    async fn fence_bnb<T>(&mut self, action: impl std::future::Future<Output = T>) -> T {
        let t0 = past(wall_ms());
        let out = action.await;
        past(wall_ms());
        self.refresh_quotes(t0).await;
        out
    }

    // ---------------------------------------------------------------- crbot's life

    /// Starts crbot on its journal as the console does: restore, rules, replay of journaled
    /// fills, then quotes, then the start-up reconciliation, then an equity sample.
    async fn start_crbot(&mut self) {
        self.started_ms = wall_ms();
        let location = match &self.db {
            Some(db) => Location::Postgres(PgTarget::parse(&db.url()).unwrap()),
            None => Location::Sqlite(journal_path(self.dir.path())),
        };
        let journal = Journal::open_at(&location, Mode::Sim).unwrap();
        let core = Core::restore(journal, Mode::Sim, limits(), TicketSource::Tui, self.clock).unwrap();
        self.core = Some(core);
        let info = self.ex().rest.exchange_info(&[]).await.unwrap();
        let core = self.core();
        for r in info.symbols {
            core.state.rules.insert(r.symbol.clone(), r);
        }
        core.replay_fills();
        self.feed_quotes();
        self.sync(&SYMBOLS).await;
        self.sample().await;
    }

    async fn restart_crbot(&mut self) {
        self.stats.crbot_restarts += 1;
        let journal = &self.core.as_ref().unwrap().journal;
        let booked: Vec<(String, u64)> = journal
            .fills()
            .unwrap()
            .iter()
            .map(|f| (f.symbol.to_string(), f.trade_id))
            .collect();
        self.replayed.extend(booked);
        self.core = None;
        self.start_crbot().await;
    }

    /// crbot's REST reconciliation for `symbols` as the console builds and applies it (open
    /// orders, account, its unfinished orders, `myTrades` since its last trade id and by order
    /// id for its orders whose fills fall short of their executed quantity).
    async fn sync(&mut self, symbols: &[&str]) {
        let req = self
            .core
            .as_ref()
            .unwrap()
            .resync_request(symbols.iter().map(|s| sym(s)));
        let t = Instant::now();
        // Reads only, so safe to ask again: on two busy cores the audit's request weight can
        // reach the exchange's limit, and a held-back read is not a books error.
        let mut attempt = 0;
        let report = loop {
            match resync(&self.ex().rest, &req).await {
                Ok(r) => break r,
                Err(crbot::domain::broker::BrokerError::RateLimited { retry_after }) if attempt < 5 => {
                    attempt += 1;
                    eprintln!("resync rate limited; again in {retry_after:?}");
                    tokio::time::sleep(retry_after.max(Duration::from_millis(100))).await;
                }
                Err(e) => panic!("resync failed: {e}"),
            }
        };
        *self.stats.time.entry("sync.resync").or_default() += t.elapsed();
        let t = Instant::now();
        self.book_on_exchange_time(|run| run.apply_resync(report));
        *self.stats.time.entry("sync.apply").or_default() += t.elapsed();
    }

    /// What the console's `apply_resync` does with a report (balances, orders, fills).
    fn apply_resync(&mut self, r: ResyncReport) {
        let now = self.clock;
        let own = &self.own;
        let own_fills: Vec<(String, u64)> = r
            .fills
            .iter()
            .filter(|f| {
                f.client_order_id
                    .as_ref()
                    .is_some_and(|c| own.contains(c.as_str()))
                    || r.open_orders
                        .iter()
                        .chain(r.orders.iter().filter_map(|(_, res)| match res {
                            Resolution::Found(o) => Some(o),
                            _ => None,
                        }))
                        .any(|o| o.order_id == f.order_id && own.contains(o.order_client_id()))
                    || self.core.as_ref().unwrap().state.orders.values().any(|o| {
                        o.order_id == Some(f.order_id)
                            && o.symbol == f.symbol
                            && own.contains(o.client_order_id.as_str())
                    })
            })
            .map(|f| (f.symbol.to_string(), f.trade_id))
            .collect();
        self.seen_fills.extend(own_fills);
        self.stats.fills_seen = self.seen_fills.len();
        let core = self.core();
        core.state.set_balances(r.account.balances, true);
        for (cid, res) in r.orders {
            let cid = ClientOrderId::new(&cid).unwrap();
            match res {
                Resolution::Found(o) => {
                    core.on_exchange_order(&o, now);
                }
                Resolution::NotFound => core.mark_not_sent(&cid, "never reached the exchange", now),
                Resolution::StillUnknown { reason } => core.mark_unknown(&cid, &reason, now),
            }
        }
        for o in &r.open_orders {
            core.on_exchange_order(o, now);
        }
        let mut booked = Vec::new();
        for f in &r.fills {
            if core.on_fill(f, now) {
                booked.push(f.clone());
            }
        }
        self.note_booked(&booked);
    }

    /// Records the BNBUSDT mid crbot held when it booked these fills.
    fn note_booked(&mut self, fills: &[crbot::domain::Fill]) {
        let mid = self.mid("BNBUSDT");
        for f in fills {
            let key = (f.symbol.to_string(), f.trade_id);
            if f.commission_asset.as_str() == "BNB" && f.symbol.as_str() != "BNBUSDT" {
                if Self::at(&self.bnb_log, f.time_ms) != mid {
                    self.late_bnb_valuations += 1;
                }
                if f.time_ms < self.started_ms {
                    self.before_start.insert(key.clone());
                }
                self.booked_bnb_px.insert(key, mid);
            }
        }
    }

    /// Balances from the exchange (crbot's client, as its runtime refreshes them).
    async fn refresh_balances(&mut self) {
        // The audit runs thousands of requests on two busy cores: a read that the exchange
        // (or crbot's own weight guard) holds back, or one that times out, is asked again a
        // bounded number of times; the books themselves are never retried or skipped.
        let mut attempt = 0;
        let account = loop {
            match self.ex().rest.account().await {
                Ok(a) => break a,
                Err(e) if attempt < 20 => {
                    attempt += 1;
                    let wait = match &e {
                        crbot::domain::broker::BrokerError::RateLimited { retry_after } => {
                            (*retry_after).max(Duration::from_millis(100))
                        }
                        _ => Duration::from_millis(250),
                    };
                    eprintln!("account read refused ({e}); again in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => panic!("account read failed 20 times: {e}"),
            }
        };
        self.core().state.set_balances(account.balances, true);
    }

    /// One equity sample by crbot, and the same sample in the model from the exchange's
    /// balances (the hand-written client) at the same prices.
    async fn sample(&mut self) {
        let now = self.clock;
        self.refresh_balances().await;
        self.core().sample_equity(now, true);
        let equity = model::equity(&self.raw_balances().await, &self.mids());
        self.raw_marks.observe(now, equity);
        self.adj_marks.observe(now, equity);
    }

    async fn raw_balances(&self) -> BTreeMap<String, Decimal> {
        let r = self.ex().raw.signed("GET", "/api/v3/account", &[]).await;
        assert_eq!(r.status, 200, "account: {}", r.body);
        r.body["balances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["asset"].as_str().unwrap().to_string(),
                    model::d(&b["free"]) + model::d(&b["locked"]),
                )
            })
            .collect()
    }

    // ---------------------------------------------------------------- orders

    /// A ticket through crbot's gate, sent with crbot's client, the answer applied. With
    /// `lose_answer` the answer is dropped as if crbot died before recording it.
    async fn send(&mut self, ticket: Ticket, purpose: OrderPurpose, lose_answer: bool) -> bool {
        let now = self.clock;
        let t = Instant::now();
        let decided = self.core().decide(&ticket, purpose, false, now);
        *self.stats.time.entry("send.decide").or_default() += t.elapsed();
        let prepared = match decided {
            Ok(p) => p,
            Err(refusal) => {
                let text = refusal.to_string();
                let code = text.split(':').next().unwrap_or("").to_string();
                if std::env::var("BOOKS_DEBUG").is_ok() {
                    eprintln!("refused {} {}: {text}", ticket.side, ticket.symbol);
                }
                *self.stats.refused.entry(code).or_default() += 1;
                return false;
            }
        };
        self.own.insert(prepared.request.client_order_id.to_string());
        let bnb = ticket.symbol.as_str() == "BNBUSDT";
        let rest = self.ex().rest.clone();
        let request = prepared.request.clone();
        let t = Instant::now();
        let outcome = if bnb {
            self.fence_bnb(rest.place_order_unchecked(&request)).await
        } else {
            rest.place_order_unchecked(&request).await
        };
        *self.stats.time.entry("send.place").or_default() += t.elapsed();
        if lose_answer {
            self.stats.answers_lost += 1;
            return true;
        }
        let cid = prepared.request.client_order_id.clone();
        let now = self.clock;
        match outcome {
            OrderOutcome::Done(placed) => {
                let keys = placed.fills.iter().map(|f| (f.symbol.to_string(), f.trade_id));
                self.seen_fills.extend(keys);
                self.stats.fills_seen = self.seen_fills.len();
                if std::env::var("BOOKS_DEBUG").is_ok() {
                    eprintln!(
                        "placed {} {} {:?} {}: {:?}, {} fills",
                        ticket.side,
                        ticket.symbol,
                        ticket.kind,
                        ticket.qty,
                        placed.order.status,
                        placed.fills.len()
                    );
                }
                let t = Instant::now();
                let (follow, booked) = self.book_on_exchange_time(|run| {
                    let core = run.core();
                    let follow = core.on_exchange_order(&placed.order, now);
                    let mut booked = Vec::new();
                    for f in &placed.fills {
                        if core.on_fill(f, now) {
                            booked.push(f.clone());
                        }
                    }
                    (follow, booked)
                });
                self.note_booked(&booked);
                // Protective OCOs are not placed: this run is about the books, and an OCO
                // would lock the base that the exits sell.
                let _: Vec<FollowUp> = follow;
                *self.stats.time.entry("send.apply").or_default() += t.elapsed();
                // The balances the user stream's `outboundAccountPosition` would bring.
                self.refresh_balances().await;
            }
            OrderOutcome::Rejected(e) => {
                if std::env::var("BOOKS_DEBUG").is_ok() {
                    eprintln!("exchange refused {ticket:?}: {e}");
                }
                let core = self.core();
                core.mark_not_sent(&cid, &e.to_string(), now);
                *self.stats.refused.entry("EXCHANGE".into()).or_default() += 1;
            }
            OrderOutcome::Unknown { reason } => panic!("order {cid}: outcome unknown: {reason}"),
        }
        true
    }

    fn has_open_order(&self, symbol: &str) -> bool {
        self.core
            .as_ref()
            .unwrap()
            .state
            .orders
            .values()
            .any(|o| o.symbol.as_str() == symbol && o.state.is_open())
    }

    fn symbols_with_open_orders(&self) -> Vec<&'static str> {
        SYMBOLS
            .iter()
            .copied()
            .filter(|s| self.has_open_order(s))
            .collect()
    }

    /// crbot's position on `symbol` is worth less than the smallest order (none, or dust).
    fn flat(&self, symbol: &str) -> bool {
        let q = self
            .core
            .as_ref()
            .unwrap()
            .state
            .positions
            .qty(&sym(symbol))
            .value();
        q * self.book[symbol].0 < dec("6")
    }

    /// A buy through crbot's gate on a symbol where crbot is flat: a market order or a
    /// crossing limit walking several book levels (a crossing limit rests with what the book
    /// did not have up to its price), or a limit resting below the bid for a price move.
    async fn entry(&mut self) {
        let flat: Vec<&'static str> = SYMBOLS
            .iter()
            .copied()
            .filter(|s| !self.has_open_order(s) && self.flat(s))
            .collect();
        if flat.is_empty() {
            return self.exit().await;
        }
        let symbol = *self.rng.pick(&flat);
        self.fresh_book(symbol).await;
        let (bid, ask) = self.book[symbol];
        let level = self.top_qty[symbol];
        let tick = tick(symbol);
        let (kind, q) = match self.rng.below(5) {
            0 | 1 => (TicketKind::Market, level * self.rng.between("8", "45")),
            2 | 3 => {
                let deep = Decimal::from(20 + self.rng.below(150));
                (
                    TicketKind::Limit {
                        price: price(ask + tick * deep),
                    },
                    level * self.rng.between("8", "50"),
                )
            }
            _ => (
                TicketKind::Limit {
                    price: price(bid * self.rng.between("0.99", "0.9995")),
                },
                level * self.rng.between("0.5", "4"),
            ),
        };
        let ticket = Ticket {
            symbol: sym(symbol),
            side: Side::Buy,
            kind,
            qty: qty(q),
            stop_loss: Some(price(bid * dec("0.9"))),
            take_profit: Some(price(ask * dec("1.2"))),
        };
        // At least one per run, whatever the seed: the restart must adopt it.
        let lose = self.rng.chance(2) || self.stats.answers_lost == 0;
        if self.send(ticket, OrderPurpose::Entry, lose).await {
            self.stats.entries += 1;
            if lose {
                self.restart_crbot().await;
            }
        }
    }

    /// A sell of part or all of a position: market, a limit crossing the bid, or a limit
    /// resting above the ask. A part that would leave dust (or be below the minimum order)
    /// becomes the whole position.
    async fn exit(&mut self) {
        let held: Vec<&'static str> = SYMBOLS
            .iter()
            .copied()
            .filter(|s| !self.has_open_order(s) && !self.flat(s))
            .collect();
        if held.is_empty() {
            return;
        }
        let symbol = *self.rng.pick(&held);
        self.fresh_book(symbol).await;
        let (bid, ask) = self.book[symbol];
        let held = self.core.as_ref().unwrap().state.sellable(&sym(symbol)).value();
        let mut part = self.rng.between("0.1", "0.9");
        if self.rng.chance(30)
            || held * part * bid < dec("6")
            || held * (Decimal::ONE - part) * bid < dec("6")
        {
            part = Decimal::ONE;
        }
        let tick = tick(symbol);
        let kind = match self.rng.below(5) {
            0 | 1 => TicketKind::Market,
            2 | 3 => TicketKind::Limit {
                price: price(bid - tick * Decimal::from(20 + self.rng.below(150))),
            },
            _ => TicketKind::Limit {
                price: price(ask * self.rng.between("1.0005", "1.008")),
            },
        };
        let ticket = Ticket {
            symbol: sym(symbol),
            side: Side::Sell,
            kind,
            qty: qty(held * part),
            stop_loss: None,
            take_profit: None,
        };
        if self.send(ticket, OrderPurpose::Exit, false).await {
            self.stats.exits += 1;
        }
    }

    /// Cancels one of crbot's open orders (often partly filled).
    async fn cancel(&mut self) {
        let open: Vec<(Symbol, ClientOrderId)> = self
            .core
            .as_ref()
            .unwrap()
            .state
            .open_orders()
            .into_iter()
            .map(|o| (o.symbol, o.client_order_id))
            .collect();
        if open.is_empty() {
            return;
        }
        let (s, cid) = self.rng.pick(&open).clone();
        let now = self.clock;
        match self.ex().rest.cancel_order(&s, cid.as_str()).await {
            OrderOutcome::Done(o) => {
                self.core().on_exchange_order(&o, now);
                self.stats.cancels += 1;
            }
            // Filled in the meantime: the next sync brings its fills.
            OrderOutcome::Rejected(_) => {}
            OrderOutcome::Unknown { reason } => panic!("cancel {cid}: {reason}"),
        }
    }

    /// Moves a price (control endpoint); resting orders it crosses fill at once, and crbot
    /// learns of them by its reconciliation, with the new quotes.
    /// Rebuilds a symbol's book (a small price move) before an order on it: orders walk many
    /// levels, and the synthetic book refills only when its price moves. Only for symbols
    /// without open orders, so nothing fills here.
    async fn fresh_book(&mut self, symbol: &str) {
        let (bid, ask) = self.book[symbol];
        let reference = if bid.is_zero() || ask.is_zero() {
            bid.max(ask)
        } else {
            (bid + ask) / Decimal::TWO
        };
        let factor = self.rng.between("0.998", "1.002");
        self.set_price(symbol, (reference * factor).round_dp(8)).await;
        self.stats.moves += 1;
    }

    async fn move_price(&mut self) {
        let with_orders = self.symbols_with_open_orders();
        let symbol = if !with_orders.is_empty() && self.rng.chance(70) {
            *self.rng.pick(&with_orders)
        } else {
            *self.rng.pick(&SYMBOLS)
        };
        let m = self.mid(symbol);
        let factor = self.rng.between("0.985", "1.015");
        let t = Instant::now();
        self.set_price(symbol, (m * factor).round_dp(8)).await;
        *self.stats.time.entry("move.set_price").or_default() += t.elapsed();
        self.stats.moves += 1;
        // The console hears of a resting order's fill from the user stream at once; here a
        // reconciliation stands in for it whenever the moved symbol has an open order. (Not
        // only when the new book crosses one: the fill consumes the liquidity that crossed.)
        if self.has_open_order(symbol) {
            let t = Instant::now();
            self.sync(&[symbol]).await;
            *self.stats.time.entry("move.sync").or_default() += t.elapsed();
        }
    }

    /// Sets a symbol's price by the control endpoint and refreshes the quotes (fenced when
    /// it moves BNBUSDT, the price of BNB commissions).
    /// Moves `symbol`'s price to `px`, put on the nearest tick first: the exchange refuses a
    /// price off its PRICE_FILTER.
    async fn set_price(&mut self, symbol: &str, px: Decimal) {
        // The exchange accepts a forced price only on the symbol's tick (its PRICE_FILTER).
        let step = tick(symbol);
        let px = ((px / step).round() * step).normalize();
        let ex = self.ex();
        let body = json!({"symbol": symbol, "price": px.to_string()}).to_string();
        let req = ex
            .raw
            .http
            .post(format!("{}/sim/control/price", ex.raw.base))
            .header("X-MBX-APIKEY", ex.raw.key.clone())
            .header("content-type", "application/json")
            .body(body);
        let action = async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "price control: {}", r.status());
        };
        if symbol == "BNBUSDT" {
            self.fence_bnb(action).await;
        } else {
            action.await;
            self.refresh_quotes(wall_ms()).await;
        }
    }

    /// A deposit or a withdrawal (control endpoint, as the sim's `balanceUpdate`).
    async fn flow(&mut self) {
        let (asset, delta) = match self.rng.below(4) {
            0 => ("USDT", self.rng.between("100", "50000")),
            1 => ("USDT", -self.rng.between("100", "20000")),
            2 => ("BNB", self.rng.between("0.5", "5")),
            _ => ("ETH", self.rng.between("0.01", "0.5")),
        };
        // crbot's balances and the model's are the same exchange state read just before the
        // flow: both restate their marks from the same equity before it.
        self.refresh_balances().await;
        let balances = self.raw_balances().await;
        if delta < Decimal::ZERO && balances.get(asset).copied().unwrap_or_default() < -delta * dec("5") {
            return;
        }
        let before = model::equity(&balances, &self.mids());
        let url = format!("{}/sim/control/balance", self.ex().raw.base);
        let body = json!({"asset": asset, "delta": delta.to_string()}).to_string();
        let r = self
            .ex()
            .raw
            .http
            .post(url)
            .header("X-MBX-APIKEY", self.ex().raw.key.clone())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "balance control: {}", r.status());
        let mark = if asset == "USDT" {
            Decimal::ONE
        } else {
            self.mid(&format!("{asset}USDT"))
        };
        self.adj_marks.flow(self.clock, delta * mark, before);
        let now = self.clock;
        tell_crbot_of_flow(self.core(), asset, delta, now);
        self.stats.flows += 1;
    }

    /// An order crbot did not make (someone else on the account, naming no self-trade
    /// prevention mode, so the symbol's default EXPIRE_MAKER applies): often one that walks
    /// up to a resting order of crbot's and so expires it (`expire_crbots_order`), else a
    /// small market buy.
    async fn external_order(&mut self) {
        if self.rng.chance(70) && self.expire_crbots_order().await {
            self.stats.external_orders += 1;
            return;
        }
        let symbol = *self.rng.pick(&EXTERNAL_SYMBOLS);
        let q = match symbol {
            "ETHUSDT" => "0.05",
            "SOLUSDT" => "1",
            "XRPUSDT" => "100",
            _ => "500",
        };
        let r = self
            .ex()
            .raw
            .order(&[
                ("symbol", symbol),
                ("side", "BUY"),
                ("type", "MARKET"),
                ("quantity", q),
            ])
            .await;
        assert_eq!(r.status, 200, "external order: {}", r.body);
        self.stats.external_orders += 1;
    }

    /// An external IOC limit on the other side of one of crbot's resting orders, at its price,
    /// for everything the book holds up to it: it takes the better levels, meets crbot's order
    /// first at its price (which self-trade prevention expires: `EXPIRED_IN_MATCH`, crbot's
    /// order keeps what it had filled), then the synthetic book at that price. A buy of crbot
    /// is met only when the account's free base covers the sell. `false` when there was none
    /// to meet.
    async fn expire_crbots_order(&mut self) -> bool {
        let mut target = None;
        for symbol in EXTERNAL_SYMBOLS {
            let r = self
                .ex()
                .raw
                .signed("GET", "/api/v3/openOrders", &[("symbol", symbol)])
                .await;
            assert_eq!(r.status, 200, "openOrders: {}", r.body);
            let resting =
                r.body.as_array().unwrap().iter().find(|o| {
                    o["type"] == "LIMIT" && self.own.contains(o["clientOrderId"].as_str().unwrap())
                });
            if let Some(o) = resting {
                target = Some((symbol, o["side"] == "BUY", model::d(&o["price"])));
                break;
            }
        }
        let Some((symbol, crbot_buys, px)) = target else {
            return false;
        };
        let depth = self
            .ex()
            .raw
            .public("/api/v3/depth", &[("symbol", symbol), ("limit", "5000")])
            .await;
        assert_eq!(depth.status, 200, "depth: {}", depth.body);
        let side = if crbot_buys { "bids" } else { "asks" };
        let q: Decimal = depth.body[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (model::d(&l[0]), model::d(&l[1])))
            .filter(|(p, _)| if crbot_buys { *p >= px } else { *p <= px })
            .map(|(_, q)| q)
            .sum();
        if crbot_buys {
            let free = self.raw_free(model::assets(symbol).0).await;
            if free < q {
                return false;
            }
        }
        let (q, px) = (q.normalize().to_string(), px.normalize().to_string());
        let r = self
            .ex()
            .raw
            .order(&[
                ("symbol", symbol),
                ("side", if crbot_buys { "SELL" } else { "BUY" }),
                ("type", "LIMIT"),
                ("timeInForce", "IOC"),
                ("quantity", &q),
                ("price", &px),
            ])
            .await;
        assert_eq!(r.status, 200, "external order: {}", r.body);
        self.stats.external_meetings += 1;
        // The user stream's TRADE_PREVENTION report, for the console; a reconciliation here.
        self.sync(&[symbol]).await;
        true
    }

    /// The account's free balance of `asset` (the hand-written client).
    async fn raw_free(&self, asset: &str) -> Decimal {
        let r = self.ex().raw.signed("GET", "/api/v3/account", &[]).await;
        assert_eq!(r.status, 200, "account: {}", r.body);
        r.body["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == asset)
            .map(|b| model::d(&b["free"]))
            .unwrap_or_default()
    }

    /// Restarts the exchange on its state file with the next fee regime.
    async fn next_regime(&mut self) {
        self.regime += 1;
        let r = regimes()[self.regime];
        self.stats.exchange_restarts += 1;
        let seed = self.seed;
        let state = self.state_file.clone();
        let t0 = past(wall_ms());
        self.ex
            .take()
            .expect("the exchange is running")
            .sim
            .shutdown()
            .await;
        self.ex = Some(start_exchange(seed, &state, r).await);
        self.regime_log.push((t0, r));
        past(wall_ms());
        self.refresh_quotes(t0).await;
        // The console reconciles when its connections come back: the exchange's first market
        // step after a start may have filled resting orders.
        self.sync(&SYMBOLS).await;
    }

    // ---------------------------------------------------------------- the audit

    /// Every trade and order of the account, read with the hand-written client.
    async fn records(&self) -> (Vec<Trade>, BTreeMap<String, Vec<Value>>) {
        let mut trades = Vec::new();
        let mut orders = BTreeMap::new();
        for s in SYMBOLS {
            let mut from = 0u64;
            loop {
                let from_s = from.to_string();
                let r = self
                    .ex()
                    .raw
                    .signed(
                        "GET",
                        "/api/v3/myTrades",
                        &[("symbol", s), ("fromId", &from_s), ("limit", "1000")],
                    )
                    .await;
                assert_eq!(r.status, 200, "myTrades: {}", r.body);
                let page: Vec<Trade> = r.body.as_array().unwrap().iter().map(Trade::from_json).collect();
                let n = page.len();
                from = page.iter().map(|t| t.id + 1).max().unwrap_or(from);
                trades.extend(page);
                if n < 1000 {
                    break;
                }
            }
            let mut all = Vec::new();
            let mut from = 0u64;
            loop {
                let from_s = from.to_string();
                let r = self
                    .ex()
                    .raw
                    .signed(
                        "GET",
                        "/api/v3/allOrders",
                        &[("symbol", s), ("orderId", &from_s), ("limit", "1000")],
                    )
                    .await;
                assert_eq!(r.status, 200, "allOrders: {}", r.body);
                let page = r.body.as_array().unwrap().clone();
                let n = page.len();
                from = page
                    .iter()
                    .map(|o| o["orderId"].as_u64().unwrap() + 1)
                    .max()
                    .unwrap_or(from);
                all.extend(page);
                if n < 1000 {
                    break;
                }
            }
            orders.insert(s.to_string(), all);
        }
        (trades, orders)
    }

    fn at<T: Copy>(log: &[(i64, T)], t: i64) -> T {
        log.iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("nothing logged at or before {t}"))
    }

    /// Checks each commission against the regime of its time: the fee rule of the exchange
    /// and the BNB price log are right, or the model's inputs are.
    fn check_commissions(&self, trades: &[Trade]) {
        for t in trades {
            let r = Self::at(&self.regime_log, t.time);
            let (base, quote) = model::assets(&t.symbol);
            let usual = if t.is_buyer {
                ((t.qty * r.rate).round_dp(8), base)
            } else {
                ((t.quote_qty * r.rate).round_dp(8), quote)
            };
            let in_bnb = r.bnb.then(|| {
                let mid = Self::at(&self.bnb_log, t.time);
                ((t.quote_qty * r.rate * dec("0.75") / mid).round_dp(8), "BNB")
            });
            let got = (t.commission, t.commission_asset.as_str());
            // A BNBUSDT order moves the BNB price itself as it walks the book: each of its
            // fills pays at the mid of its moment, somewhere between the mid logged before the
            // order and the fill's own price.
            let walked = r.bnb && t.symbol == "BNBUSDT" && got.1 == "BNB" && {
                let logged = Self::at(&self.bnb_log, t.time);
                let fee_at = |mid: Decimal| (t.quote_qty * r.rate * dec("0.75") / mid).round_dp(8);
                let (lo, hi) = (logged.min(t.price), logged.max(t.price));
                (fee_at(hi)..=fee_at(lo)).contains(&t.commission)
            };
            assert!(
                got == usual || Some(got) == in_bnb || walked,
                "seed {}: commission of {t:?} under {r:?}: expected {usual:?} or {in_bnb:?}",
                self.seed
            );
        }
    }

    /// crbot's orders that self-trade prevention ended (an external order met them): each is
    /// finished with what it had filled, its trades are that quantity (the model books only
    /// trades, so nothing of the expired part), and crbot holds it ended the same way. Returns
    /// how many there are.
    fn check_expired_in_match(
        &self,
        orders: &BTreeMap<String, Vec<Value>>,
        own: &[Trade],
        ctx: &str,
    ) -> usize {
        let core = self.core.as_ref().unwrap();
        let mut n = 0;
        for (symbol, list) in orders {
            for o in list.iter().filter(|o| o["status"] == "EXPIRED_IN_MATCH") {
                let cid = o["clientOrderId"].as_str().unwrap();
                if !self.own.contains(cid) {
                    continue;
                }
                n += 1;
                let id = o["orderId"].as_u64().unwrap();
                let executed = model::d(&o["executedQty"]);
                let traded: Decimal = own
                    .iter()
                    .filter(|t| t.symbol == *symbol && t.order_id == id)
                    .map(|t| t.qty)
                    .sum();
                assert_eq!(traded, executed, "{ctx}: trades of {cid}, expired in match: {o}");
                let expired_qty = model::d(&o["origQty"]) - executed;
                assert!(expired_qty > Decimal::ZERO, "{ctx}: {cid} expired nothing: {o}");
                let Some(mine) = core.state.orders.get(&ClientOrderId::new(cid).unwrap()) else {
                    continue;
                };
                assert_eq!(
                    (mine.state, mine.executed_qty.value()),
                    (
                        crbot::domain::LocalOrderState::Exchange(crbot::domain::OrderStatus::ExpiredInMatch),
                        executed
                    ),
                    "{ctx}: crbot's view of {cid}, expired in match"
                );
            }
        }
        n
    }

    /// Recomputes everything from the exchange's records and compares it with crbot.
    async fn checkpoint(&mut self, label: &str) -> Books {
        self.stats.checkpoints += 1;
        self.refresh_quotes(wall_ms()).await;
        self.sync(&SYMBOLS).await;
        self.sample().await;
        let (trades, orders) = self.records().await;
        let own_orders: BTreeSet<(String, u64)> = orders
            .iter()
            .flat_map(|(s, list)| {
                list.iter()
                    .filter(|o| self.own.contains(o["clientOrderId"].as_str().unwrap()))
                    .map(move |o| (s.clone(), o["orderId"].as_u64().unwrap()))
            })
            .collect();
        self.check_commissions(&trades);
        let own: Vec<Trade> = trades
            .iter()
            .filter(|t| own_orders.contains(&(t.symbol.clone(), t.order_id)))
            .cloned()
            .collect();
        let ctx = format!(
            "seed {} (BOOKS_SEED={}), checkpoint {label}",
            self.seed, self.seed
        );
        self.stats.expired_in_match = self.check_expired_in_match(&orders, &own, &ctx);

        // Fees per asset, valued at fill time (the convention).
        let at_fill = model::books(&own, |t| {
            let key = (t.symbol.clone(), t.id);
            match self.booked_bnb_px.get(&key) {
                Some(px) if self.before_start.contains(&key) => Some(*px),
                _ => Some(Self::at(&self.bnb_log, t.time)),
            }
        });
        assert_eq!(at_fill.fills, own.len());
        // What crbot is expected to show today: as above, except that where the switch is off,
        // fills replayed at a restart carry their BNB commission unpriced.
        let expected = if FEE_VALUE_KEPT_FROM_FILL_TIME {
            at_fill.clone()
        } else {
            model::books(&own, |t| {
                let key = (t.symbol.clone(), t.id);
                if self.replayed.contains(&key) {
                    return None;
                }
                let px = self.booked_bnb_px.get(&key).copied();
                Some(px.unwrap_or_else(|| panic!("{ctx}: crbot never booked trade {t:?}")))
            })
        };
        let core = self.core.as_ref().unwrap();
        explain_differences(core, &own, &ctx);
        compare_positions(core, &expected, &self.mids(), &ctx);
        if FEE_VALUE_KEPT_FROM_FILL_TIME {
            let fees = crbot_fees(core);
            let paid: BTreeMap<String, Decimal> = at_fill
                .fees_by_asset
                .iter()
                .filter(|(_, f)| !f.amount.is_zero())
                .map(|(a, f)| (a.clone(), f.amount))
                .collect();
            let value: Decimal = at_fill.fees_by_asset.values().map(|f| f.quote_value).sum();
            assert_eq!(fees.paid, paid, "{ctx}: fees paid per asset");
            assert_eq!(fees.value_usdt, value, "{ctx}: fees' USDT value at fill time");
            assert!(
                fees.unpriced.is_empty(),
                "{ctx}: unpriced fees {:?}",
                fees.unpriced
            );
        }
        // Balances, external holdings and equity.
        let balances = self.raw_balances().await;
        compare_balances(core, &balances, &expected, &ctx);
        let marks = if FLOWS_KEPT_OUT_OF_PNL {
            &self.adj_marks
        } else {
            &self.raw_marks
        };
        compare_marks(core, marks, &ctx);
        at_fill
    }
}

/// Names the fills on which crbot and the exchange disagree about what is crbot's (a fill
/// crbot booked that the exchange does not attribute to crbot's orders, or the reverse),
/// before the figures are compared: a difference in the figures then comes with its cause.
fn explain_differences(core: &Core, own: &[Trade], ctx: &str) {
    let journal = core.journal.fills().unwrap();
    let crbot_own: BTreeSet<(String, u64)> = journal
        .iter()
        .filter(|f| {
            f.client_order_id
                .as_ref()
                .and_then(|c| core.state.orders.get(c))
                .is_some_and(|o| o.purpose != OrderPurpose::External)
        })
        .map(|f| (f.symbol.to_string(), f.trade_id))
        .collect();
    let exchange_own: BTreeSet<(String, u64)> = own.iter().map(|t| (t.symbol.clone(), t.id)).collect();
    let only_crbot: Vec<_> = crbot_own.difference(&exchange_own).collect();
    let only_exchange: Vec<_> = exchange_own.difference(&crbot_own).collect();
    let details: Vec<String> = only_exchange
        .iter()
        .chain(only_crbot.iter())
        .map(|(s, id)| {
            let trade = own.iter().find(|t| &t.symbol == s && t.id == *id);
            let booked = journal
                .iter()
                .find(|f| f.symbol.as_str() == s && f.trade_id == *id);
            let order = trade.and_then(|t| {
                core.state
                    .orders
                    .values()
                    .find(|o| o.symbol.as_str() == s && o.order_id == Some(t.order_id))
            });
            format!("{s} {id}: exchange {trade:?}; crbot's journal {booked:?}; crbot's order {order:?}")
        })
        .collect();
    assert!(
        only_crbot.is_empty() && only_exchange.is_empty(),
        "{ctx}: crbot's own fills differ from the exchange's records of crbot's orders: \
         booked by crbot only {only_crbot:?}; on the exchange only {only_exchange:?}\n{}",
        details.join("\n")
    );
}

fn compare_positions(core: &Core, expected: &Books, mids: &BTreeMap<String, Decimal>, ctx: &str) {
    let crbot = &core.state.positions;
    for s in SYMBOLS {
        let m = expected.positions.get(s).cloned().unwrap_or_default();
        let p = crbot.get(&sym(s));
        let got = p.map(|p| {
            (
                p.qty().value(),
                p.cost_basis().amount(),
                p.realized_pnl().amount(),
                p.fees_paid().amount(),
                p.unpriced_fees().values().copied().sum::<Decimal>(),
            )
        });
        let want = (m.qty, m.cost, m.realized, m.fees, unpriced_of(expected, s));
        let got = got.unwrap_or_default();
        assert_eq!(
            got, want,
            "{ctx}: {s} position (qty, cost, realized, fees, unpriced BNB fee) crbot vs exchange records"
        );
        if let Some(p) = p {
            let mark = price(mids[s]);
            assert_eq!(
                p.unrealized_pnl(mark).map(|u| u.amount()),
                Some(m.unrealized(mark.value())),
                "{ctx}: {s} unrealized P&L at {mark}"
            );
        }
    }
    // What the screen shows: every open position's row.
    let snap = core.state.snapshot(0);
    for row in snap.positions.iter().filter(|r| !r.external) {
        let m = &expected.positions[row.symbol.as_str()];
        assert_eq!(row.qty.value(), m.qty, "{ctx}: {} row quantity", row.symbol);
        let avg = (!m.qty.is_zero()).then(|| m.cost / m.qty);
        assert_eq!(
            row.avg_entry.map(|p| p.value()),
            avg,
            "{ctx}: {} avg entry",
            row.symbol
        );
        let mark = mids[row.symbol.as_str()];
        assert_eq!(
            row.unrealized.as_ref().map(|u| u.amount()),
            Some(m.unrealized(mark)),
            "{ctx}: {} row unrealized",
            row.symbol
        );
    }
}

/// BNB commission left unpriced on a symbol in `books` (computed with unpriced replays).
fn unpriced_of(books: &Books, symbol: &str) -> Decimal {
    books
        .positions
        .get(symbol)
        .map(|p| p.unpriced_fee_qty)
        .unwrap_or_default()
}

fn compare_balances(core: &Core, balances: &BTreeMap<String, Decimal>, expected: &Books, ctx: &str) {
    let crbot: BTreeMap<String, Decimal> = core
        .state
        .balances
        .values()
        .map(|b| (b.asset.to_string(), b.free.value() + b.locked.value()))
        .filter(|(_, v)| !v.is_zero())
        .collect();
    let exchange: BTreeMap<String, Decimal> = balances
        .iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(a, v)| (a.clone(), *v))
        .collect();
    assert_eq!(crbot, exchange, "{ctx}: balances");
    // External holdings: what the account holds beyond crbot's positions.
    let snap = core.state.snapshot(0);
    let shown: BTreeMap<String, Decimal> = snap
        .positions
        .iter()
        .filter(|r| r.external)
        .map(|r| (r.symbol.to_string(), r.qty.value()))
        .collect();
    let mut want = BTreeMap::new();
    for s in SYMBOLS {
        let (base, _) = model::assets(s);
        let held = balances.get(base).copied().unwrap_or_default();
        let own = expected.positions.get(s).map(|p| p.qty).unwrap_or_default();
        if held > own {
            want.insert(s.to_string(), held - own);
        }
    }
    assert_eq!(shown, want, "{ctx}: external holdings");
}

fn compare_marks(core: &Core, marks: &Marks, ctx: &str) {
    let t = &core.state.equity;
    let last = t.last().map(|s| (s.time_ms, s.equity.amount()));
    assert_eq!(last, marks.last, "{ctx}: equity (time, USDT)");
    let day_start = t.day_start().map(|d| (d.date.to_string(), d.equity.amount()));
    let want_day = marks.day_start.map(|(day, e)| {
        let date = chrono::DateTime::from_timestamp_millis(day * model::DAY_MS)
            .unwrap()
            .date_naive();
        (date.to_string(), e)
    });
    assert_eq!(day_start, want_day, "{ctx}: day-start equity");
    assert_eq!(
        t.high_water_mark().map(|h| h.amount()),
        marks.hwm,
        "{ctx}: high-water mark"
    );
    assert_eq!(
        t.day_pnl().map(|m| m.amount()),
        marks.day_pnl(),
        "{ctx}: today's P&L"
    );
    assert_eq!(t.day_pnl_pct(), marks.day_pnl_pct(), "{ctx}: today's P&L %");
    assert_eq!(t.drawdown_pct(), marks.drawdown_pct(), "{ctx}: drawdown %");
}

/// Drives the run until `fills` fills happened, with the regime changes at a third and two
/// thirds and the day rollover at half; returns the last checkpoint's books.
async fn drive(run: &mut Run, fills: usize) -> Books {
    let mut ops = 0usize;
    let mut rolled = false;
    let every = (fills / CHECKPOINTS).max(50);
    let mut next_checkpoint = every;
    loop {
        let seen = run.stats.fills_seen;
        if seen >= fills {
            break;
        }
        if run.regime < 2 && seen * 3 >= fills * (run.regime + 1) {
            run.checkpoint(&format!("before regime {}", run.regime + 1)).await;
            run.next_regime().await;
        }
        if !rolled && seen * 2 >= fills {
            rolled = true;
            rollover(run).await;
        }
        run.tick();
        let t = Instant::now();
        let kind = match run.rng.below(100) {
            0..=44 => {
                run.entry().await;
                "entry"
            }
            45..=79 => {
                run.exit().await;
                "exit"
            }
            80..=89 => {
                run.move_price().await;
                "move"
            }
            90..=93 => {
                run.cancel().await;
                "cancel"
            }
            94..=96 => {
                run.flow().await;
                "flow"
            }
            97..=98 => {
                run.external_order().await;
                "external"
            }
            // Half of the last percent: a restart replays the whole journal, the costliest step.
            _ if run.rng.chance(50) => {
                run.restart_crbot().await;
                "restart"
            }
            _ => "none",
        };
        *run.stats.time.entry(kind).or_default() += t.elapsed();
        ops += 1;
        if run.stats.fills_seen >= next_checkpoint {
            next_checkpoint += every;
            let t = Instant::now();
            run.checkpoint(&format!("op {ops}")).await;
            *run.stats.time.entry("checkpoint").or_default() += t.elapsed();
        }
    }
    // Finish: cancel what rests, then the final audit.
    while let Some(o) = run.core.as_ref().unwrap().state.open_orders().first().cloned() {
        let now = run.clock;
        if let OrderOutcome::Done(x) = run
            .ex()
            .rest
            .cancel_order(&o.symbol, o.client_order_id.as_str())
            .await
        {
            run.core().on_exchange_order(&x, now);
        } else {
            run.sync(&[o.symbol.as_str()]).await;
        }
    }
    run.tick();
    run.checkpoint("final").await
}

/// Crosses 00:00 UTC on crbot's clock: a sample just before, a restart of crbot (its
/// journaled day start is yesterday's), a sample just after, each compared.
async fn rollover(run: &mut Run) {
    let midnight = (run.clock / model::DAY_MS + 1) * model::DAY_MS;
    run.clock = midnight - 1_000;
    run.feed_quotes();
    run.checkpoint("23:59:59 UTC").await;
    run.restart_crbot().await;
    run.clock = midnight + 1_000;
    run.feed_quotes();
    run.checkpoint("00:00:01 UTC").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_books_recomputed_from_the_exchange_records_match_crbot_to_the_last_decimal() {
    let seed: u64 = env_or("BOOKS_SEED", wall_ms() as u64);
    let fills: usize = env_or("BOOKS_FILLS", DEFAULT_FILLS);
    println!("books: BOOKS_SEED={seed} BOOKS_FILLS={fills}");
    let started = Instant::now();
    let mut run = Run::new(seed).await;
    let books = drive(&mut run, fills).await;
    let s = &run.stats;
    println!(
        "books: {} fills ({} orders filled in parts, {} BNB commissions booked after BNBUSDT moved) in {:.1?}: {s:?}; fees by asset {:?}",
        books.fills,
        books.partial_orders,
        run.late_bnb_valuations,
        started.elapsed(),
        books.fees_by_asset
    );
    let ctx = format!("seed {seed}");
    assert!(
        books.fills >= fills,
        "{ctx}: only {} of crbot's fills",
        books.fills
    );
    assert!(books.partial_orders > 0, "{ctx}: no order filled in parts");
    for asset in ["BNB", "USDT", "BTC"] {
        assert!(
            books.fees_by_asset.contains_key(asset),
            "{ctx}: no fee paid in {asset}"
        );
    }
    assert!(s.crbot_restarts > 0 && s.answers_lost > 0, "{ctx}: {s:?}");
    assert!(
        s.expired_in_match > 0,
        "{ctx}: no order of crbot's expired in match: {s:?}"
    );
    assert!(
        s.flows > 0 && s.exchange_restarts == 2 && s.cancels > 0,
        "{ctx}: {s:?}"
    );
    assert!(
        books.positions.values().any(|p| !p.realized.is_zero()),
        "{ctx}: nothing realized"
    );
}

/// Former finding: a BNB commission was priced with the BNBUSDT quote crbot held when it
/// booked the fill, and nothing of that value was journaled, so a restart replayed the fill
/// with the commission unpriced (cost and P&L lost it). The fill-time value is now journaled
/// with the fill and replayed as is.
async fn finding_a_bnb_commission_keeps_its_fill_time_value_when_crbot_restarts(store: Store) {
    let mut run = Run::on(7, store).await;
    run.next_regime().await;
    assert!(regimes()[run.regime].bnb);
    run.feed_quotes();
    let (bid, ask) = run.book["ETHUSDT"];
    let entry = Ticket {
        symbol: sym("ETHUSDT"),
        side: Side::Buy,
        kind: TicketKind::Market,
        qty: qty(dec("2")),
        stop_loss: Some(price(bid * dec("0.9"))),
        take_profit: Some(price(ask * dec("1.2"))),
    };
    assert!(run.send(entry, OrderPurpose::Entry, false).await);
    let figures = |run: &Run| {
        let p = run
            .core
            .as_ref()
            .unwrap()
            .state
            .positions
            .get(&sym("ETHUSDT"))
            .cloned()
            .unwrap();
        (p.qty(), p.cost_basis(), p.fees_paid(), p.pnl_complete())
    };
    let booked = figures(&run);
    assert!(
        booked.3,
        "the BNB commission was priced when the fill was booked: {booked:?}"
    );
    let bnb = run.mid("BNBUSDT");
    run.set_price("BNBUSDT", (bnb * dec("1.1")).round_dp(2)).await;

    run.restart_crbot().await;

    assert_eq!(
        figures(&run),
        booked,
        "ETHUSDT (qty, cost, fees, P&L complete) across a restart"
    );
}

/// Former finding: the reconciliation read `myTrades` only from the highest trade id in the
/// journal, but fills are not learned in trade-id order. A resting order that fills while the
/// user stream is down (here: crbot is simply not told), followed by an order whose answer
/// brings a later fill on the same symbol, moved that cursor past the missed fill, and the
/// fill and position were lost for good. Orders whose executed quantity their journaled
/// fills do not cover are now read by order id.
async fn finding_a_missed_fill_is_reconciled_even_after_a_later_fill_on_the_symbol(store: Store) {
    let mut run = Run::on(11, store).await;
    let eth = "ETHUSDT";
    let (bid, ask) = run.book[eth];
    let entry = Ticket {
        symbol: sym(eth),
        side: Side::Buy,
        kind: TicketKind::Market,
        qty: qty(dec("2")),
        stop_loss: Some(price(bid * dec("0.9"))),
        take_profit: Some(price(ask * dec("1.2"))),
    };
    assert!(run.send(entry, OrderPurpose::Entry, false).await);
    let exit = |kind, q: &str| Ticket {
        symbol: sym(eth),
        side: Side::Sell,
        kind,
        qty: qty(dec(q)),
        stop_loss: None,
        take_profit: None,
    };
    let resting_px = price(ask * dec("1.01"));
    let resting = exit(TicketKind::Limit { price: resting_px }, "1");
    assert!(run.send(resting, OrderPurpose::Exit, false).await);
    assert!(run.has_open_order(eth), "the sell rests above the ask");
    // The price rises through the resting sell; crbot is not told (its stream is down).
    run.set_price(eth, (resting_px.value() * dec("1.01")).round_dp(2))
        .await;
    // A later exit's answer brings fills with higher trade ids.
    let (bid, _) = run.book[eth];
    let later = exit(
        TicketKind::Limit {
            price: price(bid * dec("0.999")),
        },
        "0.5",
    );
    assert!(run.send(later, OrderPurpose::Exit, false).await);

    run.sync(&[eth]).await;

    let trades = run.records().await.0;
    let journal = run.core.as_ref().unwrap().journal.fills().unwrap();
    let missing: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.symbol == eth && !t.is_buyer)
        .filter(|t| {
            !journal
                .iter()
                .any(|f| f.symbol.as_str() == eth && f.trade_id == t.id)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "fills of crbot's orders never journaled: {missing:?}"
    );
}

both_stores!(
    multi_thread: finding_a_bnb_commission_keeps_its_fill_time_value_when_crbot_restarts,
    finding_a_missed_fill_is_reconciled_even_after_a_later_fill_on_the_symbol,
);
