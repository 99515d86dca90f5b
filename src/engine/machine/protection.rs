//! Protection: the OCO after an entry fills, closes of protected positions, and the
//! re-protection of what a partial close leaves.
//!
//! Owns: the closes waiting for their position's OCO to be cancelled, and the partial closes
//! whose remainder is protected again once they finish. Must not: leave a position it holds
//! unprotected without saying so on screen (a refused OCO is logged as an error).

use std::collections::{BTreeMap, BTreeSet};

use super::{Effect, Engine};
use crate::domain::broker::{
    Account, BookQuote, BrokerError, ListReport, OcoRequest, OrderOutcome, OrderReport,
};
use crate::domain::{ClientOrderId, OrderPurpose, Price, Quote, Symbol};
use crate::engine::core::FollowUp;
use crate::engine::snapshot::{LogKind, LogLevel};
use crate::risk::RiskApproved;

/// A close of a protected position: the OCO is cancelled first (it locks the balance), then the
/// close sells, then what is left is protected again at the same prices.
#[derive(Debug, Clone)]
pub(super) struct PendingClose {
    percent: u8,
    stop_loss: Option<Price>,
    take_profit: Option<Price>,
}

/// The state protection owns.
#[derive(Debug, Default)]
pub(super) struct Closes {
    /// Closes waiting for their position's protective OCO to be cancelled.
    closing: BTreeMap<Symbol, PendingClose>,
    /// Partial closes whose remainder gets a new OCO once they finish: close id → (symbol, SL, TP).
    reprotect: BTreeMap<ClientOrderId, (Symbol, Price, Price)>,
}

impl Engine {
    pub(super) fn follow(&mut self, follow: Vec<FollowUp>, now: i64) {
        for f in follow {
            match f {
                FollowUp::Protect {
                    entry,
                    stop_loss,
                    take_profit,
                } => {
                    if let Some(oco) = self.core.prepare_protection(&entry, stop_loss, take_profit, now) {
                        self.send_oco(oco);
                    }
                }
                FollowUp::Resolve { symbol, cid } => self.resolve(symbol, cid),
            }
        }
    }

    pub(super) fn send_oco(&mut self, oco: RiskApproved<OcoRequest>) {
        self.emit(Effect::PlaceOco(oco));
    }

    /// The exchange's answer to a protective OCO: the legs' state; a refusal reads the market
    /// afresh before deciding whether the stop has already been hit; an unknown outcome is
    /// settled by query.
    pub(super) fn on_oco_placed(
        &mut self,
        legs: [ClientOrderId; 2],
        outcome: OrderOutcome<ListReport>,
        now: i64,
    ) {
        match outcome {
            OrderOutcome::Done(list) => {
                for o in &list.reports {
                    let f = self.core.on_exchange_order(o, now);
                    self.follow(f, now);
                }
                self.core.state.log(
                    now,
                    LogLevel::Info,
                    LogKind::Order,
                    format!("protective OCO placed on {}", list.symbol),
                );
            }
            OrderOutcome::Rejected(e) => {
                for l in &legs {
                    self.core.mark_refused(l, &e, now);
                }
                let message = match &e {
                    BrokerError::Api { msg, .. } => msg.clone(),
                    other => other.to_string(),
                };
                // The market may be through the stop; the streamed quote and balances can
                // lag the exchange, so read both before deciding (Answer::OcoRefused).
                let symbol = legs
                    .iter()
                    .find_map(|l| self.core.state.orders.get(l))
                    .map(|o| o.symbol.clone());
                match symbol {
                    Some(symbol) => {
                        let code = e.code();
                        self.emit(Effect::ReadAfterOcoRefusal {
                            symbol,
                            legs,
                            code,
                            message,
                        });
                    }
                    None => self.core.state.log(
                        now,
                        LogLevel::Error,
                        LogKind::Rejection,
                        format!("protective OCO rejected: {e}; position unprotected"),
                    ),
                }
            }
            OrderOutcome::Unknown { reason } => {
                for l in &legs {
                    self.core.mark_unknown(l, &reason, now);
                    if let Some(o) = self.core.state.orders.get(l) {
                        self.resolve(o.symbol.clone(), l.clone());
                    }
                }
            }
        }
    }

    /// Closes `percent` of crbot's position. A protected position's OCO locks its balance, so
    /// the OCO is cancelled first; the close follows once the exchange confirms (see
    /// `Answer::CloseReady`), and a partial close re-protects the remainder.
    pub(super) fn close_position(&mut self, symbol: Symbol, percent: u8, now: i64) {
        let legs: Vec<crate::domain::Order> = self
            .core
            .state
            .orders
            .values()
            .filter(|o| o.symbol == symbol && o.state.is_open() && o.purpose.is_protective())
            .cloned()
            .collect();
        let Some(first) = legs.first() else {
            self.close_now(&symbol, percent, None, now);
            return;
        };
        let stop_loss = legs
            .iter()
            .find(|o| o.purpose == OrderPurpose::StopLoss)
            .and_then(|o| o.stop_price);
        let take_profit = legs
            .iter()
            .find(|o| o.purpose == OrderPurpose::TakeProfit)
            .and_then(|o| o.price);
        self.protection.closing.insert(
            symbol.clone(),
            PendingClose {
                percent,
                stop_loss,
                take_profit,
            },
        );
        let text = format!("close {percent}% of {symbol}: cancelling its protective OCO first");
        self.core.state.log(now, LogLevel::Info, LogKind::Order, text);
        // Cancelling one leg cancels the whole order list: crbot's own end, not a loss.
        let leg = first.client_order_id.clone();
        self.ending_own_protection(Some(&symbol));
        self.emit(Effect::PrepareClose { symbol, leg });
    }

    pub(super) fn close_now(
        &mut self,
        symbol: &Symbol,
        percent: u8,
        reprotect: Option<(Price, Price)>,
        now: i64,
    ) {
        let Some(ticket) = self.core.close_ticket(symbol, percent) else {
            let text = format!("{symbol}: no crbot position to close");
            self.core.state.log(now, LogLevel::Warn, LogKind::Order, text);
            return;
        };
        match self.core.decide(&ticket, OrderPurpose::Exit, true, now) {
            Ok(p) => {
                if percent < 100
                    && let Some((sl, tp)) = reprotect
                {
                    self.protection
                        .reprotect
                        .insert(p.request.client_order_id.clone(), (symbol.clone(), sl, tp));
                }
                self.send(p, None);
            }
            Err(r) => {
                self.refused(None, r, now);
                if let Some((sl, tp)) = reprotect {
                    // The close was refused after its protection was cancelled: protect again.
                    if let Some(oco) = self.core.prepare_reprotection(symbol, sl, tp, now) {
                        self.send_oco(oco);
                    }
                }
            }
        }
    }

    pub(super) fn on_close_ready(
        &mut self,
        symbol: Symbol,
        cancel: OrderOutcome<OrderReport>,
        open: Result<Vec<OrderReport>, String>,
        account: Result<Account, String>,
        now: i64,
    ) {
        let Some(pc) = self.protection.closing.remove(&symbol) else {
            return;
        };
        if let OrderOutcome::Done(o) = &cancel {
            let f = self.core.on_exchange_order(o, now);
            self.follow(f, now);
        }
        if let Ok(open) = &open {
            for o in open {
                let f = self.core.on_exchange_order(o, now);
                self.follow(f, now);
            }
            // Legs the exchange no longer lists were cancelled with the list (or filled):
            // settle each by query rather than guessing.
            let listed: BTreeSet<&str> = open.iter().map(|o| o.order_client_id()).collect();
            let gone: Vec<ClientOrderId> = self
                .core
                .state
                .orders
                .values()
                .filter(|o| o.symbol == symbol && o.state.is_open() && o.purpose.is_protective())
                .filter(|o| !listed.contains(o.client_order_id.as_str()))
                .map(|o| o.client_order_id.clone())
                .collect();
            for cid in gone {
                self.resolve(symbol.clone(), cid);
            }
        }
        match account {
            Ok(a) => self.core.state.set_balances(a.balances, true),
            Err(e) => {
                let text = format!("close {symbol}: balances not refreshed ({e}); closing what is free");
                self.core.state.log(now, LogLevel::Warn, LogKind::Order, text);
            }
        }
        let reprotect = pc.stop_loss.zip(pc.take_profit);
        self.close_now(&symbol, pc.percent, reprotect, now);
    }

    /// A refused protective OCO, with the market read afresh: when its stop has already been
    /// hit the core sells at market as the stop-loss (and journals why); otherwise the position
    /// is unprotected and the log says so.
    pub(super) fn on_oco_refused(
        &mut self,
        legs: [ClientOrderId; 2],
        code: Option<i64>,
        message: String,
        book: Result<BookQuote, String>,
        account: Result<Account, String>,
        now: i64,
    ) {
        match book {
            Ok(b) => self.core.state.on_quote(
                b.symbol.clone(),
                Quote {
                    bid: b.bid,
                    ask: b.ask,
                    time_ms: now,
                },
            ),
            Err(e) => {
                let text = format!("protective OCO refused; the book could not be read ({e})");
                self.core
                    .state
                    .log(now, LogLevel::Warn, LogKind::Connection, text);
            }
        }
        if let Ok(a) = account {
            self.core.state.set_balances(a.balances, true);
        }
        match self.core.protection_refused(&legs, code, &message, now) {
            Some(exit) => self.send(exit, None),
            None => self.core.state.log(
                now,
                LogLevel::Error,
                LogKind::Rejection,
                format!("protective OCO rejected: {message}; position unprotected"),
            ),
        }
    }

    /// A partial close that finished gets its remainder protected again.
    pub(super) fn reprotect_finished_closes(&mut self, now: i64) {
        if self.protection.reprotect.is_empty() {
            return;
        }
        let done: Vec<ClientOrderId> = self
            .protection
            .reprotect
            .keys()
            .filter(|c| self.core.state.orders.get(*c).is_none_or(|o| !o.state.is_open()))
            .cloned()
            .collect();
        for cid in done {
            let Some((symbol, sl, tp)) = self.protection.reprotect.remove(&cid) else {
                continue;
            };
            if let Some(oco) = self.core.prepare_reprotection(&symbol, sl, tp, now) {
                self.send_oco(oco);
            }
        }
    }
}
