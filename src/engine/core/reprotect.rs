//! A re-protection the trader asked for: a new protective OCO on a position whose protection
//! the exchange ended without a fill (a leg expired by self-trade prevention, the list
//! cancelled from another app), offered on screen and confirmed there.
//!
//! Owns: the risk decision on it, journaled in `risk_events` like every ticket (approved or
//! not, with its codes), then the legs journaled before anything may be sent. Must not: decide
//! to re-protect by itself (the engine only offers: the trader's own order has just crossed the
//! old one, and re-placing it blindly could fight them), or send anything (the caller emits
//! the approved OCO).

use super::{Core, Refusal};
use crate::domain::broker::OcoRequest;
use crate::domain::{FilterFailure, Price, Qty, Side, Symbol, Ticket, TicketKind, plain};
use crate::engine::snapshot::{LogKind, LogLevel};
use crate::journal::RiskEventRecord;
use crate::risk::{Denial, RiskApproved, TradingState};

impl Core {
    /// Decides a re-protection of `symbol` at `stop_loss` / `take_profit` for the quantity a
    /// re-protection covers (crbot's position less its own open sells, rounded down to the lot
    /// step). Refused, with every reason, while halted (the kill switch owns the book until a
    /// person re-arms), when nothing is left to protect or it is too small, without a quote,
    /// or when the market is already through either price (the exchange would refuse the OCO,
    /// or trigger its stop at once). Journals the decision; an approved one comes back with
    /// both legs journaled (SENDING), ready to send.
    pub fn decide_reprotection(
        &mut self,
        symbol: &Symbol,
        stop_loss: Price,
        take_profit: Price,
        now_ms: i64,
    ) -> Result<RiskApproved<OcoRequest>, Refusal> {
        if let Some(e) = &self.state.storage_error {
            return Err(Refusal::Storage(e.clone()));
        }
        let qty = self.state.protect_qty(symbol);
        let denials = self.reprotection_denials(symbol, stop_loss, take_profit, qty, now_ms);
        let ticket = Ticket {
            symbol: symbol.clone(),
            side: Side::Sell,
            kind: TicketKind::Limit { price: take_profit },
            qty: qty.unwrap_or(Qty::ZERO),
            stop_loss: Some(stop_loss),
            take_profit: Some(take_profit),
        };
        let approved = denials.is_empty();
        let reason = if approved {
            format!(
                "re-protection: OCO SELL {} {symbol}, stop-loss {stop_loss}, take-profit {take_profit}",
                ticket.qty
            )
        } else {
            let text: Vec<String> = denials.iter().map(|d| d.to_string()).collect();
            text.join("; ")
        };
        let record = RiskEventRecord {
            time_ms: now_ms,
            source: self.source,
            ticket,
            approved,
            codes: denials.iter().map(|d| d.code().to_string()).collect(),
            reason: reason.clone(),
        };
        if let Err(e) = self.journal.record_risk_event(&record) {
            self.storage_failed(&e, now_ms);
            return Err(Refusal::Storage(e.to_string()));
        }
        if !approved {
            let line = format!("risk REJECTED re-protection of {symbol}: {reason}");
            self.state.log(now_ms, LogLevel::Warn, LogKind::Rejection, line);
            return Err(Refusal::Risk(denials));
        }
        let line = format!("risk approved {reason}");
        self.state.log(now_ms, LogLevel::Info, LogKind::Risk, line);
        self.prepare_reprotection(symbol, stop_loss, take_profit, now_ms)
            .ok_or_else(|| {
                // Approved a moment ago: what stopped it (the journal, the reduction bound)
                // is in the log.
                Refusal::Risk(vec![Denial::NotProtectable {
                    symbol: symbol.clone(),
                    reason: "the protective OCO could not be prepared (the log says why)".into(),
                }])
            })
    }

    /// Every reason a re-protection cannot go, empty when it may.
    fn reprotection_denials(
        &self,
        symbol: &Symbol,
        stop_loss: Price,
        take_profit: Price,
        qty: Option<Qty>,
        now_ms: i64,
    ) -> Vec<Denial> {
        let mut out = Vec::new();
        let not = |reason: String| Denial::NotProtectable {
            symbol: symbol.clone(),
            reason,
        };
        if let TradingState::Halted { reason, .. } = &self.state.trading {
            out.push(Denial::StateHalted {
                reason: format!("{reason}; no protection is placed until trading is re-armed"),
                exit: false,
            });
        }
        match qty {
            None => out.push(not(
                "crbot holds nothing there that its own open orders do not already cover".into(),
            )),
            Some(_) => {
                if let Err(Some(why)) = self.plan_reprotection(symbol, stop_loss, take_profit, now_ms) {
                    out.push(not(why));
                }
            }
        }
        // Prices typed on the command line are not rounded for the trader: a price off the
        // tick is refused here, naming the tick, rather than by the exchange.
        if let Some(pf) = self
            .state
            .rules
            .get(symbol)
            .and_then(|r| r.filters.price.as_ref())
        {
            for (field, p) in [("stopPrice", stop_loss), ("price", take_profit)] {
                if !p.is_multiple_of(pf.tick_size) {
                    out.push(Denial::Filter(FilterFailure::Tick {
                        field,
                        value: p.to_string(),
                        tick: plain(pf.tick_size),
                    }));
                }
            }
        }
        match self.state.quotes.get(symbol) {
            None => out.push(Denial::NoQuote {
                symbol: symbol.clone(),
            }),
            Some(q) => {
                if stop_loss >= q.bid {
                    out.push(not(format!(
                        "stop-loss {stop_loss} is at or above the bid {}: the market is already through it",
                        q.bid
                    )));
                }
                if take_profit <= q.ask {
                    out.push(not(format!(
                        "take-profit {take_profit} is at or below the ask {}: it would not rest as a maker",
                        q.ask
                    )));
                }
            }
        }
        out
    }
}
