//! Exact decimal value types for prices, quantities and amounts of money.
//!
//! Owns: `Price`, `Qty`, `Notional`, `Money` and the strict parsing/printing of Binance's
//! decimal strings. Must not: use floating point anywhere, or allow a negative price or
//! quantity to exist.
//!
//! Arithmetic table (everything is checked; overflow gives `None`, never a panic):
//!
//! | left     | op | right    | result      | note                                        |
//! |----------|----|----------|-------------|---------------------------------------------|
//! | Price    | *  | Qty      | Notional    | `Price::notional(qty)`                      |
//! | Notional | /  | Price    | Qty         | `Notional::qty_at(price)`, exact (not rounded) |
//! | Qty      | ±  | Qty      | Qty         | `checked_add` / `checked_sub` (never < 0)   |
//! | Money    | ±  | Money    | Money       | only for the same asset, else `AssetMismatch` |
//! | Money    | ×÷ | Decimal  | Money       | `checked_mul_ratio` / `checked_percent`     |
//! | Money    | ÷  | Money    | Decimal (%) | `checked_percent_of`, same asset, non-zero  |
//!
//! `Money`'s fields are private so that no caller can add a BTC amount to a USDT one by
//! reaching past the asset: mixing assets is an `Err`, never a silent sum or a panic.
//!
//! Decimal strings: parsed with `FromStr` (digits, at most one `.`, an optional leading `-`
//! only for signed types; no exponent, no `+`, no spaces); printed with `Display` as the
//! shortest plain string (`"0.1"`, never `"1e-1"` or `"0.10000000"`).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Asset;

/// Why a decimal string or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("`{0}` is not a plain decimal number")]
    Malformed(String),
    #[error("{what} must not be negative (got {value})")]
    Negative { what: &'static str, value: String },
    #[error("{what} must be greater than zero")]
    NotPositive { what: &'static str },
    #[error("{0} is out of range")]
    OutOfRange(String),
}

/// Parses a plain decimal string strictly. `signed` allows one leading `-`.
pub fn parse_decimal(text: &str, signed: bool) -> Result<Decimal, DecimalError> {
    let malformed = || DecimalError::Malformed(text.to_string());
    let digits = match text.strip_prefix('-') {
        Some(rest) if signed => rest,
        Some(_) => return Err(malformed()),
        None => text,
    };
    let digit_at_ends =
        digits.starts_with(|c: char| c.is_ascii_digit()) && digits.ends_with(|c: char| c.is_ascii_digit());
    if !digit_at_ends {
        return Err(malformed());
    }
    let mut dots = 0;
    for c in digits.chars() {
        match c {
            '0'..='9' => {}
            '.' => dots += 1,
            _ => return Err(malformed()),
        }
    }
    if dots > 1 {
        return Err(malformed());
    }
    Decimal::from_str_exact(text).map_err(|_| DecimalError::OutOfRange(text.to_string()))
}

/// The shortest plain representation of a decimal: no exponent, no trailing zeros.
pub fn plain(value: Decimal) -> String {
    let n = value.normalize();
    if n.is_zero() {
        "0".to_string()
    } else {
        n.to_string()
    }
}

/// **The** rounding rule for showing a number, used by every screen, command, message and log
/// line: round to `dp` decimals with halves away from zero (`325.985` → `325.99`,
/// `-0.125` → `-0.13`), then print exactly `dp` decimals (`160326` → `160326.00`); a value that
/// rounds to zero prints without a sign. It returns text on purpose: a displayed figure can
/// never flow back into a computation, which always works on the exact decimal.
pub fn display_fixed(value: Decimal, dp: u32) -> String {
    let rounded = value.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let rounded = if rounded.is_zero() { Decimal::ZERO } else { rounded };
    format!("{:.*}", dp as usize, rounded)
}

/// [`display_fixed`]'s rounding without the trailing zeros (`95210.00` → `95210`), for the few
/// table columns too narrow for fixed decimals (the positions panel's entry price).
pub fn display_trimmed(value: Decimal, dp: u32) -> String {
    plain(value.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero))
}

/// A price shown at its symbol's tick size (`tick` 0.01 → two decimals), by [`display_fixed`];
/// with no tick known, the exact price.
pub fn display_price(price: Decimal, tick: Option<Decimal>) -> String {
    match tick.filter(|t| !t.is_zero()) {
        Some(t) => display_fixed(price, decimals_of(t)),
        None => plain(price),
    }
}

/// Number of decimal places in the normalised form of a step or tick (`0.00100000` → 3).
pub fn decimals_of(step: Decimal) -> u32 {
    step.normalize().scale()
}

/// Rounds `value` down to a multiple of `step` (a zero step leaves it unchanged).
pub fn floor_to(value: Decimal, step: Decimal) -> Option<Decimal> {
    if step.is_zero() {
        return Some(value);
    }
    value.checked_div(step)?.floor().checked_mul(step)
}

/// Rounds `value` up to a multiple of `step` (a zero step leaves it unchanged).
pub fn ceil_to(value: Decimal, step: Decimal) -> Option<Decimal> {
    if step.is_zero() {
        return Some(value);
    }
    value.checked_div(step)?.ceil().checked_mul(step)
}

/// Rounds `value` to the nearest multiple of `step`, halves away from zero.
pub fn round_to(value: Decimal, step: Decimal) -> Option<Decimal> {
    if step.is_zero() {
        return Some(value);
    }
    value.checked_div(step)?.round().checked_mul(step)
}

/// True when `value` is an exact multiple of `step` (a zero step accepts anything).
pub fn is_multiple_of(value: Decimal, step: Decimal) -> bool {
    step.is_zero() || value.checked_rem(step).is_some_and(|r| r.is_zero())
}

macro_rules! unsigned_decimal {
    ($name:ident, $what:literal) => {
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(Decimal);

        impl $name {
            pub const ZERO: $name = $name(Decimal::ZERO);

            /// Accepts any value that is not negative.
            pub fn try_new(value: Decimal) -> Result<Self, DecimalError> {
                if value.is_sign_negative() && !value.is_zero() {
                    return Err(DecimalError::Negative {
                        what: $what,
                        value: plain(value),
                    });
                }
                Ok(Self(value.normalize()))
            }

            /// Accepts only values greater than zero.
            pub fn try_positive(value: Decimal) -> Result<Self, DecimalError> {
                let v = Self::try_new(value)?;
                if v.0.is_zero() {
                    return Err(DecimalError::NotPositive { what: $what });
                }
                Ok(v)
            }

            pub fn value(self) -> Decimal {
                self.0
            }

            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }

            pub fn checked_add(self, other: Self) -> Option<Self> {
                self.0.checked_add(other.0).map(|v| Self(v.normalize()))
            }

            /// `None` on underflow below zero as well as on overflow.
            pub fn checked_sub(self, other: Self) -> Option<Self> {
                let v = self.0.checked_sub(other.0)?;
                if v.is_sign_negative() && !v.is_zero() {
                    None
                } else {
                    Some(Self(v.normalize()))
                }
            }

            /// Saturating subtraction at zero.
            pub fn saturating_sub(self, other: Self) -> Self {
                self.checked_sub(other).unwrap_or(Self::ZERO)
            }

            /// Multiplies by a non-negative factor (a fraction such as 0.25 for 25%).
            pub fn checked_scale(self, factor: Decimal) -> Option<Self> {
                let v = self.0.checked_mul(factor)?;
                Self::try_new(v).ok()
            }

            pub fn min(self, other: Self) -> Self {
                if self <= other { self } else { other }
            }

            pub fn floor_to(self, step: Decimal) -> Option<Self> {
                floor_to(self.0, step).and_then(|v| Self::try_new(v).ok())
            }

            pub fn ceil_to(self, step: Decimal) -> Option<Self> {
                ceil_to(self.0, step).and_then(|v| Self::try_new(v).ok())
            }

            pub fn round_to(self, step: Decimal) -> Option<Self> {
                round_to(self.0, step).and_then(|v| Self::try_new(v).ok())
            }

            pub fn is_multiple_of(self, step: Decimal) -> bool {
                is_multiple_of(self.0, step)
            }

            /// Fixed number of decimals for display ([`display_fixed`]'s rule).
            pub fn display_dp(self, dp: u32) -> String {
                display_fixed(self.0, dp)
            }
        }

        impl FromStr for $name {
            type Err = DecimalError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::try_new(parse_decimal(s, false)?)
            }
        }

        impl TryFrom<Decimal> for $name {
            type Error = DecimalError;
            fn try_from(value: Decimal) -> Result<Self, Self::Error> {
                Self::try_new(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&plain(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), plain(self.0))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&plain(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

unsigned_decimal!(Price, "price");
unsigned_decimal!(Qty, "quantity");
unsigned_decimal!(Notional, "notional");

impl Price {
    /// `price × qty`, in the quote asset of the symbol.
    pub fn notional(self, qty: Qty) -> Option<Notional> {
        self.0.checked_mul(qty.0).map(|v| Notional(v.normalize()))
    }
}

impl Notional {
    /// How much base quantity this notional buys at `price` (exact, not rounded to a step).
    pub fn qty_at(self, price: Price) -> Option<Qty> {
        if price.is_zero() {
            return None;
        }
        self.0.checked_div(price.0).map(|v| Qty(v.normalize()))
    }

    pub fn in_asset(self, asset: Asset) -> Money {
        Money::new(self.0, asset)
    }
}

/// Why two amounts of money could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {left} with {right}")]
    AssetMismatch { left: Asset, right: Asset },
    #[error("amount overflow")]
    Overflow,
    #[error("division of an amount by zero")]
    ZeroDivisor,
}

/// A signed amount of one asset (P&L, equity, balances deltas).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    asset: Asset,
}

impl Money {
    pub fn new(amount: Decimal, asset: Asset) -> Self {
        Self {
            amount: amount.normalize(),
            asset,
        }
    }

    pub fn zero(asset: Asset) -> Self {
        Self {
            amount: Decimal::ZERO,
            asset,
        }
    }

    /// The signed amount. Reading it to compute bypasses the asset check: compute with the
    /// checked operations below and read the amount only to show or store it.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn asset(&self) -> &Asset {
        &self.asset
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// Strictly below zero (a negative zero is zero).
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// The same amount with negatives raised to zero (equity cannot go below nothing).
    pub fn at_least_zero(&self) -> Money {
        Money::new(self.amount.max(Decimal::ZERO), self.asset.clone())
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_asset(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.asset.clone()))
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_asset(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.asset.clone()))
    }

    /// `self × numerator ÷ denominator`, in the same asset: scaling by a pure ratio such as
    /// `after / before`. Multiplies first so an exact ratio stays exact.
    pub fn checked_mul_ratio(&self, numerator: Decimal, denominator: Decimal) -> Result<Money, MoneyError> {
        if denominator.is_zero() {
            return Err(MoneyError::ZeroDivisor);
        }
        let amount = self
            .amount
            .checked_mul(numerator)
            .and_then(|x| x.checked_div(denominator))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.asset.clone()))
    }

    /// `pct` percent of this amount (`self × pct ÷ 100`), in the same asset.
    pub fn checked_percent(&self, pct: Decimal) -> Result<Money, MoneyError> {
        self.checked_mul_ratio(pct, Decimal::ONE_HUNDRED)
    }

    /// What percentage this amount is of `whole` (`self × 100 ÷ whole`), a pure number; both
    /// must be of one asset, and a zero `whole` has no percentage.
    pub fn checked_percent_of(&self, whole: &Money) -> Result<Decimal, MoneyError> {
        self.same_asset(whole)?;
        if whole.amount.is_zero() {
            return Err(MoneyError::ZeroDivisor);
        }
        self.amount
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|x| x.checked_div(whole.amount))
            .ok_or(MoneyError::Overflow)
    }

    /// Orders two amounts of one asset; amounts of different assets have no order.
    pub fn checked_cmp(&self, other: &Money) -> Result<std::cmp::Ordering, MoneyError> {
        self.same_asset(other)?;
        Ok(self.amount.cmp(&other.amount))
    }

    fn same_asset(&self, other: &Money) -> Result<(), MoneyError> {
        if self.asset != other.asset {
            return Err(MoneyError::AssetMismatch {
                left: self.asset.clone(),
                right: other.asset.clone(),
            });
        }
        Ok(())
    }

    /// Two decimals, for screens and messages (`612.50 USDT`), by [`display_fixed`].
    pub fn display_2dp(&self) -> String {
        format!("{} {}", display_fixed(self.amount, 2), self.asset)
    }

    /// At the asset's display precision ([`Asset::display_dp`]), with the asset (`0.00050000 BNB`).
    pub fn display(&self) -> String {
        format!(
            "{} {}",
            display_fixed(self.amount, self.asset.display_dp()),
            self.asset
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", plain(self.amount), self.asset)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", plain(self.amount), self.asset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        /// Test-only helper: a decimal from a literal string.
        pub fn dec(s: &str) -> rust_decimal::Decimal {
            s.parse().expect("test literal")
        }
    }

    #[test]
    fn parses_binance_strings_exactly() {
        assert_eq!("0.10000000".parse::<Price>().expect("ok").to_string(), "0.1");
        assert_eq!("25.35190000".parse::<Price>().expect("ok").to_string(), "25.3519");
        assert_eq!("0.00000000".parse::<Qty>().expect("ok").to_string(), "0");
        assert_eq!(
            "4723846.89208129".parse::<Qty>().expect("ok").to_string(),
            "4723846.89208129"
        );
        assert_eq!("100".parse::<Qty>().expect("ok").to_string(), "100");
    }

    #[test]
    fn refuses_exponents_signs_and_garbage() {
        for bad in [
            "1e5", "1E-3", "+1", "-1", "", ".", "1.2.3", " 1", "1 ", "abc", "0x10", "NaN", "inf",
        ] {
            assert!(bad.parse::<Price>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn signed_parse_accepts_minus() {
        assert_eq!(parse_decimal("-12.5", true).expect("ok"), dec("-12.5"));
        assert!(parse_decimal("--1", true).is_err());
    }

    #[test]
    fn rounds_quantity_down_and_price_to_tick() {
        let q: Qty = "1.23456789".parse().expect("ok");
        assert_eq!(q.floor_to(dec("0.001")).expect("ok").to_string(), "1.234");
        let p: Price = "100.037".parse().expect("ok");
        assert_eq!(p.floor_to(dec("0.01")).expect("ok").to_string(), "100.03");
        assert_eq!(p.ceil_to(dec("0.01")).expect("ok").to_string(), "100.04");
        assert_eq!(p.round_to(dec("0.05")).expect("ok").to_string(), "100.05");
        assert!(p.floor_to(dec("0.001")).expect("ok").is_multiple_of(dec("0.001")));
        assert_eq!(decimals_of(dec("0.00100000")), 3);
        assert_eq!(decimals_of(dec("1.00000000")), 0);
    }

    #[test]
    fn money_of_different_assets_does_not_add() {
        let a = Money::new(dec("1"), Asset::new("USDT").expect("ok"));
        let b = Money::new(dec("1"), Asset::new("BTC").expect("ok"));
        assert!(matches!(a.checked_add(&b), Err(MoneyError::AssetMismatch { .. })));
        assert_eq!(a.checked_add(&a).expect("same asset").amount, dec("2"));
    }

    fn usdt(s: &str) -> Money {
        Money::new(dec(s), Asset::usdt())
    }

    fn btc(s: &str) -> Money {
        Money::new(dec(s), Asset::new("BTC").expect("ok"))
    }

    #[test]
    fn money_reads_back_what_it_was_built_from_normalized() {
        let m = usdt("12.500");
        assert_eq!(m.amount(), dec("12.5"));
        assert_eq!(m.amount().to_string(), "12.5");
        assert_eq!(m.asset(), &Asset::usdt());
        assert!(Money::zero(Asset::usdt()).is_zero());
        assert!(usdt("-0.01").is_negative());
        assert!(!usdt("0").is_negative() && !usdt("-0").is_negative() && !usdt("1").is_negative());
        assert_eq!(usdt("-3").at_least_zero(), usdt("0"));
        assert_eq!(usdt("3").at_least_zero(), usdt("3"));
    }

    #[test]
    fn money_scales_by_a_ratio_and_a_percentage_in_its_own_asset() {
        assert_eq!(usdt("10000").checked_percent(dec("5")), Ok(usdt("500")));
        assert_eq!(
            usdt("100").checked_mul_ratio(dec("150"), dec("120")),
            Ok(usdt("125"))
        );
        assert_eq!(btc("0.3").checked_mul_ratio(dec("1"), dec("3")), Ok(btc("0.1")));
        assert_eq!(
            usdt("1").checked_mul_ratio(dec("1"), dec("0")),
            Err(MoneyError::ZeroDivisor)
        );
        assert_eq!(
            Money::new(Decimal::MAX, Asset::usdt()).checked_percent(dec("200")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn percent_of_needs_one_asset_and_a_non_zero_whole() {
        assert_eq!(usdt("-25").checked_percent_of(&usdt("200")), Ok(dec("-12.5")));
        assert_eq!(
            usdt("1").checked_percent_of(&usdt("0")),
            Err(MoneyError::ZeroDivisor)
        );
        assert!(matches!(
            usdt("1").checked_percent_of(&btc("1")),
            Err(MoneyError::AssetMismatch { .. })
        ));
        assert_eq!(
            Money::new(Decimal::MAX, Asset::usdt()).checked_percent_of(&usdt("1")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn money_of_different_assets_has_no_order() {
        assert_eq!(usdt("2").checked_cmp(&usdt("10")), Ok(std::cmp::Ordering::Less));
        assert_eq!(
            usdt("2").checked_cmp(&btc("1")),
            Err(MoneyError::AssetMismatch {
                left: Asset::usdt(),
                right: Asset::new("BTC").expect("ok"),
            })
        );
        assert!(btc("1").checked_sub(&usdt("1")).is_err());
    }

    /// The journal and the CLI's JSON store money in this exact shape: it must not change.
    #[test]
    fn money_serializes_as_a_plain_string_and_its_asset() {
        let text = serde_json::to_string(&usdt("612.50")).expect("serializes");
        assert_eq!(text, r#"{"amount":"612.5","asset":"USDT"}"#);
        let back: Money = serde_json::from_str(r#"{"amount":"612.50","asset":"USDT"}"#).expect("parses");
        assert_eq!(back, usdt("612.5"));
        assert_eq!(back.amount().to_string(), "612.50");
        assert_eq!(
            serde_json::to_string(&back).expect("serializes"),
            r#"{"amount":"612.50","asset":"USDT"}"#
        );
    }

    #[test]
    fn qty_subtraction_never_goes_negative() {
        let a: Qty = "1".parse().expect("ok");
        let b: Qty = "2".parse().expect("ok");
        assert_eq!(a.checked_sub(b), None);
        assert_eq!(a.saturating_sub(b), Qty::ZERO);
    }

    #[test]
    fn overflow_is_none_not_a_panic() {
        let big = Price::try_new(Decimal::MAX).expect("ok");
        assert_eq!(big.notional(Qty::try_new(dec("2")).expect("ok")), None);
        assert_eq!(
            Qty::try_new(Decimal::MAX)
                .expect("ok")
                .checked_add(Qty::try_new(Decimal::MAX).expect("ok")),
            None
        );
    }

    fn arb_decimal() -> impl Strategy<Value = Decimal> {
        (0u64..10_000_000_000_000u64, 0u32..=12).prop_map(|(m, s)| Decimal::new(m as i64, s))
    }

    fn arb_step() -> impl Strategy<Value = Decimal> {
        (1u64..1000, 0u32..=8).prop_map(|(m, s)| Decimal::new(m as i64, s))
    }

    #[test]
    fn display_rounds_halves_away_from_zero_with_fixed_decimals() {
        assert_eq!(display_fixed(dec("325.985"), 2), "325.99");
        assert_eq!(display_fixed(dec("325.975"), 2), "325.98");
        assert_eq!(display_fixed(dec("-6.125"), 2), "-6.13");
        assert_eq!(display_fixed(dec("160326"), 2), "160326.00");
        assert_eq!(display_fixed(dec("-0.001"), 2), "0.00");
        assert_eq!(display_fixed(dec("0.00049999"), 8), "0.00049999");
        assert_eq!(display_price(dec("100.1"), Some(dec("0.01000000"))), "100.10");
        assert_eq!(display_price(dec("100.125"), None), "100.125");
        assert_eq!(display_trimmed(dec("95210.004"), 2), "95210");
        assert_eq!(display_trimmed(dec("248.905"), 2), "248.91");
        let q: Qty = "2.675".parse().expect("ok");
        assert_eq!(q.display_dp(2), "2.68");
        let m = Money::new(dec("0.005"), Asset::usdt());
        assert_eq!(m.display_2dp(), "0.01 USDT");
        assert_eq!(
            Money::new(dec("0.0005"), Asset::new("BNB").expect("ok")).display(),
            "0.00050000 BNB"
        );
    }

    proptest! {
        /// Display never changes the value it shows (the figure is text, the value stays exact),
        /// and it is the nearest `dp`-decimal number with halves going away from zero.
        #[test]
        fn display_is_nearest_with_halves_away_from_zero_and_leaves_the_value_exact(
            m in -10_000_000_000_000i64..10_000_000_000_000i64,
            scale in 0u32..=10,
            dp in 0u32..=8,
        ) {
            let v = Decimal::new(m, scale);
            let before = v;
            let shown: Decimal = display_fixed(v, dp).parse().expect("plain decimal");
            prop_assert_eq!(v, before);
            prop_assert_eq!(shown.scale(), dp);
            let unit = Decimal::new(1, dp);
            let diff = (shown - v).abs();
            prop_assert!(diff * Decimal::TWO <= unit);
            if diff * Decimal::TWO == unit {
                prop_assert!(shown.abs() > v.abs(), "a half goes away from zero: {} -> {}", v, shown);
            }
        }

        #[test]
        fn display_then_parse_round_trips(d in arb_decimal()) {
            let q = Qty::try_new(d).expect("non-negative");
            let back: Qty = q.to_string().parse().expect("own output parses");
            prop_assert_eq!(back, q);
            prop_assert!(!q.to_string().contains('e'));
        }

        #[test]
        fn rounding_down_never_increases_quantity(d in arb_decimal(), step in arb_step()) {
            let q = Qty::try_new(d).expect("non-negative");
            let r = q.floor_to(step).expect("no overflow at these sizes");
            prop_assert!(r <= q);
            prop_assert!(r.is_multiple_of(step));
            // and it is the largest such multiple
            prop_assert!(q.value() - r.value() < step);
        }

        #[test]
        fn ceil_never_decreases_price(d in arb_decimal(), step in arb_step()) {
            let p = Price::try_new(d).expect("non-negative");
            let r = p.ceil_to(step).expect("no overflow at these sizes");
            prop_assert!(r >= p);
            prop_assert!(r.is_multiple_of(step));
        }

        #[test]
        fn checked_add_then_sub_is_identity(a in arb_decimal(), b in arb_decimal()) {
            let qa = Qty::try_new(a).expect("ok");
            let qb = Qty::try_new(b).expect("ok");
            let sum = qa.checked_add(qb).expect("small values");
            prop_assert_eq!(sum.checked_sub(qb), Some(qa));
        }

        #[test]
        fn same_asset_money_add_then_sub_is_identity(
            a in -10_000_000_000_000i64..10_000_000_000_000i64,
            b in -10_000_000_000_000i64..10_000_000_000_000i64,
            sa in 0u32..=12,
            sb in 0u32..=12,
        ) {
            let a = Money::new(Decimal::new(a, sa), Asset::usdt());
            let b = Money::new(Decimal::new(b, sb), Asset::usdt());
            let sum = a.checked_add(&b).expect("small values");
            prop_assert_eq!(sum.checked_sub(&b), Ok(a.clone()));
            prop_assert_eq!(sum.asset(), a.asset());
        }

        /// Whatever the values (overflowing ones included), combining two assets is an error and
        /// never a panic; within one asset every operation returns, `Ok` or `Err`.
        #[test]
        fn mixing_assets_is_an_error_never_a_panic(
            lo in any::<u64>(),
            mid in any::<u32>(),
            negative in any::<bool>(),
            scale in 0u32..=28,
            factor in -1_000_000i64..1_000_000i64,
        ) {
            let amount = Decimal::from_parts(lo as u32, (lo >> 32) as u32, mid, negative, scale);
            let u = Money::new(amount, Asset::usdt());
            let b = Money::new(amount, Asset::new("BTC").expect("ok"));
            let mismatch = |r: Result<Money, MoneyError>| matches!(r, Err(MoneyError::AssetMismatch { .. }));
            prop_assert!(mismatch(u.checked_add(&b)));
            prop_assert!(mismatch(b.checked_sub(&u)));
            let pct_mismatch = matches!(u.checked_percent_of(&b), Err(MoneyError::AssetMismatch { .. }));
            prop_assert!(pct_mismatch);
            prop_assert!(u.checked_cmp(&b).is_err());
            let big = Money::new(Decimal::MAX, Asset::usdt());
            let _ = u.checked_add(&big);
            let _ = big.checked_sub(&u);
            let _ = u.checked_mul_ratio(Decimal::new(factor, 2), Decimal::new(factor, 0));
            let _ = big.checked_percent(Decimal::new(factor, 1));
            let _ = u.checked_percent_of(&big);
        }

        #[test]
        fn notional_then_qty_at_round_trips(p in arb_step(), d in arb_decimal()) {
            let price = Price::try_new(p).expect("ok");
            let qty = Qty::try_new(d).expect("ok");
            let n = price.notional(qty).expect("small values");
            let back = n.qty_at(price).expect("price > 0");
            prop_assert_eq!(back, qty);
        }
    }
}
