//! The kill switch's sequence, the one both the console and `crbot kill` run.
//!
//! Owns: the order of stage one — [`halt`] first (HALTED in the journal, durable before any
//! request leaves; when the journal cannot record it, the cancels go anyway and the caller
//! says so loudly), then [`Halted::sweep`], which starts the cancel sweep on a task of its own
//! and only then journals the `KILL` event (one fsync the first cancel need not wait for) —
//! and what the journal keeps of the sweep ([`record`]: each symbol's outcome as
//! `KILL_CANCEL`, the summary as `KILL_DONE`). The types make the order hold: a sweep can
//! only start from a [`Halted`]. Must not: print or draw (the console shows progress on
//! screen, `crbot kill` on the terminal), or take a backup (the caller starts one, off its
//! loop, once the sweep is done).

use std::collections::BTreeSet;

use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinHandle;

use super::{KillEvent, KillReport, SweepConfig, sweep};
use crate::domain::Symbol;
use crate::engine::core::Core;
use crate::journal::{EventKind, JournalError, KillTrigger};
use crate::risk::Broker;

/// Trading is halted (or the journal could not say so) and the sweep may start.
#[derive(Debug)]
#[must_use = "a halt without its sweep leaves every order open"]
pub struct Halted {
    reason: Option<String>,
    known: BTreeSet<Symbol>,
    halt_error: Option<JournalError>,
}

/// The first step of a kill switch: HALTED, made durable in the journal before anything
/// else. `core` is `None` when the journal could not even be opened (`crbot kill` cancels
/// anyway); the sweep then relies on the exchange's own list of open orders.
pub fn halt(core: Option<&mut Core>, trigger: KillTrigger, reason: &str, now_ms: i64) -> Halted {
    let (known, halt_error) = match core {
        Some(core) => {
            let result = core.halt(trigger, reason, now_ms);
            (core.state.symbols_with_open_orders(), result.err())
        }
        None => (BTreeSet::new(), None),
    };
    crate::failpoint::hit("kill_after_halt");
    Halted {
        reason: Some(reason.to_string()),
        known,
        halt_error,
    }
}

impl Halted {
    /// A kill switch whose halt is already in the journal but whose sweep never finished
    /// (crbot died mid-sweep): the sweep again, without a second halt or `KILL` event.
    pub fn interrupted(core: &Core) -> Halted {
        Halted {
            reason: None,
            known: core.state.symbols_with_open_orders(),
            halt_error: None,
        }
    }

    /// The kill's reason; `None` for an interrupted sweep finished at start-up (its `KILL`
    /// event is in the journal already).
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Why the halt is not in the journal, when it is not (the cancels go regardless).
    pub fn halt_error(&self) -> Option<&JournalError> {
        self.halt_error.as_ref()
    }

    /// Starts the sweep on its own task (locally known symbols first, then what the exchange
    /// lists), then journals the `KILL` event with the reason.
    pub fn sweep<B: Broker>(self, core: Option<&mut Core>, broker: &B, now_ms: i64) -> Running {
        let (tx, events) = mpsc::unbounded_channel();
        let broker = broker.clone();
        let known = self.known;
        let report = tokio::spawn(async move { sweep(&broker, &known, &SweepConfig::default(), &tx).await });
        if let (Some(core), Some(reason)) = (core, &self.reason) {
            core.record_event(EventKind::Kill, None, reason, now_ms);
        }
        Running { events, report }
    }
}

/// A sweep under way: its progress as it happens, then its report.
#[derive(Debug)]
pub struct Running {
    events: UnboundedReceiver<KillEvent>,
    report: JoinHandle<KillReport>,
}

impl Running {
    /// The next progress event; `None` once the sweep has finished.
    pub async fn next(&mut self) -> Option<KillEvent> {
        self.events.recv().await
    }

    /// The sweep's report, once it has finished. A sweep task that died is reported as not
    /// verified: nothing says the book is empty.
    pub async fn report(self) -> KillReport {
        match self.report.await {
            Ok(report) => report,
            Err(e) => KillReport {
                ok: false,
                lines: Vec::new(),
                cancelled: 0,
                still_open: Vec::new(),
                summary: format!("could not confirm that nothing is open: the sweep stopped ({e})"),
            },
        }
    }
}

/// Journals what a kill switch's progress event leaves behind: a symbol's outcome
/// (`KILL_CANCEL`, every update, so a crash mid-sweep leaves the trail so far) and the
/// summary (`KILL_DONE`, which marks the sweep finished: the next start does not sweep again).
pub fn record(core: &mut Core, event: &KillEvent, now_ms: i64) {
    match event {
        KillEvent::Line { symbol, outcome, .. } => {
            core.record_event(EventKind::KillCancel, Some(symbol), outcome, now_ms)
        }
        KillEvent::Done { summary, .. } => core.record_event(EventKind::KillDone, None, summary, now_ms),
        KillEvent::Stage(_) | KillEvent::Countdown { .. } => {}
    }
}

/// The kill trigger of an automatic breach that halts (`AUTO_HALT_ACTION=halt_flatten`);
/// `None` for a transition that is not a breach.
pub fn automatic_trigger(trigger: crate::risk::Trigger) -> Option<KillTrigger> {
    use crate::risk::Trigger;
    match trigger {
        Trigger::DailyLoss => Some(KillTrigger::AutoDailyLoss),
        Trigger::Drawdown => Some(KillTrigger::AutoDrawdown),
        Trigger::PnlUnavailable => Some(KillTrigger::AutoPnlUnavailable),
        Trigger::Kill | Trigger::Rearm | Trigger::NewUtcDay | Trigger::Startup => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mode;
    use crate::journal::{Journal, TicketSource, TradingStateCode};
    use crate::risk::Limits;

    fn core(dir: &std::path::Path) -> Core {
        let journal = Journal::open(&dir.join("journal-sim.db"), Mode::Sim).expect("journal");
        Core::restore(journal, Mode::Sim, Limits::default(), TicketSource::Cli, 1_000).expect("core")
    }

    #[test]
    fn the_halt_is_in_the_journal_with_the_triggers_code_before_anything_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = core(dir.path());
        let halted = halt(Some(&mut c), KillTrigger::Cli, "from a shell", 2_000);
        assert!(halted.halt_error().is_none());
        let row = c
            .journal
            .latest_trading_state()
            .expect("read")
            .expect("a row")
            .record;
        assert_eq!(row.state, TradingStateCode::Halted);
        assert_eq!(row.trigger, "CLI_KILL");
        // Nothing else yet: the KILL event follows the start of the sweep.
        let events = c.journal.recent_events(10).expect("read");
        assert!(
            events
                .iter()
                .all(|e| e.record.event_kind() != Some(EventKind::Kill)),
            "{events:?}"
        );
        assert!(c.kill_sweep_pending(), "halted with no finished sweep");
    }

    #[test]
    fn progress_is_journaled_per_symbol_and_the_summary_marks_the_sweep_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = core(dir.path());
        let _ = halt(Some(&mut c), KillTrigger::Key, "pressed", 2_000);
        let btc = Symbol::new("BTCUSDT").expect("symbol");
        record(
            &mut c,
            &KillEvent::Line {
                symbol: btc.clone(),
                ok: Some(true),
                outcome: "2 order(s) cancelled".into(),
            },
            2_100,
        );
        record(&mut c, &KillEvent::Countdown { secs: 3 }, 2_150);
        record(
            &mut c,
            &KillEvent::Done {
                ok: true,
                summary: "all clear".into(),
            },
            2_200,
        );
        let events = c.journal.recent_events(10).expect("read");
        let kinds: Vec<(Option<EventKind>, Option<Symbol>)> = events
            .iter()
            .map(|e| (e.record.event_kind(), e.record.symbol.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Some(EventKind::KillDone), None),
                (Some(EventKind::KillCancel), Some(btc))
            ]
        );
        assert!(!c.kill_sweep_pending());
    }

    #[test]
    fn only_breaches_halt_automatically_each_with_its_own_code() {
        use crate::risk::Trigger;
        assert_eq!(
            automatic_trigger(Trigger::DailyLoss).map(|t| t.as_code()),
            Some("DAILY_LOSS")
        );
        assert_eq!(
            automatic_trigger(Trigger::Drawdown).map(|t| t.as_code()),
            Some("DRAWDOWN")
        );
        assert_eq!(
            automatic_trigger(Trigger::PnlUnavailable).map(|t| t.as_code()),
            Some("PNL_UNAVAILABLE")
        );
        assert_eq!(automatic_trigger(Trigger::Rearm), None);
    }
}
