//! The risk limits, how a change to them is classified (tightening applies at once, loosening
//! waits for a typed confirmation), and the usage figures the header shows.
//!
//! Owns: [`Limits`] and its validation, [`propose_limits`], [`PendingLoosen`], [`LimitUsage`].
//! Must not: persist or journal anything (the engine journals a confirmed change) or read a
//! clock.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{PnlFigures, RiskContext, f2, next_utc_midnight_ms};
use crate::domain::Money;

/// The phrase a person types to confirm a loosening.
pub const LOOSEN_PHRASE: &str = "LOOSEN";

/// Every limit the risk engine enforces. Percentages are in percent (5.0 = 5%).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `MAX_DAILY_LOSS_PERCENT`: today's P&L at or below −this → reducing until 00:00 UTC.
    pub max_daily_loss_pct: Decimal,
    /// `MAX_DRAWDOWN_PERCENT`: equity this far below the high-water mark → reducing.
    pub max_drawdown_pct: Decimal,
    /// `MAX_TRADES_PER_DAY`: entry tickets sent per UTC day.
    pub max_trades_per_day: u32,
    /// `MAX_POSITION_SIZE_PERCENT`: a ticket's notional as a share of equity.
    pub max_position_size_pct: Decimal,
    /// `MIN_RISK_REWARD`: reward ÷ risk of an entry.
    pub min_risk_reward: Decimal,
    /// A limit price farther than this from the best bid/ask is refused.
    pub fat_finger_pct: Decimal,
    /// A quote older than this (ms) is stale: no entry.
    pub max_quote_age_ms: i64,
    /// Fee rate used for estimates (taker, percent).
    pub taker_fee_pct: Decimal,
}

impl Default for Limits {
    /// The seed's values plus crbot's own defaults.
    fn default() -> Self {
        Limits {
            max_daily_loss_pct: Decimal::new(5, 0),
            max_drawdown_pct: Decimal::new(10, 0),
            max_trades_per_day: 10,
            max_position_size_pct: Decimal::new(5, 0),
            min_risk_reward: Decimal::ONE,
            fat_finger_pct: Decimal::new(5, 0),
            max_quote_age_ms: 5_000,
            taker_fee_pct: Decimal::new(1, 1),
        }
    }
}

/// A limit value outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value} is out of range: allowed {range}")]
pub struct LimitsError {
    pub name: &'static str,
    pub value: String,
    pub range: &'static str,
}

impl Limits {
    /// Checks every value against its range; the first bad one is named.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let hundred = Decimal::ONE_HUNDRED;
        let pct = |name, v: Decimal| {
            if v > Decimal::ZERO && v <= hundred {
                Ok(())
            } else {
                Err(LimitsError {
                    name,
                    value: v.normalize().to_string(),
                    range: "greater than 0 and at most 100",
                })
            }
        };
        pct("MAX_DAILY_LOSS_PERCENT", self.max_daily_loss_pct)?;
        pct("MAX_DRAWDOWN_PERCENT", self.max_drawdown_pct)?;
        pct("MAX_POSITION_SIZE_PERCENT", self.max_position_size_pct)?;
        pct("FAT_FINGER_PERCENT", self.fat_finger_pct)?;
        if self.min_risk_reward < Decimal::ZERO || self.min_risk_reward > hundred {
            return Err(LimitsError {
                name: "MIN_RISK_REWARD",
                value: self.min_risk_reward.normalize().to_string(),
                range: "0 to 100",
            });
        }
        if self.max_trades_per_day > 10_000 {
            return Err(LimitsError {
                name: "MAX_TRADES_PER_DAY",
                value: self.max_trades_per_day.to_string(),
                range: "0 to 10000",
            });
        }
        if !(1..=600_000).contains(&self.max_quote_age_ms) {
            return Err(LimitsError {
                name: "MAX_QUOTE_AGE_MS",
                value: self.max_quote_age_ms.to_string(),
                range: "1 to 600000",
            });
        }
        if self.taker_fee_pct < Decimal::ZERO || self.taker_fee_pct > Decimal::TEN {
            return Err(LimitsError {
                name: "TAKER_FEE_PERCENT",
                value: self.taker_fee_pct.normalize().to_string(),
                range: "0 to 10",
            });
        }
        Ok(())
    }
}

/// One limit that differs between the current and the proposed limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub name: &'static str,
    pub from: String,
    pub to: String,
    /// True when the new value allows more risk.
    pub looser: bool,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.looser { "looser" } else { "tighter" };
        write!(f, "{}: {} → {} ({dir})", self.name, self.from, self.to)
    }
}

/// How a proposed set of limits relates to the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitChange {
    Unchanged,
    /// Every change is a tightening: apply these at once (and journal them).
    Tighten {
        limits: Limits,
        changes: Vec<FieldChange>,
    },
    /// At least one change loosens a limit: nothing applies until [`PendingLoosen::confirm`].
    Loosen(PendingLoosen),
}

/// A loosening (or mixed) change waiting for the typed confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLoosen {
    proposed: Limits,
    changes: Vec<FieldChange>,
}

/// The confirmation text did not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("confirmation refused: type {expected} exactly to loosen the limits")]
pub struct ConfirmError {
    pub expected: &'static str,
}

impl PendingLoosen {
    pub fn changes(&self) -> &[FieldChange] {
        &self.changes
    }

    /// What the person must type.
    pub fn phrase(&self) -> &'static str {
        LOOSEN_PHRASE
    }

    /// Returns the new limits when `typed` is exactly [`LOOSEN_PHRASE`] (surrounding white
    /// space ignored, case sensitive). A refusal leaves the pending change usable.
    pub fn confirm(&self, typed: &str) -> Result<Limits, ConfirmError> {
        if typed.trim() == LOOSEN_PHRASE {
            Ok(self.proposed.clone())
        } else {
            Err(ConfirmError {
                expected: LOOSEN_PHRASE,
            })
        }
    }
}

/// Classifies a change of limits. A higher loss, drawdown, size, trade-count, fat-finger band
/// or quote age, a lower minimum risk/reward or a lower fee estimate is looser.
pub fn propose_limits(current: &Limits, new: &Limits) -> Result<LimitChange, LimitsError> {
    new.validate()?;
    let mut changes = Vec::new();
    let mut dec = |name, a: Decimal, b: Decimal, higher_is_looser: bool| {
        if a != b {
            changes.push(FieldChange {
                name,
                from: a.normalize().to_string(),
                to: b.normalize().to_string(),
                looser: (b > a) == higher_is_looser,
            });
        }
    };
    dec(
        "MAX_DAILY_LOSS_PERCENT",
        current.max_daily_loss_pct,
        new.max_daily_loss_pct,
        true,
    );
    dec(
        "MAX_DRAWDOWN_PERCENT",
        current.max_drawdown_pct,
        new.max_drawdown_pct,
        true,
    );
    dec(
        "MAX_TRADES_PER_DAY",
        Decimal::from(current.max_trades_per_day),
        Decimal::from(new.max_trades_per_day),
        true,
    );
    dec(
        "MAX_POSITION_SIZE_PERCENT",
        current.max_position_size_pct,
        new.max_position_size_pct,
        true,
    );
    dec(
        "MIN_RISK_REWARD",
        current.min_risk_reward,
        new.min_risk_reward,
        false,
    );
    dec(
        "FAT_FINGER_PERCENT",
        current.fat_finger_pct,
        new.fat_finger_pct,
        true,
    );
    dec(
        "MAX_QUOTE_AGE_MS",
        Decimal::from(current.max_quote_age_ms),
        Decimal::from(new.max_quote_age_ms),
        true,
    );
    dec(
        "TAKER_FEE_PERCENT",
        current.taker_fee_pct,
        new.taker_fee_pct,
        false,
    );
    Ok(if changes.is_empty() {
        LimitChange::Unchanged
    } else if changes.iter().any(|c| c.looser) {
        LimitChange::Loosen(PendingLoosen {
            proposed: new.clone(),
            changes,
        })
    } else {
        LimitChange::Tighten {
            limits: new.clone(),
            changes,
        }
    })
}

/// Each limit as used / limit, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitUsage {
    /// Today's loss as a positive percent of day-start equity (0 on a winning day); `None`
    /// when P&L is unavailable.
    pub daily_loss_used_pct: Option<Decimal>,
    pub daily_loss_limit: Decimal,
    /// When the daily figures reset (next 00:00 UTC), ms since the epoch.
    pub daily_reset_ms: i64,
    pub drawdown_pct: Option<Decimal>,
    pub drawdown_limit: Decimal,
    pub trades_used: u32,
    pub trades_limit: u32,
    pub position_limit_pct: Decimal,
    /// The largest ticket notional allowed now, in USDT.
    pub position_limit_value: Option<Money>,
}

/// A limit that is at least the alert threshold used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitAlert {
    /// `DAILY_LOSS`, `DRAWDOWN` or `TRADES_PER_DAY`.
    pub code: &'static str,
    pub used: Decimal,
    pub limit: Decimal,
    /// used ÷ limit × 100.
    pub pct_of_limit: Decimal,
}

impl fmt::Display for LimitAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} of {} used ({}% of the limit)",
            self.code,
            f2(&self.used),
            f2(&self.limit),
            f2(&self.pct_of_limit)
        )
    }
}

/// `used ÷ limit × 100`, `None` for a zero limit.
pub fn pct_of_limit(used: Decimal, limit: Decimal) -> Option<Decimal> {
    if limit <= Decimal::ZERO {
        return None;
    }
    used.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(limit)
}

/// True when `used` is at least `threshold_pct` percent of `limit` (e.g. 80). A zero limit
/// counts as fully used.
pub fn near_limit(used: Decimal, limit: Decimal, threshold_pct: Decimal) -> bool {
    pct_of_limit(used, limit).is_none_or(|p| p >= threshold_pct)
}

impl LimitUsage {
    /// Limits at or above `threshold_pct` percent used (80 for the header's warning).
    pub fn alerts(&self, threshold_pct: Decimal) -> Vec<LimitAlert> {
        let mut out = Vec::new();
        let mut push = |code, used: Option<Decimal>, limit: Decimal| {
            if let Some(u) = used
                && near_limit(u, limit, threshold_pct)
            {
                out.push(LimitAlert {
                    code,
                    used: u,
                    limit,
                    pct_of_limit: pct_of_limit(u, limit).unwrap_or(Decimal::ONE_HUNDRED),
                });
            }
        };
        push("DAILY_LOSS", self.daily_loss_used_pct, self.daily_loss_limit);
        push("DRAWDOWN", self.drawdown_pct, self.drawdown_limit);
        push(
            "TRADES_PER_DAY",
            Some(Decimal::from(self.trades_used)),
            Decimal::from(self.trades_limit),
        );
        out
    }
}

/// The header's usage figures at `now_ms`.
pub fn usage(limits: &Limits, ctx: &RiskContext, now_ms: i64) -> LimitUsage {
    let figures = PnlFigures::from_context(ctx).ok();
    LimitUsage {
        daily_loss_used_pct: figures.as_ref().map(|f| (-f.day_pnl_pct).max(Decimal::ZERO)),
        daily_loss_limit: limits.max_daily_loss_pct,
        daily_reset_ms: next_utc_midnight_ms(now_ms),
        drawdown_pct: figures.as_ref().map(|f| f.drawdown_pct),
        drawdown_limit: limits.max_drawdown_pct,
        trades_used: ctx.entries.count_on(now_ms),
        trades_limit: limits.max_trades_per_day,
        position_limit_pct: limits.max_position_size_pct,
        position_limit_value: figures.as_ref().and_then(|f| {
            let v = f.equity.checked_mul(limits.max_position_size_pct)? / Decimal::ONE_HUNDRED;
            Some(Money::new(v, crate::domain::Asset::usdt()))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }

    #[test]
    fn tightening_applies_at_once() {
        let cur = Limits::default();
        let new = Limits {
            max_daily_loss_pct: d("3"),
            min_risk_reward: d("2"),
            ..cur.clone()
        };
        match propose_limits(&cur, &new).expect("valid") {
            LimitChange::Tighten { limits, changes } => {
                assert_eq!(limits, new);
                assert_eq!(changes.len(), 2);
                assert!(changes.iter().all(|c| !c.looser));
            }
            other => panic!("expected a tightening, got {other:?}"),
        }
        assert_eq!(propose_limits(&cur, &cur), Ok(LimitChange::Unchanged));
    }

    #[test]
    fn loosening_waits_for_the_exact_phrase() {
        let cur = Limits::default();
        let new = Limits {
            max_trades_per_day: 20,
            ..cur.clone()
        };
        let LimitChange::Loosen(pending) = propose_limits(&cur, &new).expect("valid") else {
            panic!("expected a loosening");
        };
        assert_eq!(pending.changes()[0].name, "MAX_TRADES_PER_DAY");
        assert!(pending.confirm("loosen").is_err());
        assert!(pending.confirm("yes").is_err());
        assert!(pending.confirm("").is_err());
        assert_eq!(pending.confirm("LOOSEN\n"), Ok(new));
    }

    #[test]
    fn a_mixed_change_needs_confirmation() {
        let cur = Limits::default();
        let new = Limits {
            max_daily_loss_pct: d("2"),
            max_position_size_pct: d("8"),
            ..cur.clone()
        };
        let LimitChange::Loosen(pending) = propose_limits(&cur, &new).expect("valid") else {
            panic!("a mixed change must not apply at once");
        };
        assert_eq!(pending.changes().iter().filter(|c| c.looser).count(), 1);
        assert_eq!(pending.changes().len(), 2);
    }

    #[test]
    fn lowering_min_risk_reward_is_a_loosening() {
        let cur = Limits::default();
        let new = Limits {
            min_risk_reward: d("0.5"),
            ..cur.clone()
        };
        assert!(matches!(propose_limits(&cur, &new), Ok(LimitChange::Loosen(_))));
    }

    #[test]
    fn out_of_range_limits_are_refused_by_name() {
        let bad = Limits {
            max_daily_loss_pct: d("150"),
            ..Limits::default()
        };
        let err = propose_limits(&Limits::default(), &bad).expect_err("invalid");
        assert_eq!(err.name, "MAX_DAILY_LOSS_PERCENT");
        assert!(err.to_string().contains("150"), "{err}");
        assert!(Limits::default().validate().is_ok());
    }

    #[test]
    fn near_limit_triggers_at_eighty_percent() {
        let eighty = d("80");
        assert!(!near_limit(d("3.99"), d("5"), eighty));
        assert!(near_limit(d("4"), d("5"), eighty));
        assert!(near_limit(d("6"), d("5"), eighty));
        assert!(near_limit(Decimal::ZERO, Decimal::ZERO, eighty));
    }
}
