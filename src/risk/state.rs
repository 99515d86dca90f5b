//! The trading state machine: active, reducing, halted, and every transition between them.
//!
//! Owns: [`TradingState`], [`Transition`], the automatic triggers ([`evaluate_automatic`]),
//! the kill switch's state change ([`kill`]) and re-arming ([`rearm`]). Must not: persist the
//! state (the engine journals every transition before acting on it) or read a clock.
//!
//! | from | event | to |
//! |---|---|---|
//! | active | daily loss reaches −limit | reducing (DAILY_LOSS) until the next 00:00 UTC |
//! | active, reducing (DAILY_LOSS) | drawdown reaches the limit | reducing (DRAWDOWN), no end |
//! | active | P&L cannot be computed | reducing (PNL_UNAVAILABLE), no end |
//! | reducing (DAILY_LOSS) | first evaluation at/after its end, P&L known | active (NEW_UTC_DAY), unless another breach holds |
//! | any | kill | halted (KILL) |
//! | reducing, halted | explicit re-arm | active (REARM) |
//!
//! Only the daily-loss reduce lifts itself, and only at the new UTC day; everything else waits
//! for a person. While P&L is unknown nothing lifts automatically.
//!
//! **Start-up.** [`TradingState::default`] is *halted* with reason `STARTUP`: the engine must
//! restore the persisted state from the journal before anything is allowed. A restart never
//! silently re-arms; if the engine decides a brand-new journal starts active, it does so with
//! an explicit, journaled [`rearm`].

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Limits, f2, next_utc_midnight_ms};

/// What caused a state change. The code is stored in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Trigger {
    DailyLoss,
    Drawdown,
    PnlUnavailable,
    Kill,
    /// A person re-armed trading.
    Rearm,
    /// The daily-loss reduce ended at 00:00 UTC.
    NewUtcDay,
    Startup,
}

impl Trigger {
    pub fn as_code(self) -> &'static str {
        match self {
            Trigger::DailyLoss => "DAILY_LOSS",
            Trigger::Drawdown => "DRAWDOWN",
            Trigger::PnlUnavailable => "PNL_UNAVAILABLE",
            Trigger::Kill => "KILL",
            Trigger::Rearm => "REARM",
            Trigger::NewUtcDay => "NEW_UTC_DAY",
            Trigger::Startup => "STARTUP",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            Trigger::DailyLoss,
            Trigger::Drawdown,
            Trigger::PnlUnavailable,
            Trigger::Kill,
            Trigger::Rearm,
            Trigger::NewUtcDay,
            Trigger::Startup,
        ]
        .into_iter()
        .find(|t| t.as_code() == code)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_code())
    }
}

/// What trading is allowed to do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradingState {
    /// Everything allowed.
    Active,
    /// Only orders that shrink a position. `until_ms: None` means until a person re-arms.
    Reducing {
        reason: String,
        trigger: Trigger,
        since_ms: i64,
        until_ms: Option<i64>,
    },
    /// No entries; exits only when the user confirms them explicitly (and kill-switch actions).
    Halted { reason: String, since_ms: i64 },
}

impl Default for TradingState {
    /// The safe state: halted until the engine restores the journaled state.
    fn default() -> Self {
        TradingState::Halted {
            reason: "STARTUP: trading state not restored from the journal yet".to_string(),
            since_ms: 0,
        }
    }
}

impl TradingState {
    /// `ACTIVE`, `REDUCING` or `HALTED` (journal and header).
    pub fn as_code(&self) -> &'static str {
        match self {
            TradingState::Active => "ACTIVE",
            TradingState::Reducing { .. } => "REDUCING",
            TradingState::Halted { .. } => "HALTED",
        }
    }

    pub fn allows_entries(&self) -> bool {
        matches!(self, TradingState::Active)
    }

    /// Reducing that only a person can lift.
    fn is_sticky_reduce(&self) -> bool {
        matches!(self, TradingState::Reducing { until_ms: None, .. })
    }
}

impl fmt::Display for TradingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TradingState::Active => f.write_str("ACTIVE"),
            TradingState::Reducing {
                reason,
                trigger,
                until_ms,
                ..
            } => match until_ms {
                Some(t) => write!(f, "REDUCING ({trigger}) until {t} ms: {reason}"),
                None => write!(f, "REDUCING ({trigger}) until re-armed: {reason}"),
            },
            TradingState::Halted { reason, .. } => write!(f, "HALTED: {reason}"),
        }
    }
}

/// A state change, for the engine to journal and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: TradingState,
    pub to: TradingState,
    pub trigger: Trigger,
    /// Human text with the numbers.
    pub detail: String,
    pub at_ms: i64,
}

/// Re-arming was not needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trading is already active; nothing to re-arm")]
pub struct AlreadyActive;

/// The automatic triggers (rules 2 and 3, and fail-closed on unknown P&L). `day_pnl_pct` is
/// today's P&L in percent of day-start equity (negative on a loss), `drawdown_pct` the
/// distance below the high-water mark in percent; `None` means it could not be computed.
/// Returns the one transition to apply now, if any. Never lifts a halt or a reduce that needs
/// a person.
pub fn evaluate_automatic(
    limits: &Limits,
    state: &TradingState,
    day_pnl_pct: Option<Decimal>,
    drawdown_pct: Option<Decimal>,
    now_ms: i64,
) -> Option<Transition> {
    let transition = |to: TradingState, trigger, detail: String| Transition {
        from: state.clone(),
        to,
        trigger,
        detail,
        at_ms: now_ms,
    };
    if matches!(state, TradingState::Halted { .. }) {
        return None;
    }
    let (Some(day), Some(dd)) = (day_pnl_pct, drawdown_pct) else {
        // Fail closed: unknown P&L stops entries until a person looks; nothing re-arms.
        if !matches!(state, TradingState::Active) {
            return None;
        }
        let what = match (day_pnl_pct, drawdown_pct) {
            (None, None) => "day P&L and drawdown",
            (None, _) => "day P&L",
            _ => "drawdown",
        };
        let reason = format!("PNL_UNAVAILABLE: {what} could not be computed");
        let to = TradingState::Reducing {
            reason: reason.clone(),
            trigger: Trigger::PnlUnavailable,
            since_ms: now_ms,
            until_ms: None,
        };
        return Some(transition(to, Trigger::PnlUnavailable, reason));
    };
    // The daily-loss reduce ends at its own deadline, and only that one.
    let mut current = state.clone();
    let mut day_ended = false;
    if let TradingState::Reducing {
        trigger: Trigger::DailyLoss,
        until_ms: Some(until),
        ..
    } = state
        && now_ms >= *until
    {
        current = TradingState::Active;
        day_ended = true;
    }
    if dd >= limits.max_drawdown_pct && !current.is_sticky_reduce() {
        let reason = format!(
            "DRAWDOWN: equity is {}% below the high-water mark; limit {}%",
            f2(&dd),
            f2(&limits.max_drawdown_pct)
        );
        let to = TradingState::Reducing {
            reason: reason.clone(),
            trigger: Trigger::Drawdown,
            since_ms: now_ms,
            until_ms: None,
        };
        return Some(transition(to, Trigger::Drawdown, reason));
    }
    if -day >= limits.max_daily_loss_pct && current == TradingState::Active {
        let until = next_utc_midnight_ms(now_ms);
        let reason = format!(
            "DAILY_LOSS: today's P&L is {}%; limit -{}%",
            f2(&day),
            f2(&limits.max_daily_loss_pct)
        );
        let to = TradingState::Reducing {
            reason: reason.clone(),
            trigger: Trigger::DailyLoss,
            since_ms: now_ms,
            until_ms: Some(until),
        };
        return Some(transition(to, Trigger::DailyLoss, reason));
    }
    if day_ended {
        let detail = format!(
            "NEW_UTC_DAY: daily-loss reduce ended; today's P&L {}%, drawdown {}%",
            f2(&day),
            f2(&dd)
        );
        return Some(transition(TradingState::Active, Trigger::NewUtcDay, detail));
    }
    None
}

/// The kill switch's state change: halted, from any state.
pub fn kill(state: &TradingState, reason: &str, now_ms: i64) -> Transition {
    let reason = format!("KILL: {reason}");
    Transition {
        from: state.clone(),
        to: TradingState::Halted {
            reason: reason.clone(),
            since_ms: now_ms,
        },
        trigger: Trigger::Kill,
        detail: reason,
        at_ms: now_ms,
    }
}

/// Re-arms trading: only ever by this explicit call (a person, `crbot resume`).
pub fn rearm(state: &TradingState, by: &str, now_ms: i64) -> Result<Transition, AlreadyActive> {
    if *state == TradingState::Active {
        return Err(AlreadyActive);
    }
    Ok(Transition {
        from: state.clone(),
        to: TradingState::Active,
        trigger: Trigger::Rearm,
        detail: format!("REARM by {by}; was {state}"),
        at_ms: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }

    const DAY: i64 = 20_000 * 86_400_000;
    const NOON: i64 = DAY + 43_200_000;

    fn eval(state: &TradingState, day: &str, dd: &str, now: i64) -> Option<Transition> {
        evaluate_automatic(&Limits::default(), state, Some(d(day)), Some(d(dd)), now)
    }

    fn daily_reduce() -> TradingState {
        eval(&TradingState::Active, "-5", "0", NOON).expect("breach").to
    }

    #[test]
    fn starts_halted_until_restored() {
        let s = TradingState::default();
        assert_eq!(s.as_code(), "HALTED");
        assert!(!s.allows_entries());
    }

    #[test]
    fn daily_loss_breach_reduces_until_the_next_utc_midnight() {
        assert_eq!(eval(&TradingState::Active, "-4.99", "0", NOON), None);
        let t = eval(&TradingState::Active, "-5", "4", NOON).expect("at the limit");
        assert_eq!(t.trigger, Trigger::DailyLoss);
        assert_eq!(
            t.to,
            TradingState::Reducing {
                reason: t.detail.clone(),
                trigger: Trigger::DailyLoss,
                since_ms: NOON,
                until_ms: Some(DAY + 86_400_000),
            }
        );
        assert!(t.detail.contains("-5.00%"), "{}", t.detail);
    }

    #[test]
    fn daily_loss_reduce_rearms_itself_only_at_the_new_utc_day() {
        let s = daily_reduce();
        // Still the same day, even with P&L recovered: stays.
        assert_eq!(eval(&s, "0", "0", DAY + 86_399_999), None);
        let t = eval(&s, "0", "0", DAY + 86_400_000).expect("new day");
        assert_eq!((t.to, t.trigger), (TradingState::Active, Trigger::NewUtcDay));
    }

    #[test]
    fn new_day_with_a_drawdown_breach_goes_to_a_sticky_reduce_instead() {
        let t = eval(&daily_reduce(), "0", "10", DAY + 86_400_000).expect("transition");
        assert_eq!(t.trigger, Trigger::Drawdown);
        assert!(matches!(t.to, TradingState::Reducing { until_ms: None, .. }));
    }

    #[test]
    fn drawdown_breach_reduces_until_a_person_rearms() {
        assert_eq!(eval(&TradingState::Active, "0", "9.99", NOON), None);
        let t = eval(&TradingState::Active, "-1", "10", NOON).expect("at the limit");
        assert_eq!(t.trigger, Trigger::Drawdown);
        // Recovery and new days do not lift it.
        assert_eq!(eval(&t.to, "0", "0", NOON + 10 * 86_400_000), None);
        let r = rearm(&t.to, "test", NOON + 1).expect("re-arm");
        assert_eq!((r.to, r.trigger), (TradingState::Active, Trigger::Rearm));
    }

    #[test]
    fn drawdown_breach_upgrades_a_daily_reduce() {
        let t = eval(&daily_reduce(), "-6", "11", NOON + 1).expect("upgrade");
        assert_eq!(t.trigger, Trigger::Drawdown);
        assert!(matches!(t.to, TradingState::Reducing { until_ms: None, .. }));
    }

    #[test]
    fn unknown_pnl_fails_closed_and_blocks_the_daily_rearm() {
        let lim = Limits::default();
        let t = evaluate_automatic(&lim, &TradingState::Active, None, Some(d("0")), NOON).expect("closed");
        assert_eq!(t.trigger, Trigger::PnlUnavailable);
        assert!(matches!(t.to, TradingState::Reducing { until_ms: None, .. }));
        assert_eq!(
            evaluate_automatic(&lim, &t.to, Some(d("0")), Some(d("0")), NOON + 1),
            None
        );
        let s = daily_reduce();
        assert_eq!(
            evaluate_automatic(&lim, &s, Some(d("0")), None, DAY + 86_400_000),
            None
        );
    }

    #[test]
    fn kill_halts_from_any_state_and_only_rearm_lifts_it() {
        for s in [TradingState::Active, daily_reduce(), TradingState::default()] {
            let t = kill(&s, "key K", NOON);
            assert_eq!(t.trigger, Trigger::Kill);
            assert!(matches!(t.to, TradingState::Halted { since_ms: NOON, .. }));
            assert_eq!(eval(&t.to, "0", "0", NOON + 10 * 86_400_000), None);
            assert_eq!(
                rearm(&t.to, "crbot resume", NOON + 1).expect("ok").to,
                TradingState::Active
            );
        }
        assert_eq!(rearm(&TradingState::Active, "x", NOON), Err(AlreadyActive));
    }

    #[test]
    fn trigger_codes_round_trip() {
        for t in [
            Trigger::DailyLoss,
            Trigger::Kill,
            Trigger::NewUtcDay,
            Trigger::PnlUnavailable,
        ] {
            assert_eq!(Trigger::from_code(t.as_code()), Some(t));
        }
    }
}
