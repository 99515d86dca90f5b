//! Portfolio accounting: crbot's positions derived from its own fills, the split between
//! positions and external holdings, equity in USDT, day-start equity, the high-water mark,
//! drawdown and the equity curve.
//!
//! Owns: the arithmetic of cost basis and P&L. Must not: do I/O, read a clock (every time is
//! a parameter in ms since the epoch, UTC), or hold anything but plain values. The engine feeds
//! it and persists what it returns.
//!
//! # Which fills count
//! The caller feeds **only crbot's own fills** (fills of orders crbot created, i.e. any
//! [`OrderPurpose`](crate::domain::OrderPurpose) other than `External`). Everything else in the
//! account is *external* and is derived from balances by [`split_holdings`]. Feeding a fill
//! twice (same symbol and trade id) is harmless: the second one is reported as
//! [`FillOutcome::Duplicate`] and changes nothing, so journal replay and reconciliation may
//! overlap.
//!
//! # Accounting rules (spot, long only)
//! A position holds a quantity and a **cost**: the quote-asset amount paid for the quantity still
//! held, fees included. `avg_entry = cost / qty` is therefore the break-even price.
//!
//! * **Buy** (opens or adds) of `q` at `p` with commission `c`:
//!   * commission in the quote asset: `cost += q·p + c`, `qty += q`;
//!   * commission in the base asset: the account receives `q − c`: `cost += q·p`, `qty += q − c`
//!     (a commission ≥ `q` is refused);
//!   * commission in a third asset (BNB): `qty += q`, `cost += q·p + c·px` where `px` is the
//!     quote price of that asset the caller passes; without a price the commission is recorded
//!     as *unpriced* (shown, left out of P&L) and the position says its P&L is incomplete.
//! * **Sell** (closes or reduces) of `q` at `p`: crbot's part is `own = min(q, qty)`; the rest
//!   (`q − own`) sold holdings that were not crbot's and is returned as `external_qty`, never
//!   a negative quantity. A quote or third-asset commission is split pro rata (`own / q`) and
//!   reduces the proceeds. A base commission is extra base leaving the account: it leaves the
//!   position first (up to what is left of it) and any remainder is external.
//!   With `removed = own + base fee taken from the position`:
//!   `realized += own·p − own share of the fee − cost·removed/qty`, then `cost` and `qty` shrink
//!   pro rata (a full close sets both to exactly zero).
//! * **Realized P&L** is therefore net of every priced fee, buy and sell side.
//! * **Unrealized P&L** at a mark `m` is `qty·m − cost` (buy fees included, the fee of a future
//!   sell not yet).
//! * `fees_paid` is the quote value of every priced fee (a base fee valued at its fill price).
//!
//! # Fees
//! Every fill books crbot's share of its commission (all of it on a buy; on a sell the `own / q`
//! share of a quote or third-asset fee, and the base fee that left the position) three ways: the
//! amount per commission asset, its quote value, and the UTC day of the fill. A third-asset fee
//! is valued with the price the caller journaled **at the fill's time** ([`fee_price_at`]);
//! with none it stays *unpriced* — counted in its own asset, never valued at a later price.

pub mod curve;
pub mod equity;
pub mod trail;

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use chrono::NaiveDate;

use crate::domain::{
    Asset, Balance, Fill, Money, MoneyError, OrderType, Price, Qty, Side, Symbol, SymbolRules,
};

pub use curve::{EquityCurve, Window, downsample};
pub use equity::{DayStart, EquityReport, EquitySample, EquityTracker, Observed, equity_report, utc_date};
pub use trail::QuoteTrail;

/// How far apart a quote and a fill may be for the quote to price the fill's third-asset
/// commission. Further apart, the price is not the one at fill time and the fee is unpriced.
pub const FEE_PRICE_WINDOW_MS: i64 = 5_000;

/// The quote-asset price of `fill`'s commission asset at the fill's time, the one to journal
/// with the fill: 1 for the quote asset, the fill price for the base asset, and for any other
/// asset (BNB) the mid of `<ASSET><QUOTE>` in force at the fill's time ([`QuoteTrail::mid_at`]
/// with [`FEE_PRICE_WINDOW_MS`]): not a quote that came after the market moved on. `None`
/// means no price at fill time was known: the fee is booked as unpriced.
pub fn fee_price_at(fill: &Fill, pair: &Pair, trail: &QuoteTrail) -> Option<Price> {
    if fill.commission_asset == pair.quote {
        return Price::try_new(Decimal::ONE).ok();
    }
    if fill.commission_asset == pair.base {
        return Some(fill.price);
    }
    let symbol = Symbol::new(&format!("{}{}", fill.commission_asset, pair.quote)).ok()?;
    trail.mid_at(&symbol, fill.time_ms, FEE_PRICE_WINDOW_MS)
}

/// One fill's commission as booked: crbot's share, in its own asset and in the quote asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeBooked {
    pub asset: Asset,
    /// crbot's share of the commission, in `asset`.
    pub amount: Decimal,
    /// Its value in the position's quote asset; `None` when unpriced (no price at fill time).
    pub value: Option<Money>,
}

/// Fees summed over fills: per commission asset, their quote value, and what stayed unpriced.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeeTally {
    /// Commission amounts per asset (priced and unpriced).
    pub paid: BTreeMap<Asset, Decimal>,
    /// Quote value of the priced commissions, per quote asset.
    pub value: BTreeMap<Asset, Decimal>,
    /// Commission amounts that had no price at fill time, per asset (not in `value`).
    pub unpriced: BTreeMap<Asset, Decimal>,
}

impl FeeTally {
    fn add(&mut self, fee: &FeeBooked, quote: &Asset) -> Result<(), PortfolioError> {
        if fee.amount.is_zero() {
            return Ok(());
        }
        // Values are summed per quote asset: one in another asset would land in the wrong sum.
        if let Some(v) = fee.value.as_ref().filter(|v| v.asset() != quote) {
            let mismatch = MoneyError::AssetMismatch {
                left: v.asset().clone(),
                right: quote.clone(),
            };
            return Err(PortfolioError::Money("a fee's value", mismatch));
        }
        let paid = self.paid.entry(fee.asset.clone()).or_insert(Decimal::ZERO);
        *paid = add(*paid, fee.amount)?;
        match &fee.value {
            Some(v) => {
                let value = self.value.entry(quote.clone()).or_insert(Decimal::ZERO);
                *value = add(*value, v.amount())?;
            }
            None => {
                let un = self.unpriced.entry(fee.asset.clone()).or_insert(Decimal::ZERO);
                *un = add(*un, fee.amount)?;
            }
        }
        Ok(())
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, other: &FeeTally) -> Result<(), PortfolioError> {
        for (mine, theirs) in [
            (&mut self.paid, &other.paid),
            (&mut self.value, &other.value),
            (&mut self.unpriced, &other.unpriced),
        ] {
            for (asset, v) in theirs {
                let e = mine.entry(asset.clone()).or_insert(Decimal::ZERO);
                *e = add(*e, *v)?;
            }
        }
        Ok(())
    }

    /// True when every fee counted here had a price at its fill time.
    pub fn complete(&self) -> bool {
        self.unpriced.is_empty()
    }
}

/// Why a fill or a sample could not be applied. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortfolioError {
    #[error("fill {trade_id} on {symbol} has zero quantity")]
    EmptyFill { symbol: Symbol, trade_id: u64 },
    #[error("fill {trade_id} on {symbol}: base commission {commission} is not less than quantity {qty}")]
    FeeExceedsFill {
        symbol: Symbol,
        trade_id: u64,
        commission: String,
        qty: String,
    },
    #[error("arithmetic overflow while applying {0}")]
    Overflow(String),
    #[error("equity must be in {expected}, got {got}")]
    WrongAsset { expected: Asset, got: Asset },
    #[error("{0}: {1}")]
    Money(&'static str, MoneyError),
    #[error("equity must not be negative (got {0})")]
    NegativeEquity(String),
    #[error("time {0} ms is outside the supported calendar range")]
    BadTime(i64),
    #[error("sample at {got} ms is older than the last one at {last} ms")]
    OutOfOrder { got: i64, last: i64 },
}

/// The two assets of a symbol, which decide how a commission is booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub base: Asset,
    pub quote: Asset,
}

impl From<&SymbolRules> for Pair {
    fn from(r: &SymbolRules) -> Self {
        Pair {
            base: r.base_asset.clone(),
            quote: r.quote_asset.clone(),
        }
    }
}

/// What applying a fill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillOutcome {
    Applied {
        /// The position's quantity afterwards.
        qty_after: Qty,
        /// Realized P&L of this fill (zero for a buy), quote asset.
        realized: Money,
        /// Base quantity that left the account beyond crbot's position (a sell of external
        /// holdings, or a base commission larger than what was left). Zero normally.
        external_qty: Qty,
        /// crbot's share of the commission and its quote value.
        fee: FeeBooked,
    },
    /// This (symbol, trade id) was already applied; nothing changed.
    Duplicate,
}

/// crbot's position on one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub symbol: Symbol,
    pub pair: Pair,
    qty: Decimal,
    cost: Decimal,
    realized: Decimal,
    fees_quote: Decimal,
    unpriced_fees: BTreeMap<Asset, Decimal>,
    fees: FeeTally,
}

impl Position {
    pub fn new(symbol: Symbol, pair: Pair) -> Self {
        Position {
            symbol,
            pair,
            qty: Decimal::ZERO,
            cost: Decimal::ZERO,
            realized: Decimal::ZERO,
            fees_quote: Decimal::ZERO,
            unpriced_fees: BTreeMap::new(),
            fees: FeeTally::default(),
        }
    }

    pub fn qty(&self) -> Qty {
        Qty::try_new(self.qty).unwrap_or(Qty::ZERO)
    }

    pub fn is_open(&self) -> bool {
        !self.qty.is_zero()
    }

    /// Quote amount paid for the quantity still held, fees included.
    pub fn cost_basis(&self) -> Money {
        Money::new(self.cost, self.pair.quote.clone())
    }

    /// Fee-inclusive average entry (break-even price); `None` when flat.
    pub fn avg_entry(&self) -> Option<Price> {
        if self.qty.is_zero() {
            return None;
        }
        self.cost
            .checked_div(self.qty)
            .and_then(|v| Price::try_new(v).ok())
    }

    pub fn realized_pnl(&self) -> Money {
        Money::new(self.realized, self.pair.quote.clone())
    }

    /// `qty·mark − cost`; `None` only on overflow.
    pub fn unrealized_pnl(&self, mark: Price) -> Option<Money> {
        let value = self.qty.checked_mul(mark.value())?;
        Some(Money::new(value.checked_sub(self.cost)?, self.pair.quote.clone()))
    }

    /// Quote value of every priced fee paid on this symbol.
    pub fn fees_paid(&self) -> Money {
        Money::new(self.fees_quote, self.pair.quote.clone())
    }

    /// Third-asset commissions that came without a price (left out of P&L).
    pub fn unpriced_fees(&self) -> &BTreeMap<Asset, Decimal> {
        &self.unpriced_fees
    }

    /// Every commission booked on this symbol: per asset, quote value, unpriced part.
    pub fn fees(&self) -> &FeeTally {
        &self.fees
    }

    /// False when some commission could not be priced, so P&L leaves it out.
    pub fn pnl_complete(&self) -> bool {
        self.unpriced_fees.is_empty()
    }

    /// Applies one fill to this position. `fee_price` is the quote price of a third-asset
    /// commission (BNB), ignored for quote and base commissions.
    fn apply(
        &self,
        fill: &Fill,
        fee_price: Option<Price>,
    ) -> Result<(Position, FillOutcome), PortfolioError> {
        let overflow = || PortfolioError::Overflow(format!("fill {} on {}", fill.trade_id, fill.symbol));
        let q = fill.qty.value();
        let p = fill.price.value();
        let c = fill.commission.value();
        if q.is_zero() {
            return Err(PortfolioError::EmptyFill {
                symbol: fill.symbol.clone(),
                trade_id: fill.trade_id,
            });
        }
        let fee_kind = if c.is_zero() {
            FeeKind::None
        } else if fill.commission_asset == self.pair.quote {
            FeeKind::Quote
        } else if fill.commission_asset == self.pair.base {
            FeeKind::Base
        } else {
            FeeKind::Other(fill.commission_asset.clone())
        };
        let mut next = self.clone();
        let gross = p.checked_mul(q).ok_or_else(overflow)?;
        match fill.side {
            Side::Buy => {
                let (qty_in, fee_quote) = match &fee_kind {
                    FeeKind::None => (q, Decimal::ZERO),
                    FeeKind::Quote => (q, c),
                    FeeKind::Base => {
                        if c >= q {
                            return Err(PortfolioError::FeeExceedsFill {
                                symbol: fill.symbol.clone(),
                                trade_id: fill.trade_id,
                                commission: fill.commission.to_string(),
                                qty: fill.qty.to_string(),
                            });
                        }
                        // The fee's value is already in the cost: we paid q·p for q − c.
                        next.fees_quote = add(next.fees_quote, c.checked_mul(p).ok_or_else(overflow)?)?;
                        (q - c, Decimal::ZERO)
                    }
                    FeeKind::Other(asset) => match fee_price {
                        Some(px) => (q, c.checked_mul(px.value()).ok_or_else(overflow)?),
                        None => {
                            let e = next.unpriced_fees.entry(asset.clone()).or_insert(Decimal::ZERO);
                            *e = add(*e, c)?;
                            (q, Decimal::ZERO)
                        }
                    },
                };
                next.qty = add(next.qty, qty_in)?;
                next.cost = add(add(next.cost, gross)?, fee_quote)?;
                next.fees_quote = add(next.fees_quote, fee_quote)?;
                let value = match &fee_kind {
                    FeeKind::None | FeeKind::Quote => Some(c),
                    FeeKind::Base => Some(c.checked_mul(p).ok_or_else(overflow)?),
                    FeeKind::Other(_) => fee_price.map(|_| fee_quote),
                };
                let fee = self.booked(fill, c, value);
                next.fees.add(&fee, &self.pair.quote)?;
                let outcome = FillOutcome::Applied {
                    qty_after: next.qty(),
                    realized: Money::zero(self.pair.quote.clone()),
                    external_qty: Qty::ZERO,
                    fee,
                };
                Ok((next, outcome))
            }
            Side::Sell => {
                let held = self.qty;
                let own = q.min(held);
                let external_traded = q - own;
                let share = own.checked_div(q).ok_or_else(overflow)?;
                let (fee_quote_own, base_fee) = match &fee_kind {
                    FeeKind::None => (Decimal::ZERO, Decimal::ZERO),
                    FeeKind::Quote => (c.checked_mul(share).ok_or_else(overflow)?, Decimal::ZERO),
                    FeeKind::Base => (Decimal::ZERO, c),
                    FeeKind::Other(asset) => {
                        let own_fee = c.checked_mul(share).ok_or_else(overflow)?;
                        match fee_price {
                            Some(px) => (
                                own_fee.checked_mul(px.value()).ok_or_else(overflow)?,
                                Decimal::ZERO,
                            ),
                            None => {
                                if !own_fee.is_zero() {
                                    let e = next.unpriced_fees.entry(asset.clone()).or_insert(Decimal::ZERO);
                                    *e = add(*e, own_fee)?;
                                }
                                (Decimal::ZERO, Decimal::ZERO)
                            }
                        }
                    }
                };
                let base_fee_own = base_fee.min(held - own);
                let external_fee = base_fee - base_fee_own;
                let removed = own + base_fee_own;
                let cost_removed = if removed == held {
                    self.cost
                } else if held.is_zero() {
                    Decimal::ZERO
                } else {
                    self.cost
                        .checked_mul(removed)
                        .and_then(|v| v.checked_div(held))
                        .ok_or_else(overflow)?
                };
                let proceeds = own.checked_mul(p).ok_or_else(overflow)? - fee_quote_own;
                let realized = proceeds - cost_removed;
                next.realized = add(next.realized, realized)?;
                next.qty = held - removed;
                next.cost = if next.qty.is_zero() {
                    Decimal::ZERO
                } else {
                    self.cost - cost_removed
                };
                let base_fee_value = base_fee_own.checked_mul(p).ok_or_else(overflow)?;
                next.fees_quote = add(add(next.fees_quote, fee_quote_own)?, base_fee_value)?;
                let (amount, value) = match &fee_kind {
                    FeeKind::None => (Decimal::ZERO, Some(Decimal::ZERO)),
                    FeeKind::Quote => (fee_quote_own, Some(fee_quote_own)),
                    FeeKind::Base => (base_fee_own, Some(base_fee_value)),
                    FeeKind::Other(_) => (
                        c.checked_mul(share).ok_or_else(overflow)?,
                        fee_price.map(|_| fee_quote_own),
                    ),
                };
                let fee = self.booked(fill, amount, value);
                next.fees.add(&fee, &self.pair.quote)?;
                let external = Qty::try_new(external_traded + external_fee).unwrap_or(Qty::ZERO);
                let outcome = FillOutcome::Applied {
                    qty_after: next.qty(),
                    realized: Money::new(realized, self.pair.quote.clone()),
                    external_qty: external,
                    fee,
                };
                Ok((next, outcome))
            }
        }
    }
}

impl Position {
    fn booked(&self, fill: &Fill, amount: Decimal, value: Option<Decimal>) -> FeeBooked {
        FeeBooked {
            asset: fill.commission_asset.clone(),
            amount: amount.normalize(),
            value: value.map(|v| Money::new(v, self.pair.quote.clone())),
        }
    }
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, PortfolioError> {
    a.checked_add(b)
        .ok_or_else(|| PortfolioError::Overflow("a sum".to_string()))
}

enum FeeKind {
    None,
    Quote,
    Base,
    Other(Asset),
}

/// Every position crbot's own fills built, by symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    by_symbol: BTreeMap<Symbol, Position>,
    /// Fills applied, by (symbol, trade id, order id): both sides of a self-trade count.
    seen: BTreeSet<(Symbol, u64, u64)>,
    /// Fees by the UTC day of their fill.
    fee_days: BTreeMap<NaiveDate, FeeTally>,
}

impl Positions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one of crbot's own fills (see the module doc). On error nothing changes.
    pub fn apply_fill(
        &mut self,
        fill: &Fill,
        pair: &Pair,
        fee_price: Option<Price>,
    ) -> Result<FillOutcome, PortfolioError> {
        let key = (fill.symbol.clone(), fill.trade_id, fill.order_id);
        if self.seen.contains(&key) {
            return Ok(FillOutcome::Duplicate);
        }
        let current = self
            .by_symbol
            .get(&fill.symbol)
            .cloned()
            .unwrap_or_else(|| Position::new(fill.symbol.clone(), pair.clone()));
        let day = utc_date(fill.time_ms)?;
        let (next, outcome) = current.apply(fill, fee_price)?;
        let mut tally = self.fee_days.get(&day).cloned().unwrap_or_default();
        if let FillOutcome::Applied { fee, .. } = &outcome {
            tally.add(fee, &pair.quote)?;
        }
        self.fee_days.insert(day, tally);
        self.by_symbol.insert(fill.symbol.clone(), next);
        self.seen.insert(key);
        Ok(outcome)
    }

    /// Fees of every fill booked, by the UTC day of the fill.
    pub fn fees_by_day(&self) -> &BTreeMap<NaiveDate, FeeTally> {
        &self.fee_days
    }

    /// Fees of every fill booked, over every symbol.
    pub fn fees_total(&self) -> Result<FeeTally, PortfolioError> {
        let mut total = FeeTally::default();
        for tally in self.fee_days.values() {
            total.merge(tally)?;
        }
        Ok(total)
    }

    pub fn get(&self, symbol: &Symbol) -> Option<&Position> {
        self.by_symbol.get(symbol)
    }

    /// crbot's quantity on a symbol (zero when it has none).
    pub fn qty(&self, symbol: &Symbol) -> Qty {
        self.get(symbol).map(Position::qty).unwrap_or(Qty::ZERO)
    }

    /// Every position ever touched, flat ones included (they carry realized P&L).
    pub fn iter(&self) -> impl Iterator<Item = &Position> {
        self.by_symbol.values()
    }

    pub fn open(&self) -> impl Iterator<Item = &Position> {
        self.by_symbol.values().filter(|p| p.is_open())
    }

    /// crbot's total quantity of a base asset over every symbol that has it as base.
    pub fn qty_of_asset(&self, asset: &Asset) -> Qty {
        self.by_symbol
            .values()
            .filter(|p| &p.pair.base == asset)
            .fold(Qty::ZERO, |acc, p| acc.checked_add(p.qty()).unwrap_or(acc))
    }
}

/// True when `qty` of a symbol's base asset is **dust**: no order the exchange accepts can sell
/// it. That is when it rounds down to nothing on the lot step, falls below the lot minimum, or
/// (valued at `mark`) below the minimum notional. The limit-order lot is the one that counts:
/// protective orders are LIMIT_MAKER and STOP_LOSS legs.
///
/// A dust position is still crbot's (it is booked and shown), but it is not a position for the
/// rule against a second entry: nothing can sell it, so it would block the symbol for good.
/// Without a mark only the lot rules apply (the notional cannot be judged).
pub fn is_dust(qty: Qty, rules: &SymbolRules, mark: Option<Price>) -> bool {
    let sellable = rules.round_qty(OrderType::Limit, qty);
    if sellable.is_zero() {
        return true;
    }
    if rules
        .lot_for(OrderType::Limit)
        .is_some_and(|l| sellable.value() < l.min_qty)
    {
        return true;
    }
    match (&rules.filters.notional, mark.and_then(|m| m.notional(sellable))) {
        (Some(filter), Some(value)) => value.value() < filter.min_notional,
        _ => false,
    }
}

/// One asset's balance told apart into crbot's position and external holdings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub asset: Asset,
    /// free + locked.
    pub total: Qty,
    /// What crbot's positions hold of this asset.
    pub position: Qty,
    /// `total − position`, never negative.
    pub external: Qty,
    /// `position − total` when the balance is smaller than crbot's positions (needs
    /// reconciliation); zero normally.
    pub shortfall: Qty,
}

/// Splits every non-quote balance (and every asset crbot holds a position in) into position and
/// external parts: `external = total − position` per base asset, never negative.
pub fn split_holdings(balances: &[Balance], positions: &Positions, quote: &Asset) -> Vec<Holding> {
    let mut assets: BTreeSet<Asset> = balances
        .iter()
        .filter(|b| !b.total().is_zero())
        .map(|b| b.asset.clone())
        .collect();
    assets.extend(positions.open().map(|p| p.pair.base.clone()));
    assets.remove(quote);
    assets
        .into_iter()
        .map(|asset| {
            let total = balances
                .iter()
                .filter(|b| b.asset == asset)
                .fold(Qty::ZERO, |acc, b| acc.checked_add(b.total()).unwrap_or(acc));
            let position = positions.qty_of_asset(&asset);
            Holding {
                external: total.saturating_sub(position),
                shortfall: position.saturating_sub(total),
                asset,
                total,
                position,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClientOrderId;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }
    fn q(s: &str) -> Qty {
        s.parse().expect("test literal")
    }
    fn p(s: &str) -> Price {
        s.parse().expect("test literal")
    }
    fn sym() -> Symbol {
        Symbol::new("BTCUSDT").expect("ok")
    }
    fn pair() -> Pair {
        Pair {
            base: Asset::new("BTC").expect("ok"),
            quote: Asset::usdt(),
        }
    }

    fn fill(trade_id: u64, side: Side, qty: &str, price: &str, fee: &str, fee_asset: &str) -> Fill {
        Fill {
            symbol: sym(),
            trade_id,
            order_id: 1,
            client_order_id: Some(ClientOrderId::new("cr-1").expect("ok")),
            side,
            price: p(price),
            qty: q(qty),
            commission: q(fee),
            commission_asset: Asset::new(fee_asset).expect("ok"),
            time_ms: 0,
            is_maker: false,
        }
    }

    fn applied(o: FillOutcome) -> (Qty, Decimal, Qty) {
        match o {
            FillOutcome::Applied {
                qty_after,
                realized,
                external_qty,
                ..
            } => (qty_after, realized.amount(), external_qty),
            FillOutcome::Duplicate => panic!("expected an applied fill"),
        }
    }

    #[test]
    fn partial_fills_of_one_order_add_up_and_a_replayed_trade_is_ignored() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "0.3", "100", "0", "USDT"), &pair(), None)
            .expect("ok");
        book.apply_fill(&fill(2, Side::Buy, "0.7", "100", "0", "USDT"), &pair(), None)
            .expect("ok");
        let again = book
            .apply_fill(&fill(2, Side::Buy, "0.7", "100", "0", "USDT"), &pair(), None)
            .expect("ok");
        assert_eq!(again, FillOutcome::Duplicate);
        let pos = book.get(&sym()).expect("position");
        assert_eq!(pos.qty(), q("1"));
        assert_eq!(pos.cost_basis().amount(), d("100"));
        assert_eq!(pos.avg_entry(), Some(p("100")));
    }

    #[test]
    fn several_entries_partial_close_and_full_close_with_quote_fees() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "1", "100", "0.1", "USDT"), &pair(), None)
            .expect("ok");
        book.apply_fill(&fill(2, Side::Buy, "1", "110", "0.11", "USDT"), &pair(), None)
            .expect("ok");
        let pos = book.get(&sym()).expect("position");
        assert_eq!(pos.qty(), q("2"));
        assert_eq!(pos.cost_basis().amount(), d("210.21"));
        assert_eq!(pos.avg_entry(), Some(p("105.105")));

        // Partial close: proceeds 60 − 0.06 = 59.94; cost out 0.5 × 105.105 = 52.5525.
        let (qty, realized, ext) = applied(
            book.apply_fill(&fill(3, Side::Sell, "0.5", "120", "0.06", "USDT"), &pair(), None)
                .expect("ok"),
        );
        assert_eq!((qty, realized, ext), (q("1.5"), d("7.3875"), Qty::ZERO));
        let pos = book.get(&sym()).expect("position");
        assert_eq!(pos.cost_basis().amount(), d("157.6575"));
        assert_eq!(pos.avg_entry(), Some(p("105.105")));
        assert_eq!(pos.unrealized_pnl(p("130")).expect("ok").amount(), d("37.3425"));

        // Full close: proceeds 135 − 0.135 = 134.865; cost out 157.6575.
        let (qty, realized, _) = applied(
            book.apply_fill(&fill(4, Side::Sell, "1.5", "90", "0.135", "USDT"), &pair(), None)
                .expect("ok"),
        );
        assert_eq!((qty, realized), (Qty::ZERO, d("-22.7925")));
        let pos = book.get(&sym()).expect("position");
        assert!(!pos.is_open());
        assert_eq!(pos.cost_basis().amount(), Decimal::ZERO);
        assert_eq!(pos.avg_entry(), None);
        // Money in 210.21, money out 59.94 + 134.865 = 194.805.
        assert_eq!(pos.realized_pnl().amount(), d("-15.405"));
        assert_eq!(pos.fees_paid().amount(), d("0.405"));
    }

    #[test]
    fn base_commission_on_a_buy_reduces_the_quantity_received() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "1", "100", "0.001", "BTC"), &pair(), None)
            .expect("ok");
        let pos = book.get(&sym()).expect("position");
        assert_eq!(pos.qty(), q("0.999"));
        assert_eq!(pos.cost_basis().amount(), d("100"));
        assert_eq!(pos.fees_paid().amount(), d("0.1"));
        // Sell it all at 110 with a quote fee of 0.10989: 109.89 − 0.10989 − 100.
        let (qty, realized, _) = applied(
            book.apply_fill(
                &fill(2, Side::Sell, "0.999", "110", "0.10989", "USDT"),
                &pair(),
                None,
            )
            .expect("ok"),
        );
        assert_eq!((qty, realized), (Qty::ZERO, d("9.78011")));
    }

    #[test]
    fn base_commission_on_a_sell_is_extra_base_leaving_the_position() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "2", "100", "0", "USDT"), &pair(), None)
            .expect("ok");
        // 1 sold + 0.01 fee leave: cost out 1.01 × 100 = 101, proceeds 110.
        let (qty, realized, ext) = applied(
            book.apply_fill(&fill(2, Side::Sell, "1", "110", "0.01", "BTC"), &pair(), None)
                .expect("ok"),
        );
        assert_eq!((qty, realized, ext), (q("0.99"), d("9"), Qty::ZERO));
        assert_eq!(book.get(&sym()).expect("pos").cost_basis().amount(), d("99"));
    }

    #[test]
    fn bnb_commission_is_priced_by_the_caller_and_leaves_the_quantity_alone() {
        let mut book = Positions::new();
        book.apply_fill(
            &fill(1, Side::Buy, "1", "100", "0.0005", "BNB"),
            &pair(),
            Some(p("600")),
        )
        .expect("ok");
        let pos = book.get(&sym()).expect("position");
        assert_eq!(pos.qty(), q("1"));
        assert_eq!(pos.cost_basis().amount(), d("100.3"));
        assert!(pos.pnl_complete());
        // Sell at 110 with 0.00055 BNB at 600 = 0.33: 110 − 0.33 − 100.3 = 9.37.
        let (_, realized, _) = applied(
            book.apply_fill(
                &fill(2, Side::Sell, "1", "110", "0.00055", "BNB"),
                &pair(),
                Some(p("600")),
            )
            .expect("ok"),
        );
        assert_eq!(realized, d("9.37"));
        assert_eq!(book.get(&sym()).expect("pos").fees_paid().amount(), d("0.63"));
    }

    #[test]
    fn bnb_commission_without_a_price_is_recorded_as_unpriced() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "1", "100", "0.0005", "BNB"), &pair(), None)
            .expect("ok");
        let pos = book.get(&sym()).expect("position");
        assert_eq!(pos.cost_basis().amount(), d("100"));
        assert!(!pos.pnl_complete());
        assert_eq!(
            pos.unpriced_fees().get(&Asset::new("BNB").expect("ok")),
            Some(&d("0.0005"))
        );
    }

    fn quotes(symbol: &str, mid: &str, time_ms: i64) -> BTreeMap<Symbol, crate::domain::Quote> {
        let px = p(mid);
        BTreeMap::from([(
            Symbol::new(symbol).expect("ok"),
            crate::domain::Quote {
                bid: px,
                ask: px,
                time_ms,
            },
        )])
    }

    #[test]
    fn fee_price_is_one_for_quote_the_fill_price_for_base_and_the_mid_at_fill_time_for_bnb() {
        let mut trail = QuoteTrail::default();
        for (symbol, quote) in quotes("BNBUSDT", "600", 5_000) {
            trail.observe(&symbol, &quote);
        }
        let at = |trail: &QuoteTrail, fee_asset: &str, time_ms: i64| {
            let mut f = fill(1, Side::Buy, "1", "100", "0.1", fee_asset);
            f.time_ms = time_ms;
            fee_price_at(&f, &pair(), trail)
        };
        assert_eq!(at(&trail, "USDT", 0), Some(p("1")));
        assert_eq!(at(&trail, "BTC", 0), Some(p("100")));
        assert_eq!(at(&trail, "BNB", 0), Some(p("600")));
        assert_eq!(at(&trail, "BNB", 10_000), Some(p("600")));
        // Further than the window from any quote, either way: not the price at fill time.
        assert_eq!(at(&trail, "BNB", 5_000 + FEE_PRICE_WINDOW_MS + 1), None);
        assert_eq!(at(&trail, "BNB", 5_000 - FEE_PRICE_WINDOW_MS - 1), None);
        // No market for the asset against this pair's quote.
        assert_eq!(at(&trail, "ETH", 5_000), None);
        // The market moved after the fill: the fee keeps the mid of its time.
        for (symbol, quote) in quotes("BNBUSDT", "650", 7_000) {
            trail.observe(&symbol, &quote);
        }
        assert_eq!(at(&trail, "BNB", 6_999), Some(p("600")));
        assert_eq!(at(&trail, "BNB", 7_000), Some(p("650")));
    }

    #[test]
    fn each_fill_reports_its_fee_in_its_asset_and_in_quote_and_unpriced_ones_have_no_value() {
        let mut book = Positions::new();
        let fee_of = |o: FillOutcome| match o {
            FillOutcome::Applied { fee, .. } => fee,
            FillOutcome::Duplicate => panic!("expected an applied fill"),
        };
        let usdt = |v: &str| Some(Money::new(d(v), Asset::usdt()));
        let f = fee_of(
            book.apply_fill(
                &fill(1, Side::Buy, "2", "100", "0.002", "BTC"),
                &pair(),
                Some(p("100")),
            )
            .expect("ok"),
        );
        assert_eq!(
            (f.asset.as_str(), f.amount, f.value),
            ("BTC", d("0.002"), usdt("0.2"))
        );
        // 3 sold, 1.998 of them crbot's: the BNB fee's own share is 0.0003 × 1.998 / 3.
        let f = fee_of(
            book.apply_fill(&fill(2, Side::Sell, "3", "110", "0.0003", "BNB"), &pair(), None)
                .expect("ok"),
        );
        assert_eq!((f.amount, f.value), (d("0.0001998"), None));
        let total = book.fees_total().expect("ok");
        assert_eq!(
            total.paid.get(&Asset::new("BNB").expect("ok")),
            Some(&d("0.0001998"))
        );
        assert_eq!(total.value.get(&Asset::usdt()), Some(&d("0.2")));
        assert!(!total.complete());
    }

    #[test]
    fn a_sell_beyond_the_position_reports_the_excess_as_external() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "1", "100", "0", "USDT"), &pair(), None)
            .expect("ok");
        // 1.5 sold, 1 is crbot's: fee share 0.165 × 2/3 = 0.11; 110 − 0.11 − 100.
        let (qty, realized, ext) = applied(
            book.apply_fill(&fill(2, Side::Sell, "1.5", "110", "0.165", "USDT"), &pair(), None)
                .expect("ok"),
        );
        assert_eq!((qty, realized, ext), (Qty::ZERO, d("9.89"), q("0.5")));
        // A sell with no position at all is entirely external.
        let (qty, realized, ext) = applied(
            book.apply_fill(&fill(3, Side::Sell, "0.2", "110", "0", "USDT"), &pair(), None)
                .expect("ok"),
        );
        assert_eq!((qty, realized, ext), (Qty::ZERO, Decimal::ZERO, q("0.2")));
    }

    #[test]
    fn refuses_a_base_commission_as_large_as_the_fill_and_changes_nothing() {
        let mut book = Positions::new();
        let err = book.apply_fill(&fill(1, Side::Buy, "1", "100", "1", "BTC"), &pair(), None);
        assert!(
            matches!(err, Err(PortfolioError::FeeExceedsFill { .. })),
            "{err:?}"
        );
        assert_eq!(book.qty(&sym()), Qty::ZERO);
        // The refused trade id was not marked seen: a corrected replay applies.
        let ok = book.apply_fill(&fill(1, Side::Buy, "1", "100", "0.001", "BTC"), &pair(), None);
        assert!(matches!(ok, Ok(FillOutcome::Applied { .. })));
    }

    fn btc_rules() -> SymbolRules {
        use crate::domain::{Filters, LotSize, NotionalFilter, SymbolStatus};
        SymbolRules {
            symbol: sym(),
            status: SymbolStatus::Trading,
            base_asset: Asset::new("BTC").expect("ok"),
            quote_asset: Asset::usdt(),
            order_types: vec![],
            oco_allowed: true,
            filters: Filters {
                lot_size: Some(LotSize {
                    min_qty: d("0.00001"),
                    max_qty: d("9000"),
                    step_size: d("0.00001"),
                }),
                notional: Some(NotionalFilter {
                    min_notional: d("5"),
                    apply_min_to_market: true,
                    max_notional: None,
                    apply_max_to_market: false,
                }),
                ..Filters::default()
            },
        }
    }

    #[test]
    fn dust_is_what_no_order_can_sell_by_lot_step_or_minimum_notional() {
        let r = btc_rules();
        let mark = Some(p("97250"));
        // Below the lot step: dust whatever the price.
        assert!(is_dust(q("0.00000309"), &r, mark));
        assert!(is_dust(q("0.00000309"), &r, None));
        // Above the step but 0.00001 × 97250 ≈ 0.97 USDT < 5: the audit's leftover.
        assert!(is_dust(q("0.00001309"), &r, mark));
        // Without a mark the notional cannot be judged: not dust by the lot rules alone.
        assert!(!is_dust(q("0.00001309"), &r, None));
        // 0.00006 × 97250 = 5.835 ≥ 5: sellable.
        assert!(!is_dust(q("0.0000609"), &r, mark));
        assert!(is_dust(Qty::ZERO, &r, mark));
    }

    #[test]
    fn external_holdings_are_balance_minus_position_never_negative() {
        let mut book = Positions::new();
        book.apply_fill(&fill(1, Side::Buy, "0.5", "100", "0", "USDT"), &pair(), None)
            .expect("ok");
        let bal = |a: &str, free: &str, locked: &str| Balance {
            asset: Asset::new(a).expect("ok"),
            free: q(free),
            locked: q(locked),
        };
        let split = split_holdings(
            &[
                bal("BTC", "1.5", "0.5"),
                bal("ETH", "3", "0"),
                bal("USDT", "1000", "0"),
            ],
            &book,
            &Asset::usdt(),
        );
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].asset.as_str(), "BTC");
        assert_eq!((split[0].position, split[0].external), (q("0.5"), q("1.5")));
        assert_eq!((split[1].position, split[1].external), (Qty::ZERO, q("3")));
        // Balance below the position: external stays zero and the shortfall is shown.
        let short = split_holdings(&[bal("BTC", "0.2", "0")], &book, &Asset::usdt());
        assert_eq!((short[0].external, short[0].shortfall), (Qty::ZERO, q("0.3")));
    }
}
