//! Why a ticket was refused: the typed [`Denial`]s with their stable codes.
//!
//! Owns: every denial the rules can raise, its message (which carries the numbers) and its
//! `SCREAMING_CODE`, the code the journal stores and the screen and the CLI print. Must not:
//! decide anything (the rules in `rules` do) or change a code: journals written by earlier
//! versions are read back by these codes.

use rust_decimal::Decimal;

use super::f2;
use crate::domain::{Asset, FilterFailure, Price, Qty, Side, Symbol, plain};

/// Why a ticket was refused. `code()` is stable and stored in the journal; the message
/// carries the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error(
        "POSITION_SIZE: notional {} USDT is {} of equity {} USDT; limit {}%",
        f2(.notional), pct_text(.pct), f2(.equity), f2(.limit_pct)
    )]
    PositionSize {
        notional: Decimal,
        equity: Decimal,
        pct: Option<Decimal>,
        limit_pct: Decimal,
    },
    #[error(
        "DAILY_LOSS: today's P&L {} USDT is {}% of day-start equity {} USDT; limit -{}% (entries resume at 00:00 UTC)",
        f2(.day_pnl), f2(.day_pnl_pct), f2(.day_start), f2(.limit_pct)
    )]
    DailyLoss {
        day_pnl: Decimal,
        day_pnl_pct: Decimal,
        day_start: Decimal,
        limit_pct: Decimal,
    },
    #[error(
        "DRAWDOWN: equity {} USDT is {}% below the high-water mark {} USDT; limit {}% (re-arm needed)",
        f2(.equity), f2(.drawdown_pct), f2(.hwm), f2(.limit_pct)
    )]
    Drawdown {
        equity: Decimal,
        hwm: Decimal,
        drawdown_pct: Decimal,
        limit_pct: Decimal,
    },
    #[error("TRADES_PER_DAY: {used} of {limit} entry tickets already sent today (UTC); resets at 00:00 UTC")]
    TradesPerDay { used: u32, limit: u32 },
    #[error("MISSING_STOP_LOSS: an entry needs a stop-loss")]
    MissingStopLoss,
    #[error("MISSING_TAKE_PROFIT: an entry needs a take-profit")]
    MissingTakeProfit,
    #[error("STOP_LOSS_SIDE: stop-loss {stop_loss} must be below the entry {entry} for a buy")]
    StopLossSide { stop_loss: Price, entry: Price },
    #[error("TAKE_PROFIT_SIDE: take-profit {take_profit} must be above the entry {entry} for a buy")]
    TakeProfitSide { take_profit: Price, entry: Price },
    #[error(
        "RISK_REWARD: reward {} ÷ risk {} = {} (entry {entry}, stop-loss {stop_loss}, take-profit {take_profit}); minimum {}",
        f2(.reward), f2(.risk), f2(.ratio), f2(.min)
    )]
    RiskReward {
        entry: Price,
        stop_loss: Price,
        take_profit: Price,
        reward: Decimal,
        risk: Decimal,
        ratio: Decimal,
        min: Decimal,
    },
    #[error("BRACKET_ON_EXIT: a sell reduces a position; stop-loss and take-profit belong to entries")]
    BracketOnExit,
    #[error("DUPLICATE_POSITION: {symbol} already has {}", duplicate_text(.position_qty, *.open_entry_order))]
    DuplicatePosition {
        symbol: Symbol,
        position_qty: Qty,
        open_entry_order: bool,
    },
    #[error("FILTER: {0}")]
    Filter(FilterFailure),
    #[error("FILTER: quantity {typed} rounds down to 0 at step {}", plain(*.step))]
    ZeroQuantity { typed: Qty, step: Decimal },
    #[error(
        "FAT_FINGER: limit price {price} is {}% from the best {reference_side} {reference}; limit {}%",
        f2(.deviation_pct), f2(.limit_pct)
    )]
    FatFinger {
        price: Price,
        reference: Price,
        reference_side: &'static str,
        deviation_pct: Decimal,
        limit_pct: Decimal,
    },
    #[error("INSUFFICIENT_BALANCE: needs {} {asset} ({what}); free {} {asset}", balance_pair(*.needed, *.free, asset).0, balance_pair(*.needed, *.free, asset).1)]
    InsufficientBalance {
        asset: Asset,
        needed: Decimal,
        free: Decimal,
        what: String,
    },
    #[error("NO_QUOTE: no quote for {symbol}; no entry without a price")]
    NoQuote { symbol: Symbol },
    #[error("NO_QUOTE: the quote for {symbol} is unusable (bid {bid}, ask {ask})")]
    BadQuote { symbol: Symbol, bid: Price, ask: Price },
    #[error("STALE_QUOTE: the quote for {symbol} is {age_ms} ms old; limit {max_ms} ms")]
    StaleQuote {
        symbol: Symbol,
        age_ms: i64,
        max_ms: i64,
    },
    #[error(
        "NO_POSITION: selling {qty} exceeds crbot's position {position} on {symbol}; spot cannot short (select external holdings to sell them)"
    )]
    NoPosition { symbol: Symbol, qty: Qty, position: Qty },
    #[error("STATE_HALTED: {} ({reason})", halted_text(*.exit))]
    StateHalted { reason: String, exit: bool },
    #[error("STATE_REDUCING: only orders that shrink a position are allowed ({reason})")]
    StateReducing { reason: String },
    #[error("PNL_UNAVAILABLE: {reason}; entries fail closed")]
    PnlUnavailable { reason: String },
    #[error("UNKNOWN_SYMBOL: no exchange rules for {symbol}")]
    UnknownSymbol { symbol: Symbol },
    #[error("NOT_A_REDUCTION: a {side} on {symbol} does not reduce a position")]
    NotAReduction { symbol: Symbol, side: Side },
    /// A re-protection the trader asked for that cannot protect: nothing to cover, too small,
    /// or a price the market is already through.
    #[error("NOT_PROTECTABLE: {symbol}: {reason}")]
    NotProtectable { symbol: Symbol, reason: String },
}

pub(super) fn pct_text(p: &Option<Decimal>) -> String {
    match p {
        Some(p) => format!("{}%", f2(p)),
        None => "all".to_string(),
    }
}

fn duplicate_text(qty: &Qty, order: bool) -> String {
    match (qty.is_zero(), order) {
        (false, true) => format!("an open position of {qty} and an open entry order"),
        (false, false) => format!("an open position of {qty}"),
        _ => "an open entry order".to_string(),
    }
}

fn halted_text(exit: bool) -> &'static str {
    if exit {
        "an exit while halted needs the user's explicit confirmation"
    } else {
        "no entries while halted"
    }
}

impl Denial {
    /// The stable code the journal stores.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::PositionSize { .. } => "POSITION_SIZE",
            Denial::DailyLoss { .. } => "DAILY_LOSS",
            Denial::Drawdown { .. } => "DRAWDOWN",
            Denial::TradesPerDay { .. } => "TRADES_PER_DAY",
            Denial::MissingStopLoss => "MISSING_STOP_LOSS",
            Denial::MissingTakeProfit => "MISSING_TAKE_PROFIT",
            Denial::StopLossSide { .. } => "STOP_LOSS_SIDE",
            Denial::TakeProfitSide { .. } => "TAKE_PROFIT_SIDE",
            Denial::RiskReward { .. } => "RISK_REWARD",
            Denial::BracketOnExit => "BRACKET_ON_EXIT",
            Denial::DuplicatePosition { .. } => "DUPLICATE_POSITION",
            Denial::Filter(_) | Denial::ZeroQuantity { .. } => "FILTER",
            Denial::FatFinger { .. } => "FAT_FINGER",
            Denial::InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
            Denial::NoQuote { .. } | Denial::BadQuote { .. } => "NO_QUOTE",
            Denial::StaleQuote { .. } => "STALE_QUOTE",
            Denial::NoPosition { .. } => "NO_POSITION",
            Denial::StateHalted { .. } => "STATE_HALTED",
            Denial::StateReducing { .. } => "STATE_REDUCING",
            Denial::PnlUnavailable { .. } => "PNL_UNAVAILABLE",
            Denial::UnknownSymbol { .. } => "UNKNOWN_SYMBOL",
            Denial::NotAReduction { .. } => "NOT_A_REDUCTION",
            Denial::NotProtectable { .. } => "NOT_PROTECTABLE",
        }
    }
}

/// `needed` and `free` at `asset`'s display precision (the one rounding rule); when rounding
/// would make a shortfall look like enough (`needs 97.34; free 97.34`), both exactly instead.
pub(crate) fn balance_pair(needed: Decimal, free: Decimal, asset: &Asset) -> (String, String) {
    let dp = asset.display_dp();
    let (n, f) = (
        crate::domain::display_fixed(needed, dp),
        crate::domain::display_fixed(free, dp),
    );
    if (needed > free) != (n.parse::<Decimal>().ok() > f.parse::<Decimal>().ok()) {
        (plain(needed), plain(free))
    } else {
        (n, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }

    #[test]
    fn balance_figures_follow_the_asset_precision_unless_rounding_would_hide_a_shortfall() {
        let usdt = Asset::usdt();
        assert_eq!(
            balance_pair(d("97.34378654"), d("10000"), &usdt),
            ("97.34".to_string(), "10000.00".to_string())
        );
        // Half away from zero, as everywhere on the screen.
        assert_eq!(balance_pair(d("0.125"), d("1"), &usdt).0, "0.13");
        // 97.3438 needed, 97.3401 free: at two decimals both read 97.34, which would look
        // payable; the exact figures show why it is not.
        assert_eq!(
            balance_pair(d("97.3438"), d("97.3401"), &usdt),
            ("97.3438".to_string(), "97.3401".to_string())
        );
        let btc = Asset::new("BTC").expect("asset");
        assert_eq!(
            balance_pair(d("0.001"), d("0.5"), &btc),
            ("0.00100000".to_string(), "0.50000000".to_string())
        );
        let denial = Denial::InsufficientBalance {
            asset: usdt,
            needed: d("120.456"),
            free: d("100"),
            what: "notional 120.33 + estimated fee 0.12".into(),
        };
        assert_eq!(
            denial.to_string(),
            "INSUFFICIENT_BALANCE: needs 120.46 USDT (notional 120.33 + estimated fee 0.12); free 100.00 USDT"
        );
    }
}
