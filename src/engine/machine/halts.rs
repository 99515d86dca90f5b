//! The kill switch and the automatic halts, flatten (stage two) and the re-arm.
//!
//! Owns: what follows a breach (`AUTO_HALT_ACTION`), the flatten due once an automatic
//! halt's cancels are done, the vault a re-arm's passphrase is checked against, and whether a
//! re-arm fetches the keys again from a secrets service first. The kill
//! sequence itself is `engine::kill` (shared with `crbot kill`): HALTED is journaled before the
//! sweep is even emitted. Must not: wait for anything before the sweep starts.

use std::path::PathBuf;

use super::{Effect, Engine};
use crate::domain::{ClientOrderId, OrderPurpose};
use crate::engine::kill::{self, FlattenSell, Halted, KillEvent};
use crate::engine::snapshot::{KillLine, KillProgress, KillStage, LogKind, LogLevel};
use crate::journal::{EventKind, KillTrigger};
use crate::risk::{self, TradingState};
use crate::secret::SecretString;
use crate::vault::VaultError;

/// The state the halts own.
#[derive(Debug)]
pub(super) struct HaltState {
    /// `AUTO_HALT_ACTION=halt_flatten`: an automatic breach halts and flattens instead of reducing.
    auto_flatten: bool,
    /// Stage two due once stage one is done and balances are re-read (automatic halt-flatten).
    pub(super) flatten_after_kill: Option<u8>,
    /// The vault whose passphrase a re-arm must give, in a mode with keys. `None` there means
    /// keys from the environment (development): nothing to check against.
    vault: Option<PathBuf>,
    /// Keys from a secrets service: a re-arm fetches them again (a rotated secret is used from
    /// then on, and one that can no longer be read keeps trading halted).
    refetch_keys: bool,
}

impl HaltState {
    pub(super) fn new(auto_flatten: bool, vault: Option<PathBuf>) -> HaltState {
        HaltState {
            auto_flatten,
            flatten_after_kill: None,
            vault,
            refetch_keys: false,
        }
    }
}

impl Engine {
    /// Stage one: HALTED (journal first), then cancel everything, cancels before all else.
    /// Whether the halt is in the journal.
    pub(super) fn kill(&mut self, trigger: KillTrigger, reason: &str, now: i64) -> bool {
        let halted = kill::halt(Some(&mut self.core), trigger, reason, now);
        let recorded = halted.halt_error().is_none();
        if let Some(e) = halted.halt_error() {
            // The halt is in memory and on screen; the cancels must still go.
            let text = format!("halt not journaled: {e}");
            self.core.state.log(now, LogLevel::Error, LogKind::Kill, text);
        }
        self.sweep(halted, now);
        self.note_own_state_write();
        recorded
    }

    /// Stage one's exchange part: cancel every open order everywhere, then verify. The sweep
    /// runs on the executor's task; its progress comes back as `Answer::Kill`.
    pub(super) fn sweep(&mut self, halted: Halted, now: i64) {
        // The sweep cancels every protective list too: crbot's own end, not a loss.
        self.ending_own_protection(None);
        self.core.state.kill = Some(KillProgress {
            started_ms: now,
            stage: KillStage::Cancelling,
            lines: Vec::new(),
            done: false,
        });
        self.emit(Effect::Sweep(halted));
    }

    pub(super) fn flatten(&mut self, percent: u8, now: i64) {
        if !matches!(self.core.state.trading, TradingState::Halted { .. }) {
            self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Kill,
                "flatten is stage two of the kill switch: press the kill key first",
            );
            return;
        }
        if let Some(k) = &mut self.core.state.kill {
            k.stage = KillStage::Flattening;
        }
        let plan = kill::flatten_plan(&self.core.state, percent, None);
        for d in &plan.dust {
            let text = format!("{}: {} {} left as dust ({})", d.symbol, d.qty, d.asset, d.reason);
            self.core
                .state
                .log(now, LogLevel::Warn, LogKind::Kill, text.clone());
            self.core
                .record_event(EventKind::FlattenDust, Some(&d.symbol), &text, now);
        }
        let mut sells = Vec::new();
        for t in plan.tickets {
            let mut sell = FlattenSell {
                symbol: t.symbol.clone(),
                qty: t.qty.to_string(),
                ok: true,
                detail: String::new(),
            };
            match self.core.decide(&t, OrderPurpose::Flatten, true, now) {
                Ok(p) => {
                    sells.push((Some(p.request.client_order_id.clone()), sell));
                    self.send(p, None);
                }
                Err(r) => {
                    sell.ok = false;
                    sell.detail = kill::refusal_text(&r);
                    sells.push((None, sell));
                    self.refused(None, r, now);
                }
            }
        }
        self.kill_flatten_planned(sells, &plan.dust);
    }

    /// The sweep's first cancels are on their way: now the `KILL` event, with the reason (one
    /// fsync the cancels did not wait for). An interrupted sweep finished at start-up has no
    /// reason and no second event.
    pub(super) fn on_sweep_started(&mut self, reason: Option<String>, now: i64) {
        if let Some(reason) = reason {
            self.core.record_event(EventKind::Kill, None, &reason, now);
        }
    }

    pub(super) fn on_kill_event(&mut self, ev: KillEvent, now: i64) {
        kill::record(&mut self.core, &ev, now);
        let progress = self.core.state.kill.get_or_insert(KillProgress {
            started_ms: now,
            stage: KillStage::Cancelling,
            lines: Vec::new(),
            done: false,
        });
        match ev {
            KillEvent::Stage(stage) => progress.stage = stage,
            KillEvent::Line { symbol, ok, outcome } => {
                if let Some(l) = progress.lines.iter_mut().find(|l| l.symbol == symbol) {
                    l.ok = ok;
                    l.outcome = outcome;
                } else {
                    progress.lines.push(KillLine { symbol, ok, outcome });
                }
            }
            KillEvent::Countdown { secs } => {
                let text = format!("rate-limited: cancelling in {secs} s");
                self.core.state.log(now, LogLevel::Warn, LogKind::Kill, text);
            }
            KillEvent::Done { ok, summary } => {
                progress.done = true;
                // "All orders cancelled" only when the exchange confirmed it; an incomplete
                // sweep stays at the stage it reached, with its summary in the log.
                if ok {
                    progress.stage = KillStage::Cancelled;
                }
                let level = if ok { LogLevel::Info } else { LogLevel::Error };
                self.core.state.log(now, level, LogKind::Kill, summary);
                self.start_backup(crate::engine::backup::Reason::AfterKill, now);
                self.start_resync();
            }
        }
    }

    /// Whether a re-arm asks the vault passphrase: keys from the vault, not fetched again from a
    /// secrets service, in a mode that has keys.
    pub(super) fn rearm_needs_passphrase(&self) -> bool {
        self.core.state.mode.needs_keys() && !self.halts.refetch_keys && self.halts.vault.is_some()
    }

    /// The screen's confirmed re-arm. In a mode with keys it takes the vault passphrase, as
    /// `crbot resume` does; Argon2 is slow on purpose, so the check runs off the loop and
    /// answers with [`Answer::RearmChecked`].
    pub(super) fn request_rearm(&mut self, passphrase: Option<SecretString>, now: i64) {
        if !self.core.state.mode.needs_keys() {
            return self.rearm(now);
        }
        if self.halts.refetch_keys {
            return self.emit(Effect::FetchKeys {
                state_row: self.sync.state_row,
                trading: self.core.state.trading.clone(),
            });
        }
        let Some(path) = self.halts.vault.clone() else {
            self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Kill,
                "re-arm with keys from the environment: no passphrase was checked",
            );
            return self.rearm(now);
        };
        let Some(pass) = passphrase.filter(|p| !p.is_empty()) else {
            return self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Kill,
                "re-arm refused: the vault passphrase is required",
            );
        };
        self.emit(Effect::CheckPassphrase {
            vault: path,
            passphrase: pass,
            state_row: self.sync.state_row,
            trading: self.core.state.trading.clone(),
        });
    }

    pub(super) fn rearm(&mut self, now: i64) {
        match self.core.rearm("tui", now) {
            Ok(()) => self.note_own_state_write(),
            Err(e) => self
                .core
                .state
                .log(now, LogLevel::Warn, LogKind::Kill, format!("re-arm: {e}")),
        }
    }

    pub(super) fn on_rearm_checked(
        &mut self,
        verdict: Result<(), VaultError>,
        state_row: i64,
        trading: TradingState,
        now: i64,
    ) {
        match verdict {
            Ok(()) if state_row == self.sync.state_row && trading == self.core.state.trading => {
                self.rearm(now)
            }
            Ok(()) => self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Kill,
                "re-arm dropped: the trading state changed while the passphrase was checked",
            ),
            Err(VaultError::WrongPassphrase) => self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Kill,
                "re-arm refused: wrong passphrase",
            ),
            Err(e) => self
                .core
                .state
                .log(now, LogLevel::Warn, LogKind::Kill, format!("re-arm refused: {e}")),
        }
    }

    /// Keys come from a secrets service: each re-arm fetches them again first.
    pub fn refetch_keys_on_rearm(&mut self) {
        self.halts.refetch_keys = true;
    }

    pub(super) fn on_keys_fetched(
        &mut self,
        verdict: Result<String, String>,
        state_row: i64,
        trading: TradingState,
        now: i64,
    ) {
        match verdict {
            Ok(from) if state_row == self.sync.state_row && trading == self.core.state.trading => {
                let text = format!("re-arm: keys fetched again from {from}");
                self.core.state.log(now, LogLevel::Info, LogKind::Kill, text);
                self.rearm(now)
            }
            Ok(_) => self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Kill,
                "re-arm dropped: the trading state changed while the keys were fetched",
            ),
            Err(e) => self
                .core
                .state
                .log(now, LogLevel::Warn, LogKind::Kill, format!("re-arm refused: {e}")),
        }
    }

    pub(super) fn note_own_state_write(&mut self) {
        if let Ok(id) = self.core.journal.latest_trading_state_id() {
            self.sync.state_row = id;
        }
    }

    /// Acts on an automatic transition, wherever the sample that caused it was taken.
    pub(super) fn on_transition(&mut self, t: risk::Transition, now: i64) {
        self.note_own_state_write();
        let breach = matches!(t.to, TradingState::Reducing { .. });
        let halt = kill::automatic_trigger(t.trigger).filter(|_| breach && self.halts.auto_flatten);
        if let Some(trigger) = halt {
            let reason = format!("automatic halt ({}): {}", t.trigger, t.detail);
            self.kill(trigger, &reason, now);
            // Not now: the protective legs still lock the position, so the free balance
            // would make all of it "dust". After the cancels and a fresh balance read.
            self.halts.flatten_after_kill = Some(100);
        } else if breach {
            self.cancel_entries(now);
        }
    }

    /// Automatic halts (daily loss, drawdown) take the path to *reducing*: entry orders are
    /// cancelled, protective orders stay.
    pub(super) fn cancel_entries(&mut self, now: i64) {
        let entries: Vec<ClientOrderId> = self
            .core
            .state
            .orders
            .values()
            .filter(|o| o.state.is_open() && o.purpose == OrderPurpose::Entry)
            .map(|o| o.client_order_id.clone())
            .collect();
        for cid in entries {
            self.cancel(&cid, now);
        }
    }
}
