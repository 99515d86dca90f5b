//! The synthetic market of the local exchange: symbols, their filters, order books, public
//! trades and one-minute candles, moved by a seeded random walk with occasional jumps.
//!
//! Owns: everything public about a symbol (what `exchangeInfo`, the market-data endpoints and
//! the market streams show). Must not: know about accounts or orders; the matching engine
//! consumes book liquidity through `take_*` and reports its fills with `record_trade`.
//!
//! Determinism: prices depend only on the seed and the number of steps taken, never on the
//! wall clock, so the same seed gives the same price path. The generator is a SplitMix64
//! written here (a few lines) so that the path cannot change when a dependency is upgraded.
//! `speed` scales the market time covered by one step (variance and jump odds grow with it);
//! timestamps stay real so that signatures and `recvWindow` keep working.

use std::collections::{BTreeMap, VecDeque};

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod tape;
pub use tape::{AggTrade, MAX_TAPE, Tape};

/// Milliseconds between two market steps at speed 1 (four updates per second per symbol).
pub const STEP_MS: i64 = 250;
/// One-minute candles kept per symbol (history plus live).
const MAX_CANDLES: usize = 3000;
/// Candles generated at start so that charts are full at once.
pub const HISTORY_CANDLES: i64 = 500;
/// Book levels on each side.
pub const LEVELS: usize = 20;

/// Deterministic 64-bit generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 6 decimals.
    pub fn unit(&mut self) -> Decimal {
        Decimal::new((self.next_u64() % 1_000_000) as i64, 6)
    }

    /// Roughly standard normal (Irwin–Hall with 12 uniforms, minus 6).
    pub fn normal(&mut self) -> Decimal {
        let mut sum = Decimal::ZERO;
        for _ in 0..12 {
            sum += self.unit();
        }
        sum - Decimal::from(6)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Static description of one symbol: asset names, start price, filters and behaviour.
#[derive(Debug, Clone)]
pub struct SymbolSpec {
    pub symbol: &'static str,
    pub base: &'static str,
    pub quote: &'static str,
    pub start_price: Decimal,
    pub tick: Decimal,
    pub step: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub market_max_qty: Decimal,
    pub min_notional: Decimal,
    pub max_notional: Decimal,
    /// Standard deviation of the return over one step at speed 1.
    pub step_vol: Decimal,
    /// Typical quantity of one book level, in base units.
    pub level_qty: Decimal,
    /// Best bid to best ask, in ticks.
    pub spread_ticks: i64,
}

impl SymbolSpec {
    /// PRICE_FILTER's `maxPrice`: a hundred times the start price.
    pub fn max_price(&self) -> Decimal {
        self.start_price * Decimal::from(100)
    }

    /// PRICE_FILTER: within `[tickSize, maxPrice]` and a whole number of ticks.
    pub fn price_ok(&self, px: Decimal) -> bool {
        px >= self.tick && px <= self.max_price() && px.checked_rem(self.tick).is_some_and(|r| r.is_zero())
    }
}

pub const MAX_NUM_ORDERS: usize = 200;
pub const PERCENT_UP: &str = "5";
pub const PERCENT_DOWN: &str = "0.2";

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or(Decimal::ZERO)
}

/// The six symbols of the synthetic market, with filters close to Binance's own.
pub fn default_specs() -> Vec<SymbolSpec> {
    let mk = |symbol, base, price: &str, tick: &str, step: &str, max_qty: &str, vol: &str, lvl: &str, sp| {
        SymbolSpec {
            symbol,
            base,
            quote: "USDT",
            start_price: d(price),
            tick: d(tick),
            step: d(step),
            min_qty: d(step),
            max_qty: d(max_qty),
            market_max_qty: d(max_qty) / Decimal::from(10),
            min_notional: d("5"),
            max_notional: d("9000000"),
            step_vol: d(vol),
            level_qty: d(lvl),
            spread_ticks: sp,
        }
    };
    vec![
        mk(
            "BTCUSDT", "BTC", "97250.00", "0.01", "0.00001", "9000", "0.00012", "0.35", 1,
        ),
        mk(
            "ETHUSDT", "ETH", "3380.00", "0.01", "0.0001", "9000", "0.00016", "6", 1,
        ),
        mk(
            "SOLUSDT", "SOL", "182.50", "0.01", "0.001", "90000", "0.00022", "90", 1,
        ),
        mk(
            "BNBUSDT", "BNB", "652.00", "0.01", "0.001", "9000", "0.00014", "25", 2,
        ),
        mk(
            "XRPUSDT", "XRP", "2.2150", "0.0001", "0.1", "9000000", "0.0002", "8000", 1,
        ),
        mk(
            "DOGEUSDT", "DOGE", "0.32150", "0.00001", "1", "90000000", "0.00025", "50000", 1,
        ),
    ]
}

/// One public trade.
#[derive(Debug, Clone)]
pub struct PublicTrade {
    pub id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub time: i64,
    /// The buyer was the maker (the taker sold).
    pub buyer_maker: bool,
}

/// One one-minute candle.
#[derive(Debug, Clone)]
pub struct Candle {
    pub open_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trades: u64,
    pub taker_buy_base: Decimal,
    pub taker_buy_quote: Decimal,
    pub first_trade_id: i64,
    pub last_trade_id: i64,
}

impl Candle {
    fn new(open_time: i64, price: Decimal) -> Self {
        Candle {
            open_time,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: Decimal::ZERO,
            quote_volume: Decimal::ZERO,
            trades: 0,
            taker_buy_base: Decimal::ZERO,
            taker_buy_quote: Decimal::ZERO,
            first_trade_id: -1,
            last_trade_id: -1,
        }
    }

    fn add_trade(&mut self, t: &PublicTrade) {
        self.high = self.high.max(t.price);
        self.low = self.low.min(t.price);
        self.close = t.price;
        self.volume += t.qty;
        self.quote_volume += t.qty * t.price;
        self.trades += 1;
        if !t.buyer_maker {
            self.taker_buy_base += t.qty;
            self.taker_buy_quote += t.qty * t.price;
        }
        if self.first_trade_id < 0 {
            self.first_trade_id = t.id as i64;
        }
        self.last_trade_id = t.id as i64;
    }
}

/// A depth change: levels whose quantity changed (0 = removed), with the update-id range.
#[derive(Debug, Clone)]
pub struct DepthDiff {
    pub first_id: u64,
    pub last_id: u64,
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
}

/// Why a forced price was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceRefused {
    UnknownSymbol,
    /// Outside `[min, max]` or not a multiple of `tick`.
    Filter {
        min: Decimal,
        max: Decimal,
        tick: Decimal,
    },
}

/// Something the real-time streams publish.
#[derive(Debug, Clone)]
pub enum MarketEvent {
    Trade {
        symbol: String,
        trade: PublicTrade,
    },
    Depth {
        symbol: String,
        time: i64,
        diff: DepthDiff,
    },
    BookTicker {
        symbol: String,
    },
}

/// The live state of one symbol.
#[derive(Debug, Clone)]
pub struct SymbolMarket {
    pub spec: SymbolSpec,
    pub mid: Decimal,
    /// Best first (highest bid, lowest ask).
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
    pub last_price: Decimal,
    pub last_qty: Decimal,
    pub update_id: u64,
    pub candles: VecDeque<Candle>,
    pub next_trade_id: u64,
    /// The public trades printed (history included), bounded: `trades`, `aggTrades`.
    pub tape: Tape,
    /// Mid price moved by the control endpoint; the walk continues from there.
    pub forced: bool,
    /// Its market step panicked once; it no longer moves (see `Market::step`).
    pub halted: bool,
}

/// All symbols, the generator and the step counter.
#[derive(Debug, Clone)]
pub struct Market {
    pub symbols: Vec<SymbolMarket>,
    rng: SplitMix64,
    /// Square root of the speed: the return of one step scales with it.
    vol_scale: Decimal,
    speed: Decimal,
    pub steps: u64,
}

/// Square root by Newton's method (rust_decimal's `maths` feature is not enabled).
pub fn sqrt(x: Decimal) -> Decimal {
    if x <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let mut g = if x > Decimal::ONE {
        x / Decimal::TWO
    } else {
        Decimal::ONE
    };
    for _ in 0..60 {
        let next = (g + x / g) / Decimal::TWO;
        if (next - g).abs() < Decimal::new(1, 20) {
            return next;
        }
        g = next;
    }
    g
}

/// Rounds down to a multiple of `unit`. Only for values the exchange made itself (book
/// levels, synthetic trades); anything derived from a request goes through `checked_floor_to`.
pub fn floor_to(x: Decimal, unit: Decimal) -> Decimal {
    checked_floor_to(x, unit).unwrap_or(x)
}

/// Rounds down to a multiple of `unit`; `None` when `x / unit` does not fit in a decimal.
pub fn checked_floor_to(x: Decimal, unit: Decimal) -> Option<Decimal> {
    if unit.is_zero() {
        return Some(x);
    }
    x.checked_div(unit)?.floor().checked_mul(unit)
}

impl Market {
    /// A market at `now_ms` with `HISTORY_CANDLES` minutes of history ending at the start price.
    pub fn new(seed: u64, speed: Decimal, now_ms: i64) -> Self {
        Self::resume(seed, speed, now_ms, &BTreeMap::new())
    }

    /// A market whose walk starts from `prices` (mid per symbol, e.g. saved at the last
    /// shutdown) instead of the default start prices, so a restart does not jump back.
    pub fn resume(seed: u64, speed: Decimal, now_ms: i64, prices: &BTreeMap<String, Decimal>) -> Self {
        let mut specs = default_specs();
        for spec in &mut specs {
            if let Some(p) = prices.get(spec.symbol).filter(|p| **p > spec.tick) {
                spec.start_price = round_tick(*p, spec.tick);
            }
        }
        let mut rng = SplitMix64::new(seed);
        let minute_now = now_ms - now_ms.rem_euclid(60_000);
        let mut symbols = Vec::new();
        for spec in specs {
            // History: walk backwards in one-minute steps from the start price, then replay forward.
            let minute_vol = spec.step_vol * sqrt(Decimal::from(240));
            let mut closes = Vec::new();
            let mut p = spec.start_price;
            for _ in 0..HISTORY_CANDLES {
                closes.push(p);
                let r = rng.normal() * minute_vol;
                p = (p * (Decimal::ONE - r)).max(spec.tick);
            }
            closes.reverse();
            let mut candles = VecDeque::new();
            let mut prev = p;
            let mut trade_id: u64 = 1;
            let mut tape = Tape::default();
            for (i, close) in closes.iter().enumerate() {
                let open_time = minute_now - (HISTORY_CANDLES - i as i64) * 60_000;
                let mut c = Candle::new(open_time, round_tick(prev, spec.tick));
                let close = round_tick(*close, spec.tick);
                let wiggle = (close - c.open).abs() / Decimal::TWO + close * minute_vol * rng.unit();
                let n = 5 + rng.below(20);
                for k in 0..n {
                    let price = if k + 1 == n {
                        close
                    } else {
                        let off = (rng.unit() * Decimal::TWO - Decimal::ONE) * wiggle;
                        round_tick((c.open + close) / Decimal::TWO + off, spec.tick).max(spec.tick)
                    };
                    let qty =
                        floor_to(spec.level_qty * rng.unit() / Decimal::from(4), spec.step).max(spec.step);
                    let t = PublicTrade {
                        id: trade_id,
                        price,
                        qty,
                        time: open_time + (k as i64 * 59_000 / n as i64),
                        buyer_maker: rng.below(2) == 0,
                    };
                    trade_id += 1;
                    c.add_trade(&t);
                    tape.new_taker();
                    tape.push(&t);
                }
                candles.push_back(c);
                prev = close;
            }
            let mid = spec.start_price;
            let mut m = SymbolMarket {
                spec,
                mid,
                bids: Vec::new(),
                asks: Vec::new(),
                last_price: mid,
                last_qty: Decimal::ZERO,
                update_id: 1_000,
                candles,
                next_trade_id: trade_id,
                tape,
                forced: false,
                halted: false,
            };
            m.rebuild_book(&mut rng);
            symbols.push(m);
        }
        Market {
            symbols,
            rng,
            vol_scale: sqrt(speed),
            speed,
            steps: 0,
        }
    }

    pub fn get(&self, symbol: &str) -> Option<&SymbolMarket> {
        self.symbols.iter().find(|s| s.spec.symbol == symbol)
    }

    pub fn get_mut(&mut self, symbol: &str) -> Option<&mut SymbolMarket> {
        self.symbols.iter_mut().find(|s| s.spec.symbol == symbol)
    }

    /// One step of market time: every symbol moves, gets a new book and a few public trades.
    ///
    /// Each symbol's step runs on its own behind `catch_unwind`: this runs in the task that
    /// moves every market, and an arithmetic bug in one symbol must not freeze the others. A
    /// symbol whose step panicked is logged and left where it was (halted) from then on.
    pub fn step(&mut self, now_ms: i64) -> Vec<MarketEvent> {
        self.steps += 1;
        let mut events = Vec::new();
        // A jump happens about once every 2.3 hours of market time per symbol (3e-5 per step),
        // 1.5–4 % either way: enough that a demo account can hit a 5 % daily-loss limit.
        let jump_odds = (Decimal::new(3, 5) * self.speed).min(Decimal::ONE);
        let vol_scale = self.vol_scale;
        for i in 0..self.symbols.len() {
            let rng = &mut self.rng;
            let m = &mut self.symbols[i];
            if m.halted {
                continue;
            }
            let mut out = Vec::new();
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                m.step(rng, jump_odds, vol_scale, now_ms, &mut out)
            }));
            match stepped {
                Ok(()) => events.extend(out),
                Err(_) => {
                    m.halted = true;
                    tracing::error!(
                        "sim: the market step of {} failed; the symbol is halted, the others keep moving",
                        m.spec.symbol
                    );
                }
            }
        }
        events
    }

    /// Moves a symbol's price at once (control endpoint); the book follows immediately.
    ///
    /// The price must pass the symbol's PRICE_FILTER: the walk, the book and the candles
    /// multiply and add prices, and a price near `Decimal::MAX` would overflow them on the
    /// next step, in the task that moves every symbol.
    pub fn force_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now_ms: i64,
    ) -> Result<Vec<MarketEvent>, PriceRefused> {
        let rng = &mut self.rng;
        let m = self
            .symbols
            .iter_mut()
            .find(|s| s.spec.symbol == symbol)
            .ok_or(PriceRefused::UnknownSymbol)?;
        if !m.spec.price_ok(price) {
            return Err(PriceRefused::Filter {
                min: m.spec.tick,
                max: m.spec.max_price(),
                tick: m.spec.tick,
            });
        }
        let old_bids = m.bids.clone();
        let old_asks = m.asks.clone();
        m.mid = price.max(m.spec.tick);
        m.forced = true;
        m.rebuild_book(rng);
        let mut events = Vec::new();
        let px = round_tick(m.mid, m.spec.tick);
        let t = m.record_trade(px, m.spec.step, false, now_ms);
        events.push(MarketEvent::Trade {
            symbol: symbol.to_string(),
            trade: t,
        });
        if let Some(diff) = m.diff_from(&old_bids, &old_asks) {
            events.push(MarketEvent::Depth {
                symbol: symbol.to_string(),
                time: now_ms,
                diff,
            });
        }
        events.push(MarketEvent::BookTicker {
            symbol: symbol.to_string(),
        });
        Ok(events)
    }

    /// Sets the whole book from an outside best bid/ask (paper price source).
    pub fn set_quote(
        &mut self,
        symbol: &str,
        bid: (Decimal, Decimal),
        ask: (Decimal, Decimal),
        now_ms: i64,
    ) -> Option<Vec<MarketEvent>> {
        let rng = &mut self.rng;
        let m = self.symbols.iter_mut().find(|s| s.spec.symbol == symbol)?;
        // An outside quote is input too: outside (0, maxPrice] it would overflow the mid or
        // the book, so it is ignored like a crossed one.
        let max = m.spec.max_price();
        if bid.0 <= Decimal::ZERO || ask.0 < bid.0 || ask.0 > max {
            return None;
        }
        let old_bids = m.bids.clone();
        let old_asks = m.asks.clone();
        // The history is the real quotes' only: the paper exchange starts a symbol unpriced
        // (`paper::await_real_prices`), with no synthetic history to bring to this level.
        m.mid = (bid.0 + ask.0) / Decimal::TWO;
        m.rebuild_book(rng);
        // The outside top of book replaces the synthetic one (levels behind it stay synthetic).
        m.bids.retain(|(p, _)| *p < bid.0);
        m.bids
            .insert(0, (bid.0, bid.1.clamp(m.spec.step, m.spec.max_qty)));
        m.asks.retain(|(p, _)| *p > ask.0);
        m.asks
            .insert(0, (ask.0, ask.1.clamp(m.spec.step, m.spec.max_qty)));
        let mut events = Vec::new();
        m.last_price = round_tick(m.mid, m.spec.tick);
        if let Some(diff) = m.diff_from(&old_bids, &old_asks) {
            events.push(MarketEvent::Depth {
                symbol: symbol.to_string(),
                time: now_ms,
                diff,
            });
        }
        events.push(MarketEvent::BookTicker {
            symbol: symbol.to_string(),
        });
        m.roll_candle(now_ms);
        Some(events)
    }

    /// Mid prices of every symbol (for determinism checks and tests).
    pub fn mids(&self) -> Vec<Decimal> {
        self.symbols.iter().map(|s| s.mid).collect()
    }
}

pub fn round_tick(x: Decimal, tick: Decimal) -> Decimal {
    if tick.is_zero() {
        return x;
    }
    ((x / tick).round() * tick).normalize()
}

impl SymbolMarket {
    /// One step of this symbol (see `Market::step`).
    fn step(
        &mut self,
        rng: &mut SplitMix64,
        jump_odds: Decimal,
        vol_scale: Decimal,
        now_ms: i64,
        events: &mut Vec<MarketEvent>,
    ) {
        let m = self;
        let mut r = rng.normal() * m.spec.step_vol * vol_scale;
        if rng.unit() < jump_odds {
            let size = Decimal::new(15, 3) + rng.unit() * Decimal::new(25, 3);
            r += if rng.below(2) == 0 { size } else { -size };
        }
        // The walk stays inside PRICE_FILTER, so that every price it shows can be traded.
        let moved = m.mid.checked_mul(Decimal::ONE + r).unwrap_or(m.mid);
        m.mid = moved.max(m.spec.tick * Decimal::from(10)).min(m.spec.max_price());
        m.forced = false;
        let old_bids = m.bids.clone();
        let old_asks = m.asks.clone();
        m.rebuild_book(rng);
        let n = rng.below(3);
        for _ in 0..n {
            let taker_buys = rng.below(2) == 0;
            let price = if taker_buys {
                m.best_ask().0
            } else {
                m.best_bid().0
            };
            if price.is_zero() {
                continue;
            }
            let qty =
                floor_to(m.spec.level_qty * rng.unit() / Decimal::from(5), m.spec.step).max(m.spec.step);
            let t = m.record_trade(price, qty, !taker_buys, now_ms);
            events.push(MarketEvent::Trade {
                symbol: m.spec.symbol.to_string(),
                trade: t,
            });
        }
        if let Some(diff) = m.diff_from(&old_bids, &old_asks) {
            events.push(MarketEvent::Depth {
                symbol: m.spec.symbol.to_string(),
                time: now_ms,
                diff,
            });
        }
        events.push(MarketEvent::BookTicker {
            symbol: m.spec.symbol.to_string(),
        });
        m.roll_candle(now_ms);
    }

    fn rebuild_book(&mut self, rng: &mut SplitMix64) {
        let tick = self.spec.tick;
        let half = tick * Decimal::from(self.spec.spread_ticks) / Decimal::TWO;
        let best_bid = floor_to(self.mid - half, tick).max(tick);
        let best_ask = best_bid + tick * Decimal::from(self.spec.spread_ticks);
        self.bids.clear();
        self.asks.clear();
        let mut bid = best_bid;
        let mut ask = best_ask;
        for level in 0..LEVELS {
            let grow = Decimal::ONE + Decimal::from(level as i64) / Decimal::from(4);
            let qb = floor_to(
                self.spec.level_qty * grow * (Decimal::new(3, 1) + rng.unit()),
                self.spec.step,
            )
            .max(self.spec.step);
            let qa = floor_to(
                self.spec.level_qty * grow * (Decimal::new(3, 1) + rng.unit()),
                self.spec.step,
            )
            .max(self.spec.step);
            if bid > Decimal::ZERO {
                self.bids.push((bid.normalize(), qb));
            }
            self.asks.push((ask.normalize(), qa));
            let gap = tick * Decimal::from(1 + rng.below(3) as i64) * Decimal::from(1 + level as i64 / 5);
            bid -= gap;
            ask += gap;
        }
    }

    fn diff_from(
        &mut self,
        old_bids: &[(Decimal, Decimal)],
        old_asks: &[(Decimal, Decimal)],
    ) -> Option<DepthDiff> {
        let side = |old: &[(Decimal, Decimal)], new: &[(Decimal, Decimal)]| {
            let mut out = Vec::new();
            for (p, _) in old {
                if !new.iter().any(|(np, _)| np == p) {
                    out.push((*p, Decimal::ZERO));
                }
            }
            for (p, q) in new {
                if old.iter().find(|(op, _)| op == p).map(|(_, oq)| oq) != Some(q) {
                    out.push((*p, *q));
                }
            }
            out
        };
        let bids = side(old_bids, &self.bids);
        let asks = side(old_asks, &self.asks);
        if bids.is_empty() && asks.is_empty() {
            return None;
        }
        let first_id = self.update_id + 1;
        self.update_id += 1 + (bids.len() + asks.len()) as u64 / 8;
        Some(DepthDiff {
            first_id,
            last_id: self.update_id,
            bids,
            asks,
        })
    }

    /// Records a public trade (synthetic or a user's fill) in the tape and the candles.
    pub fn record_trade(
        &mut self,
        price: Decimal,
        qty: Decimal,
        buyer_maker: bool,
        now_ms: i64,
    ) -> PublicTrade {
        let t = PublicTrade {
            id: self.next_trade_id,
            price,
            qty,
            time: now_ms,
            buyer_maker,
        };
        self.next_trade_id += 1;
        self.last_price = price;
        self.last_qty = qty;
        self.roll_candle(now_ms);
        if let Some(c) = self.candles.back_mut() {
            c.add_trade(&t);
        }
        // Every trade here comes from its own taker or from another price level: the book
        // holds one order per price, so a taker never fills twice at one price and no two
        // trades of this market share an aggregate.
        self.tape.new_taker();
        self.tape.push(&t);
        t
    }

    fn roll_candle(&mut self, now_ms: i64) {
        let minute = now_ms - now_ms.rem_euclid(60_000);
        let last_open = self.candles.back().map(|c| c.open_time).unwrap_or(i64::MIN);
        if minute > last_open {
            let close = self.candles.back().map(|c| c.close).unwrap_or(self.last_price);
            // Fill minutes with no activity so that candle open times stay contiguous.
            // Only the minutes that will be kept: after a long clock jump (a clock-offset
            // fault) filling every missed minute first would take unbounded time and memory.
            let oldest_kept = minute.saturating_sub((MAX_CANDLES as i64 - 1) * 60_000);
            let mut t = if last_open == i64::MIN {
                minute
            } else {
                last_open.saturating_add(60_000).max(oldest_kept)
            };
            while t <= minute {
                self.candles.push_back(Candle::new(t, close));
                t += 60_000;
            }
            while self.candles.len() > MAX_CANDLES {
                self.candles.pop_front();
            }
        }
    }

    /// Takes liquidity from the opposite side for a taker order, best level first, while the
    /// level price is acceptable. Returns the fills (price, qty) and the depth diff.
    pub fn take(
        &mut self,
        buy: bool,
        max_qty: Decimal,
        limit: Option<Decimal>,
        max_quote: Option<Decimal>,
    ) -> (Vec<(Decimal, Decimal)>, Option<DepthDiff>) {
        let step = self.spec.step;
        let old_bids = self.bids.clone();
        let old_asks = self.asks.clone();
        let book = if buy { &mut self.asks } else { &mut self.bids };
        let mut fills = Vec::new();
        let mut left = max_qty;
        let mut quote_left = max_quote;
        for level in book.iter_mut() {
            if left <= Decimal::ZERO {
                break;
            }
            let ok = match limit {
                Some(l) => {
                    if buy {
                        level.0 <= l
                    } else {
                        level.0 >= l
                    }
                }
                None => true,
            };
            if !ok {
                break;
            }
            let mut q = left.min(level.1);
            // A quote amount too large to divide by the price buys the whole level.
            if let Some(ql) = quote_left
                && let Some(cap) = ql.checked_div(level.0).and_then(|x| checked_floor_to(x, step))
            {
                q = q.min(cap);
            }
            if q <= Decimal::ZERO {
                break;
            }
            level.1 -= q;
            left -= q;
            if let Some(ql) = quote_left.as_mut() {
                *ql = ql.saturating_sub(q.saturating_mul(level.0));
            }
            fills.push((level.0, q));
        }
        book.retain(|(_, q)| *q > Decimal::ZERO);
        let diff = if fills.is_empty() {
            None
        } else {
            self.diff_from(&old_bids, &old_asks)
        };
        (fills, diff)
    }

    /// Quantity on the opposite side at prices that cross `limit` (what a resting order can get).
    pub fn crossing_qty(&self, buy: bool, limit: Decimal) -> Decimal {
        if buy {
            self.asks
                .iter()
                .filter(|(p, _)| *p <= limit)
                .map(|(_, q)| *q)
                .sum()
        } else {
            self.bids
                .iter()
                .filter(|(p, _)| *p >= limit)
                .map(|(_, q)| *q)
                .sum()
        }
    }

    pub fn best_bid(&self) -> (Decimal, Decimal) {
        self.bids
            .first()
            .copied()
            .unwrap_or((Decimal::ZERO, Decimal::ZERO))
    }

    pub fn best_ask(&self) -> (Decimal, Decimal) {
        self.asks
            .first()
            .copied()
            .unwrap_or((Decimal::ZERO, Decimal::ZERO))
    }

    /// Volume-weighted average price of the last `mins` minutes (GET avgPrice, filters).
    pub fn avg_price(&self, mins: usize) -> Decimal {
        let (mut v, mut q) = (Decimal::ZERO, Decimal::ZERO);
        for c in self.candles.iter().rev().take(mins) {
            v += c.volume;
            q += c.quote_volume;
        }
        if v.is_zero() {
            self.last_price
        } else {
            round_tick(q / v, self.spec.tick / Decimal::from(1000))
        }
    }

    /// Rolling 24 h statistics from the one-minute candles.
    pub fn stats_24h(&self, now_ms: i64) -> Stats24h {
        let from = now_ms - 86_400_000;
        let mut s = self.stats_from(from - 60_000, now_ms);
        s.open_time = s.open_time.max(from);
        s
    }

    /// Statistics of the candles opened at or after `from` (a minute boundary for
    /// `GET /api/v3/ticker` and the trading day), up to now. `open_time` is `from` itself
    /// when a candle starts there, else the first candle's.
    pub fn stats_from(&self, from: i64, now_ms: i64) -> Stats24h {
        let window: Vec<&Candle> = self.candles.iter().filter(|c| c.open_time >= from).collect();
        let open = window.first().map(|c| c.open).unwrap_or(self.last_price);
        let mut s = Stats24h {
            open,
            high: self.last_price,
            low: self.last_price,
            last: self.last_price,
            volume: Decimal::ZERO,
            quote_volume: Decimal::ZERO,
            first_id: -1,
            last_id: -1,
            count: 0,
            open_time: window.first().map(|c| c.open_time).unwrap_or(now_ms),
        };
        for c in &window {
            s.high = s.high.max(c.high);
            s.low = s.low.min(c.low);
            s.volume += c.volume;
            s.quote_volume += c.quote_volume;
            s.count += c.trades;
            if s.first_id < 0 && c.first_trade_id >= 0 {
                s.first_id = c.first_trade_id;
            }
            if c.last_trade_id >= 0 {
                s.last_id = c.last_trade_id;
            }
        }
        s
    }
}

/// Rolling 24 h figures of one symbol.
#[derive(Debug, Clone)]
pub struct Stats24h {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub last: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub first_id: i64,
    pub last_id: i64,
    pub count: u64,
    pub open_time: i64,
}

impl Stats24h {
    /// Last price minus the window's open (`priceChange`, stream field `p`).
    pub fn price_change(&self) -> Decimal {
        self.last - self.open
    }

    /// The change in percent of the open, 3 decimals (`priceChangePercent`, `P`); zero when
    /// there is no open to divide by.
    pub fn price_change_percent(&self) -> Decimal {
        if self.open.is_zero() {
            Decimal::ZERO
        } else {
            (self.price_change() / self.open * Decimal::from(100)).round_dp(3)
        }
    }

    /// Quote volume over base volume, 8 decimals (`weightedAvgPrice`, `w`); the last price
    /// when nothing traded.
    pub fn weighted_avg_price(&self) -> Decimal {
        if self.volume.is_zero() {
            self.last
        } else {
            (self.quote_volume / self.volume).round_dp(8)
        }
    }
}

/// A price or quantity as Binance prints it: a string with 8 decimals.
pub fn s8(x: Decimal) -> String {
    let mut y = x.round_dp(8);
    y.rescale(8);
    y.to_string()
}

/// Kline interval length in ms for fixed intervals; months are handled by the caller.
pub fn interval_ms(interval: &str) -> Option<i64> {
    Some(match interval {
        "1s" => 1_000,
        "1m" => 60_000,
        "3m" => 180_000,
        "5m" => 300_000,
        "15m" => 900_000,
        "30m" => 1_800_000,
        "1h" => 3_600_000,
        "2h" => 7_200_000,
        "4h" => 14_400_000,
        "6h" => 21_600_000,
        "8h" => 28_800_000,
        "12h" => 43_200_000,
        "1d" => 86_400_000,
        "3d" => 259_200_000,
        "1w" => 604_800_000,
        "1M" => 2_592_000_000,
        _ => return None,
    })
}

/// Start of the bucket holding `t` for an interval (weeks start on Monday, months on the 1st).
fn bucket_start(interval: &str, len: i64, t: i64) -> i64 {
    match interval {
        // 1970-01-01 was a Thursday; Monday buckets are offset by 4 days.
        "1w" => t - (t - 4 * 86_400_000).rem_euclid(len),
        "1M" => {
            use chrono::{Datelike, TimeZone, Utc};
            match Utc.timestamp_millis_opt(t).single() {
                Some(dt) => Utc
                    .with_ymd_and_hms(dt.year(), dt.month(), 1, 0, 0, 0)
                    .single()
                    .map(|x| x.timestamp_millis())
                    .unwrap_or(t),
                None => t,
            }
        }
        _ => t - t.rem_euclid(len),
    }
}

fn bucket_end(interval: &str, len: i64, start: i64) -> i64 {
    if interval == "1M" {
        use chrono::{Datelike, TimeZone, Utc};
        if let Some(dt) = Utc.timestamp_millis_opt(start).single() {
            let (y, m) = if dt.month() == 12 {
                (dt.year() + 1, 1)
            } else {
                (dt.year(), dt.month() + 1)
            };
            if let Some(n) = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single() {
                return n.timestamp_millis() - 1;
            }
        }
    }
    start + len - 1
}

/// Candles of an interval built from the one-minute candles (a 1s interval reuses minutes).
pub fn klines(m: &SymbolMarket, interval: &str) -> Option<Vec<(i64, i64, Candle)>> {
    let len = interval_ms(interval)?;
    let mut out: Vec<(i64, i64, Candle)> = Vec::new();
    for c in &m.candles {
        let start = if len < 60_000 {
            c.open_time
        } else {
            bucket_start(interval, len, c.open_time)
        };
        match out.last_mut() {
            Some((s, _, agg)) if *s == start => {
                agg.high = agg.high.max(c.high);
                agg.low = agg.low.min(c.low);
                agg.close = c.close;
                agg.volume += c.volume;
                agg.quote_volume += c.quote_volume;
                agg.trades += c.trades;
                agg.taker_buy_base += c.taker_buy_base;
                agg.taker_buy_quote += c.taker_buy_quote;
                if agg.first_trade_id < 0 {
                    agg.first_trade_id = c.first_trade_id;
                }
                if c.last_trade_id >= 0 {
                    agg.last_trade_id = c.last_trade_id;
                }
            }
            _ => {
                let end = if len < 60_000 {
                    start + 59_999
                } else {
                    bucket_end(interval, len, start)
                };
                let mut agg = c.clone();
                agg.open_time = start;
                out.push((start, end, agg));
            }
        }
    }
    Some(out)
}

/// One kline as the REST array.
pub fn kline_row(start: i64, end: i64, c: &Candle) -> Value {
    json!([
        start,
        s8(c.open),
        s8(c.high),
        s8(c.low),
        s8(c.close),
        s8(c.volume),
        end,
        s8(c.quote_volume),
        c.trades,
        s8(c.taker_buy_base),
        s8(c.taker_buy_quote),
        "0"
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stats(open: i64, last: i64, volume: i64, quote_volume: i64) -> Stats24h {
        Stats24h {
            open: Decimal::from(open),
            high: Decimal::from(open.max(last)),
            low: Decimal::from(open.min(last)),
            last: Decimal::from(last),
            volume: Decimal::from(volume),
            quote_volume: Decimal::from(quote_volume),
            first_id: -1,
            last_id: -1,
            count: 0,
            open_time: 0,
        }
    }

    #[test]
    fn ticker_figures_round_like_binance_and_survive_an_empty_window() {
        let st = stats(300, 301, 3, 902);
        assert_eq!(st.price_change(), Decimal::ONE);
        // 1/300 = 0.333… %, three decimals.
        assert_eq!(st.price_change_percent().to_string(), "0.333");
        // 902/3 = 300.666…, eight decimals.
        assert_eq!(
            st.weighted_avg_price(),
            "300.66666667".parse::<Decimal>().unwrap()
        );
        let empty = stats(0, 5, 0, 0);
        assert_eq!(empty.price_change_percent(), Decimal::ZERO);
        assert_eq!(empty.weighted_avg_price(), Decimal::from(5));
    }

    #[test]
    fn same_seed_gives_same_prices() {
        let mut a = Market::new(7, Decimal::ONE, 1_700_000_000_000);
        let mut b = Market::new(7, Decimal::ONE, 1_700_000_000_000);
        for i in 0..200 {
            a.step(1_700_000_000_000 + i * 250);
            b.step(1_700_000_000_000 + i * 250);
            assert_eq!(a.mids(), b.mids());
        }
        let mut c = Market::new(8, Decimal::ONE, 1_700_000_000_000);
        c.step(1_700_000_000_000);
        assert_ne!(a.mids(), c.mids());
    }

    #[test]
    fn book_is_on_ticks_and_not_crossed() {
        let mut m = Market::new(1, Decimal::ONE, 1_700_000_000_000);
        for i in 0..50 {
            m.step(1_700_000_000_000 + i * 250);
        }
        for s in &m.symbols {
            assert!(s.best_bid().0 < s.best_ask().0, "{}", s.spec.symbol);
            for (p, q) in s.bids.iter().chain(s.asks.iter()) {
                assert!((*p % s.spec.tick).is_zero());
                assert!((*q % s.spec.step).is_zero());
            }
        }
    }

    #[test]
    fn history_has_500_contiguous_minutes() {
        let m = Market::new(3, Decimal::ONE, 1_700_000_000_000);
        let s = &m.symbols[0];
        assert!(s.candles.len() >= 500);
        for w in s.candles.iter().collect::<Vec<_>>().windows(2) {
            assert_eq!(w[1].open_time - w[0].open_time, 60_000);
        }
    }

    #[test]
    fn outside_quotes_replace_the_top_of_book_without_crossing_even_when_tiny() {
        let mut m = Market::new(2, Decimal::ONE, 1_700_000_000_000);
        let q = |x: i64| (Decimal::new(x, 6), Decimal::ONE);
        assert!(m.set_quote("DOGEUSDT", q(1), q(2), 1_700_000_000_250).is_some());
        let s = m.get("DOGEUSDT").unwrap();
        assert_eq!(s.best_bid().0, Decimal::new(1, 6));
        assert_eq!(s.best_ask().0, Decimal::new(2, 6));
        assert!(
            m.set_quote("BTCUSDT", q(5), q(4), 1_700_000_000_500).is_none(),
            "crossed quotes are ignored"
        );
        m.step(1_700_000_000_750);
    }

    #[test]
    fn later_outside_quotes_leave_the_history_of_the_first_ones_as_it_was() {
        let mut m = Market::new(2, Decimal::ONE, 1_700_000_000_000);
        // Unpriced, as the paper exchange starts a symbol (`paper::await_real_prices`).
        let btc = m.symbols.iter_mut().find(|s| s.spec.symbol == "BTCUSDT").unwrap();
        (btc.mid, btc.last_price) = (Decimal::ZERO, Decimal::ZERO);
        btc.candles.clear();
        let q = |x: i64| (Decimal::from(x), Decimal::ONE);
        let t = 1_700_000_040_000;
        m.set_quote("BTCUSDT", q(64_000), q(64_002), t).unwrap();
        m.set_quote("BTCUSDT", q(65_000), q(65_002), t + 250).unwrap();
        let c = m.get("BTCUSDT").unwrap().candles.back().unwrap().clone();
        let first = Decimal::from(64_001);
        assert_eq!((c.open, c.high, c.low, c.close), (first, first, first, first));
        assert_eq!(m.get("BTCUSDT").unwrap().mid, Decimal::from(65_001));
    }

    #[test]
    fn forced_prices_must_pass_the_price_filter() {
        let mut m = Market::new(4, Decimal::ONE, 1_700_000_000_000);
        let t = 1_700_000_000_250;
        for bad in [
            Decimal::ZERO,
            Decimal::from(-5),
            Decimal::MAX,
            Decimal::new(1_000_001, 3),
        ] {
            assert!(
                matches!(m.force_price("BTCUSDT", bad, t), Err(PriceRefused::Filter { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            m.force_price("NOPE", Decimal::ONE, t).err(),
            Some(PriceRefused::UnknownSymbol)
        );
        assert!(m.force_price("BTCUSDT", Decimal::from(1000), t).is_ok());
        assert!(
            m.set_quote(
                "BTCUSDT",
                (Decimal::MAX, Decimal::ONE),
                (Decimal::MAX, Decimal::ONE),
                t
            )
            .is_none()
        );
    }

    #[test]
    fn a_symbol_whose_step_panics_is_halted_and_the_others_keep_moving() {
        let mut m = Market::new(6, Decimal::ONE, 1_700_000_000_000);
        // A state no input can produce any more: its maxPrice overflows a decimal.
        m.symbols[0].spec.start_price = Decimal::MAX;
        let before = m.mids();
        for i in 1..=20 {
            m.step(1_700_000_000_000 + i * 250);
        }
        assert!(m.symbols[0].halted);
        assert_eq!(m.symbols[0].mid, before[0]);
        for (i, s) in m.symbols.iter().enumerate().skip(1) {
            assert!(!s.halted);
            assert_ne!(s.mid, before[i], "{} stopped", s.spec.symbol);
        }
    }

    #[test]
    fn checked_floor_to_reports_overflow() {
        assert_eq!(checked_floor_to(Decimal::MAX, Decimal::new(1, 5)), None);
        assert_eq!(
            checked_floor_to(Decimal::new(12345, 3), Decimal::new(1, 1)),
            Some(Decimal::new(123, 1))
        );
    }

    #[test]
    fn sqrt_is_accurate() {
        assert_eq!(sqrt(Decimal::from(4)).round_dp(10), Decimal::from(2));
        assert_eq!(sqrt(Decimal::new(25, 2)).round_dp(10), Decimal::new(5, 1));
    }
}
