//! The one-shot engine of a command: `crbot order`, `crbot kill --flatten` and the commands'
//! start-up carry an order's workflow to its end before the process exits — the answer, its
//! fills, the protective OCO after an entry fills, an unknown outcome settled by query.
//!
//! Owns: that workflow for a process that does not stay (the console's engine runs the same
//! steps as effects, in `engine::machine`). Must not: send anything that is not journaled and
//! risk-approved (`Broker` takes only `RiskApproved` requests), resend an order whose outcome is
//! unknown (it is looked up by client order id, and sent again under the same id only when the
//! exchange confirms it does not have it), or print: lines go to the log it is given and
//! progress to its `say` callback.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::broker::{BrokerError, OcoRequest, OrderOutcome, OrderReport};
use crate::domain::{ClientOrderId, Price, Symbol};
use crate::engine::core::{Core, FollowUp};
use crate::exchange::binance::reconcile::{self, Resolution, ResolveConfig};
use crate::risk::{Broker, RiskApproved};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How many times one order (or OCO) waits out a 429 before the command gives up.
const ORDER_RATE_LIMIT_WAITS: u32 = 3;

/// A command's engine for the length of one command: the restored core, the broker, and where
/// what it could not do is noted.
pub struct OneShot<'a, B: Broker> {
    pub core: &'a mut Core,
    pub broker: B,
    /// Things it could not do (reported, not fatal).
    pub notes: &'a mut Vec<String>,
    /// The longest `Retry-After` an order waits out (the client's `max_throttle_wait`).
    pub max_throttle_wait: Duration,
    /// Progress said as it happens (a wait, a read that failed); the command prints it.
    pub say: &'a (dyn Fn(&str) + Sync),
}

impl<B: Broker> std::fmt::Debug for OneShot<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShot")
            .field("mode", &self.core.state.mode)
            .field("notes", &self.notes.len())
            .finish()
    }
}

impl<B: Broker> OneShot<'_, B> {
    /// A 429 on an order or a cancel that is worth waiting for: one whose `Retry-After` fits in
    /// the client's `max_throttle_wait`. Says on stderr what follows the wait (`then`) and waits.
    pub async fn wait_out_429(&self, e: &BrokerError, waits: &mut u32, then: &str) -> bool {
        let BrokerError::RateLimited { retry_after } = e else {
            return false;
        };
        if *waits >= ORDER_RATE_LIMIT_WAITS || *retry_after > self.max_throttle_wait {
            return false;
        }
        *waits += 1;
        (self.say)(&format!(
            "rate limited by the exchange: waiting {} s, then {then}",
            retry_after.as_secs_f64().ceil()
        ));
        tokio::time::sleep(*retry_after).await;
        true
    }

    /// Sends a journaled order and follows up (fills, protective OCO, unknown outcome).
    /// `Err` carries the one line for stderr.
    ///
    /// A 429 means the exchange rejected the request, but the order is still looked up by its
    /// client order id after the wait, and sent again (under the same id) only when the exchange
    /// confirms it does not have it: an order is never at risk of being placed twice.
    pub async fn send_prepared(
        &mut self,
        request: &RiskApproved<crate::domain::OrderRequest>,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        let rest = self.broker.clone();
        let cid = request.client_order_id.clone();
        let mut waits = 0;
        let outcome = loop {
            let outcome = rest.place_order(request).await;
            let OrderOutcome::Rejected(e) = &outcome else {
                break outcome;
            };
            if !self
                .wait_out_429(
                    e,
                    &mut waits,
                    &format!("looking order {cid} up by its client order id before sending it again"),
                )
                .await
            {
                break outcome;
            }
            match reconcile::resolve_unknown(&rest, &request.symbol, cid.as_str(), &startup_resolve()).await {
                Resolution::NotFound => continue,
                found_or_unknown => {
                    self.core
                        .mark_unknown(&cid, "rate limited, then looked up", now_ms());
                    return self.settle(&cid, found_or_unknown, log).await;
                }
            }
        };
        match outcome {
            OrderOutcome::Done(placed) => {
                crate::failpoint::hit("after_send");
                let follow = self.apply_report(&placed.order, &placed.fills).await;
                log.push(format!(
                    "placed {} ({}): {}",
                    cid,
                    placed.order.order_id,
                    status_text(&placed.order)
                ));
                self.follow_up(follow, log).await
            }
            OrderOutcome::Rejected(e) => {
                self.core.mark_refused(&cid, &e, now_ms());
                let line = match e.code() {
                    Some(code) => format!("order rejected by the exchange: code {code}: {}", api_msg(&e)),
                    None => format!("order not sent: {e}"),
                };
                log.push(line.clone());
                Err(line)
            }
            OrderOutcome::Unknown { reason } => {
                self.core.mark_unknown(&cid, &reason, now_ms());
                log.push(format!(
                    "order {cid}: no answer ({reason}); resolving by client order id, not resending"
                ));
                self.resolve(&request.symbol, &cid, log).await
            }
        }
    }

    /// The order's status first: it gives the order its exchange id, which is how fills read back
    /// by `myTrades` (they carry no client order id) are attributed to it; a resolved order's
    /// fills would otherwise be journaled as external and its position never built. Then its
    /// fills, then fresh balances (the OCO is bounded by the free balance). The follow-ups it
    /// returns (the protective OCO, sized from the journaled fills) run after all of this.
    async fn apply_report(&mut self, report: &OrderReport, fills: &[crate::domain::Fill]) -> Vec<FollowUp> {
        let rest = self.broker.clone();
        let follow = self.core.on_exchange_order(report, now_ms());
        for f in fills {
            self.core.on_fill(f, now_ms());
        }
        if !report.executed_qty.is_zero() {
            if fills.is_empty()
                && let Err(e) = pull_fills(self.core, &rest, &report.symbol).await
            {
                let line = format!("{}: fills not read back ({e})", report.symbol);
                (self.say)(&line);
                self.notes.push(line);
            }
            match rest.account().await {
                Ok(a) => self.core.state.set_balances(a.balances, true),
                Err(e) => self.notes.push(format!("balances not refreshed: {e}")),
            }
        }
        follow
    }

    async fn resolve(
        &mut self,
        symbol: &Symbol,
        cid: &ClientOrderId,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        let rest = self.broker.clone();
        let resolution =
            reconcile::resolve_unknown(&rest, symbol, cid.as_str(), &ResolveConfig::default()).await;
        self.settle(cid, resolution, log).await
    }

    /// Continues the workflow of an order whose outcome was looked up: exactly as if its answer
    /// had arrived (fills, position, protective OCO), or as not sent, or still unknown.
    async fn settle(
        &mut self,
        cid: &ClientOrderId,
        resolution: Resolution,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        match resolution {
            Resolution::Found(report) => {
                let follow = self.apply_report(&report, &[]).await;
                log.push(format!("resolved {cid}: {}", status_text(&report)));
                self.follow_up(follow, log).await
            }
            Resolution::NotFound => {
                self.core
                    .mark_not_sent(cid, "confirmed absent on the exchange", now_ms());
                let line =
                    format!("order {cid} never reached the exchange (confirmed absent); nothing was placed");
                log.push(line.clone());
                Err(line)
            }
            Resolution::StillUnknown { reason } => {
                let line = format!(
                    "order {cid} is UNKNOWN ({reason}); it will be reconciled at the next start — do not resend"
                );
                log.push(line.clone());
                Err(line)
            }
        }
    }

    pub async fn follow_up(&mut self, follow: Vec<FollowUp>, log: &mut Vec<String>) -> Result<(), String> {
        let mut result = Ok(());
        for f in follow {
            let r = match f {
                FollowUp::Protect {
                    entry,
                    stop_loss,
                    take_profit,
                } => Box::pin(self.protect(&entry, stop_loss, take_profit, log)).await,
                FollowUp::Resolve { symbol, cid } => Box::pin(self.resolve(&symbol, &cid, log)).await,
            };
            if r.is_err() && result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// The protective OCO for a finished entry: `Core::prepare_protection` plans it with the
    /// client's written rule and journals both legs BEFORE the request leaves (take-profit = the
    /// LIMIT_MAKER above, stop-loss = the STOP_LOSS below; see `OcoRequest`).
    async fn protect(
        &mut self,
        entry: &ClientOrderId,
        stop_loss: Price,
        take_profit: Price,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        let now = now_ms();
        let Some(request) = self.core.prepare_protection(entry, stop_loss, take_profit, now) else {
            let why = self
                .core
                .state
                .log_lines()
                .last()
                .map(|l| l.text.clone())
                .unwrap_or_else(|| "nothing to protect".to_string());
            log.push(format!("entry {entry}: no protective OCO sent ({why})"));
            return Ok(());
        };
        self.send_oco(request, &format!("entry {entry} filled but"), log)
            .await
    }

    /// Sends a protective OCO whose legs are journaled, and records what the exchange answered.
    pub async fn send_oco(
        &mut self,
        request: RiskApproved<OcoRequest>,
        context: &str,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        let symbol = request.symbol.clone();
        let qty = request.qty;
        let tp_cid = request.take_profit_client_order_id.clone();
        let sl_cid = request.stop_loss_client_order_id.clone();
        let rest = self.broker.clone();
        let mut waits = 0;
        let outcome = loop {
            let outcome = rest.place_oco(&request).await;
            let OrderOutcome::Rejected(e) = &outcome else {
                break outcome;
            };
            if !self
                .wait_out_429(
                    e,
                    &mut waits,
                    &format!("looking the protective OCO on {symbol} up before sending it again"),
                )
                .await
            {
                break outcome;
            }
            // Both legs are placed together or not at all: the take-profit leg tells.
            match reconcile::resolve_unknown(&rest, &symbol, tp_cid.as_str(), &startup_resolve()).await {
                Resolution::NotFound => continue,
                _ => {
                    break OrderOutcome::Unknown {
                        reason: "rate limited, then found or not confirmed absent".to_string(),
                    };
                }
            }
        };
        match outcome {
            OrderOutcome::Done(list) => {
                for r in &list.reports {
                    self.core.on_exchange_order(r, now_ms());
                }
                if list.reports.is_empty() {
                    // The answer had no per-leg reports: ask for each leg.
                    for cid in [&tp_cid, &sl_cid] {
                        if let Ok(r) = rest.query_order(&symbol, cid.as_str()).await {
                            self.core.on_exchange_order(&r, now_ms());
                        }
                    }
                }
                log.push(format!(
                    "protective OCO {} on {symbol}: SELL {qty} take-profit LIMIT_MAKER @ {}, stop-loss STOP_LOSS @ {}",
                    list.order_list_id, request.take_profit, request.stop_loss
                ));
                Ok(())
            }
            OrderOutcome::Rejected(e) => {
                for cid in [&tp_cid, &sl_cid] {
                    self.core.mark_refused(cid, &e, now_ms());
                }
                // The market may already be through the stop: read where it is now before
                // deciding (the quote from the start of the command can be seconds old).
                if let Ok(book) = rest.book_quote(&symbol).await {
                    let quote = crate::domain::Quote {
                        bid: book.bid,
                        ask: book.ask,
                        time_ms: now_ms(),
                    };
                    self.core.state.on_quote(symbol.clone(), quote);
                }
                if let Ok(a) = rest.account().await {
                    self.core.state.set_balances(a.balances, true);
                }
                let exit = self
                    .core
                    .protection_refused(&[tp_cid, sl_cid], e.code(), &api_msg(&e), now_ms());
                let Some(exit) = exit else {
                    let line = format!(
                        "{context} the exchange refused its protective OCO ({e}); {symbol} is UNPROTECTED"
                    );
                    log.push(line.clone());
                    return Err(line);
                };
                log.push(format!(
                    "{context} the market is already through its stop-loss {} (the exchange refused the protective OCO: {}); selling {} {symbol} at market",
                    request.stop_loss,
                    api_msg(&e),
                    exit.request.qty
                ));
                Box::pin(self.send_prepared(&exit.request, log)).await
            }
            OrderOutcome::Unknown { reason } => {
                for cid in [&tp_cid, &sl_cid] {
                    self.core.mark_unknown(cid, &reason, now_ms());
                }
                log.push(format!(
                    "protective OCO on {symbol}: no answer ({reason}); resolving"
                ));
                let mut result = Ok(());
                for cid in [&tp_cid, &sl_cid] {
                    let r = self.resolve(&symbol, cid, log).await;
                    if r.is_err() && result.is_ok() {
                        result = r;
                    }
                }
                result
            }
        }
    }
}

/// The exchange's own message of a refusal (the error's text otherwise).
pub fn api_msg(e: &BrokerError) -> String {
    match e {
        BrokerError::Api { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

/// `FILLED SELL MARKET BTCUSDT executed 0.001 of 0.001 avg 97250`: an order's state in a line.
pub fn status_text(o: &OrderReport) -> String {
    let mut s = format!("{} {} {} {}", o.status, o.side, o.order_type, o.symbol);
    s.push_str(&format!(" executed {} of {}", o.executed_qty, o.orig_qty));
    if !o.executed_qty.is_zero()
        && !o.cumulative_quote_qty.is_zero()
        && let Some(avg) = o.cumulative_quote_qty.value().checked_div(o.executed_qty.value())
    {
        s.push_str(&format!(" avg {}", crate::domain::money::display_trimmed(avg, 8)));
    }
    s
}

/// Fills of `symbol` since the journal's last trade id, attributed to crbot's orders by
/// exchange order id, journaled (deduplicated) and booked.
pub async fn pull_fills<B: Broker>(core: &mut Core, rest: &B, symbol: &Symbol) -> Result<usize, BrokerError> {
    pull_fills_with(core, rest, symbol, &BTreeMap::new(), &[]).await
}

pub async fn pull_fills_with<B: Broker>(
    core: &mut Core,
    rest: &B,
    symbol: &Symbol,
    learned: &BTreeMap<u64, ClientOrderId>,
    reports: &[OrderReport],
) -> Result<usize, BrokerError> {
    let from = core.journal.last_trade_id(symbol).ok().flatten().map(|id| id + 1);
    let mut fills = rest.my_trades(symbol, from).await?;
    // The cursor cannot reach a fill older than the journal's last trade id (one missed while
    // nothing listened, before a later order's answer was journaled): an order whose executed
    // quantity (as crbot knows it, or as the exchange just reported it) its fills do not
    // cover is read by order id. Journaling is idempotent on the trade id.
    let mut gaps = core.fill_gaps(symbol);
    for r in reports.iter().filter(|r| &r.symbol == symbol) {
        let known = fills
            .iter()
            .filter(|f| f.order_id == r.order_id)
            .fold(core.journaled_qty(symbol, r.order_id), |acc, f| {
                acc.checked_add(f.qty).unwrap_or(acc)
            });
        if known < r.executed_qty && !gaps.contains(&r.order_id) {
            gaps.push(r.order_id);
        }
    }
    for order_id in gaps {
        fills.extend(reconcile::fills_of_order(rest, symbol, order_id).await?);
    }
    let by_order: BTreeMap<u64, ClientOrderId> = core
        .state
        .orders
        .values()
        .filter_map(|o| o.order_id.map(|id| (id, o.client_order_id.clone())))
        .collect();
    let mut new = 0;
    for mut f in fills {
        if f.client_order_id.is_none() {
            f.client_order_id = by_order
                .get(&f.order_id)
                .or_else(|| learned.get(&f.order_id))
                .cloned();
        }
        if core.on_fill(&f, now_ms()) {
            new += 1;
        }
    }
    Ok(new)
}

/// The short resolution used at start-up: a command should not hang for long on one order.
pub fn startup_resolve() -> ResolveConfig {
    ResolveConfig {
        max_queries: 3,
        not_found_confirmations: 2,
        backoff_base: std::time::Duration::from_millis(200),
        backoff_max: std::time::Duration::from_secs(1),
    }
}
