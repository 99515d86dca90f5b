//! Tickets and orders: the live preview, the submit (parse → risk → journal → send), the
//! exchange's answer to a placement, and cancels.
//!
//! Owns: the ticket's preview and result on the screen (in `EngineState`). Must not: send
//! anything `Core::decide` did not approve, or call an order "accepted" before the exchange
//! said so.

use rust_decimal::Decimal;

use super::{Effect, Engine};
use crate::domain::broker::{OrderOutcome, OrderReport, Placed};
use crate::domain::{ClientOrderId, LocalOrderState, Money, MoneyError, OrderPurpose, Symbol};
use std::collections::BTreeMap;

use crate::domain::{Order, Ticket};
use crate::engine::core::{Prepared, Refusal};
use crate::engine::snapshot::{LogKind, LogLevel, TicketDraft, TicketOutcome, TicketPreview, TicketResult};
use crate::engine::snapshot::{RequestId, RuleLine};
use crate::engine::ticket::parse_draft;
use crate::journal::RiskEventRecord;
use crate::risk;
use crate::risk::{ApprovedOrder, Denial};

impl Engine {
    pub(super) fn preview(&mut self, draft: TicketDraft, now: i64) {
        let quote = Symbol::new(draft.symbol.trim())
            .ok()
            .and_then(|s| self.core.state.quotes.get(&s).copied());
        let preview = match parse_draft(&draft, quote.as_ref()) {
            Err(field_errors) => TicketPreview {
                draft,
                field_errors,
                rules: Vec::new(),
                approved: false,
                notional: None,
                fee_estimate: None,
                daily_loss_headroom: None,
                orders: Vec::new(),
            },
            Ok(ticket) => {
                let (rules, approved) = self.core.preview_lines(&ticket, now);
                let headroom = self.daily_loss_headroom();
                let orders = approved
                    .as_ref()
                    .map(|a| {
                        outgoing_orders(a, self.core.state.rules.get(&a.symbol), &self.core.state.limits)
                    })
                    .unwrap_or_default();
                TicketPreview {
                    draft,
                    field_errors: Vec::new(),
                    approved: approved.is_some() && self.sync.reconciled,
                    notional: approved.as_ref().and_then(|a| a.notional),
                    fee_estimate: approved.as_ref().and_then(|a| a.est_fee.clone()),
                    daily_loss_headroom: headroom,
                    orders,
                    rules,
                }
            }
        };
        self.core.state.preview = Some(preview);
    }

    /// How much more may be lost today: the daily-loss limit (a percentage of the day start)
    /// plus today's P&L. Unknown (and not shown) before the day's first sample, and also when
    /// the figures do not combine (another asset, overflow): the preview is only advice, the
    /// daily-loss rule decides, so a bad figure is logged rather than shown.
    fn daily_loss_headroom(&self) -> Option<crate::domain::Money> {
        let start = &self.core.state.equity.day_start()?.equity;
        let pnl = self.core.state.equity.day_pnl()?;
        match headroom(start, &pnl, self.core.state.limits.max_daily_loss_pct) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("daily-loss headroom of {start} and {pnl}: {e}");
                None
            }
        }
    }

    pub(super) fn submit(&mut self, draft: TicketDraft, now: i64) {
        if !self.sync.reconciled {
            self.core.state.result = Some(TicketResult {
                draft,
                outcome: TicketOutcome::Rejected {
                    code: None,
                    message: "still reconciling with the exchange; try again in a moment".into(),
                },
            });
            return;
        }
        let quote = Symbol::new(draft.symbol.trim())
            .ok()
            .and_then(|s| self.core.state.quotes.get(&s).copied());
        let ticket = match parse_draft(&draft, quote.as_ref()) {
            Ok(t) => t,
            Err(errors) => {
                let message = errors
                    .iter()
                    .map(|(f, m)| format!("{}: {m}", f.label()))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.core.state.result = Some(TicketResult {
                    draft,
                    outcome: TicketOutcome::Rejected { code: None, message },
                });
                return;
            }
        };
        let purpose = if ticket.side == crate::domain::Side::Buy {
            OrderPurpose::Entry
        } else {
            OrderPurpose::Exit
        };
        // An exit typed in a ticket while halted is the trader's explicit confirmation (the
        // screen's confirm step lists it before it is sent).
        let exit_confirmed = ticket.side == crate::domain::Side::Sell;
        match self.core.decide(&ticket, purpose, exit_confirmed, now) {
            Ok(p) => {
                let cid = p.request.client_order_id.clone();
                // Not "accepted": only the exchange's answer (`on_placed`) may say that.
                self.core.state.result = Some(TicketResult {
                    draft: draft.clone(),
                    outcome: TicketOutcome::Sent { client_order_id: cid },
                });
                self.send(p, Some(draft));
            }
            Err(r) => self.refused(Some(draft), r, now),
        }
    }

    pub(super) fn refused(&mut self, draft: Option<TicketDraft>, r: Refusal, now: i64) {
        let outcome = match &r {
            Refusal::Risk(denials) => TicketOutcome::RiskRejected {
                reasons: denials
                    .iter()
                    .map(|d| crate::engine::snapshot::RuleLine {
                        code: d.code().to_string(),
                        passed: false,
                        detail: d.to_string(),
                    })
                    .collect(),
            },
            Refusal::Storage(e) => TicketOutcome::Rejected {
                code: None,
                message: format!("not sent: journal cannot record it ({e})"),
            },
        };
        if let Refusal::Storage(e) = &r {
            self.core.state.log(
                now,
                LogLevel::Error,
                LogKind::Rejection,
                format!("ticket refused: {e}"),
            );
        }
        if let Some(draft) = draft {
            self.core.state.result = Some(TicketResult { draft, outcome });
        }
    }

    pub(super) fn send(&mut self, p: Prepared, draft: Option<TicketDraft>) {
        self.emit(Effect::Place {
            request: p.request,
            draft,
        });
    }

    pub(super) fn cancel(&mut self, cid: &ClientOrderId, now: i64) {
        let Some(order) = self.core.state.orders.get(cid).cloned() else {
            return;
        };
        if !order.state.is_open() {
            return;
        }
        if order.purpose.is_protective() {
            // One leg cancels the whole OCO: say what that leaves behind.
            let text = format!(
                "cancel {cid}: the protective OCO on {} goes, the position is UNPROTECTED",
                order.symbol
            );
            self.core.state.log(now, LogLevel::Warn, LogKind::Order, text);
            self.ending_own_protection(Some(&order.symbol));
        } else {
            self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::Order,
                format!("cancel {} {}", order.symbol, cid),
            );
        }
        self.emit(Effect::Cancel {
            symbol: order.symbol,
            cid: cid.clone(),
        });
    }

    /// A cancel's answer: the order's new state, or a query when the exchange refused or did
    /// not say (an order already filled or gone is settled by what the exchange reports).
    pub(super) fn on_cancelled(&mut self, cid: ClientOrderId, outcome: OrderOutcome<OrderReport>, now: i64) {
        match outcome {
            OrderOutcome::Done(o) => {
                let f = self.core.on_exchange_order(&o, now);
                self.follow(f, now);
            }
            OrderOutcome::Rejected(e) => {
                self.core
                    .state
                    .log(now, LogLevel::Warn, LogKind::Order, format!("cancel {cid}: {e}"));
                self.resolve_known(&cid);
            }
            OrderOutcome::Unknown { reason } => {
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Order,
                    format!("cancel {cid}: outcome unknown ({reason})"),
                );
                self.resolve_known(&cid);
            }
        }
    }

    pub(super) fn on_placed(
        &mut self,
        cid: ClientOrderId,
        draft: Option<TicketDraft>,
        outcome: OrderOutcome<Placed>,
        now: i64,
    ) {
        crate::failpoint::hit("after_send");
        let result = match outcome {
            OrderOutcome::Done(placed) => {
                let f = self.core.on_exchange_order(&placed.order, now);
                for fill in &placed.fills {
                    self.core.on_fill(fill, now);
                }
                self.follow(f, now);
                TicketOutcome::Accepted {
                    client_order_id: cid.clone(),
                    detail: format!(
                        "{} {} executed {}",
                        placed.order.status, placed.order.symbol, placed.order.executed_qty
                    ),
                }
            }
            OrderOutcome::Rejected(e) => {
                self.core.mark_refused(&cid, &e, now);
                TicketOutcome::Rejected {
                    code: e.code(),
                    message: e.to_string(),
                }
            }
            OrderOutcome::Unknown { reason } => {
                self.core.mark_unknown(&cid, &reason, now);
                self.resolve_known(&cid);
                TicketOutcome::Unknown {
                    client_order_id: cid.clone(),
                }
            }
        };
        if let Some(draft) = draft {
            self.core.state.result = Some(TicketResult {
                draft,
                outcome: result,
            });
        }
    }

    /// After an unknown order is resolved, the ticket's result shows what became of it.
    pub(super) fn refresh_ticket_result(&mut self, cid: &ClientOrderId) {
        let Some(res) = &self.core.state.result else {
            return;
        };
        let TicketOutcome::Unknown { client_order_id } = &res.outcome else {
            return;
        };
        if client_order_id != cid {
            return;
        }
        let draft = res.draft.clone();
        let outcome = match self.core.state.orders.get(cid).map(|o| o.state) {
            Some(LocalOrderState::NotSent) => TicketOutcome::Rejected {
                code: None,
                message: "never reached the exchange".into(),
            },
            Some(s) => TicketOutcome::Accepted {
                client_order_id: cid.clone(),
                detail: format!("reconciled: {}", s.as_code()),
            },
            None => return,
        };
        self.core.state.result = Some(TicketResult { draft, outcome });
    }
}

/// The exact orders a ticket would send: the entry and, for an entry, the protective OCO legs.
/// The legs cover what the entry's fills leave after a commission taken in the base asset, so
/// their quantity is the entry's less the taker fee, rounded down to the step (with the fee
/// paid in BNB the legs get the whole quantity; they never get more than this).
pub fn outgoing_orders(
    a: &risk::ApprovedOrder,
    rules: Option<&crate::domain::SymbolRules>,
    limits: &risk::Limits,
) -> Vec<crate::engine::snapshot::OutgoingOrder> {
    use crate::domain::{OrderType, Side};
    use crate::engine::snapshot::OutgoingOrder;
    let mut v = vec![OutgoingOrder {
        purpose: if a.is_entry {
            OrderPurpose::Entry
        } else {
            OrderPurpose::Exit
        },
        symbol: a.symbol.clone(),
        side: a.side,
        order_type: a.order_type,
        time_in_force: a.time_in_force,
        qty: a.qty,
        price: a.price,
        stop_price: None,
    }];
    let keep = Decimal::ONE - limits.taker_fee_pct / Decimal::ONE_HUNDRED;
    let leg_qty = a
        .qty
        .checked_scale(keep)
        .map(|q| rules.map_or(q, |r| r.round_qty(OrderType::Limit, q)))
        .unwrap_or(a.qty);
    if a.is_entry
        && let (Some(sl), Some(tp)) = (a.stop_loss, a.take_profit)
    {
        v.push(OutgoingOrder {
            purpose: OrderPurpose::TakeProfit,
            symbol: a.symbol.clone(),
            side: Side::Sell,
            order_type: OrderType::LimitMaker,
            time_in_force: None,
            qty: leg_qty,
            price: Some(tp),
            stop_price: None,
        });
        v.push(OutgoingOrder {
            purpose: OrderPurpose::StopLoss,
            symbol: a.symbol.clone(),
            side: Side::Sell,
            order_type: OrderType::StopLoss,
            time_in_force: None,
            qty: leg_qty,
            price: None,
            stop_price: Some(sl),
        });
    }
    v
}

/// `max_loss_pct` percent of the day-start equity plus today's P&L (a loss shrinks it), in the
/// day start's asset; a P&L in another asset is an error, never a sum.
pub fn headroom(day_start: &Money, day_pnl: &Money, max_loss_pct: Decimal) -> Result<Money, MoneyError> {
    day_start.checked_percent(max_loss_pct)?.checked_add(day_pnl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Asset;

    fn money(amount: &str, asset: &str) -> Money {
        Money::new(
            amount.parse().expect("test literal"),
            Asset::new(asset).expect("test asset"),
        )
    }

    #[test]
    fn headroom_is_the_limit_less_todays_loss() {
        let start = money("10000", "USDT");
        let h = headroom(&start, &money("-219.77", "USDT"), Decimal::new(5, 0)).expect("same asset");
        assert_eq!(h, money("280.23", "USDT"));
        let h = headroom(&start, &money("120", "USDT"), Decimal::new(25, 1)).expect("same asset");
        assert_eq!(h, money("370", "USDT"));
    }

    #[test]
    fn headroom_refuses_a_pnl_in_another_asset_or_an_overflow() {
        let start = money("10000", "USDT");
        let btc = headroom(&start, &money("-0.01", "BTC"), Decimal::new(5, 0));
        assert!(matches!(btc, Err(MoneyError::AssetMismatch { .. })), "{btc:?}");
        let huge = Money::new(Decimal::MAX, Asset::usdt());
        assert_eq!(
            headroom(&huge, &money("0", "USDT"), Decimal::new(5, 0)),
            Err(MoneyError::Overflow)
        );
    }
}

/// Client orders (`Command::Order`) waiting for the exchange's answer to their placement, and
/// client backups (`Command::Backup`) waiting for their copy, by destination.
#[derive(Debug, Default)]
pub(super) struct Awaiting {
    orders: BTreeMap<ClientOrderId, RequestId>,
    backups: BTreeMap<std::path::PathBuf, RequestId>,
}

/// The engine's answer to a command that carried a request id: a client's ticket
/// (`Command::Order`) or a read of the journal's fills (`Command::Trades`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The fills journaled at or after the asked time, oldest first (or why they could not be
    /// read).
    Trades(Result<Vec<crate::domain::Fill>, String>),
    /// A client's backup (`Command::Backup`): the journal copied, its size in bytes, or why
    /// not. Journaled as a `BACKUP` event either way.
    Backup {
        source: std::path::PathBuf,
        dest: std::path::PathBuf,
        result: Result<u64, String>,
    },
    /// The engine is still reconciling with the exchange at start-up: nothing decided, nothing
    /// journaled, nothing sent (the client may ask again).
    NotReady,
    /// Nothing decided: the journal cannot record the decision. Nothing was sent.
    NotSent { message: String },
    /// The risk engine refused it (every failed rule); journaled, nothing sent.
    RiskRejected { ticket: Ticket, denials: Vec<Denial> },
    /// A dry run: every rule's line and the verdict (the exact order, or the denials).
    /// Journaled as a risk decision; nothing sent.
    DryRun {
        ticket: Ticket,
        lines: Vec<RuleLine>,
        verdict: Result<ApprovedOrder, Vec<Denial>>,
    },
    /// The files a journal export wrote (`Command::Export`), or why none.
    Exported(Result<Vec<std::path::PathBuf>, String>),
    /// A read command's report (`Command::Report`).
    Report(Box<crate::engine::reports::Report>),
    /// A kill switch's whole outcome (`Command::KillReport`).
    Kill(Box<crate::engine::kill::KillOutcome>),
    /// Approved and sent: what the exchange answered, and the order (and any protective legs
    /// already journaled) as the engine now knows them.
    Sent {
        placement: Placement,
        order: Option<Order>,
        protective: Vec<Order>,
    },
}

/// What the exchange answered to a client order's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The exchange took it (`NEW`, `FILLED`, …).
    Accepted,
    /// The exchange refused it; nothing is open.
    Refused { message: String },
    /// No answer (timeout, 5xx): being settled by query, never sent twice.
    Unknown,
}

impl Placement {
    pub fn of(outcome: &OrderOutcome<Placed>) -> Placement {
        match outcome {
            OrderOutcome::Done(_) => Placement::Accepted,
            OrderOutcome::Rejected(e) => Placement::Refused {
                message: e.to_string(),
            },
            OrderOutcome::Unknown { .. } => Placement::Unknown,
        }
    }
}

impl Engine {
    /// A ticket from a client of the engine: the same gate as the screen's ticket, answered
    /// through [`Effect::Reply`]. A sell here is not an explicit exit confirmation.
    pub(super) fn client_order(&mut self, request: RequestId, ticket: Ticket, dry_run: bool, now: i64) {
        if !self.sync.reconciled {
            return self.emit(Effect::Reply {
                request,
                reply: Reply::NotReady,
            });
        }
        if dry_run {
            let reply = self.dry_run(ticket, now);
            return self.emit(Effect::Reply { request, reply });
        }
        let purpose = if ticket.side == crate::domain::Side::Buy {
            OrderPurpose::Entry
        } else {
            OrderPurpose::Exit
        };
        match self.core.decide(&ticket, purpose, false, now) {
            Ok(p) => {
                let cid = p.request.client_order_id.clone();
                self.core.state.log(
                    now,
                    LogLevel::Info,
                    LogKind::Order,
                    format!(
                        "client order {cid}: {} {} {}",
                        ticket.side, ticket.qty, ticket.symbol
                    ),
                );
                self.awaiting.orders.insert(cid, request);
                self.send(p, None);
            }
            Err(Refusal::Risk(denials)) => self.emit(Effect::Reply {
                request,
                reply: Reply::RiskRejected { ticket, denials },
            }),
            Err(Refusal::Storage(e)) => self.emit(Effect::Reply {
                request,
                reply: Reply::NotSent {
                    message: format!("not sent: the journal cannot record it ({e})"),
                },
            }),
        }
    }

    /// The verdict and the exact orders; only the risk decision is journaled.
    fn dry_run(&mut self, ticket: Ticket, now: i64) -> Reply {
        let rctx = self.core.state.risk_context(false);
        let verdict = risk::check(&self.core.state.limits, &rctx, &ticket, now).map(|a| a.into_inner());
        let (lines, _) = self.core.preview_lines(&ticket, now);
        let (approved, codes, reason) = match &verdict {
            Ok(_) => (true, Vec::new(), "dry run: approved".to_string()),
            Err(d) => (
                false,
                d.iter().map(|d| d.code().to_string()).collect(),
                format!(
                    "dry run: {}",
                    d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
                ),
            ),
        };
        let record = RiskEventRecord {
            time_ms: now,
            source: self.core.source,
            ticket: ticket.clone(),
            approved,
            codes,
            reason,
        };
        if let Err(e) = self.core.journal.record_risk_event(&record) {
            return Reply::NotSent {
                message: format!("the journal cannot record the decision: {e}"),
            };
        }
        Reply::DryRun {
            ticket,
            lines,
            verdict,
        }
    }

    /// The journal's fills since `since_ms` (the journal is the engine's own store).
    pub(super) fn trades(&mut self, request: RequestId, since_ms: i64) {
        let fills = self.core.journal.fills_since(since_ms).map_err(|e| e.to_string());
        self.emit(Effect::Reply {
            request,
            reply: Reply::Trades(fills),
        });
    }

    /// A client's backup to `dest`, off the loop as every backup; answered when it is done.
    pub(super) fn backup_for(&mut self, request: RequestId, dest: std::path::PathBuf, now: i64) {
        if self.awaiting.backups.contains_key(&dest) {
            return self.emit(Effect::Reply {
                request,
                reply: Reply::Backup {
                    source: self.core.journal.path().to_path_buf(),
                    dest,
                    result: Err("a backup to this path is already running".into()),
                },
            });
        }
        self.awaiting.backups.insert(dest.clone(), request);
        self.emit(Effect::Backup {
            journal: self.core.journal.location().clone(),
            mode: self.core.state.mode,
            dest,
            reason: crate::engine::backup::Reason::Command,
            started_ms: now,
        });
    }

    /// A finished backup some client waits for: its reply.
    pub(super) fn reply_backup(&mut self, outcome: &crate::engine::backup::BackupOutcome) {
        if outcome.reason != crate::engine::backup::Reason::Command {
            return;
        }
        let Some(request) = self.awaiting.backups.remove(&outcome.path) else {
            return;
        };
        self.emit(Effect::Reply {
            request,
            reply: Reply::Backup {
                source: self.core.journal.path().to_path_buf(),
                dest: outcome.path.clone(),
                result: outcome.result.clone(),
            },
        });
    }

    /// After a placement's answer was handled: the reply its client waits for, if any.
    pub(super) fn reply_placed(&mut self, cid: &ClientOrderId, placement: Placement) {
        let Some(request) = self.awaiting.orders.remove(cid) else {
            return;
        };
        let order = self.core.state.orders.get(cid).cloned();
        let protective = order
            .as_ref()
            .map(|e| {
                self.core
                    .state
                    .orders
                    .values()
                    .filter(|o| {
                        o.purpose.is_protective() && o.symbol == e.symbol && o.created_ms >= e.created_ms
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.emit(Effect::Reply {
            request,
            reply: Reply::Sent {
                placement,
                order,
                protective,
            },
        });
    }
}
