//! An independent model of crbot's books, computed only from the exchange's own records
//! (`myTrades`, `allOrders`, `account`, book tickers) and the flows the test made.
//!
//! Owns: positions (quantity, fee-inclusive cost, realized and unrealized P&L, fees), fees per
//! asset valued at fill time, equity marked at mid, and the two ways of measuring P&L against
//! equity: the raw tracker (day start = first sample of the UTC day, high-water mark = largest
//! sample) and the flow-adjusted one (a deposit or withdrawal moves the day start and the
//! high-water mark by its quote value at its time, so it is never P&L). Must not: call into
//! `crbot::portfolio` or read crbot's state; the point is to reach crbot's figures by another
//! road. Plain `Decimal` and `String` throughout, on purpose: none of crbot's newtypes.
//!
//! The accounting conventions (spot, long only), as the product defines them:
//! * a buy adds its quantity and its quote cost; a commission in the quote asset adds to the
//!   cost; one in the base asset means less quantity received for the same cost; one in a
//!   third asset (BNB) adds its quote value at the fill's time to the cost;
//! * a sell removes `min(qty, held)` from the position; the cost leaves pro rata
//!   (`cost × removed / held`, all of it on a full close); realized P&L = proceeds − the
//!   seller's share of a quote or BNB commission − the cost removed; a base commission on a
//!   sell leaves the position first, what exceeds it is external;
//! * fees paid = the quote value of every commission (a base one at the fill price, BNB at
//!   the BNBUSDT mid at fill time).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

pub fn d(v: &Value) -> Decimal {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|e| panic!("decimal {s}: {e}")),
        other => panic!("expected a decimal string, got {other}"),
    }
}

/// One row of `GET /api/v3/myTrades`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub symbol: String,
    pub id: u64,
    pub order_id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub quote_qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: String,
    pub time: i64,
    pub is_buyer: bool,
}

impl Trade {
    pub fn from_json(v: &Value) -> Trade {
        Trade {
            symbol: v["symbol"].as_str().unwrap().to_string(),
            id: v["id"].as_u64().unwrap(),
            order_id: v["orderId"].as_u64().unwrap(),
            price: d(&v["price"]),
            qty: d(&v["qty"]),
            quote_qty: d(&v["quoteQty"]),
            commission: d(&v["commission"]),
            commission_asset: v["commissionAsset"].as_str().unwrap().to_string(),
            time: v["time"].as_i64().unwrap(),
            is_buyer: v["isBuyer"].as_bool().unwrap(),
        }
    }
}

/// One position as the conventions define it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pos {
    pub qty: Decimal,
    pub cost: Decimal,
    pub realized: Decimal,
    /// Quote value of every commission paid on this symbol.
    pub fees: Decimal,
    /// Third-asset (BNB) commission booked on this position, in that asset: what a report
    /// names when crbot could not price it.
    pub third_asset_fee_qty: Decimal,
    /// Third-asset commission booked without a price (left out of cost, P&L and fees).
    pub unpriced_fee_qty: Decimal,
}

impl Pos {
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        self.qty * mark - self.cost
    }
}

/// Base and quote asset of a symbol (all of the sim's symbols are quoted in USDT).
pub fn assets(symbol: &str) -> (&str, &str) {
    let base = symbol
        .strip_suffix("USDT")
        .unwrap_or_else(|| panic!("{symbol} is not quoted in USDT"));
    (base, "USDT")
}

/// Applies one fill. `third_px` is the quote price of a third-asset commission at fill time;
/// without one the commission is booked as unpriced: counted, left out of cost and P&L.
/// Returns the commission booked as crbot's: its amount and quote value (zero when unpriced).
/// A sell beyond the position sells the user's coins too, and their part of the fee is not
/// crbot's: a quote or third-asset fee is split by the quantity, a base fee is crbot's only
/// as far as the position still held it.
pub fn apply(p: &mut Pos, t: &Trade, third_px: Option<Decimal>) -> (Decimal, Decimal) {
    let (base, quote) = assets(&t.symbol);
    let (q, px, c) = (t.qty, t.price, t.commission);
    let gross = q * px;
    enum Fee {
        Quote(Decimal),
        Base(Decimal),
        /// Amount and its quote price.
        Third(Decimal, Decimal),
        Unpriced(Decimal),
    }
    let fee = if c.is_zero() || t.commission_asset == quote {
        Fee::Quote(c)
    } else if t.commission_asset == base {
        Fee::Base(c)
    } else {
        match third_px {
            Some(px) => Fee::Third(c, px),
            None => Fee::Unpriced(c),
        }
    };
    if t.is_buyer {
        match fee {
            Fee::Quote(v) => {
                p.qty += q;
                p.cost = p.cost + gross + v;
                p.fees += v;
                return (v, v);
            }
            Fee::Third(amount, px) => {
                let v = amount * px;
                p.qty += q;
                p.cost = p.cost + gross + v;
                p.fees += v;
                p.third_asset_fee_qty += amount;
                return (amount, v);
            }
            Fee::Unpriced(amount) => {
                p.qty += q;
                p.cost += gross;
                p.third_asset_fee_qty += amount;
                p.unpriced_fee_qty += amount;
                return (amount, Decimal::ZERO);
            }
            Fee::Base(b) => {
                assert!(b < q, "trade {}: base commission {b} ≥ quantity {q}", t.id);
                p.qty += q - b;
                p.cost += gross;
                p.fees += b * px;
                return (b, b * px);
            }
        }
    }
    let held = p.qty;
    let own = q.min(held);
    let share = own / q;
    // The seller's share of a quote or third-asset commission (all of it unless the sell
    // went beyond the position); a third-asset share is priced after it is split.
    let (fee_own, base_fee, third_own) = match fee {
        Fee::Quote(v) => (v * share, Decimal::ZERO, None),
        Fee::Third(amount, px) => {
            p.third_asset_fee_qty += amount * share;
            (amount * share * px, Decimal::ZERO, Some(amount * share))
        }
        Fee::Unpriced(amount) => {
            p.third_asset_fee_qty += amount * share;
            p.unpriced_fee_qty += amount * share;
            (Decimal::ZERO, Decimal::ZERO, Some(amount * share))
        }
        Fee::Base(b) => (Decimal::ZERO, b, None),
    };
    let base_fee_own = base_fee.min(held - own);
    let removed = own + base_fee_own;
    let cost_out = if removed == held {
        p.cost
    } else if held.is_zero() {
        Decimal::ZERO
    } else {
        p.cost * removed / held
    };
    p.realized += own * px - fee_own - cost_out;
    p.qty = held - removed;
    p.cost = if p.qty.is_zero() {
        Decimal::ZERO
    } else {
        p.cost - cost_out
    };
    p.fees = p.fees + fee_own + base_fee_own * px;
    match (third_own, base_fee.is_zero()) {
        (Some(amount), _) => (amount, fee_own),
        (None, false) => (base_fee_own, base_fee_own * px),
        (None, true) => (fee_own, fee_own),
    }
}

/// Fees of one asset: the amount paid and its quote value at fill time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetFees {
    pub amount: Decimal,
    pub quote_value: Decimal,
}

/// Everything the trades say.
#[derive(Debug, Clone, Default)]
pub struct Books {
    pub positions: BTreeMap<String, Pos>,
    pub fees_by_asset: BTreeMap<String, AssetFees>,
    pub fills: usize,
    pub partial_orders: usize,
}

/// Recomputes the books from crbot's own trades (each symbol's trades in id order).
/// `third_px(trade)` prices a third-asset commission (`None`: booked unpriced); fees per asset
/// are valued with the same price, or zero when unpriced.
pub fn books(trades: &[Trade], third_px: impl Fn(&Trade) -> Option<Decimal>) -> Books {
    let mut out = Books::default();
    let mut per_order: BTreeMap<(String, u64), usize> = BTreeMap::new();
    let mut sorted: Vec<&Trade> = trades.iter().collect();
    sorted.sort_by(|a, b| (&a.symbol, a.id).cmp(&(&b.symbol, b.id)));
    for t in sorted {
        let (base, quote) = assets(&t.symbol);
        let third = t.commission_asset != base && t.commission_asset != quote && !t.commission.is_zero();
        let px = if third { third_px(t) } else { None };
        let (amount, value) = apply(out.positions.entry(t.symbol.clone()).or_default(), t, px);
        let f = out.fees_by_asset.entry(t.commission_asset.clone()).or_default();
        f.amount += amount;
        f.quote_value += value;
        out.fills += 1;
        *per_order.entry((t.symbol.clone(), t.order_id)).or_default() += 1;
    }
    out.partial_orders = per_order.values().filter(|n| **n > 1).count();
    out
}

/// Equity in USDT: every balance (free + locked) at the mid of `<ASSET>USDT`, USDT at 1.
/// Panics on an asset without a quote: the test only holds priced assets.
pub fn equity(balances: &BTreeMap<String, Decimal>, mids: &BTreeMap<String, Decimal>) -> Decimal {
    let mut total = Decimal::ZERO;
    for (asset, amount) in balances {
        if amount.is_zero() {
            continue;
        }
        let mark = if asset == "USDT" {
            Decimal::ONE
        } else {
            *mids
                .get(&format!("{asset}USDT"))
                .unwrap_or_else(|| panic!("no quote for {asset}"))
        };
        total += amount * mark;
    }
    total
}

/// Day start, high-water mark and the last sample, in one of the two conventions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// (UTC day number, equity at its start).
    pub day_start: Option<(i64, Decimal)>,
    pub hwm: Option<Decimal>,
    pub last: Option<(i64, Decimal)>,
}

pub const DAY_MS: i64 = 86_400_000;

impl Marks {
    /// One equity sample at `now_ms`.
    pub fn observe(&mut self, now_ms: i64, equity: Decimal) {
        let day = now_ms.div_euclid(DAY_MS);
        if self.day_start.is_none_or(|(d0, _)| day > d0) {
            self.day_start = Some((day, equity));
        }
        if self.hwm.is_none_or(|h| equity > h) {
            self.hwm = Some(equity);
        }
        self.last = Some((now_ms, equity));
    }

    /// A capital flow worth `value` (negative: a withdrawal) at `now_ms`, on an account whose
    /// equity was `before` just before it. Like a fund issuing or redeeming units at the current
    /// price, today's day start and the high-water mark scale by `(before + value) / before`, so
    /// the flow is never P&L or drawdown; with nothing before, the value is added instead.
    pub fn flow(&mut self, now_ms: i64, value: Decimal, before: Decimal) {
        let after = (before + value).max(Decimal::ZERO);
        let restate = |x: Decimal| {
            if before.is_zero() {
                (x + value).max(Decimal::ZERO)
            } else {
                (x * after / before).max(Decimal::ZERO)
            }
        };
        let day = now_ms.div_euclid(DAY_MS);
        if let Some((d0, e)) = &mut self.day_start
            && *d0 == day
        {
            *e = restate(*e);
        }
        if let Some(h) = &mut self.hwm {
            *h = restate(*h);
        }
        if let Some((_, e)) = &mut self.last {
            *e = if before.is_zero() {
                (*e + value).max(Decimal::ZERO)
            } else {
                after
            };
        }
    }

    /// Equity now − day start, when both are of the same UTC day.
    pub fn day_pnl(&self) -> Option<Decimal> {
        let (d0, start) = self.day_start?;
        let (t, e) = self.last?;
        (t.div_euclid(DAY_MS) == d0).then_some(e - start)
    }

    pub fn day_pnl_pct(&self) -> Option<Decimal> {
        let (_, start) = self.day_start?;
        if start <= Decimal::ZERO {
            return None;
        }
        Some(self.day_pnl()? * Decimal::ONE_HUNDRED / start)
    }

    pub fn drawdown_pct(&self) -> Option<Decimal> {
        let h = self.hwm?;
        let (_, e) = self.last?;
        if h <= Decimal::ZERO {
            return None;
        }
        Some((h - e) * Decimal::ONE_HUNDRED / h)
    }
}
