//! Lost protection: a protective OCO that the exchange ended with no leg filled while crbot
//! still holds its position. On Binance an order that names no `selfTradePreventionMode` gets
//! the symbol's default, EXPIRE_MAKER: a taker of the same account (the trader in the Binance
//! app, another bot) that crosses the resting take-profit expires it `EXPIRED_IN_MATCH`, and the
//! list ends its other leg. The list can also be cancelled from elsewhere, or expired by the
//! exchange. crbot placed protection and the position is now bare: that is said loudly (an
//! ERROR in the log, a `PROTECTION_LOST` event in the journal, an operator alert), and the lost
//! stop-loss and take-profit are kept in the snapshot so that the screen can offer them again.
//!
//! Owns: the protective legs crbot is ending itself (a close, a cancel from the screen, the kill
//! sweep), which are never a loss; the lost protection per symbol (in
//! `EngineState::lost_protection`, until the position has a working stop again or is gone); and
//! the trader's re-protection (`Command::Reprotect`: the risk gate, then the OCO). Must not:
//! re-place protection by itself. The trader's own order has just crossed the old one, and
//! re-placing it blindly could fight them: crbot offers, the trader decides.

use std::collections::BTreeSet;

use super::{Effect, Engine};
use crate::alerts::{Alert, AlertKind, Severity};
use crate::domain::{ClientOrderId, LocalOrderState, OrderPurpose, OrderStatus, Price, Symbol};
use crate::engine::core::Refusal;
use crate::engine::snapshot::{LogKind, LogLevel, LostProtection};
use crate::journal::EventKind;
use crate::risk::TradingState;

/// The state this workflow owns.
#[derive(Debug, Default)]
pub(super) struct LostWatch {
    /// Protective legs crbot itself is ending (their list's end is no loss).
    own_ends: BTreeSet<ClientOrderId>,
}

/// A status in words, for the log and the screen.
pub fn status_words(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::ExpiredInMatch => {
            "expired by self-trade prevention: another order of this account crossed it"
        }
        OrderStatus::Canceled => "cancelled outside crbot (another app or session of this account)",
        OrderStatus::Expired => "expired by the exchange",
        OrderStatus::Rejected => "rejected by the exchange",
        _ => "ended by the exchange",
    }
}

impl Engine {
    /// crbot is about to end the open protective legs of `symbol` (every symbol with `None`):
    /// a close, a cancel asked on the screen, the kill sweep. Their list's end is crbot's own.
    pub(super) fn ending_own_protection(&mut self, symbol: Option<&Symbol>) {
        let legs = self
            .core
            .state
            .orders
            .values()
            .filter(|o| o.purpose.is_protective() && o.state.is_open())
            .filter(|o| symbol.is_none_or(|s| &o.symbol == s))
            .map(|o| o.client_order_id.clone());
        self.lost.own_ends.extend(legs);
    }

    /// After every input: each protective list whose legs have all ended, none filled, while
    /// its position is still held without a working stop, is lost protection. And a lost
    /// protection whose position has a working stop again, or is gone, is forgotten.
    pub(super) fn watch_lost_protection(&mut self, now: i64) {
        if !self.core.state.ended_protective.is_empty() {
            let ended = std::mem::take(&mut self.core.state.ended_protective);
            let mut seen = BTreeSet::new();
            for cid in ended {
                if let Some(lost) = self.lost_list(&cid, &mut seen, now) {
                    self.protection_lost(lost, now);
                }
            }
        }
        if !self.core.state.lost_protection.is_empty() {
            let state = &self.core.state;
            let gone: Vec<Symbol> = state
                .lost_protection
                .keys()
                .filter(|s| !state.lacks_working_stop(s))
                .cloned()
                .collect();
            for s in gone {
                self.core.state.lost_protection.remove(&s);
            }
        }
    }

    /// The protection lost when the leg `cid` ended, if its list is lost: every leg of the
    /// list ended, none filled, crbot did not end it, and the position lacks a working stop.
    /// `seen`: lists already judged during this input.
    fn lost_list(
        &mut self,
        cid: &ClientOrderId,
        seen: &mut BTreeSet<i64>,
        now: i64,
    ) -> Option<LostProtection> {
        let state = &self.core.state;
        let leg = state.orders.get(cid)?;
        let list = leg.order_list_id?;
        let symbol = leg.symbol.clone();
        let legs: Vec<&crate::domain::Order> = state
            .orders
            .values()
            .filter(|o| o.symbol == symbol && o.purpose.is_protective() && o.order_list_id == Some(list))
            .collect();
        if legs.iter().any(|o| o.state.is_open()) || !seen.insert(list) {
            return None;
        }
        let own = legs
            .iter()
            .any(|o| self.lost.own_ends.contains(&o.client_order_id));
        for o in &legs {
            self.lost.own_ends.remove(&o.client_order_id);
        }
        let status = |o: &crate::domain::Order| match o.state {
            LocalOrderState::Exchange(s) => Some(s),
            _ => None,
        };
        if own || legs.iter().any(|o| status(o) == Some(OrderStatus::Filled)) {
            return None;
        }
        // The leg that took the list: one expired in match if any (the list then ends the
        // other), else the first to end.
        let cause = legs
            .iter()
            .find(|o| status(o) == Some(OrderStatus::ExpiredInMatch))
            .or_else(|| legs.iter().min_by_key(|o| o.updated_ms))?;
        let cause_status = status(cause)?;
        // The kill switch from another shell cancels without this engine's sweep.
        let halted = matches!(state.trading, TradingState::Halted { .. });
        if (halted && cause_status == OrderStatus::Canceled) || !state.lacks_working_stop(&symbol) {
            return None;
        }
        let stop_loss = legs
            .iter()
            .find(|o| o.purpose == OrderPurpose::StopLoss)?
            .stop_price?;
        let take_profit = legs
            .iter()
            .find(|o| o.purpose == OrderPurpose::TakeProfit)?
            .price?;
        Some(LostProtection {
            symbol: symbol.clone(),
            stop_loss,
            take_profit,
            leg: cause.purpose,
            status: cause_status,
            reason: status_words(cause_status).to_string(),
            since_ms: now,
            qty: state.protect_qty(&symbol),
        })
    }

    /// Says it loudly: an ERROR log line, the journal's event, the operator alert; and keeps
    /// it for the screen's offer.
    fn protection_lost(&mut self, lost: LostProtection, now: i64) {
        let symbol = lost.symbol.clone();
        let held = self.core.state.positions.qty(&symbol);
        let text = format!(
            "{symbol} protection lost: {} leg {} ({}); position unprotected ({held} held). \
             Stop-loss {} / take-profit {} NOT re-placed: `p` on the position or :protect {symbol} offers it again",
            lost.leg_name(),
            lost.status,
            lost.reason,
            lost.stop_loss,
            lost.take_profit,
        );
        tracing::error!(%symbol, status = %lost.status, reason = %lost.reason, "protection lost: position unprotected");
        self.core
            .state
            .log(now, LogLevel::Error, LogKind::Risk, text.clone());
        self.core
            .record_event(EventKind::ProtectionLost, Some(&symbol), &text, now);
        if self.alerts.is_some() {
            let mut alert = Alert::new(now, AlertKind::ProtectionLost, Severity::Critical, text);
            alert.symbol = Some(symbol.to_string());
            self.emit(Effect::Alert(alert));
        }
        self.core.state.lost_protection.insert(symbol, lost);
    }

    /// The trader confirmed a re-protection (`Command::Reprotect`): the risk gate decides and
    /// journals it; an approved OCO is sent, a refusal is in the log with its reasons.
    pub(super) fn reprotect(&mut self, symbol: Symbol, stop_loss: Price, take_profit: Price, now: i64) {
        if !self.sync.reconciled {
            let text = format!("re-protection of {symbol} not sent: still reconciling with the exchange");
            self.core.state.log(now, LogLevel::Warn, LogKind::Rejection, text);
            return;
        }
        match self
            .core
            .decide_reprotection(&symbol, stop_loss, take_profit, now)
        {
            Ok(oco) => self.send_oco(oco),
            Err(Refusal::Storage(e)) => {
                let text = format!("re-protection of {symbol} not sent: the journal cannot record it ({e})");
                self.core
                    .state
                    .log(now, LogLevel::Error, LogKind::Rejection, text);
            }
            // The gate logged the refusal with every reason.
            Err(Refusal::Risk(_)) => {}
        }
    }
}
