//! Equity in USDT and what is measured against it: the day-start equity, today's P&L, the
//! all-time high-water mark and the drawdown, net of capital flows.
//!
//! Owns: marking balances to USDT ([`equity_report`]), the [`EquityTracker`] and the capital-flow
//! arithmetic. Must not: read a clock or fetch a price; the caller passes marks and `now_ms`.
//!
//! Rules:
//! * Equity = every balance (free + locked) marked at the mid price of `<ASSET>USDT`; USDT
//!   itself counts at 1. Zero balances are skipped.
//! * A mark is a price with the time it was seen. One up to [`MAX_MARK_AGE_MS`] old is used
//!   (one older than [`FRESH_MARK_MS`], or remembered rather than quoted, is reported as
//!   *held*, with its age); past that bound
//!   the asset is **unpriced** and the equity is **incomplete**: [`EquityReport::equity`] is
//!   `None`, and an incomplete sum must never be fed to the tracker, the curve or a rule. A
//!   partial sum is not a smaller equity, it is no equity.
//! * An asset with **no market** to USDT is listed in `no_market` and left out; that is not
//!   incompleteness (there is nothing to price it with, now or later).
//! * The day start is the **first equity sample of each UTC day** (days begin at 00:00 UTC).
//!   Day P&L = equity now − day start; its percentage is of the day start.
//! * The high-water mark is the largest equity ever observed (restored across restarts);
//!   drawdown % = (hwm − equity) / hwm × 100.
//! * A **capital flow** (deposit, withdrawal, transfer) is not performance. At its time the day
//!   start (when the flow is of the day-start's UTC day) and the high-water mark are restated
//!   by the flow's USDT value, time-weighted ([`EquityTracker::apply_flow`]): as a fund
//!   administrator unitizes subscriptions and redemptions, both scale by (equity before +
//!   flow) / equity before, so today's P&L % and the drawdown % are unchanged by the flow.
//!   Equity itself shows the flow; today's P&L and the drawdown do not.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;

use super::PortfolioError;
use crate::domain::{Asset, Balance, Fill, Money, MoneyError, Price, Qty, Side, Symbol};

/// A mark older than this is reported as held (a last known price), with its age.
pub const FRESH_MARK_MS: i64 = 5_000;
/// A mark older than this is not used: the asset is unpriced and the equity incomplete. Two
/// minutes covers a rate-limit window (one minute) and a stream reconnect, while a price that
/// old still moves the total by well under a daily-loss limit.
pub const MAX_MARK_AGE_MS: i64 = 120_000;

/// A USDT price and when it was seen (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub price: Price,
    pub time_ms: i64,
    /// A remembered price (from the journal), not a quote this process received: always
    /// reported as held, however recent.
    pub held: bool,
}

/// One balance valued in USDT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedAsset {
    pub asset: Asset,
    /// Free + locked.
    pub qty: Qty,
    pub mark: Price,
    pub value: Money,
    /// Age of the mark when it is a held (last known) price rather than a fresh one.
    pub held_age_ms: Option<i64>,
}

/// Equity of the account in USDT, with what could and could not be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquityReport {
    /// Sum of `priced`. Only an equity when `unpriced` is empty: use [`EquityReport::equity`].
    pub partial_total: Money,
    pub priced: Vec<PricedAsset>,
    /// Assets with a market to USDT but no usable price now (none, or older than the bound),
    /// with the age of the last known price when there is one.
    pub unpriced: Vec<(Asset, Option<i64>)>,
    /// Assets with no market to USDT: listed, left out, not an incompleteness.
    pub no_market: Vec<Asset>,
}

impl EquityReport {
    pub fn is_complete(&self) -> bool {
        self.unpriced.is_empty()
    }

    /// The equity, or `None` when some asset could not be priced.
    pub fn equity(&self) -> Option<&Money> {
        self.is_complete().then_some(&self.partial_total)
    }

    /// Assets priced from a held mark, with its age.
    pub fn held(&self) -> impl Iterator<Item = (&Asset, i64)> {
        self.priced
            .iter()
            .filter_map(|p| p.held_age_ms.map(|a| (&p.asset, a)))
    }
}

/// `<ASSET>USDT`, the market an asset is marked on.
pub fn usdt_market(asset: &Asset) -> Option<Symbol> {
    Symbol::new(&format!("{asset}{}", Asset::usdt())).ok()
}

/// Marks every balance (see the module doc). `marks` holds the newest known USDT price of
/// each asset; `has_market` says whether `<ASSET>USDT` exists (when the exchange's symbols are
/// not known yet, say yes: an asset then counts as unpriced, never silently left out).
pub fn equity_report(
    balances: &[Balance],
    marks: &BTreeMap<Asset, Mark>,
    has_market: impl Fn(&Symbol) -> bool,
    now_ms: i64,
) -> EquityReport {
    let usdt = Asset::usdt();
    let mut total = Decimal::ZERO;
    let mut priced = Vec::new();
    let mut unpriced = Vec::new();
    let mut no_market = Vec::new();
    for b in balances {
        let qty = b.total();
        if qty.is_zero() {
            continue;
        }
        let mark = if b.asset == usdt {
            Price::try_new(Decimal::ONE).ok().map(|price| Mark {
                price,
                time_ms: now_ms,
                held: false,
            })
        } else {
            match usdt_market(&b.asset) {
                Some(s) if has_market(&s) => marks.get(&b.asset).copied(),
                _ => {
                    no_market.push(b.asset.clone());
                    continue;
                }
            }
        };
        let age = mark.map(|m| now_ms.saturating_sub(m.time_ms).max(0));
        let usable = mark.filter(|_| age.is_some_and(|a| a <= MAX_MARK_AGE_MS));
        let value = usable.and_then(|m| m.price.notional(qty)).map(|n| n.value());
        match (usable, value.and_then(|v| total.checked_add(v).map(|t| (v, t)))) {
            (Some(m), Some((v, t))) => {
                total = t;
                priced.push(PricedAsset {
                    asset: b.asset.clone(),
                    qty,
                    mark: m.price,
                    value: Money::new(v, usdt.clone()),
                    held_age_ms: age.filter(|a| m.held || *a > FRESH_MARK_MS),
                });
            }
            _ => unpriced.push((b.asset.clone(), age)),
        }
    }
    EquityReport {
        partial_total: Money::new(total, usdt),
        priced,
        unpriced,
        no_market,
    }
}

/// Where a capital flow was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSource {
    /// A `balanceUpdate` event of the user-data stream.
    Stream,
    /// A balance change found at start-up that the journal's fills do not explain.
    Reconcile,
}

impl FlowSource {
    pub fn as_code(self) -> &'static str {
        match self {
            FlowSource::Stream => "STREAM",
            FlowSource::Reconcile => "RECONCILE",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "STREAM" => Some(FlowSource::Stream),
            "RECONCILE" => Some(FlowSource::Reconcile),
            _ => None,
        }
    }
}

/// The balance changes that neither fills nor already-recorded flows explain: `before` (the
/// last known totals) plus each fill's effect plus `flows`, compared with `after` (the
/// exchange's totals now). `assets_of` gives a symbol's (base, quote). A fill of an unknown
/// symbol makes the comparison meaningless for its assets: they are skipped, never guessed.
pub fn unexplained_changes(
    before: &BTreeMap<Asset, Decimal>,
    fills: &[Fill],
    flows: &[(Asset, Decimal)],
    after: &BTreeMap<Asset, Decimal>,
    assets_of: impl Fn(&Symbol) -> Option<(Asset, Asset)>,
) -> Vec<(Asset, Decimal)> {
    let mut expected = before.clone();
    let mut skip = std::collections::BTreeSet::new();
    let add = |e: &mut BTreeMap<Asset, Decimal>, a: &Asset, d: Decimal| {
        let v = e.entry(a.clone()).or_insert(Decimal::ZERO);
        *v = v.checked_add(d).unwrap_or(*v);
    };
    for f in fills {
        let Some((base, quote)) = assets_of(&f.symbol) else {
            continue;
        };
        let Some(quote_qty) = f.price.notional(f.qty).map(|n| n.value()) else {
            skip.insert(base);
            skip.insert(quote);
            continue;
        };
        let (b, q) = match f.side {
            Side::Buy => (f.qty.value(), -quote_qty),
            Side::Sell => (-f.qty.value(), quote_qty),
        };
        add(&mut expected, &base, b);
        add(&mut expected, &quote, q);
        add(&mut expected, &f.commission_asset, -f.commission.value());
    }
    for (a, d) in flows {
        add(&mut expected, a, *d);
    }
    let assets: std::collections::BTreeSet<&Asset> = expected.keys().chain(after.keys()).collect();
    assets
        .into_iter()
        .filter(|a| !skip.contains(*a))
        .filter_map(|a| {
            let now = after.get(a).copied().unwrap_or(Decimal::ZERO);
            let was = expected.get(a).copied().unwrap_or(Decimal::ZERO);
            let d = now.checked_sub(was)?;
            (!d.is_zero()).then(|| (a.clone(), d))
        })
        .collect()
}

/// The equity at the start of a UTC day (persisted by the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStart {
    pub date: NaiveDate,
    pub equity: Money,
}

/// One equity sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquitySample {
    pub time_ms: i64,
    pub equity: Money,
}

/// What one sample changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// This sample is the first of a new UTC day and became its day start.
    pub new_day: bool,
    /// This sample raised the high-water mark.
    pub new_high: bool,
}

/// Tracks day-start equity, the high-water mark and the last sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EquityTracker {
    day_start: Option<DayStart>,
    hwm: Option<Money>,
    last: Option<EquitySample>,
}

/// The UTC calendar date of a time in ms since the epoch.
pub fn utc_date(time_ms: i64) -> Result<NaiveDate, PortfolioError> {
    DateTime::from_timestamp_millis(time_ms)
        .map(|t| t.date_naive())
        .ok_or(PortfolioError::BadTime(time_ms))
}

fn check_usdt(m: &Money) -> Result<(), PortfolioError> {
    if *m.asset() != Asset::usdt() {
        return Err(PortfolioError::WrongAsset {
            expected: Asset::usdt(),
            got: m.asset().clone(),
        });
    }
    if m.is_negative() {
        return Err(PortfolioError::NegativeEquity(m.to_string()));
    }
    Ok(())
}

impl EquityTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores persisted values. A day start of an earlier date is kept until the first
    /// sample of a later day replaces it.
    pub fn restore(day_start: Option<DayStart>, hwm: Option<Money>) -> Result<Self, PortfolioError> {
        if let Some(ds) = &day_start {
            check_usdt(&ds.equity)?;
        }
        if let Some(h) = &hwm {
            check_usdt(h)?;
        }
        Ok(EquityTracker {
            day_start,
            hwm,
            last: None,
        })
    }

    /// Feeds one sample. Refused (and nothing changes) when it is not USDT, negative, or older
    /// than the previous sample.
    pub fn observe(&mut self, now_ms: i64, equity: Money) -> Result<Observed, PortfolioError> {
        check_usdt(&equity)?;
        if let Some(last) = &self.last
            && now_ms < last.time_ms
        {
            return Err(PortfolioError::OutOfOrder {
                got: now_ms,
                last: last.time_ms,
            });
        }
        let date = utc_date(now_ms)?;
        let mut out = Observed::default();
        let is_new_day = self.day_start.as_ref().is_none_or(|ds| date > ds.date);
        if is_new_day {
            self.day_start = Some(DayStart {
                date,
                equity: equity.clone(),
            });
            out.new_day = true;
        }
        // Both were checked to be USDT, so they always compare.
        if self
            .hwm
            .as_ref()
            .is_none_or(|h| equity.checked_cmp(h) == Ok(Ordering::Greater))
        {
            self.hwm = Some(equity.clone());
            out.new_high = true;
        }
        self.last = Some(EquitySample {
            time_ms: now_ms,
            equity,
        });
        Ok(out)
    }

    /// Restates the day start, the high-water mark and the last sample for a capital flow of
    /// `value` USDT (negative: a withdrawal) at `time_ms`, when the equity just before it was
    /// `before`. Time-weighted, as a fund administrator unitizes a fund: the flow buys (or
    /// redeems) units at the current price, so the day start and the high-water mark scale by
    /// `(before + value) / before` and today's P&L % and the drawdown % are exactly what they
    /// were, whatever the flow's size. The day start moves only when the flow is of its UTC day
    /// (a flow before today's first sample is already inside it). The caller's balances must
    /// already carry the flow: the last sample becomes `before + value`. With no equity
    /// before (an empty account, or one that could not be priced) the flow's value is added
    /// instead: the absolute P&L is still performance only.
    pub fn apply_flow(
        &mut self,
        time_ms: i64,
        value: Decimal,
        before: Option<&Money>,
    ) -> Result<(), PortfolioError> {
        if let Some(b) = before {
            check_usdt(b)?;
        }
        let date = utc_date(time_ms)?;
        let overflow = || PortfolioError::Overflow("a capital flow".to_string());
        let flow_err = |e: MoneyError| match e {
            MoneyError::Overflow => overflow(),
            e => PortfolioError::Money("a capital flow", e),
        };
        let flow = Money::new(value, Asset::usdt());
        let before = before.map_or(Decimal::ZERO, |b| b.amount());
        let after = before.checked_add(value).ok_or_else(overflow)?.max(Decimal::ZERO);
        let restate = |m: &mut Money| -> Result<(), PortfolioError> {
            let v = if before.is_zero() {
                m.checked_add(&flow)
            } else {
                m.checked_mul_ratio(after, before)
            };
            *m = v.map_err(flow_err)?.at_least_zero();
            Ok(())
        };
        let mut next = self.clone();
        if let Some(ds) = next.day_start.as_mut()
            && ds.date == date
        {
            restate(&mut ds.equity)?;
        }
        if let Some(h) = next.hwm.as_mut() {
            restate(h)?;
        }
        if let Some(l) = next.last.as_mut() {
            l.equity = if before.is_zero() {
                l.equity.checked_add(&flow).map_err(flow_err)?.at_least_zero()
            } else {
                Money::new(after, Asset::usdt())
            };
        }
        *self = next;
        Ok(())
    }

    pub fn day_start(&self) -> Option<&DayStart> {
        self.day_start.as_ref()
    }

    pub fn high_water_mark(&self) -> Option<&Money> {
        self.hwm.as_ref()
    }

    pub fn last(&self) -> Option<&EquitySample> {
        self.last.as_ref()
    }

    /// Equity now − day start; `None` before the first sample of the day.
    pub fn day_pnl(&self) -> Option<Money> {
        let (ds, last) = self.current_day()?;
        last.equity.checked_sub(&ds.equity).ok()
    }

    /// Day P&L as a percentage of the day start; `None` when unknown or the day start is zero.
    pub fn day_pnl_pct(&self) -> Option<Decimal> {
        let (ds, _) = self.current_day()?;
        self.day_pnl()?.checked_percent_of(&ds.equity).ok()
    }

    /// (hwm − equity) / hwm × 100; `None` before any sample or when the hwm is zero.
    pub fn drawdown_pct(&self) -> Option<Decimal> {
        let hwm = self.hwm.as_ref()?;
        let last = self.last.as_ref()?;
        hwm.checked_sub(&last.equity).ok()?.checked_percent_of(hwm).ok()
    }

    /// The day start and last sample when they are of the same UTC day.
    fn current_day(&self) -> Option<(&DayStart, &EquitySample)> {
        let ds = self.day_start.as_ref()?;
        let last = self.last.as_ref()?;
        (utc_date(last.time_ms).ok()? == ds.date).then_some((ds, last))
    }
}

/// `part / whole × 100`, `None` for a zero (or negative) whole or on overflow.
pub fn pct(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole <= Decimal::ZERO {
        return None;
    }
    part.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }
    fn usdt(s: &str) -> Money {
        Money::new(d(s), Asset::usdt())
    }
    fn bal(a: &str, free: &str, locked: &str) -> Balance {
        Balance {
            asset: Asset::new(a).expect("ok"),
            free: free.parse().expect("ok"),
            locked: locked.parse().expect("ok"),
        }
    }

    /// 2026-11-28 00:00:00 UTC.
    const DAY: i64 = 1_795_824_000_000;

    /// Equal to within 1e-12: a flow's restatement divides, and a decimal division rounds
    /// at the 28th digit.
    fn close(got: Option<Decimal>, want: Decimal) -> bool {
        got.is_some_and(|g| (g - want).abs() < Decimal::new(1, 12))
    }
    fn mark(price: &str, time_ms: i64) -> Mark {
        Mark {
            price: price.parse().expect("ok"),
            time_ms,
            held: false,
        }
    }
    fn asset(a: &str) -> Asset {
        Asset::new(a).expect("ok")
    }
    /// Every `<ASSET>USDT` exists except XYZUSDT.
    fn listed(s: &Symbol) -> bool {
        s.as_str() != "XYZUSDT"
    }

    #[test]
    fn equity_marks_every_balance_and_leaves_out_assets_with_no_market() {
        let mut marks = BTreeMap::new();
        marks.insert(asset("BTC"), mark("60000", DAY));
        marks.insert(asset("ETH"), mark("3000", DAY));
        let report = equity_report(
            &[
                bal("USDT", "1000", "250"),
                bal("BTC", "0.1", "0.05"),
                bal("ETH", "0", "2"),
                bal("XYZ", "100", "0"),
                bal("DOGE", "0", "0"),
            ],
            &marks,
            listed,
            DAY + 1000,
        );
        // 1250 + 0.15 × 60000 + 2 × 3000; XYZ has no market at all: listed, not incomplete.
        assert_eq!(report.equity(), Some(&usdt("16250")));
        assert_eq!(report.priced.len(), 3);
        assert_eq!(report.priced[1].value, usdt("9000"));
        assert_eq!(report.no_market, vec![asset("XYZ")]);
        assert!(report.is_complete());
        assert_eq!(report.held().count(), 0);
    }

    #[test]
    fn an_asset_with_a_market_but_no_price_makes_the_equity_unknown_not_smaller() {
        let mut marks = BTreeMap::new();
        marks.insert(asset("BTC"), mark("60000", DAY));
        let report = equity_report(
            &[
                bal("USDT", "1000", "0"),
                bal("BTC", "0.1", "0"),
                bal("ETH", "2", "0"),
            ],
            &marks,
            listed,
            DAY,
        );
        assert_eq!(report.equity(), None);
        assert!(!report.is_complete());
        assert_eq!(report.unpriced, vec![(asset("ETH"), None)]);
        assert!(report.no_market.is_empty());
        // The partial sum is there for display only, and it says so by its name.
        assert_eq!(report.partial_total, usdt("7000"));
    }

    #[test]
    fn a_last_known_price_is_used_within_the_bound_with_its_age_and_not_past_it() {
        let mut marks = BTreeMap::new();
        marks.insert(asset("ETH"), mark("3000", DAY));
        let balances = [bal("USDT", "100", "0"), bal("ETH", "1", "0")];
        let fresh = equity_report(&balances, &marks, listed, DAY + FRESH_MARK_MS);
        assert_eq!(fresh.held().count(), 0);
        let held = equity_report(&balances, &marks, listed, DAY + 90_000);
        assert_eq!(held.equity(), Some(&usdt("3100")));
        assert_eq!(held.held().collect::<Vec<_>>(), vec![(&asset("ETH"), 90_000)]);
        let bound = equity_report(&balances, &marks, listed, DAY + MAX_MARK_AGE_MS);
        assert!(bound.is_complete());
        let past = equity_report(&balances, &marks, listed, DAY + MAX_MARK_AGE_MS + 1);
        assert_eq!(past.equity(), None);
        assert_eq!(past.unpriced, vec![(asset("ETH"), Some(MAX_MARK_AGE_MS + 1))]);
    }

    #[test]
    fn a_deposit_is_not_profit_and_does_not_reset_the_drawdown() {
        let mut t = EquityTracker::new();
        t.observe(DAY, usdt("10000")).expect("ok");
        t.observe(DAY + 1, usdt("9000")).expect("ok");
        assert_eq!(t.drawdown_pct(), Some(d("10")));
        assert_eq!(t.day_pnl_pct(), Some(d("-10")));
        // 250 deposited: the balances now give 9250. Neither the loss nor the drawdown moves.
        t.apply_flow(DAY + 2, d("250"), Some(&usdt("9000"))).expect("ok");
        t.observe(DAY + 3, usdt("9250")).expect("ok");
        assert!(close(t.day_pnl_pct(), d("-10")), "{:?}", t.day_pnl_pct());
        assert!(close(t.drawdown_pct(), d("10")), "{:?}", t.drawdown_pct());
        assert!(t.day_pnl().expect("known").amount() < Decimal::ZERO);
    }

    #[test]
    fn a_flow_before_todays_first_sample_is_already_in_the_day_start() {
        let mut t = EquityTracker::new();
        t.observe(DAY - 10, usdt("1000")).expect("ok");
        t.apply_flow(DAY + 5, d("500"), Some(&usdt("1000"))).expect("ok");
        // Yesterday's day start is not restated; today's first sample carries the deposit.
        assert_eq!(t.day_start().expect("set").equity, usdt("1000"));
        assert!(t.observe(DAY + 10, usdt("1500")).expect("ok").new_day);
        assert_eq!(t.day_pnl(), Some(usdt("0")));
        assert_eq!(t.drawdown_pct(), Some(Decimal::ZERO));
    }

    #[test]
    fn changes_not_explained_by_fills_or_recorded_flows_are_flows() {
        let btcusdt = Symbol::new("BTCUSDT").expect("ok");
        let fill = Fill {
            symbol: btcusdt.clone(),
            trade_id: 1,
            order_id: 1,
            client_order_id: None,
            side: Side::Buy,
            price: "60000".parse().expect("ok"),
            qty: "0.1".parse().expect("ok"),
            commission: "0.0001".parse().expect("ok"),
            commission_asset: asset("BTC"),
            time_ms: DAY,
            is_maker: false,
        };
        let before: BTreeMap<Asset, Decimal> = [(asset("USDT"), d("10000"))].into_iter().collect();
        // The buy (−6000 USDT, +0.0999 BTC), a recorded 100 USDT deposit, and 250 USDT more
        // that nothing explains.
        let after: BTreeMap<Asset, Decimal> = [(asset("USDT"), d("4350")), (asset("BTC"), d("0.0999"))]
            .into_iter()
            .collect();
        let assets_of = |s: &Symbol| (*s == btcusdt).then(|| (asset("BTC"), asset("USDT")));
        let got = unexplained_changes(&before, &[fill], &[(asset("USDT"), d("100"))], &after, assets_of);
        assert_eq!(got, vec![(asset("USDT"), d("250"))]);
    }

    #[test]
    fn first_sample_of_each_utc_day_is_the_day_start() {
        assert_eq!(utc_date(DAY).expect("ok").to_string(), "2026-11-28");
        let mut t = EquityTracker::new();
        assert!(t.observe(DAY - 1000, usdt("900")).expect("ok").new_day);
        assert!(t.observe(DAY - 1, usdt("950")).is_ok());
        assert_eq!(t.day_start().expect("set").equity, usdt("900"));
        assert_eq!(t.day_pnl(), Some(usdt("50")));
        // 00:00:00.000 UTC belongs to the new day.
        assert!(t.observe(DAY, usdt("1000")).expect("ok").new_day);
        assert!(!t.observe(DAY + 60_000, usdt("970")).expect("ok").new_day);
        assert_eq!(t.day_start().expect("set").equity, usdt("1000"));
        assert_eq!(t.day_pnl(), Some(usdt("-30")));
        assert_eq!(t.day_pnl_pct(), Some(d("-3")));
    }

    #[test]
    fn high_water_mark_and_drawdown_follow_the_peak() {
        let mut t = EquityTracker::new();
        t.observe(DAY, usdt("1000")).expect("ok");
        assert!(t.observe(DAY + 1, usdt("1200")).expect("ok").new_high);
        assert!(!t.observe(DAY + 2, usdt("1080")).expect("ok").new_high);
        assert_eq!(t.high_water_mark(), Some(&usdt("1200")));
        assert_eq!(t.drawdown_pct(), Some(d("10")));
        t.observe(DAY + 3, usdt("1200")).expect("ok");
        assert_eq!(t.drawdown_pct(), Some(Decimal::ZERO));
    }

    #[test]
    fn restored_values_carry_over_and_a_stale_day_start_is_replaced() {
        let ds = DayStart {
            date: utc_date(DAY - 1).expect("ok"),
            equity: usdt("500"),
        };
        let mut t = EquityTracker::restore(Some(ds), Some(usdt("2000"))).expect("ok");
        // The restored day was yesterday: no day P&L until a sample of today arrives.
        assert_eq!(t.day_pnl(), None);
        assert!(t.observe(DAY + 5, usdt("1500")).expect("ok").new_day);
        assert_eq!(t.drawdown_pct(), Some(d("25")));
        // Same-day restore keeps the persisted day start.
        let ds = DayStart {
            date: utc_date(DAY).expect("ok"),
            equity: usdt("1600"),
        };
        let mut t = EquityTracker::restore(Some(ds), Some(usdt("2000"))).expect("ok");
        assert!(!t.observe(DAY + 10, usdt("1500")).expect("ok").new_day);
        assert_eq!(t.day_pnl(), Some(usdt("-100")));
        assert_eq!(t.day_pnl_pct(), Some(d("-6.25")));
    }

    #[test]
    fn refuses_other_assets_negative_equity_and_samples_out_of_order() {
        let mut t = EquityTracker::new();
        let btc = Money::new(d("1"), Asset::new("BTC").expect("ok"));
        assert!(matches!(
            t.observe(DAY, btc),
            Err(PortfolioError::WrongAsset { .. })
        ));
        assert!(matches!(
            t.observe(DAY, usdt("-1")),
            Err(PortfolioError::NegativeEquity(_))
        ));
        t.observe(DAY, usdt("10")).expect("ok");
        assert!(matches!(
            t.observe(DAY - 1, usdt("10")),
            Err(PortfolioError::OutOfOrder { .. })
        ));
        assert_eq!(t.last().expect("set").time_ms, DAY);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn cents(c: i64) -> Decimal {
            Decimal::new(c, 2)
        }

        proptest! {
            /// A deposit then a withdrawal of the same value leaves today's P&L, the day start,
            /// the high-water mark and the drawdown exactly where they were.
            #[test]
            fn a_deposit_then_an_equal_withdrawal_leaves_pnl_unchanged(
                start in 1_000i64..10_000_000,
                now in 1_000i64..10_000_000,
                flow in 1i64..5_000_000,
            ) {
                let mut t = EquityTracker::new();
                t.observe(DAY, Money::new(cents(start), Asset::usdt())).expect("ok");
                t.observe(DAY + 1, Money::new(cents(now), Asset::usdt())).expect("ok");
                let amount = |m: Option<&Money>| m.map(|m| m.amount());
                let (pnl, pnl_pct, dd) = (t.day_pnl(), t.day_pnl_pct(), t.drawdown_pct());
                let (ds, hwm) = (amount(t.day_start().map(|d| &d.equity)), amount(t.high_water_mark()));
                let before = Money::new(cents(now), Asset::usdt());
                t.apply_flow(DAY + 2, cents(flow), Some(&before)).expect("ok");
                t.observe(DAY + 3, Money::new(cents(now + flow), Asset::usdt())).expect("ok");
                prop_assert!(close(t.day_pnl_pct(), pnl_pct.expect("known")));
                let before = Money::new(cents(now + flow), Asset::usdt());
                t.apply_flow(DAY + 4, -cents(flow), Some(&before)).expect("ok");
                t.observe(DAY + 5, Money::new(cents(now), Asset::usdt())).expect("ok");
                prop_assert!(close(t.day_pnl().map(|m| m.amount()), pnl.expect("known").amount()));
                prop_assert!(close(amount(t.day_start().map(|d| &d.equity)), ds.expect("known")));
                prop_assert!(close(amount(t.high_water_mark()), hwm.expect("known")));
                prop_assert!(close(t.drawdown_pct(), dd.expect("known")));
            }

            /// However large, a deposit or a withdrawal (at most the equity) never moves
            /// today's P&L or the drawdown, so it can never trip rule 2 or rule 3 by itself.
            #[test]
            fn a_flow_never_trips_the_daily_loss_or_drawdown_rule(
                start in 1_000i64..10_000_000,
                now in 1_000i64..10_000_000,
                flow in -10_000_000i64..10_000_000,
            ) {
                // A withdrawal can take at most the whole equity.
                let flow = flow.max(-now);
                let limits = crate::risk::Limits::default();
                let mut t = EquityTracker::new();
                t.observe(DAY, Money::new(cents(start), Asset::usdt())).expect("ok");
                t.observe(DAY + 1, Money::new(cents(now), Asset::usdt())).expect("ok");
                let before = crate::risk::evaluate_automatic(
                    &limits, &crate::risk::TradingState::Active, t.day_pnl_pct(), t.drawdown_pct(), DAY + 1);
                let (pnl_pct, dd) = (t.day_pnl_pct(), t.drawdown_pct());
                t.apply_flow(DAY + 2, cents(flow), Some(&Money::new(cents(now), Asset::usdt()))).expect("ok");
                t.observe(DAY + 3, Money::new(cents(now + flow), Asset::usdt())).expect("ok");
                if now + flow > 0 {
                    prop_assert!(close(t.day_pnl_pct(), pnl_pct.expect("known")));
                    prop_assert!(close(t.drawdown_pct(), dd.expect("known")));
                }
                let after = crate::risk::evaluate_automatic(
                    &limits, &crate::risk::TradingState::Active, t.day_pnl_pct(), t.drawdown_pct(), DAY + 3);
                // Away from the exact limit (where a rounding in the 28th digit could fall
                // either side), the verdict is the same before and after the flow.
                let near = |v: Option<Decimal>, limit: Decimal| {
                    v.is_some_and(|v| (v.abs() - limit).abs() < Decimal::new(1, 9))
                };
                if now + flow > 0
                    && !near(pnl_pct, limits.max_daily_loss_pct)
                    && !near(dd, limits.max_drawdown_pct)
                {
                    prop_assert_eq!(before.map(|t| t.trigger), after.map(|t| t.trigger));
                }
            }
        }
    }
}
