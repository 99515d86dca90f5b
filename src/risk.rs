//! The pre-trade risk gate: every ticket passes [`check`] before the broker may see it.
//!
//! Owns: the risk rules (README "Safety") as a pure function of (limits, context, ticket, now), the
//! typed [`Denial`]s with stable codes, the [`RiskApproved`] wrapper that only this module can
//! build, the live [`report`] for the ticket view, the trading state machine ([`state`]) and
//! the limits with their change protocol ([`limits`]). Must not: do I/O, read a clock, keep
//! state between calls, or send anything.
//!
//! # Words
//! * **Entry**: a buy (spot is long only: a buy opens or adds to a position).
//! * **Exit**: a sell. It may sell at most crbot's position on the symbol
//!   ([`RiskContext::positions`]) less what crbot's own open sells already hold
//!   ([`RiskContext::held_by_open_sells`]); selling beyond it (external holdings) is refused with
//!   `NO_POSITION` unless the user selected external holdings for this ticket
//!   ([`RiskContext::sell_external`]).
//!
//! # The rules (every one is evaluated; [`check`] returns *all* violations)
//! | rule | applies to | fails when |
//! |---|---|---|
//! | STATE | all | reducing: an entry. halted: an entry, or an exit without [`RiskContext::exit_confirmed`] |
//! | PNL | entries | P&L cannot be computed (`pnl_ok` false, equity/day start/hwm missing or not USDT): `PNL_UNAVAILABLE` |
//! | QUOTE | entries | no quote, a crossed/zero quote, or one older than `max_quote_age_ms` (either direction) |
//! | SYMBOL | all | no exchange rules for the symbol |
//! | FILTER | all | a quantity rounding to 0, or any `SymbolRules::check` failure on the **rounded** order |
//! | FAT_FINGER | limit orders | price more than `fat_finger_pct` from the ask (buy) / bid (sell), either direction |
//! | BALANCE | all | buy: quote free < notional + estimated fee; sell: base free < quantity |
//! | POSITION | exits | quantity > crbot's position less what its open sells hold, and external holdings not selected: `NO_POSITION` |
//! | POSITION_SIZE | entries | notional (in USDT) > `max_position_size_pct` % of equity (equal passes) |
//! | DAILY_LOSS | entries | today's P&L ≤ −`max_daily_loss_pct` % of day-start equity (reaching it fails) |
//! | DRAWDOWN | entries | equity ≥ `max_drawdown_pct` % below the high-water mark (reaching it fails) |
//! | TRADES_PER_DAY | entries | entries already sent today (UTC) ≥ `max_trades_per_day` |
//! | RISK_REWARD | entries | stop-loss or take-profit missing, on the wrong side (buy: SL < entry < TP), or reward ÷ risk < `min_risk_reward` (equal passes); an exit carrying either is refused |
//! | DUPLICATE_POSITION | entries | an open position or an open entry order on the symbol; a *dust* position (below the lot step or minimum, or below the minimum notional at the mid: nothing can sell it) does not count |
//!
//! Pricing: a limit order is valued at its rounded limit price, a market buy at the ask, a
//! market sell at the bid. Rounding: quantity down to the LOT_SIZE / MARKET_LOT_SIZE step, the
//! limit price to the tick on the conservative side (buy down, sell up), the stop-loss and
//! take-profit toward the entry (risk and reward never grow by rounding); the risk/reward rule
//! and the approved order use these rounded values.
//!
//! Fail closed: an entry is refused when its quote is missing, stale or unusable, and when
//! P&L is unavailable. Exits are not blocked by a missing quote (getting out must work while
//! the market stream is down); quote-dependent checks on an exit are skipped
//! and the report says so. A rule that cannot be evaluated for an entry is reported as failed
//! ("not checked") while the denial names its missing input, so [`check`] fails exactly when a
//! [`report`] line fails.

pub mod limits;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Deref;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Asset, Balance, ClientOrderId, FilterFailure, Money, Notional, OrderRequest, OrderType, Price, Qty,
    Quote, Side, Symbol, SymbolRules, Ticket, TicketKind, TimeInForce, plain,
};

pub use limits::{
    ConfirmError, FieldChange, LOOSEN_PHRASE, LimitAlert, LimitChange, LimitUsage, Limits, LimitsError,
    PendingLoosen, near_limit, pct_of_limit, propose_limits, usage,
};
pub use state::{AlreadyActive, TradingState, Transition, Trigger, evaluate_automatic, kill, rearm};

const DAY_MS: i64 = 86_400_000;

/// The UTC day number (days since the epoch) of a time in ms.
pub fn utc_day(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// The next 00:00 UTC strictly after `now_ms`.
pub fn next_utc_midnight_ms(now_ms: i64) -> i64 {
    (utc_day(now_ms) + 1).saturating_mul(DAY_MS)
}

/// Two decimals for messages, by the one display rule (`6.125` → `6.13`).
pub(crate) fn f2(d: &Decimal) -> String {
    crate::domain::display_fixed(*d, 2)
}

/// `a × b`, saturating at the bound of the result's sign: an absurd input then fails a limit
/// instead of panicking.
fn smul(a: Decimal, b: Decimal) -> Decimal {
    a.checked_mul(b)
        .unwrap_or(if a.is_sign_negative() != b.is_sign_negative() {
            Decimal::MIN
        } else {
            Decimal::MAX
        })
}

/// `a × 100 ÷ b`; `None` for a zero `b` or on overflow.
fn pct_of(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(b)
}

/// Entry tickets sent on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCount {
    /// [`utc_day`] the count belongs to.
    pub utc_day: i64,
    pub count: u32,
}

impl DailyCount {
    /// The count for the UTC day of `now_ms`: zero once that day is later than the counted one.
    pub fn count_on(&self, now_ms: i64) -> u32 {
        if utc_day(now_ms) > self.utc_day {
            0
        } else {
            self.count
        }
    }

    /// Records one entry sent at `now_ms` (starting a new count on a new UTC day).
    pub fn record(&mut self, now_ms: i64) {
        let day = utc_day(now_ms);
        if day > self.utc_day {
            *self = DailyCount {
                utc_day: day,
                count: 0,
            };
        }
        self.count = self.count.saturating_add(1);
    }
}

/// Everything the rules look at, filled by the engine from its state (plain data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskContext {
    pub state: TradingState,
    /// Current equity (USDT, every balance marked at mid).
    pub equity: Option<Money>,
    /// Equity at today's 00:00 UTC (the first sample of today); `None` if not known for today.
    pub day_start_equity: Option<Money>,
    pub high_water_mark: Option<Money>,
    /// False when the engine's P&L computation failed: entries fail closed.
    pub pnl_ok: bool,
    /// Entry tickets sent today.
    pub entries: DailyCount,
    /// crbot's own position quantity per symbol (from its fills).
    pub positions: BTreeMap<Symbol, Qty>,
    /// Base quantity per symbol that crbot's own open sells (exits, protective legs) already
    /// hold: a new exit may sell only the position less this, or it would be paid from the
    /// user's own coins while those sells still take crbot's.
    pub held_by_open_sells: BTreeMap<Symbol, Qty>,
    /// Symbols with an open entry order.
    pub open_entry_orders: BTreeSet<Symbol>,
    pub quotes: BTreeMap<Symbol, Quote>,
    pub rules: BTreeMap<Symbol, SymbolRules>,
    pub balances: BTreeMap<Asset, Balance>,
    /// The user explicitly confirmed this exit (required while halted).
    pub exit_confirmed: bool,
    /// The user selected external holdings for this sell (it may exceed crbot's position).
    pub sell_external: bool,
}

/// P&L figures derived from the context, or why they are unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PnlFigures {
    pub equity: Decimal,
    pub day_start: Decimal,
    pub hwm: Decimal,
    pub day_pnl: Decimal,
    pub day_pnl_pct: Decimal,
    pub drawdown_pct: Decimal,
}

impl PnlFigures {
    pub(crate) fn from_context(ctx: &RiskContext) -> Result<PnlFigures, String> {
        if !ctx.pnl_ok {
            return Err("the P&L computation failed".to_string());
        }
        let usdt = Asset::usdt();
        let get = |name: &str, m: &Option<Money>| -> Result<Decimal, String> {
            match m {
                None => Err(format!("{name} is unknown")),
                Some(m) if m.asset != usdt => Err(format!("{name} is in {}, not USDT", m.asset)),
                Some(m) if m.amount.is_sign_negative() && !m.amount.is_zero() => {
                    Err(format!("{name} is negative ({})", plain(m.amount)))
                }
                Some(m) => Ok(m.amount),
            }
        };
        let equity = get("equity", &ctx.equity)?;
        let day_start = get("day-start equity", &ctx.day_start_equity)?;
        let hwm = get("high-water mark", &ctx.high_water_mark)?.max(equity);
        if day_start.is_zero() || hwm.is_zero() {
            return Err("day-start equity or high-water mark is zero".to_string());
        }
        let overflow = || "P&L arithmetic overflowed".to_string();
        let day_pnl = equity.checked_sub(day_start).ok_or_else(overflow)?;
        let day_pnl_pct = day_pnl
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|v| v.checked_div(day_start))
            .ok_or_else(overflow)?;
        let drawdown_pct = (hwm - equity)
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|v| v.checked_div(hwm))
            .ok_or_else(overflow)?;
        Ok(PnlFigures {
            equity,
            day_start,
            hwm,
            day_pnl,
            day_pnl_pct,
            drawdown_pct,
        })
    }
}

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
    #[error("INSUFFICIENT_BALANCE: needs {} {asset} ({what}); free {} {asset}", plain(*.needed), plain(*.free))]
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
}

fn pct_text(p: &Option<Decimal>) -> String {
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
        }
    }
}

/// A value the risk gate approved. Only this module can build one, and it is not `Clone`: one
/// approval sends one order.
#[derive(Debug, PartialEq, Eq)]
pub struct RiskApproved<T> {
    inner: T,
    approved_at_ms: i64,
}

impl<T> RiskApproved<T> {
    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn approved_at_ms(&self) -> i64 {
        self.approved_at_ms
    }
}

impl<T> Deref for RiskApproved<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

/// The exact (rounded) values that would be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedOrder {
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    /// GTC for a limit order.
    pub time_in_force: Option<TimeInForce>,
    /// Rounded down to the lot step.
    pub qty: Qty,
    /// The limit price rounded to the tick (buy down, sell up).
    pub price: Option<Price>,
    /// Entries only: rounded toward the entry.
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub is_entry: bool,
    /// The price the order was valued at (limit price, or ask/bid for a market order).
    pub reference_price: Option<Price>,
    /// Quote-asset notional at `reference_price`; `None` for a market exit without a quote.
    pub notional: Option<Notional>,
    /// Taker fee estimate in the quote asset.
    pub est_fee: Option<Money>,
}

impl ApprovedOrder {
    /// The entry or exit order itself (protective orders are built by the caller from
    /// `stop_loss` / `take_profit`).
    pub fn to_request(&self, client_order_id: ClientOrderId) -> OrderRequest {
        OrderRequest {
            symbol: self.symbol.clone(),
            side: self.side,
            order_type: self.order_type,
            time_in_force: self.time_in_force,
            qty: self.qty,
            price: self.price,
            stop_price: None,
            client_order_id,
        }
    }
}

/// A rule, as listed in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    State,
    Pnl,
    Quote,
    Symbol,
    Filter,
    FatFinger,
    Balance,
    Position,
    PositionSize,
    DailyLoss,
    Drawdown,
    TradesPerDay,
    RiskReward,
    DuplicatePosition,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::State,
        Rule::Pnl,
        Rule::Quote,
        Rule::Symbol,
        Rule::Filter,
        Rule::FatFinger,
        Rule::Balance,
        Rule::Position,
        Rule::PositionSize,
        Rule::DailyLoss,
        Rule::Drawdown,
        Rule::TradesPerDay,
        Rule::RiskReward,
        Rule::DuplicatePosition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::State => "STATE",
            Rule::Pnl => "PNL",
            Rule::Quote => "QUOTE",
            Rule::Symbol => "SYMBOL",
            Rule::Filter => "FILTER",
            Rule::FatFinger => "FAT_FINGER",
            Rule::Balance => "BALANCE",
            Rule::Position => "POSITION",
            Rule::PositionSize => "POSITION_SIZE",
            Rule::DailyLoss => "DAILY_LOSS",
            Rule::Drawdown => "DRAWDOWN",
            Rule::TradesPerDay => "TRADES_PER_DAY",
            Rule::RiskReward => "RISK_REWARD",
            Rule::DuplicatePosition => "DUPLICATE_POSITION",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of the live ticket view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule: Rule,
    /// The denial's code when it failed with one, else the rule's name.
    pub code: &'static str,
    pub passed: bool,
    pub detail: String,
    /// The denial this line contributes to [`check`] (none for a pass, and none for a rule
    /// that could not be evaluated because another line already failed on the missing input).
    pub denial: Option<Denial>,
}

/// The pre-trade check: the approved, rounded order, or every violation.
pub fn check(
    limits: &Limits,
    ctx: &RiskContext,
    ticket: &Ticket,
    now_ms: i64,
) -> Result<RiskApproved<ApprovedOrder>, Vec<Denial>> {
    let (outcomes, order) = evaluate(limits, ctx, ticket, now_ms);
    if outcomes.iter().all(|o| o.passed) {
        return Ok(RiskApproved {
            inner: order,
            approved_at_ms: now_ms,
        });
    }
    let denials: Vec<Denial> = outcomes.into_iter().filter_map(|o| o.denial).collect();
    // Unreachable by construction (a not-checked line always has a failing cause), but a
    // failure must never turn into an approval.
    if denials.is_empty() {
        return Err(vec![Denial::PnlUnavailable {
            reason: "a rule could not be evaluated".to_string(),
        }]);
    }
    Err(denials)
}

/// Every rule with pass/fail and its numbers, for the live ticket view. Agrees with [`check`]:
/// `check` fails exactly when a line here failed, with the denials of these lines.
pub fn report(limits: &Limits, ctx: &RiskContext, ticket: &Ticket, now_ms: i64) -> Vec<RuleOutcome> {
    evaluate(limits, ctx, ticket, now_ms).0
}

enum QuoteState {
    Fresh(Quote),
    Missing,
    Stale(i64),
    Bad(Quote),
}

fn quote_state(limits: &Limits, ctx: &RiskContext, symbol: &Symbol, now_ms: i64) -> QuoteState {
    let Some(q) = ctx.quotes.get(symbol) else {
        return QuoteState::Missing;
    };
    if q.bid.is_zero() || q.ask.is_zero() || q.bid > q.ask {
        return QuoteState::Bad(*q);
    }
    let age = now_ms.saturating_sub(q.time_ms);
    if age.saturating_abs() > limits.max_quote_age_ms {
        return QuoteState::Stale(age);
    }
    QuoteState::Fresh(*q)
}

struct Outcomes(Vec<RuleOutcome>);

impl Outcomes {
    fn pass(&mut self, rule: Rule, detail: impl Into<String>) {
        self.0.push(RuleOutcome {
            rule,
            code: rule.name(),
            passed: true,
            detail: detail.into(),
            denial: None,
        });
    }

    fn fail(&mut self, rule: Rule, denial: Denial) {
        self.0.push(RuleOutcome {
            rule,
            code: denial.code(),
            passed: false,
            detail: denial.to_string(),
            denial: Some(denial),
        });
    }

    /// A rule that cannot be evaluated; its missing input fails on its own line.
    fn not_checked(&mut self, rule: Rule, why: &str) {
        self.0.push(RuleOutcome {
            rule,
            code: rule.name(),
            passed: false,
            detail: format!("{}: not checked: {why}", rule.name()),
            denial: None,
        });
    }

    fn exit_na(&mut self, rule: Rule) {
        self.pass(rule, format!("{}: does not apply to an exit", rule.name()));
    }

    fn entry_na(&mut self, rule: Rule) {
        self.pass(rule, format!("{}: does not apply to an entry", rule.name()));
    }
}

/// True when a position is too small for any order to sell it ([`crate::portfolio::is_dust`]:
/// below the lot step or minimum, or below the minimum notional at the mid).
fn is_dust(rules: Option<&SymbolRules>, qty: Qty, quote: Option<&Quote>) -> bool {
    if qty.is_zero() {
        return true;
    }
    let Some(r) = rules else { return false };
    crate::portfolio::is_dust(qty, r, quote.map(Quote::mid))
}

fn evaluate(
    limits: &Limits,
    ctx: &RiskContext,
    ticket: &Ticket,
    now_ms: i64,
) -> (Vec<RuleOutcome>, ApprovedOrder) {
    let mut out = Outcomes(Vec::with_capacity(Rule::ALL.len()));
    let is_entry = ticket.side == Side::Buy;
    let symbol = &ticket.symbol;
    let rules = ctx.rules.get(symbol);
    let order_type = ticket.order_type();
    let qty = rules.map_or(ticket.qty, |r| r.round_qty(order_type, ticket.qty));
    let price = ticket
        .limit_price()
        .map(|p| rules.map_or(p, |r| r.round_price(ticket.side, p)));
    let quote = quote_state(limits, ctx, symbol, now_ms);
    let fresh = match quote {
        QuoteState::Fresh(q) => Some(q),
        _ => None,
    };
    let touch = |q: Quote| match ticket.side {
        Side::Buy => q.ask,
        Side::Sell => q.bid,
    };
    let reference = match ticket.kind {
        TicketKind::Market => fresh.map(touch),
        TicketKind::Limit { .. } => price,
    };
    let notional = reference.and_then(|p| p.notional(qty));
    let quote_asset = rules.map_or_else(Asset::usdt, |r| r.quote_asset.clone());
    let fee = notional.and_then(|n| {
        let v = n.value().checked_mul(limits.taker_fee_pct)? / Decimal::ONE_HUNDRED;
        Some(Money::new(v, quote_asset.clone()))
    });
    // Stop-loss and take-profit rounded toward the entry: risk and reward never grow.
    let (stop_loss, take_profit) = if is_entry {
        (
            ticket
                .stop_loss
                .map(|p| rules.map_or(p, |r| r.round_price(Side::Sell, p))),
            ticket
                .take_profit
                .map(|p| rules.map_or(p, |r| r.round_price(Side::Buy, p))),
        )
    } else {
        (None, None)
    };
    let figures = PnlFigures::from_context(ctx);

    // STATE
    match &ctx.state {
        TradingState::Active => out.pass(Rule::State, "STATE: ACTIVE, all orders allowed"),
        TradingState::Reducing { reason, .. } => {
            if is_entry {
                out.fail(
                    Rule::State,
                    Denial::StateReducing {
                        reason: reason.clone(),
                    },
                );
            } else {
                out.pass(Rule::State, "STATE: REDUCING, exits allowed");
            }
        }
        TradingState::Halted { reason, .. } => {
            if !is_entry && ctx.exit_confirmed {
                out.pass(Rule::State, "STATE: HALTED, exit confirmed by the user");
            } else {
                out.fail(
                    Rule::State,
                    Denial::StateHalted {
                        reason: reason.clone(),
                        exit: !is_entry,
                    },
                );
            }
        }
    }

    // PNL
    match (&figures, is_entry) {
        (_, false) => out.exit_na(Rule::Pnl),
        (Ok(f), true) => out.pass(
            Rule::Pnl,
            format!(
                "PNL: equity {} USDT, today {}%, drawdown {}%",
                f2(&f.equity),
                f2(&f.day_pnl_pct),
                f2(&f.drawdown_pct)
            ),
        ),
        (Err(reason), true) => out.fail(
            Rule::Pnl,
            Denial::PnlUnavailable {
                reason: reason.clone(),
            },
        ),
    }

    // QUOTE
    match (&quote, is_entry) {
        (QuoteState::Fresh(q), _) => out.pass(
            Rule::Quote,
            format!(
                "QUOTE: bid {} ask {}, {} ms old",
                q.bid,
                q.ask,
                now_ms.saturating_sub(q.time_ms)
            ),
        ),
        (_, false) => out.pass(
            Rule::Quote,
            "QUOTE: no fresh quote; an exit is not blocked by it (price checks skipped)",
        ),
        (QuoteState::Missing, true) => out.fail(
            Rule::Quote,
            Denial::NoQuote {
                symbol: symbol.clone(),
            },
        ),
        (QuoteState::Bad(q), true) => out.fail(
            Rule::Quote,
            Denial::BadQuote {
                symbol: symbol.clone(),
                bid: q.bid,
                ask: q.ask,
            },
        ),
        (QuoteState::Stale(age), true) => out.fail(
            Rule::Quote,
            Denial::StaleQuote {
                symbol: symbol.clone(),
                age_ms: *age,
                max_ms: limits.max_quote_age_ms,
            },
        ),
    }

    // SYMBOL
    match rules {
        Some(r) => out.pass(Rule::Symbol, format!("SYMBOL: {} ({})", r.symbol, r.status)),
        None => out.fail(
            Rule::Symbol,
            Denial::UnknownSymbol {
                symbol: symbol.clone(),
            },
        ),
    }

    // FILTER (on the rounded order)
    match rules {
        None => out.not_checked(Rule::Filter, "no exchange rules"),
        Some(r) => {
            let request = OrderRequest {
                symbol: symbol.clone(),
                side: ticket.side,
                order_type,
                time_in_force: price.map(|_| TimeInForce::Gtc),
                qty,
                price,
                stop_price: None,
                client_order_id: ClientOrderId::generate(now_ms, 0),
            };
            let filter_ref = match ticket.kind {
                TicketKind::Market => reference,
                TicketKind::Limit { .. } => fresh.map(|q| q.mid()),
            };
            let mut any = false;
            if qty.is_zero() {
                any = true;
                let step = r.lot_for(order_type).map_or(Decimal::ZERO, |l| l.step_size);
                out.fail(
                    Rule::Filter,
                    Denial::ZeroQuantity {
                        typed: ticket.qty,
                        step,
                    },
                );
            }
            for failure in r.check(&request, filter_ref) {
                any = true;
                out.fail(Rule::Filter, Denial::Filter(failure));
            }
            if !any {
                let p = price.map_or_else(|| "market".to_string(), |p| p.to_string());
                out.pass(
                    Rule::Filter,
                    format!("FILTER: quantity {qty} at {p} passes every filter"),
                );
            }
        }
    }

    // FAT_FINGER
    match (price, fresh) {
        (None, _) => out.pass(Rule::FatFinger, "FAT_FINGER: does not apply to a market order"),
        (Some(_), None) if is_entry => out.not_checked(Rule::FatFinger, "no fresh quote"),
        (Some(_), None) => out.pass(
            Rule::FatFinger,
            "FAT_FINGER: skipped for an exit without a fresh quote",
        ),
        (Some(p), Some(q)) => {
            let r = touch(q);
            let side_name = if ticket.side == Side::Buy { "ask" } else { "bid" };
            let deviation = pct_of((p.value() - r.value()).abs(), r.value()).unwrap_or(Decimal::MAX);
            if deviation > limits.fat_finger_pct {
                out.fail(
                    Rule::FatFinger,
                    Denial::FatFinger {
                        price: p,
                        reference: r,
                        reference_side: side_name,
                        deviation_pct: deviation,
                        limit_pct: limits.fat_finger_pct,
                    },
                );
            } else {
                out.pass(
                    Rule::FatFinger,
                    format!(
                        "FAT_FINGER: {p} is {}% from the {side_name} {r}; limit {}%",
                        f2(&deviation),
                        f2(&limits.fat_finger_pct)
                    ),
                );
            }
        }
    }

    // BALANCE
    let free_of = |asset: &Asset| ctx.balances.get(asset).map_or(Decimal::ZERO, |b| b.free.value());
    match ticket.side {
        Side::Buy => match (notional, &fee) {
            (Some(n), Some(f)) => {
                let needed = n.value().checked_add(f.amount).unwrap_or(Decimal::MAX);
                let free = free_of(&quote_asset);
                let what = format!(
                    "notional {} + estimated fee {}",
                    plain(n.value()),
                    plain(f.amount)
                );
                if free < needed {
                    out.fail(
                        Rule::Balance,
                        Denial::InsufficientBalance {
                            asset: quote_asset.clone(),
                            needed,
                            free,
                            what,
                        },
                    );
                } else {
                    out.pass(
                        Rule::Balance,
                        format!(
                            "BALANCE: needs {} {quote_asset} ({what}); free {}",
                            plain(needed),
                            plain(free)
                        ),
                    );
                }
            }
            _ => out.not_checked(Rule::Balance, "no price to value the ticket"),
        },
        Side::Sell => match rules {
            None => out.not_checked(Rule::Balance, "no exchange rules (base asset unknown)"),
            Some(r) => {
                let free = free_of(&r.base_asset);
                if free < qty.value() {
                    out.fail(
                        Rule::Balance,
                        Denial::InsufficientBalance {
                            asset: r.base_asset.clone(),
                            needed: qty.value(),
                            free,
                            what: "quantity to sell".to_string(),
                        },
                    );
                } else {
                    out.pass(
                        Rule::Balance,
                        format!("BALANCE: sells {qty} {}; free {}", r.base_asset, plain(free)),
                    );
                }
            }
        },
    }

    // POSITION (exits cannot go short, nor sell what crbot's own open sells already hold)
    let position = ctx.positions.get(symbol).copied().unwrap_or(Qty::ZERO);
    let held = ctx.held_by_open_sells.get(symbol).copied().unwrap_or(Qty::ZERO);
    let unheld = position.saturating_sub(held);
    let held_note = if held.is_zero() {
        String::new()
    } else {
        format!(" ({held} of {position} held by its open sells)")
    };
    if is_entry {
        out.entry_na(Rule::Position);
    } else if qty <= unheld {
        out.pass(
            Rule::Position,
            format!("POSITION: sells {qty} of crbot's {unheld}{held_note}"),
        );
    } else if ctx.sell_external {
        out.pass(
            Rule::Position,
            format!(
                "POSITION: sells {qty}: crbot's {unheld}{held_note} and {} external (selected)",
                qty.saturating_sub(unheld)
            ),
        );
    } else {
        out.fail(
            Rule::Position,
            Denial::NoPosition {
                symbol: symbol.clone(),
                qty,
                position: unheld,
            },
        );
    }

    // POSITION_SIZE
    if !is_entry {
        out.exit_na(Rule::PositionSize);
    } else {
        match (&figures, notional) {
            (Err(_), _) => out.not_checked(Rule::PositionSize, "equity unavailable"),
            (_, None) => out.not_checked(Rule::PositionSize, "no price to value the ticket"),
            (Ok(f), Some(n)) => match notional_in_usdt(limits, ctx, &quote_asset, n, now_ms) {
                Err(denial) => out.fail(Rule::PositionSize, denial),
                Ok(value) => {
                    let limit_value = smul(f.equity, limits.max_position_size_pct);
                    let pct = pct_of(value, f.equity);
                    if smul(value, Decimal::ONE_HUNDRED) > limit_value {
                        out.fail(
                            Rule::PositionSize,
                            Denial::PositionSize {
                                notional: value,
                                equity: f.equity,
                                pct,
                                limit_pct: limits.max_position_size_pct,
                            },
                        );
                    } else {
                        out.pass(
                            Rule::PositionSize,
                            format!(
                                "POSITION_SIZE: notional {} USDT is {} of equity {} USDT; limit {}%",
                                f2(&value),
                                pct_text(&pct),
                                f2(&f.equity),
                                f2(&limits.max_position_size_pct)
                            ),
                        );
                    }
                }
            },
        }
    }

    // DAILY_LOSS and DRAWDOWN
    if !is_entry {
        out.exit_na(Rule::DailyLoss);
        out.exit_na(Rule::Drawdown);
    } else {
        match &figures {
            Err(_) => {
                out.not_checked(Rule::DailyLoss, "P&L unavailable");
                out.not_checked(Rule::Drawdown, "P&L unavailable");
            }
            Ok(f) => {
                // Exact comparisons by cross-multiplying: reaching the limit fails.
                let loss = f.day_start - f.equity;
                if smul(loss, Decimal::ONE_HUNDRED) >= smul(limits.max_daily_loss_pct, f.day_start) {
                    out.fail(
                        Rule::DailyLoss,
                        Denial::DailyLoss {
                            day_pnl: f.day_pnl,
                            day_pnl_pct: f.day_pnl_pct,
                            day_start: f.day_start,
                            limit_pct: limits.max_daily_loss_pct,
                        },
                    );
                } else {
                    out.pass(
                        Rule::DailyLoss,
                        format!(
                            "DAILY_LOSS: today {}% ({} USDT); limit -{}%",
                            f2(&f.day_pnl_pct),
                            f2(&f.day_pnl),
                            f2(&limits.max_daily_loss_pct)
                        ),
                    );
                }
                if smul(f.hwm - f.equity, Decimal::ONE_HUNDRED) >= smul(limits.max_drawdown_pct, f.hwm) {
                    out.fail(
                        Rule::Drawdown,
                        Denial::Drawdown {
                            equity: f.equity,
                            hwm: f.hwm,
                            drawdown_pct: f.drawdown_pct,
                            limit_pct: limits.max_drawdown_pct,
                        },
                    );
                } else {
                    out.pass(
                        Rule::Drawdown,
                        format!(
                            "DRAWDOWN: {}% below the high-water mark {} USDT; limit {}%",
                            f2(&f.drawdown_pct),
                            f2(&f.hwm),
                            f2(&limits.max_drawdown_pct)
                        ),
                    );
                }
            }
        }
    }

    // TRADES_PER_DAY
    if !is_entry {
        out.exit_na(Rule::TradesPerDay);
    } else {
        let used = ctx.entries.count_on(now_ms);
        let limit = limits.max_trades_per_day;
        if used >= limit {
            out.fail(Rule::TradesPerDay, Denial::TradesPerDay { used, limit });
        } else {
            out.pass(
                Rule::TradesPerDay,
                format!(
                    "TRADES_PER_DAY: this is entry {} of {limit} today (UTC)",
                    used + 1
                ),
            );
        }
    }

    // RISK_REWARD
    if !is_entry {
        if ticket.stop_loss.is_some() || ticket.take_profit.is_some() {
            out.fail(Rule::RiskReward, Denial::BracketOnExit);
        } else {
            out.exit_na(Rule::RiskReward);
        }
    } else {
        let before = out.0.len();
        if stop_loss.is_none() {
            out.fail(Rule::RiskReward, Denial::MissingStopLoss);
        }
        if take_profit.is_none() {
            out.fail(Rule::RiskReward, Denial::MissingTakeProfit);
        }
        match (reference, stop_loss, take_profit) {
            (None, _, _) => out.not_checked(Rule::RiskReward, "no entry price (no fresh quote)"),
            (Some(entry), sl, tp) => {
                if let Some(sl) = sl
                    && sl >= entry
                {
                    out.fail(Rule::RiskReward, Denial::StopLossSide { stop_loss: sl, entry });
                }
                if let Some(tp) = tp
                    && tp <= entry
                {
                    out.fail(
                        Rule::RiskReward,
                        Denial::TakeProfitSide {
                            take_profit: tp,
                            entry,
                        },
                    );
                }
                if let (Some(sl), Some(tp)) = (sl, tp)
                    && sl < entry
                    && tp > entry
                {
                    let risk = entry.value() - sl.value();
                    let reward = tp.value() - entry.value();
                    let ratio = reward.checked_div(risk).unwrap_or(Decimal::MAX);
                    if reward < smul(limits.min_risk_reward, risk) {
                        out.fail(
                            Rule::RiskReward,
                            Denial::RiskReward {
                                entry,
                                stop_loss: sl,
                                take_profit: tp,
                                reward,
                                risk,
                                ratio,
                                min: limits.min_risk_reward,
                            },
                        );
                    } else if out.0.len() == before {
                        out.pass(
                            Rule::RiskReward,
                            format!(
                                "RISK_REWARD: reward {} ÷ risk {} = {}; minimum {}",
                                f2(&reward),
                                f2(&risk),
                                f2(&ratio),
                                f2(&limits.min_risk_reward)
                            ),
                        );
                    }
                }
            }
        }
    }

    // DUPLICATE_POSITION
    if !is_entry {
        out.exit_na(Rule::DuplicatePosition);
    } else {
        let dust = !position.is_zero() && is_dust(rules, position, ctx.quotes.get(symbol));
        let open_position = !position.is_zero() && !dust;
        let open_order = ctx.open_entry_orders.contains(symbol);
        if open_position || open_order {
            out.fail(
                Rule::DuplicatePosition,
                Denial::DuplicatePosition {
                    symbol: symbol.clone(),
                    position_qty: if open_position { position } else { Qty::ZERO },
                    open_entry_order: open_order,
                },
            );
        } else if dust {
            out.pass(
                Rule::DuplicatePosition,
                format!(
                    "DUPLICATE_POSITION: crbot's {position} on this symbol is dust (too small to sell); no entry order"
                ),
            );
        } else {
            out.pass(
                Rule::DuplicatePosition,
                "DUPLICATE_POSITION: no open position or entry order on this symbol",
            );
        }
    }

    let order = ApprovedOrder {
        symbol: symbol.clone(),
        side: ticket.side,
        order_type,
        time_in_force: price.map(|_| TimeInForce::Gtc),
        qty,
        price,
        stop_loss,
        take_profit,
        is_entry,
        reference_price: reference,
        notional,
        est_fee: fee,
    };
    (out.0, order)
}

/// The ticket's notional in USDT: as is for a USDT-quoted symbol, else converted at the mid of
/// a fresh `<QUOTE>USDT` quote (no fresh quote → the entry fails closed).
fn notional_in_usdt(
    limits: &Limits,
    ctx: &RiskContext,
    quote_asset: &Asset,
    notional: Notional,
    now_ms: i64,
) -> Result<Decimal, Denial> {
    let usdt = Asset::usdt();
    if *quote_asset == usdt {
        return Ok(notional.value());
    }
    let conv = Symbol::new(&format!("{quote_asset}{usdt}")).map_err(|_| Denial::PnlUnavailable {
        reason: format!("{quote_asset} cannot be valued in USDT"),
    })?;
    match quote_state(limits, ctx, &conv, now_ms) {
        QuoteState::Fresh(q) => Ok(smul(notional.value(), q.mid().value())),
        QuoteState::Missing => Err(Denial::NoQuote { symbol: conv }),
        QuoteState::Bad(q) => Err(Denial::BadQuote {
            symbol: conv,
            bid: q.bid,
            ask: q.ask,
        }),
        QuoteState::Stale(age) => Err(Denial::StaleQuote {
            symbol: conv,
            age_ms: age,
            max_ms: limits.max_quote_age_ms,
        }),
    }
}

#[cfg(test)]
mod tests;
