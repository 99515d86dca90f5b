//! The pre-trade risk gate: every ticket passes [`check`] before the broker may see it.
//!
//! Owns: the risk rules (README "Safety") as a pure function of (limits, context, ticket, now), the
//! typed [`Denial`]s with stable codes, the [`RiskApproved`] wrapper that only this module can
//! build, the live [`report`] for the ticket view, the trading state machine ([`state`]) and
//! the limits with their change protocol ([`limits`]), the only ways to a risk-approved order
//! request ([`RiskApproved::into_request`], [`approve_protection`], [`approve_reduction`]) and
//! the [`Broker`] trait whose send path takes nothing else. Must not: do I/O, read a clock, keep
//! state between calls, or send anything.
//!
//! Layout: `context` derives once per ticket the facts every rule reads (the rounded order, the
//! quote's verdict, the valuation, the P&L figures); `rules` holds one function per rule and
//! [`RULES`], the table [`check`] and [`report`] walk; `denial` holds the [`Denial`]s; `broker`
//! holds the [`Broker`] trait.
//!
//! # Words
//! * **Entry**: a buy (spot is long only: a buy opens or adds to a position).
//! * **Exit**: a sell. It may sell at most crbot's position on the symbol
//!   ([`RiskContext::positions`]) less what crbot's own open sells already hold
//!   ([`RiskContext::held_by_open_sells`]); selling beyond it (external holdings) is refused with
//!   `NO_POSITION` unless the user selected external holdings for this ticket
//!   ([`RiskContext::sell_external`]).
//!
//! # The rules (the rows of [`RULES`], in order; every one is evaluated, [`check`] returns *all* violations)
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

mod broker;
mod context;
mod denial;
pub mod limits;
mod rules;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::broker::OcoRequest;
use crate::domain::{
    Asset, Balance, ClientOrderId, Money, Notional, OrderRequest, OrderType, Price, Qty, Quote, Side, Symbol,
    SymbolRules, Ticket, TimeInForce,
};
pub use broker::Broker;
use context::Facts;
pub(crate) use context::PnlFigures;
pub use denial::Denial;
use rules::Finding;
pub use rules::{RULES, Rule, RuleSpec};

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

/// A value the risk gate approved. Only this module can build one, and it is not `Clone`: one
/// approval sends one order.
///
/// Its fields are private and it has no constructor, so code outside `risk` cannot forge one:
///
/// ```compile_fail,E0451
/// let forged = crbot::risk::RiskApproved { inner: 1_u8, approved_at_ms: 0 };
/// ```
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

impl RiskApproved<ApprovedOrder> {
    /// The order an approved ticket sends, under `client_order_id`: the approval carries over
    /// (same time), and is used up, so one approval still sends one order.
    pub fn into_request(self, client_order_id: ClientOrderId) -> RiskApproved<OrderRequest> {
        RiskApproved {
            inner: self.inner.to_request(client_order_id),
            approved_at_ms: self.approved_at_ms,
        }
    }
}

/// Approves a protective OCO: it may sell at most `held`, crbot's position on the symbol less
/// what its own open sells already hold, so protection never covers the user's own coins or
/// sells a coin twice. The OCO has no side (it always sells), so a buy cannot be asked for.
/// The quantity and prices were rounded by the caller; this check is the last word before the
/// exchange, and a refusal is a bug upstream.
pub fn approve_protection(
    oco: OcoRequest,
    held: Qty,
    now_ms: i64,
) -> Result<RiskApproved<OcoRequest>, Denial> {
    if oco.qty > held {
        return Err(Denial::NoPosition {
            symbol: oco.symbol.clone(),
            qty: oco.qty,
            position: held,
        });
    }
    Ok(RiskApproved {
        inner: oco,
        approved_at_ms: now_ms,
    })
}

/// Approves a reduction (an exit or close, the kill switch's flatten): a sell of at most
/// `held`, crbot's position on the symbol less what its own open sells hold. A buy is refused
/// (`NOT_A_REDUCTION`), and so is a sell of more than is held (`NO_POSITION`).
pub fn approve_reduction(
    request: OrderRequest,
    held: Qty,
    now_ms: i64,
) -> Result<RiskApproved<OrderRequest>, Denial> {
    if request.side != Side::Sell {
        return Err(Denial::NotAReduction {
            symbol: request.symbol.clone(),
            side: request.side,
        });
    }
    if request.qty > held {
        return Err(Denial::NoPosition {
            symbol: request.symbol.clone(),
            qty: request.qty,
            position: held,
        });
    }
    Ok(RiskApproved {
        inner: request,
        approved_at_ms: now_ms,
    })
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
    let (outcomes, order) = evaluate(limits, ctx, ticket, now_ms, false);
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
    evaluate(limits, ctx, ticket, now_ms, true).0
}

/// Walks [`RULES`] over the facts of one ticket: every rule's lines, in the table's order, and
/// the order that would be sent. Without `explain` the lines carry no text (the verdict and the
/// denials are the same).
fn evaluate(
    limits: &Limits,
    ctx: &RiskContext,
    ticket: &Ticket,
    now_ms: i64,
    explain: bool,
) -> (Vec<RuleOutcome>, ApprovedOrder) {
    let mut facts = Facts::new(limits, ctx, ticket, now_ms);
    facts.explain = explain;
    let outcomes = RULES
        .iter()
        .flat_map(|spec| {
            (spec.check)(&facts)
                .into_iter()
                .map(|finding| outcome(spec, finding, explain))
        })
        .collect();
    (outcomes, facts.order())
}

/// A rule's finding as a line of the report (its text only when `explain`).
fn outcome(spec: &RuleSpec, finding: Finding, explain: bool) -> RuleOutcome {
    let line = |passed: bool, detail: String| RuleOutcome {
        rule: spec.rule,
        code: spec.code,
        passed,
        detail,
        denial: None,
    };
    match finding {
        Finding::Pass(detail) => line(true, detail),
        Finding::Fail(denial) => RuleOutcome {
            rule: spec.rule,
            code: denial.code(),
            passed: false,
            detail: if explain {
                denial.to_string()
            } else {
                String::new()
            },
            denial: Some(denial),
        },
        _ if !explain => line(!matches!(finding, Finding::NotChecked(_)), String::new()),
        Finding::NotChecked(why) => line(false, format!("{}: not checked: {why}", spec.code)),
        Finding::NotForExit => line(true, format!("{}: does not apply to an exit", spec.code)),
        Finding::NotForEntry => line(true, format!("{}: does not apply to an entry", spec.code)),
    }
}

#[cfg(test)]
mod tests;
