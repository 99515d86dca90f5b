//! Equity in USDT and what is measured against it: the day-start equity, today's P&L, the
//! all-time high-water mark and the drawdown.
//!
//! Owns: marking balances to USDT and the [`EquityTracker`]. Must not: read a clock or fetch a
//! price; the caller passes quotes and `now_ms`.
//!
//! Rules:
//! * Equity = every balance (free + locked) marked at the mid price (`Quote::mid`) of
//!   `<ASSET>USDT`; USDT itself counts at 1. An asset with no quote is listed in
//!   `unpriced` and left out of the total. Zero balances are skipped.
//! * The day start is the **first equity sample of each UTC day** (days begin at 00:00 UTC).
//!   Day P&L = equity now − day start; its percentage is of the day start.
//! * The high-water mark is the largest equity ever observed (restored across restarts);
//!   drawdown % = (hwm − equity) / hwm × 100.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;

use super::PortfolioError;
use crate::domain::{Asset, Balance, Money, Price, Qty, Quote, Symbol};

/// Equity of the account in USDT, with what could and could not be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquityReport {
    pub total: Money,
    /// (asset, quantity free + locked, mark price in USDT, value in USDT).
    pub priced: Vec<(Asset, Qty, Price, Money)>,
    /// Assets with a balance but no `<ASSET>USDT` quote: not in `total`.
    pub unpriced: Vec<Asset>,
}

/// Marks every balance at mid via `<ASSET>USDT` quotes (see the module doc).
pub fn equity_report(balances: &[Balance], quotes: &BTreeMap<Symbol, Quote>) -> EquityReport {
    let usdt = Asset::usdt();
    let mut total = Decimal::ZERO;
    let mut priced = Vec::new();
    let mut unpriced = Vec::new();
    for b in balances {
        let qty = b.total();
        if qty.is_zero() {
            continue;
        }
        let mark = if b.asset == usdt {
            Some(Price::try_new(Decimal::ONE).unwrap_or(Price::ZERO))
        } else {
            Symbol::new(&format!("{}{}", b.asset, usdt))
                .ok()
                .and_then(|s| quotes.get(&s))
                .map(Quote::mid)
        };
        let value = mark.and_then(|m| m.notional(qty)).map(|n| n.value());
        match (mark, value.and_then(|v| total.checked_add(v).map(|t| (v, t)))) {
            (Some(m), Some((v, t))) => {
                total = t;
                priced.push((b.asset.clone(), qty, m, Money::new(v, usdt.clone())));
            }
            _ => unpriced.push(b.asset.clone()),
        }
    }
    EquityReport {
        total: Money::new(total, usdt),
        priced,
        unpriced,
    }
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
    if m.asset != Asset::usdt() {
        return Err(PortfolioError::WrongAsset {
            expected: Asset::usdt(),
            got: m.asset.clone(),
        });
    }
    if m.amount.is_sign_negative() && !m.amount.is_zero() {
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
        if self.hwm.as_ref().is_none_or(|h| equity.amount > h.amount) {
            self.hwm = Some(equity.clone());
            out.new_high = true;
        }
        self.last = Some(EquitySample {
            time_ms: now_ms,
            equity,
        });
        Ok(out)
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
        pct(self.day_pnl()?.amount, ds.equity.amount)
    }

    /// (hwm − equity) / hwm × 100; `None` before any sample or when the hwm is zero.
    pub fn drawdown_pct(&self) -> Option<Decimal> {
        let hwm = self.hwm.as_ref()?;
        let last = self.last.as_ref()?;
        pct(hwm.amount.checked_sub(last.equity.amount)?, hwm.amount)
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
    fn quote(bid: &str, ask: &str) -> Quote {
        Quote {
            bid: bid.parse().expect("ok"),
            ask: ask.parse().expect("ok"),
            time_ms: 0,
        }
    }

    /// 2026-11-28 00:00:00 UTC.
    const DAY: i64 = 1_795_824_000_000;

    #[test]
    fn equity_marks_every_balance_at_mid_and_lists_unpriced_assets() {
        let mut quotes = BTreeMap::new();
        quotes.insert(Symbol::new("BTCUSDT").expect("ok"), quote("59990", "60010"));
        quotes.insert(Symbol::new("ETHUSDT").expect("ok"), quote("2999", "3001"));
        let report = equity_report(
            &[
                bal("USDT", "1000", "250"),
                bal("BTC", "0.1", "0.05"),
                bal("ETH", "0", "2"),
                bal("XYZ", "100", "0"),
                bal("DOGE", "0", "0"),
            ],
            &quotes,
        );
        // 1250 + 0.15 × 60000 + 2 × 3000
        assert_eq!(report.total, usdt("16250"));
        assert_eq!(report.priced.len(), 3);
        assert_eq!(report.priced[1].2, "60000".parse::<Price>().expect("ok"));
        assert_eq!(report.priced[1].3, usdt("9000"));
        assert_eq!(report.unpriced, vec![Asset::new("XYZ").expect("ok")]);
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
}
