//! The rulebook: one function per risk rule, and [`RULES`], the table `evaluate` walks.
//!
//! Owns: each rule's decision on a ticket, written as a function of the shared [`Facts`] that
//! returns its [`Finding`]s, and the table that gives every rule its stable code, a one-line
//! title and its place in the order of the report. The order is the report's order (and the
//! order of the denials [`super::check`] returns), so a rule is added by writing its function
//! and one row here: the ticket preview, `crbot order --dry-run` and the journal then list it.
//! Must not: read anything but the facts (no I/O, no clock), skip a rule for an entry when an
//! input is missing (it fails as "not checked", closed), or depend on another rule's result:
//! every rule is evaluated and every violation is reported.

use std::fmt;

use rust_decimal::Decimal;

use super::context::{Facts, QuoteState, is_dust};
use super::denial::{balance_pair, pct_text};
use super::{Denial, TradingState, f2, pct_of, smul};
use crate::domain::{ClientOrderId, OrderRequest, Qty, Side, TicketKind, TimeInForce, display_fixed};

/// A rule, as listed in the report. The discriminant is the rule's row in [`RULES`].
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
    /// Every rule, in the order of the report.
    pub const ALL: [Rule; RULES.len()] = {
        let mut all = [Rule::State; RULES.len()];
        let mut i = 0;
        while i < RULES.len() {
            all[i] = RULES[i].rule;
            i += 1;
        }
        all
    };

    /// The rule's row in [`RULES`].
    pub fn spec(self) -> Option<&'static RuleSpec> {
        RULES.get(self as usize)
    }

    /// The rule's stable code (the report's name for it).
    pub fn name(self) -> &'static str {
        // Every variant has its row (checked when the crate compiles and by the tests); a
        // missing one would name itself rather than panic.
        self.spec().map_or("UNLISTED_RULE", |s| s.code)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule says about the ticket: one finding, or several when it finds several violations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Finding {
    /// The rule holds; the text shows the numbers.
    Pass(String),
    /// A violation: a denial [`super::check`] returns.
    Fail(Denial),
    /// The rule cannot be evaluated for lack of an input, and that input fails on its own line
    /// (so this line fails without a denial of its own).
    NotChecked(&'static str),
    /// The rule is about entries and the ticket is an exit.
    NotForExit,
    /// The rule is about exits and the ticket is an entry.
    NotForEntry,
}

/// A passing rule's line; its text is written only when the facts are to be explained.
fn pass(f: &Facts<'_>, detail: impl FnOnce() -> String) -> Finding {
    Finding::Pass(if f.explain { detail() } else { String::new() })
}

/// One row of the rulebook.
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec {
    pub rule: Rule,
    /// The stable code of the rule's report line (a failure carries its denial's code).
    pub code: &'static str,
    /// What the rule requires, in one line.
    pub title: &'static str,
    pub(super) check: fn(&Facts<'_>) -> Vec<Finding>,
}

/// Every rule, in the order they are evaluated and reported.
pub const RULES: &[RuleSpec] = &[
    RuleSpec {
        rule: Rule::State,
        code: "STATE",
        title: "the trading state allows the order (reducing: exits only; halted: confirmed exits only)",
        check: state,
    },
    RuleSpec {
        rule: Rule::Pnl,
        code: "PNL",
        title: "an entry needs the P&L: equity, day-start equity and high-water mark known, in USDT",
        check: pnl,
    },
    RuleSpec {
        rule: Rule::Quote,
        code: "QUOTE",
        title: "an entry needs a usable quote no older than the quote-age limit",
        check: quote,
    },
    RuleSpec {
        rule: Rule::Symbol,
        code: "SYMBOL",
        title: "the exchange has rules for the symbol",
        check: symbol,
    },
    RuleSpec {
        rule: Rule::Filter,
        code: "FILTER",
        title: "the rounded order passes every exchange filter",
        check: filter,
    },
    RuleSpec {
        rule: Rule::FatFinger,
        code: "FAT_FINGER",
        title: "a limit price stays within the band around the best ask (buy) or bid (sell)",
        check: fat_finger,
    },
    RuleSpec {
        rule: Rule::Balance,
        code: "BALANCE",
        title: "the free balance pays for the order (buy: notional and fee; sell: the quantity)",
        check: balance,
    },
    RuleSpec {
        rule: Rule::Position,
        code: "POSITION",
        title: "an exit sells at most crbot's position not held by its open sells, unless external holdings are selected",
        check: position,
    },
    RuleSpec {
        rule: Rule::PositionSize,
        code: "POSITION_SIZE",
        title: "an entry's notional is at most the position-size limit of equity",
        check: position_size,
    },
    RuleSpec {
        rule: Rule::DailyLoss,
        code: "DAILY_LOSS",
        title: "no entry once today's loss reaches the daily-loss limit",
        check: daily_loss,
    },
    RuleSpec {
        rule: Rule::Drawdown,
        code: "DRAWDOWN",
        title: "no entry once equity is the drawdown limit below its high-water mark",
        check: drawdown,
    },
    RuleSpec {
        rule: Rule::TradesPerDay,
        code: "TRADES_PER_DAY",
        title: "at most the daily number of entry tickets per UTC day",
        check: trades_per_day,
    },
    RuleSpec {
        rule: Rule::RiskReward,
        code: "RISK_REWARD",
        title: "an entry carries a stop-loss and a take-profit on the right sides, with reward ÷ risk at least the minimum",
        check: risk_reward,
    },
    RuleSpec {
        rule: Rule::DuplicatePosition,
        code: "DUPLICATE_POSITION",
        title: "no entry on a symbol with an open position or an open entry order",
        check: duplicate_position,
    },
];

// The table lists every rule once, at its variant's index: `Rule::spec` relies on it.
const _: () = {
    let mut i = 0;
    while i < RULES.len() {
        assert!(
            RULES[i].rule as usize == i,
            "RULES must list the rules in the order of `Rule`"
        );
        i += 1;
    }
    assert!(
        RULES.len() == Rule::DuplicatePosition as usize + 1,
        "every rule needs its row in RULES"
    );
};

fn state(f: &Facts<'_>) -> Vec<Finding> {
    let finding = match &f.ctx.state {
        TradingState::Active => pass(f, || "STATE: ACTIVE, all orders allowed".into()),
        TradingState::Reducing { reason, .. } if f.is_entry => Finding::Fail(Denial::StateReducing {
            reason: reason.clone(),
        }),
        TradingState::Reducing { .. } => pass(f, || "STATE: REDUCING, exits allowed".into()),
        TradingState::Halted { .. } if !f.is_entry && f.ctx.exit_confirmed => {
            pass(f, || "STATE: HALTED, exit confirmed by the user".into())
        }
        TradingState::Halted { reason, .. } => Finding::Fail(Denial::StateHalted {
            reason: reason.clone(),
            exit: !f.is_entry,
        }),
    };
    vec![finding]
}

fn pnl(f: &Facts<'_>) -> Vec<Finding> {
    let finding = match (&f.figures, f.is_entry) {
        (_, false) => Finding::NotForExit,
        (Ok(p), true) => pass(f, || {
            format!(
                "PNL: equity {} USDT, today {}%, drawdown {}%",
                f2(&p.equity),
                f2(&p.day_pnl_pct),
                f2(&p.drawdown_pct)
            )
        }),
        (Err(reason), true) => Finding::Fail(Denial::PnlUnavailable {
            reason: reason.clone(),
        }),
    };
    vec![finding]
}

/// Fail closed: no entry without a fresh, usable quote; an exit is never blocked by one.
fn quote(f: &Facts<'_>) -> Vec<Finding> {
    let symbol = f.symbol.clone();
    let finding = match (f.quote, f.is_entry) {
        (QuoteState::Fresh(q), _) => pass(f, || {
            format!(
                "QUOTE: bid {} ask {}, {} ms old",
                q.bid,
                q.ask,
                f.now_ms.saturating_sub(q.time_ms)
            )
        }),
        (_, false) => pass(f, || {
            "QUOTE: no fresh quote; an exit is not blocked by it (price checks skipped)".into()
        }),
        (QuoteState::Missing, true) => Finding::Fail(Denial::NoQuote { symbol }),
        (QuoteState::Bad(q), true) => Finding::Fail(Denial::BadQuote {
            symbol,
            bid: q.bid,
            ask: q.ask,
        }),
        (QuoteState::Stale(age), true) => Finding::Fail(Denial::StaleQuote {
            symbol,
            age_ms: age,
            max_ms: f.limits.max_quote_age_ms,
        }),
    };
    vec![finding]
}

fn symbol(f: &Facts<'_>) -> Vec<Finding> {
    let finding = match f.rules {
        Some(r) => pass(f, || format!("SYMBOL: {} ({})", r.symbol, r.status)),
        None => Finding::Fail(Denial::UnknownSymbol {
            symbol: f.symbol.clone(),
        }),
    };
    vec![finding]
}

/// The exchange filters, on the rounded order: what would be sent, not what was typed.
fn filter(f: &Facts<'_>) -> Vec<Finding> {
    let Some(r) = f.rules else {
        return vec![Finding::NotChecked("no exchange rules")];
    };
    let request = OrderRequest {
        symbol: f.symbol.clone(),
        side: f.ticket.side,
        order_type: f.order_type,
        time_in_force: f.price.map(|_| TimeInForce::Gtc),
        qty: f.qty,
        price: f.price,
        stop_price: None,
        client_order_id: ClientOrderId::generate(f.now_ms, 0),
    };
    // The price the notional filters value a market order at, and the one the percent-price
    // filter measures a limit order from.
    let filter_ref = match f.ticket.kind {
        TicketKind::Market => f.reference,
        TicketKind::Limit { .. } => f.fresh.map(|q| q.mid()),
    };
    let mut findings = Vec::new();
    if f.qty.is_zero() {
        let step = r.lot_for(f.order_type).map_or(Decimal::ZERO, |l| l.step_size);
        findings.push(Finding::Fail(Denial::ZeroQuantity {
            typed: f.ticket.qty,
            step,
        }));
    }
    findings.extend(
        r.check(&request, filter_ref)
            .into_iter()
            .map(|failure| Finding::Fail(Denial::Filter(failure))),
    );
    if findings.is_empty() {
        let p = f.price.map_or_else(|| "market".to_string(), |p| p.to_string());
        findings.push(pass(f, || {
            format!("FILTER: quantity {} at {p} passes every filter", f.qty)
        }));
    }
    findings
}

fn fat_finger(f: &Facts<'_>) -> Vec<Finding> {
    let finding = match (f.price, f.fresh) {
        (None, _) => pass(f, || "FAT_FINGER: does not apply to a market order".into()),
        (Some(_), None) if f.is_entry => Finding::NotChecked("no fresh quote"),
        (Some(_), None) => pass(f, || {
            "FAT_FINGER: skipped for an exit without a fresh quote".into()
        }),
        (Some(p), Some(q)) => {
            let r = f.touch(q);
            let side_name = if f.ticket.side == Side::Buy { "ask" } else { "bid" };
            let deviation = pct_of((p.value() - r.value()).abs(), r.value()).unwrap_or(Decimal::MAX);
            if deviation > f.limits.fat_finger_pct {
                Finding::Fail(Denial::FatFinger {
                    price: p,
                    reference: r,
                    reference_side: side_name,
                    deviation_pct: deviation,
                    limit_pct: f.limits.fat_finger_pct,
                })
            } else {
                pass(f, || {
                    format!(
                        "FAT_FINGER: {p} is {}% from the {side_name} {r}; limit {}%",
                        f2(&deviation),
                        f2(&f.limits.fat_finger_pct)
                    )
                })
            }
        }
    };
    vec![finding]
}

fn balance(f: &Facts<'_>) -> Vec<Finding> {
    let finding = match f.ticket.side {
        Side::Buy => match (f.notional, &f.fee) {
            (Some(n), Some(fee)) => {
                // Unpayable when the sum overflows or the fee is not in the quote asset: the
                // rule then fails, it never passes on a figure it could not compute.
                let needed = n
                    .in_asset(f.quote_asset.clone())
                    .checked_add(fee)
                    .map_or(Decimal::MAX, |m| m.amount());
                let free = f.free(&f.quote_asset);
                let dp = f.quote_asset.display_dp();
                let what = format!(
                    "notional {} + estimated fee {}",
                    display_fixed(n.value(), dp),
                    display_fixed(fee.amount(), dp)
                );
                if free < needed {
                    Finding::Fail(Denial::InsufficientBalance {
                        asset: f.quote_asset.clone(),
                        needed,
                        free,
                        what,
                    })
                } else {
                    let (needed, free) = balance_pair(needed, free, &f.quote_asset);
                    pass(f, || {
                        format!("BALANCE: needs {needed} {} ({what}); free {free}", f.quote_asset)
                    })
                }
            }
            _ => Finding::NotChecked("no price to value the ticket"),
        },
        Side::Sell => match f.rules {
            None => Finding::NotChecked("no exchange rules (base asset unknown)"),
            Some(r) => {
                let free = f.free(&r.base_asset);
                if free < f.qty.value() {
                    Finding::Fail(Denial::InsufficientBalance {
                        asset: r.base_asset.clone(),
                        needed: f.qty.value(),
                        free,
                        what: "quantity to sell".to_string(),
                    })
                } else {
                    let (sells, free) = balance_pair(f.qty.value(), free, &r.base_asset);
                    pass(f, || {
                        format!("BALANCE: sells {sells} {}; free {free}", r.base_asset)
                    })
                }
            }
        },
    };
    vec![finding]
}

/// Exits cannot go short, nor sell what crbot's own open sells already hold.
fn position(f: &Facts<'_>) -> Vec<Finding> {
    if f.is_entry {
        return vec![Finding::NotForEntry];
    }
    let (qty, position, held) = (f.qty, f.position, f.held);
    let unheld = position.saturating_sub(held);
    let held_note = if held.is_zero() {
        String::new()
    } else {
        format!(" ({held} of {position} held by its open sells)")
    };
    let finding = if qty <= unheld {
        pass(f, || {
            format!("POSITION: sells {qty} of crbot's {unheld}{held_note}")
        })
    } else if f.ctx.sell_external {
        pass(f, || {
            format!(
                "POSITION: sells {qty}: crbot's {unheld}{held_note} and {} external (selected)",
                qty.saturating_sub(unheld)
            )
        })
    } else {
        Finding::Fail(Denial::NoPosition {
            symbol: f.symbol.clone(),
            qty,
            position: unheld,
        })
    };
    vec![finding]
}

fn position_size(f: &Facts<'_>) -> Vec<Finding> {
    if !f.is_entry {
        return vec![Finding::NotForExit];
    }
    let finding = match (&f.figures, f.notional) {
        (Err(_), _) => Finding::NotChecked("equity unavailable"),
        (_, None) => Finding::NotChecked("no price to value the ticket"),
        (Ok(p), Some(n)) => match f.notional_in_usdt(n) {
            Err(denial) => Finding::Fail(denial),
            Ok(value) => {
                let limit_pct = f.limits.max_position_size_pct;
                let pct = pct_of(value, p.equity);
                // Cross-multiplied to stay exact: equal to the limit passes.
                if smul(value, Decimal::ONE_HUNDRED) > smul(p.equity, limit_pct) {
                    Finding::Fail(Denial::PositionSize {
                        notional: value,
                        equity: p.equity,
                        pct,
                        limit_pct,
                    })
                } else {
                    pass(f, || {
                        format!(
                            "POSITION_SIZE: notional {} USDT is {} of equity {} USDT; limit {}%",
                            f2(&value),
                            pct_text(&pct),
                            f2(&p.equity),
                            f2(&limit_pct)
                        )
                    })
                }
            }
        },
    };
    vec![finding]
}

fn daily_loss(f: &Facts<'_>) -> Vec<Finding> {
    if !f.is_entry {
        return vec![Finding::NotForExit];
    }
    let Ok(p) = &f.figures else {
        return vec![Finding::NotChecked("P&L unavailable")];
    };
    let limit_pct = f.limits.max_daily_loss_pct;
    // Cross-multiplied to stay exact: reaching the limit fails.
    let loss = p.day_start - p.equity;
    let finding = if smul(loss, Decimal::ONE_HUNDRED) >= smul(limit_pct, p.day_start) {
        Finding::Fail(Denial::DailyLoss {
            day_pnl: p.day_pnl,
            day_pnl_pct: p.day_pnl_pct,
            day_start: p.day_start,
            limit_pct,
        })
    } else {
        pass(f, || {
            format!(
                "DAILY_LOSS: today {}% ({} USDT); limit -{}%",
                f2(&p.day_pnl_pct),
                f2(&p.day_pnl),
                f2(&limit_pct)
            )
        })
    };
    vec![finding]
}

fn drawdown(f: &Facts<'_>) -> Vec<Finding> {
    if !f.is_entry {
        return vec![Finding::NotForExit];
    }
    let Ok(p) = &f.figures else {
        return vec![Finding::NotChecked("P&L unavailable")];
    };
    let limit_pct = f.limits.max_drawdown_pct;
    // Cross-multiplied to stay exact: reaching the limit fails.
    let finding = if smul(p.hwm - p.equity, Decimal::ONE_HUNDRED) >= smul(limit_pct, p.hwm) {
        Finding::Fail(Denial::Drawdown {
            equity: p.equity,
            hwm: p.hwm,
            drawdown_pct: p.drawdown_pct,
            limit_pct,
        })
    } else {
        pass(f, || {
            format!(
                "DRAWDOWN: {}% below the high-water mark {} USDT; limit {}%",
                f2(&p.drawdown_pct),
                f2(&p.hwm),
                f2(&limit_pct)
            )
        })
    };
    vec![finding]
}

fn trades_per_day(f: &Facts<'_>) -> Vec<Finding> {
    if !f.is_entry {
        return vec![Finding::NotForExit];
    }
    let used = f.ctx.entries.count_on(f.now_ms);
    let limit = f.limits.max_trades_per_day;
    let finding = if used >= limit {
        Finding::Fail(Denial::TradesPerDay { used, limit })
    } else {
        pass(f, || {
            format!(
                "TRADES_PER_DAY: this is entry {} of {limit} today (UTC)",
                used + 1
            )
        })
    };
    vec![finding]
}

/// Entries need a bracket on the right sides with enough reward; exits must not carry one.
fn risk_reward(f: &Facts<'_>) -> Vec<Finding> {
    if !f.is_entry {
        let bracket = f.ticket.stop_loss.is_some() || f.ticket.take_profit.is_some();
        return vec![if bracket {
            Finding::Fail(Denial::BracketOnExit)
        } else {
            Finding::NotForExit
        }];
    }
    let mut findings = Vec::new();
    if f.stop_loss.is_none() {
        findings.push(Finding::Fail(Denial::MissingStopLoss));
    }
    if f.take_profit.is_none() {
        findings.push(Finding::Fail(Denial::MissingTakeProfit));
    }
    let Some(entry) = f.reference else {
        findings.push(Finding::NotChecked("no entry price (no fresh quote)"));
        return findings;
    };
    if let Some(sl) = f.stop_loss
        && sl >= entry
    {
        findings.push(Finding::Fail(Denial::StopLossSide { stop_loss: sl, entry }));
    }
    if let Some(tp) = f.take_profit
        && tp <= entry
    {
        findings.push(Finding::Fail(Denial::TakeProfitSide {
            take_profit: tp,
            entry,
        }));
    }
    if let (Some(sl), Some(tp)) = (f.stop_loss, f.take_profit)
        && sl < entry
        && tp > entry
    {
        let min = f.limits.min_risk_reward;
        let risk = entry.value() - sl.value();
        let reward = tp.value() - entry.value();
        let ratio = reward.checked_div(risk).unwrap_or(Decimal::MAX);
        if reward < smul(min, risk) {
            findings.push(Finding::Fail(Denial::RiskReward {
                entry,
                stop_loss: sl,
                take_profit: tp,
                reward,
                risk,
                ratio,
                min,
            }));
        } else if findings.is_empty() {
            findings.push(pass(f, || {
                format!(
                    "RISK_REWARD: reward {} ÷ risk {} = {}; minimum {}",
                    f2(&reward),
                    f2(&risk),
                    f2(&ratio),
                    f2(&min)
                )
            }));
        }
    }
    findings
}

/// A dust position (nothing can sell it) does not count as open.
fn duplicate_position(f: &Facts<'_>) -> Vec<Finding> {
    if !f.is_entry {
        return vec![Finding::NotForExit];
    }
    let position = f.position;
    let dust = !position.is_zero() && is_dust(f.rules, position, f.ctx.quotes.get(f.symbol));
    let open_position = !position.is_zero() && !dust;
    let open_order = f.ctx.open_entry_orders.contains(f.symbol);
    let finding = if open_position || open_order {
        Finding::Fail(Denial::DuplicatePosition {
            symbol: f.symbol.clone(),
            position_qty: if open_position { position } else { Qty::ZERO },
            open_entry_order: open_order,
        })
    } else if dust {
        pass(f, || {
            format!(
                "DUPLICATE_POSITION: crbot's {position} on this symbol is dust (too small to sell); no entry order"
            )
        })
    } else {
        pass(f, || {
            "DUPLICATE_POSITION: no open position or entry order on this symbol".into()
        })
    };
    vec![finding]
}
