//! Which alerts to raise: after every input, what changed that a person away from the screen
//! must hear about becomes an `Effect::Alert`, and each delivery's outcome that comes back is
//! journaled (`alerts` table).
//!
//! Owns: what has been alerted already — the last log line looked at (fills), the trading
//! state last seen (halts, reducing, re-arms, manual or automatic, from here or another shell),
//! whether the kill sweep's end was told, how far into today's daily-loss limit the alerts
//! went (50 %, 80 %: once each per UTC day), and since when each stream has been unreachable.
//! Must not: send anything or wait (the executor hands alerts to the delivery task), or alert
//! about a state the engine merely restored at start-up.
//!
//! The daily-loss level told today is read back from the journal when alerts are turned on,
//! so a restart does not repeat it. Off unless the executor turns it on
//! ([`Engine::watch_alerts`]): without a webhook there is no one to tell, and the step-by-step
//! tests of the other workflows see no alert effects.

use rust_decimal::Decimal;

use super::{Effect, Engine};
use crate::alerts::{Alert, AlertKind, Delivery, Severity};
use crate::engine::snapshot::{KillStage, LogKind, LogLevel, StreamStatus};
use crate::journal::AlertRecord;
use crate::risk::TradingState;

/// A stream unreachable this long is alerted (once per outage).
pub const UNREACHABLE_AFTER_MS: i64 = 30_000;
/// The shares of the daily-loss limit that are alerted, highest first.
const DAILY_LOSS_LEVELS: [u8; 2] = [80, 50];
const DAY_MS: i64 = 86_400_000;

/// What has been alerted already.
#[derive(Debug)]
pub(super) struct AlertWatch {
    /// The newest log line already looked at (fills are told from their log line).
    log_seq: u64,
    trading: TradingState,
    /// The current kill sweep's end was told.
    kill_told: bool,
    /// The UTC day and the highest daily-loss level alerted on it.
    daily: (i64, u8),
    market: Outage,
    user: Outage,
}

/// One stream's outage: since when it is not connected, and whether that was told.
#[derive(Debug, Default)]
struct Outage {
    since_ms: Option<i64>,
    told: bool,
}

impl Outage {
    /// `Some(true)` when the outage is to be told now, `Some(false)` when a told outage ended.
    fn observe(&mut self, connected: bool, now: i64) -> Option<bool> {
        if connected {
            self.since_ms = None;
            return std::mem::take(&mut self.told).then_some(false);
        }
        let since = *self.since_ms.get_or_insert(now);
        if !self.told && now - since >= UNREACHABLE_AFTER_MS {
            self.told = true;
            return Some(true);
        }
        None
    }
}

impl Engine {
    /// Starts raising alerts at `now`: what the engine restored (the trading state, the log,
    /// a sweep) is the baseline, not news.
    pub fn watch_alerts(&mut self, now: i64) {
        let state = &self.core.state;
        self.alerts = Some(AlertWatch {
            log_seq: state.log_lines().last().map_or(0, |l| l.seq),
            trading: state.trading.clone(),
            kill_told: state.kill.as_ref().is_some_and(|k| k.done),
            daily: (now.div_euclid(DAY_MS), self.daily_level_journaled(now)),
            market: Outage::default(),
            user: Outage::default(),
        });
    }

    /// The highest daily-loss level already alerted today, from the journal: a restart does
    /// not tell the same level twice in a day.
    fn daily_level_journaled(&self, now: i64) -> u8 {
        let day = now.div_euclid(DAY_MS);
        let Ok(rows) = self.core.journal.recent_alerts(1_000) else {
            return 0;
        };
        rows.iter()
            .map(|r| &r.record)
            .filter(|r| r.kind == AlertKind::DailyLoss.code() && r.time_ms.div_euclid(DAY_MS) == day)
            .filter_map(|r| {
                DAILY_LOSS_LEVELS
                    .into_iter()
                    .find(|l| r.message.starts_with(&daily_loss_prefix(*l)))
            })
            .max()
            .unwrap_or(0)
    }

    /// After each input: the alerts it gives rise to, after its other effects.
    pub(super) fn decide_alerts(&mut self, now: i64) {
        let Some(mut watch) = self.alerts.take() else {
            return;
        };
        let mut out = Vec::new();
        self.fill_alerts(&mut watch, &mut out);
        self.trading_alerts(&mut watch, now, &mut out);
        self.kill_alerts(&mut watch, now, &mut out);
        self.daily_loss_alerts(&mut watch, now, &mut out);
        self.stream_alerts(&mut watch, now, &mut out);
        self.alerts = Some(watch);
        for a in out {
            self.emit(Effect::Alert(a));
        }
    }

    /// A delivery's outcome: journaled; a failure is in the log too.
    pub(super) fn on_alert_delivered(&mut self, d: Delivery, now: i64) {
        let rec = AlertRecord {
            time_ms: d.alert.time_ms,
            kind: d.alert.kind.code().to_string(),
            severity: d.alert.severity.code().to_string(),
            message: d.alert.message.clone(),
            status: d.status.code().to_string(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            done_ms: now,
        };
        if let Err(e) = self.core.journal.record_alert(&rec) {
            tracing::warn!(error = %e, "alert outcome not journaled");
        }
        if d.status != crate::alerts::Status::Sent {
            let text = format!(
                "alert {} not delivered ({}, {} attempt{}): {}",
                rec.kind,
                rec.status.to_lowercase(),
                d.attempts,
                if d.attempts == 1 { "" } else { "s" },
                d.last_error.as_deref().unwrap_or("no error")
            );
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
        }
    }

    fn fill_alerts(&self, watch: &mut AlertWatch, out: &mut Vec<Alert>) {
        for line in self.core.state.log_lines().filter(|l| l.seq > watch.log_seq) {
            if line.kind == LogKind::Fill {
                let mut a = Alert::new(line.time_ms, AlertKind::Fill, Severity::Info, line.text.clone());
                a.symbol = line.text.split_whitespace().nth(1).map(str::to_owned);
                out.push(a);
            }
        }
        if let Some(last) = self.core.state.log_lines().last() {
            watch.log_seq = watch.log_seq.max(last.seq);
        }
    }

    fn trading_alerts(&self, watch: &mut AlertWatch, now: i64, out: &mut Vec<Alert>) {
        let current = &self.core.state.trading;
        if *current == watch.trading {
            return;
        }
        let previous = std::mem::replace(&mut watch.trading, current.clone());
        let alert = match current {
            TradingState::Halted { reason, .. } => Alert::new(
                now,
                AlertKind::Halted,
                Severity::Critical,
                format!("trading HALTED: {reason}"),
            ),
            TradingState::Reducing { reason, trigger, .. } => Alert::new(
                now,
                AlertKind::Reducing,
                Severity::Critical,
                format!("trading REDUCING ({trigger}): {reason}"),
            ),
            // A re-arm (by hand, or the daily-loss reduction ending at 00:00 UTC): say what ended.
            TradingState::Active => {
                let was = match &previous {
                    TradingState::Halted { reason, .. } => format!("HALTED: {reason}"),
                    TradingState::Reducing { reason, .. } => format!("REDUCING: {reason}"),
                    TradingState::Active => "ACTIVE".to_string(),
                };
                let text = format!("trading ACTIVE again (was {was})");
                Alert::new(now, AlertKind::Rearmed, Severity::Warning, text)
            }
        };
        out.push(alert);
    }

    fn kill_alerts(&self, watch: &mut AlertWatch, now: i64, out: &mut Vec<Alert>) {
        let done = self.core.state.kill.as_ref().filter(|k| k.done);
        let Some(kill) = done else {
            watch.kill_told = false;
            return;
        };
        if watch.kill_told {
            return;
        }
        watch.kill_told = true;
        let ok = kill.stage == KillStage::Cancelled;
        let summary = self
            .core
            .state
            .log_lines()
            .filter(|l| l.kind == LogKind::Kill)
            .last()
            .map_or_else(String::new, |l| l.text.clone());
        let mut text = if ok {
            "kill switch: every open order cancelled".to_string()
        } else {
            "kill switch INCOMPLETE: orders may still be open".to_string()
        };
        for l in kill.lines.iter().filter(|l| l.ok != Some(true)) {
            text.push_str(&format!("; {}: {}", l.symbol, l.outcome));
        }
        if !summary.is_empty() {
            text.push_str(&format!(" ({summary})"));
        }
        let severity = if ok { Severity::Warning } else { Severity::Critical };
        out.push(Alert::new(now, AlertKind::Kill, severity, text));
    }

    fn daily_loss_alerts(&self, watch: &mut AlertWatch, now: i64, out: &mut Vec<Alert>) {
        let day = now.div_euclid(DAY_MS);
        if watch.daily.0 != day {
            watch.daily = (day, 0);
        }
        let limit = self.core.state.limits.max_daily_loss_pct;
        let Some(pnl_pct) = self.core.state.equity.day_pnl_pct() else {
            return;
        };
        if limit <= Decimal::ZERO || pnl_pct >= Decimal::ZERO {
            return;
        }
        let used = -pnl_pct / limit * Decimal::ONE_HUNDRED;
        let Some(level) = DAILY_LOSS_LEVELS
            .into_iter()
            .find(|l| used >= Decimal::from(*l) && *l > watch.daily.1)
        else {
            return;
        };
        watch.daily.1 = level;
        let text = format!(
            "{} today {}% (limit -{}%)",
            daily_loss_prefix(level),
            pnl_pct.round_dp(2),
            limit.normalize()
        );
        let severity = if level >= 80 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        out.push(Alert::new(now, AlertKind::DailyLoss, severity, text));
    }

    fn stream_alerts(&self, watch: &mut AlertWatch, now: i64, out: &mut Vec<Alert>) {
        let state = &self.core.state;
        for (name, status, outage) in [
            (
                "market data stream",
                state.market_stream.status,
                &mut watch.market,
            ),
            ("user data stream", state.user_stream.status, &mut watch.user),
        ] {
            let connected = status == StreamStatus::Connected;
            match outage.observe(connected, now) {
                Some(true) => out.push(Alert::new(
                    now,
                    AlertKind::Unreachable,
                    Severity::Critical,
                    format!(
                        "the exchange's {name} has been unreachable for {} s",
                        UNREACHABLE_AFTER_MS / 1000
                    ),
                )),
                Some(false) => out.push(Alert::new(
                    now,
                    AlertKind::Reconnected,
                    Severity::Info,
                    format!("the exchange's {name} is connected again"),
                )),
                None => {}
            }
        }
    }
}

/// How a daily-loss alert of `level` % begins (also how a restart finds it in the journal).
fn daily_loss_prefix(level: u8) -> String {
    format!("daily loss passed {level}% of its limit:")
}
