//! Limit changes from the screen: tightening takes effect at once, loosening waits for the
//! typed confirmation phrase (`risk::propose_limits`).
//!
//! Owns: nothing beyond `EngineState::limits` and the pending change shown on screen. Must
//! not: loosen a limit without the confirmation, or put limits in force without journaling
//! each change.

use rust_decimal::Decimal;

use super::Engine;
use crate::engine::snapshot::{LimitChangePending, LimitName, LogKind, LogLevel};
use crate::risk::{self, LimitChange};

impl Engine {
    pub(super) fn propose_limit(&mut self, name: LimitName, value: Decimal, now: i64) {
        let current = self.core.state.limits.clone();
        let new = with_limit(&current, name, value);
        match risk::propose_limits(&current, &new) {
            Err(e) => self
                .core
                .state
                .log(now, LogLevel::Warn, LogKind::Limit, e.to_string()),
            Ok(LimitChange::Unchanged) => {}
            Ok(LimitChange::Tighten { limits, changes }) => {
                let text = format!("{} tightened to {value} (in force now)", name.env_name());
                self.apply_limits(limits, &changes, LogLevel::Info, text, now);
            }
            Ok(LimitChange::Loosen(pending)) => {
                let view = LimitChangePending {
                    name,
                    from: limit_of(&current, name),
                    to: value,
                    phrase: pending.phrase().to_string(),
                };
                self.core.state.pending_limit = Some((pending, view));
            }
        }
    }

    pub(super) fn confirm_limit(&mut self, typed: &str, now: i64) {
        let Some((pending, view)) = self.core.state.pending_limit.take() else {
            return;
        };
        match pending.confirm(typed) {
            Ok(limits) => {
                let text = format!("{} loosened to {} (confirmed)", view.name.env_name(), view.to);
                self.apply_limits(limits, pending.changes(), LogLevel::Warn, text, now);
            }
            Err(e) => {
                let text = format!("limit not changed: {e}");
                self.core.state.log(now, LogLevel::Warn, LogKind::Limit, text);
            }
        }
    }

    /// Puts new limits in force: each change journaled, the set saved for restarts, and said.
    fn apply_limits(
        &mut self,
        limits: risk::Limits,
        changes: &[risk::FieldChange],
        level: LogLevel,
        text: String,
        now: i64,
    ) {
        for c in changes {
            self.journal_limit(c.name, &c.from, &c.to, true, now);
        }
        self.core.state.limits = limits;
        if let Err(e) = self.core.save_limits() {
            let text = format!("limits not journaled: {e}");
            self.core.state.log(now, LogLevel::Error, LogKind::Limit, text);
        }
        self.core.state.log(now, level, LogKind::Limit, text);
    }

    fn journal_limit(&mut self, name: &str, from: &str, to: &str, confirmed: bool, now: i64) {
        let rec = crate::journal::LimitChangeRecord {
            time_ms: now,
            limit: name.to_string(),
            old_value: from.to_string(),
            new_value: to.to_string(),
            confirmed,
            actor: "tui".to_string(),
            reason: "changed from the screen".to_string(),
        };
        if self.core.journal.record_limit_change(&rec).is_ok() {
            self.note_own_state_write();
        }
    }
}

/// The value of one screen-editable limit.
fn limit_of(limits: &risk::Limits, name: LimitName) -> Decimal {
    match name {
        LimitName::DailyLoss => limits.max_daily_loss_pct,
        LimitName::Drawdown => limits.max_drawdown_pct,
        LimitName::TradesPerDay => Decimal::from(limits.max_trades_per_day),
        LimitName::PositionSize => limits.max_position_size_pct,
        LimitName::MinRiskReward => limits.min_risk_reward,
    }
}

/// `limits` with one screen-editable limit set to `value` (a trade count is truncated; one that
/// does not fit is 0, which the limits' validation refuses with its range).
fn with_limit(limits: &risk::Limits, name: LimitName, value: Decimal) -> risk::Limits {
    let mut new = limits.clone();
    match name {
        LimitName::DailyLoss => new.max_daily_loss_pct = value,
        LimitName::Drawdown => new.max_drawdown_pct = value,
        LimitName::TradesPerDay => {
            new.max_trades_per_day = u32::try_from(value.trunc().mantissa()).unwrap_or(0)
        }
        LimitName::PositionSize => new.max_position_size_pct = value,
        LimitName::MinRiskReward => new.min_risk_reward = value,
    }
    new
}
