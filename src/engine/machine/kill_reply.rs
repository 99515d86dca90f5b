//! A kill switch asked with a request id (`Command::KillReport`, `crbot kill` through the
//! engine): what it achieved, gathered as it happens and answered once it is all done.
//!
//! Owns: the waiters and what each has seen — the sweep's progress and report, the backup
//! after it, and with flatten each sell's answer and the dust. The kill itself is the same
//! sequence as the key's (`halts`); this only watches it. Must not: delay or change the kill.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Effect, Engine, Reply};
use crate::domain::ClientOrderId;
use crate::domain::broker::{OrderOutcome, Placed};
use crate::engine::backup::{self, BackupOutcome};
use crate::engine::kill::{FlattenOutcome, FlattenSell, KillEvent, KillOutcome, KillReport};
use crate::engine::oneshot::{api_msg, status_text};
use crate::engine::snapshot::RequestId;

/// One requester of a kill's outcome.
#[derive(Debug)]
pub(super) struct KillWaiter {
    request: RequestId,
    flatten: bool,
    halt_recorded: bool,
    events: Vec<KillEvent>,
    report: Option<KillReport>,
    /// `None` while the backup after the sweep runs.
    backup: Option<Result<PathBuf, String>>,
    /// Stage two once planned; its sells still waiting for the exchange's answer.
    sold: Option<FlattenOutcome>,
    pending: BTreeMap<ClientOrderId, usize>,
}

impl KillWaiter {
    fn swept(&self) -> bool {
        self.events.iter().any(|e| matches!(e, KillEvent::Done { .. }))
    }

    fn finished(&self) -> bool {
        self.report.is_some()
            && self.backup.is_some()
            && (!self.flatten || (self.sold.is_some() && self.pending.is_empty()))
    }
}

impl Engine {
    /// Someone waits for this kill's outcome (the kill itself was just started).
    pub(super) fn wait_for_kill(&mut self, request: RequestId, flatten: bool, halt_recorded: bool) {
        if flatten {
            // As an automatic halt-flatten: once the cancels are done and the balances re-read
            // (the protective legs no longer lock the position).
            self.halts.flatten_after_kill = Some(100);
        }
        self.kill_waiters.push(KillWaiter {
            request,
            flatten,
            halt_recorded,
            events: Vec::new(),
            report: None,
            backup: None,
            sold: None,
            pending: BTreeMap::new(),
        });
    }

    pub(super) fn kill_progress_for_waiters(&mut self, ev: &KillEvent) {
        for w in &mut self.kill_waiters {
            w.events.push(ev.clone());
        }
    }

    /// The sweep's report (after its last progress event).
    pub(super) fn on_sweep_report(&mut self, report: KillReport) {
        for w in self
            .kill_waiters
            .iter_mut()
            .filter(|w| w.swept() && w.report.is_none())
        {
            w.report = Some(report.clone());
        }
        self.answer_kill_waiters();
    }

    pub(super) fn kill_backup_for_waiters(&mut self, outcome: &BackupOutcome) {
        if outcome.reason != backup::Reason::AfterKill {
            return;
        }
        let result = outcome
            .result
            .as_ref()
            .map(|_| outcome.path.clone())
            .map_err(Clone::clone);
        for w in self
            .kill_waiters
            .iter_mut()
            .filter(|w| w.swept() && w.backup.is_none())
        {
            w.backup = Some(result.clone());
        }
        self.answer_kill_waiters();
    }

    /// Stage two's plan, for the waiters that asked for it: the sells sent (`cid`) or refused.
    pub(super) fn kill_flatten_planned(
        &mut self,
        sells: Vec<(Option<ClientOrderId>, FlattenSell)>,
        dust: &[crate::engine::kill::Dust],
    ) {
        for w in self
            .kill_waiters
            .iter_mut()
            .filter(|w| w.flatten && w.swept() && w.sold.is_none())
        {
            let mut out = FlattenOutcome {
                ok: true,
                sells: Vec::new(),
                dust: dust.to_vec(),
            };
            for (cid, sell) in &sells {
                if let Some(cid) = cid {
                    w.pending.insert(cid.clone(), out.sells.len());
                } else {
                    out.ok = false;
                }
                out.sells.push(sell.clone());
            }
            w.sold = Some(out);
        }
        self.answer_kill_waiters();
    }

    /// A flatten sell's answer, as `crbot kill --flatten` run alone reports it.
    pub(super) fn kill_sell_answered(&mut self, cid: &ClientOrderId, outcome: &OrderOutcome<Placed>) {
        let (ok, detail) = match outcome {
            OrderOutcome::Done(p) => (
                true,
                format!("placed {cid} ({}): {}", p.order.order_id, status_text(&p.order)),
            ),
            OrderOutcome::Rejected(e) => (
                false,
                match e.code() {
                    Some(code) => format!("order rejected by the exchange: code {code}: {}", api_msg(e)),
                    None => format!("order not sent: {e}"),
                },
            ),
            OrderOutcome::Unknown { reason } => (
                false,
                format!(
                    "order {cid}: no answer ({reason}); the engine resolves it by client order id, not resending"
                ),
            ),
        };
        let mut any = false;
        for w in &mut self.kill_waiters {
            if let (Some(i), Some(sold)) = (w.pending.remove(cid), w.sold.as_mut())
                && let Some(sell) = sold.sells.get_mut(i)
            {
                sell.ok = ok;
                sell.detail = detail.clone();
                sold.ok &= ok;
                any = true;
            }
        }
        if any {
            self.answer_kill_waiters();
        }
    }

    /// Answers every waiter whose kill is all done.
    fn answer_kill_waiters(&mut self) {
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.kill_waiters)
            .into_iter()
            .partition(KillWaiter::finished);
        self.kill_waiters = waiting;
        for w in done {
            let Some(report) = w.report else { continue };
            let flatten_ok = !w.flatten || w.sold.as_ref().is_some_and(|s| s.ok);
            let outcome = KillOutcome {
                events: w.events,
                trading_state: self.core.state.trading.to_string(),
                halt_recorded: w.halt_recorded,
                warnings: if w.halt_recorded {
                    Vec::new()
                } else {
                    vec!["WARNING: the journal could not record the halt; cancelling anyway".to_string()]
                },
                report,
                backup: w.backup,
                notes: Vec::new(),
                flatten: w.sold,
                flatten_ok,
            };
            self.emit(Effect::Reply {
                request: w.request,
                reply: Reply::Kill(Box::new(outcome)),
            });
        }
    }
}
