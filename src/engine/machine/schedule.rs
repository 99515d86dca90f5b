//! The tick: the ticket's verdict following the market, equity samples and the automatic
//! halts they trigger, the clock and rules refreshes, scheduled backups, and a kill, resume or
//! limit change made from another shell (seen in the journal).
//!
//! Owns: when each periodic job last ran. Must not: run anything slow itself — a backup is an
//! effect, run off the loop.

use std::time::Duration;

use super::{Effect, Engine, TickFacts};
use crate::engine::backup::{self, BackupOutcome};
use crate::engine::snapshot::{LogKind, LogLevel};
use crate::risk::TradingState;

/// Equity is journaled at most this often.
const EQUITY_JOURNAL_EVERY_MS: i64 = 60_000;
/// The clock offset is re-measured this often (every few minutes).
const CLOCK_SYNC_EVERY_MS: i64 = 5 * 60_000;
/// Symbol rules (filters, status) are re-read this often.
const RULES_REFRESH_EVERY_MS: i64 = 30 * 60_000;
/// With no quote at all for this long after start, the log says so once.
const NO_DATA_WARNING_MS: i64 = 10_000;

/// When each periodic job last ran.
#[derive(Debug)]
pub(super) struct Schedule {
    last_equity_journal_ms: i64,
    last_clock_sync_ms: i64,
    last_rules_ms: i64,
    last_backup_ms: i64,
    /// A scheduled backup is being written: the next waits for it rather than pile up.
    scheduled_backup_running: bool,
    started_ms: i64,
    /// Said once: no symbol has had a quote since start (no market data at all).
    warned_no_data: bool,
}

impl Schedule {
    pub(super) fn new(now: i64) -> Schedule {
        Schedule {
            last_equity_journal_ms: 0,
            last_clock_sync_ms: now,
            last_rules_ms: now,
            last_backup_ms: now,
            scheduled_backup_running: false,
            started_ms: now,
            warned_no_data: false,
        }
    }
}

impl Engine {
    pub(super) fn on_tick(&mut self, facts: TickFacts, now: i64) {
        // The verdict of the ticket being typed follows the market (fat finger, quote age,
        // balance), not only the keystrokes.
        if let Some(draft) = self.core.state.preview.as_ref().map(|p| p.draft.clone()) {
            self.preview(draft, now);
        }
        self.scheduled_backup(now);
        if !self.schedule.warned_no_data && now - self.schedule.started_ms > NO_DATA_WARNING_MS {
            let all_stale = self
                .core
                .state
                .watchlist
                .iter()
                .all(|s| self.core.state.is_stale(s, now));
            if all_stale && !self.core.state.watchlist.is_empty() {
                self.schedule.warned_no_data = true;
                let source = if self.core.state.mode == crate::domain::Mode::Paper {
                    "paper mode prices come from Binance's public streams: is the network reachable?"
                } else {
                    "check the connection"
                };
                let text = format!(
                    "no market data for 10 s: every symbol is STALE and entries are refused ({source})"
                );
                self.core
                    .state
                    .log(now, LogLevel::Error, LogKind::Connection, text);
            }
        }
        if now - self.schedule.last_clock_sync_ms >= CLOCK_SYNC_EVERY_MS {
            self.schedule.last_clock_sync_ms = now;
            self.emit(Effect::SyncClock);
        }
        if now - self.schedule.last_rules_ms >= RULES_REFRESH_EVERY_MS {
            self.schedule.last_rules_ms = now;
            self.emit(Effect::LoadRules {
                delay: Duration::ZERO,
            });
        }
        self.check_shared_state(now);
        self.core.state.rate = facts.rate;
        self.core.state.clock_offset_ms = Some(facts.clock_offset_ms);
        if self.sync.reconciled && !self.core.state.balances.is_empty() {
            let record = now - self.schedule.last_equity_journal_ms >= EQUITY_JOURNAL_EVERY_MS;
            if record {
                self.schedule.last_equity_journal_ms = now;
            }
            if let Some(t) = self.core.sample_equity(now, record) {
                self.on_transition(t, now);
            }
        }
    }

    /// A `crbot kill` (or resume, or limit change) from another shell lands in the journal:
    /// read at every tick, and at once when the journal announces a change (PostgreSQL's
    /// notice, `Input::TradingStateNotice`).
    pub(super) fn check_shared_state(&mut self, now: i64) {
        let Ok(id) = self.core.journal.latest_trading_state_id() else {
            return;
        };
        if id <= self.sync.state_row {
            return;
        }
        self.sync.state_row = id;
        let Ok(Some(stored)) = self.core.journal.latest_trading_state() else {
            return;
        };
        let state = crate::engine::core::state_from_record(&stored.record);
        if state == self.core.state.trading {
            return;
        }
        let text = format!(
            "trading state changed from another shell: {} ({})",
            stored.record.state, stored.record.reason
        );
        let newly_halted = matches!(state, TradingState::Halted { .. })
            && !matches!(self.core.state.trading, TradingState::Halted { .. });
        self.core.state.trading = state;
        self.core.state.log(now, LogLevel::Warn, LogKind::Kill, text);
        if newly_halted {
            self.finish_kill_from_elsewhere(now);
        }
        self.start_resync();
    }

    /// HALTED means every order cancelled, wherever it was written: a kill switch pressed on a
    /// standby, on a screen of another machine, or by a `crbot kill` that died after its halt
    /// left the cancels to this engine, which holds the account. The halt is already durable
    /// (it was read from the journal), so only the sweep runs: no second halt, no second
    /// `KILL` event. A `crbot kill` sweeping at the same time is harmless (a cancel-all of
    /// nothing is not an error to the sweep).
    fn finish_kill_from_elsewhere(&mut self, now: i64) {
        if self.core.state.kill.as_ref().is_some_and(|k| !k.done) {
            return;
        }
        self.core.state.log(
            now,
            LogLevel::Warn,
            LogKind::Kill,
            "HALTED from elsewhere: cancelling every open order here too",
        );
        let halted = crate::engine::kill::Halted::interrupted(&self.core);
        self.sweep(halted, now);
    }

    /// The posture's backup schedule (staging daily, production hourly); the backup service
    /// prunes old copies to one a week after the first week.
    fn scheduled_backup(&mut self, now: i64) {
        let Some(every) = self.core.backup_every_ms else {
            return;
        };
        if self.schedule.scheduled_backup_running || now - self.schedule.last_backup_ms < every {
            return;
        }
        self.schedule.last_backup_ms = now;
        self.schedule.scheduled_backup_running = true;
        self.start_backup(backup::Reason::Scheduled, now);
    }

    /// Starts a backup off the loop: a copy of a large journal takes seconds, and nothing
    /// here (least of all the kill key) may wait for it. Its outcome returns as
    /// `Answer::Backup`.
    pub(super) fn start_backup(&mut self, reason: backup::Reason, now: i64) {
        let journal = self.core.journal.location().clone();
        let folder = match &self.core.backup_dir {
            Some(dir) => dir.clone(),
            None => backup::folder(
                self.core
                    .journal
                    .path()
                    .parent()
                    .unwrap_or(std::path::Path::new(".")),
            ),
        };
        let dest = backup::file_in(&folder, self.core.state.mode, now);
        let mode = self.core.state.mode;
        self.emit(Effect::Backup {
            journal,
            mode,
            dest,
            reason,
            started_ms: now,
        });
    }

    /// A backup's outcome: shown, and journaled (`BACKUP` is what `crbot doctor` looks for).
    pub(super) fn on_backup(&mut self, outcome: BackupOutcome, now: i64) {
        if outcome.reason == backup::Reason::Scheduled {
            self.schedule.scheduled_backup_running = false;
        }
        match &outcome.result {
            Ok(_) => self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::System,
                format!("journal backed up to {}", outcome.path.display()),
            ),
            Err(e) => self.core.state.log(
                now,
                LogLevel::Error,
                LogKind::System,
                format!("backup ({}) failed: {e}", outcome.reason.label()),
            ),
        }
        for failure in &outcome.prune_failures {
            self.core
                .state
                .log(now, LogLevel::Warn, LogKind::System, failure.clone());
        }
        self.core
            .record_event(outcome.kind(), None, &outcome.detail(), now);
    }
}
