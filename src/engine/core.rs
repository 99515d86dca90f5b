//! The money path shared by the console and the command line: restoring state from the
//! journal, deciding on a ticket (risk gate, then the journal), applying what the exchange
//! answers, and changing the trading state.
//!
//! Owns: the order of operations that keeps the journal ahead of the exchange: a risk
//! decision is journaled before anything else; an order row is durable before the order may
//! be sent; a halt is durable before any cancel leaves; a fill is durable before it is shown.
//! Must not: do network I/O (callers send what [`Core::decide`] returns and report the
//! outcome back), or read a clock (every method takes `now_ms`).

use std::collections::{BTreeSet, HashMap};

use rust_decimal::Decimal;

use crate::domain::broker::{BrokerError, CODE_NEW_ORDER_REJECTED, OcoRequest, OrderReport};
use crate::domain::{
    ClientOrderId, Fill, LocalOrderState, Mode, Money, Notional, Order, OrderPurpose, OrderRequest,
    OrderStatus, OrderType, Price, Qty, Side, Symbol, Ticket, TicketKind,
};
use crate::engine::snapshot::{LogKind, LogLevel, RuleLine};
use crate::engine::state::{EngineState, Protection};
use crate::exchange::binance::reconcile::{EntryFills, OcoPlan, ResyncRequest, protective_oco};
use crate::journal::{
    BalanceCheckpoint, CapitalFlowRecord, EventKind, EventRecord, Journal, JournalError, KillTrigger,
    OrderUpdate, RiskEventRecord, TicketSource, TradingStateCode, TradingStateRecord,
};
use crate::portfolio::equity::{FlowSource, Mark, unexplained_changes};
use crate::portfolio::{DayStart, EquityTracker};
use crate::risk::{self, ApprovedOrder, Denial, Limits, RiskApproved, TradingState, Trigger};

mod replay;
mod reprotect;

pub use replay::REPLAY_PAGE;
use replay::Replay;

/// Why a ticket did not become an order.
#[derive(Debug)]
pub enum Refusal {
    /// The risk engine said no: every violation, with its code and numbers.
    Risk(Vec<Denial>),
    /// The journal could not record the decision or the order: nothing was sent.
    Storage(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Risk(denials) => {
                let text: Vec<String> = denials.iter().map(|d| d.to_string()).collect();
                write!(f, "{}", text.join("; "))
            }
            Refusal::Storage(e) => write!(f, "not sent: the journal cannot record it ({e})"),
        }
    }
}

/// An approved order, journaled and ready to send. Not `Clone`: one approval sends one order.
#[derive(Debug)]
pub struct Prepared {
    pub request: RiskApproved<OrderRequest>,
    pub approved: ApprovedOrder,
}

/// What the caller must do after an exchange answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Place the protective OCO for a finished entry ([`Core::prepare_protection`]).
    Protect {
        entry: ClientOrderId,
        stop_loss: Price,
        take_profit: Price,
    },
    /// The outcome is unknown: reconcile by client order id (never resend).
    Resolve { symbol: Symbol, cid: ClientOrderId },
}

/// The journal-backed state shared by the console and the command line.
#[derive(Debug)]
pub struct Core {
    pub state: EngineState,
    pub journal: Journal,
    pub source: TicketSource,
    /// The journal's own fills still to book into the positions: rules are needed to book a
    /// fill (base/quote assets), and they arrive after the restore ([`Core::replay_fills`]).
    /// `None` once every fill journaled before the restore is booked.
    replay: Option<Replay>,
    /// Quantity journaled per exchange order, keyed by `(symbol, order id)`: compared with an
    /// order's executed quantity to find fills crbot has not seen ([`Core::resync_request`]).
    journaled_qty: HashMap<(Symbol, u64), Qty>,
    /// How often the console backs the journal up by itself (`ENV`'s schedule); `None`: on
    /// command only.
    pub backup_every_ms: Option<i64>,
    /// Where the console's own backups go (`engine::backup::folder` of the data folder);
    /// `None`: a `backups` folder beside the journal.
    pub backup_dir: Option<std::path::PathBuf>,
}

const META_DAY_START: &str = "equity.day_start";
const META_HWM: &str = "equity.hwm";
const META_WATCHLIST: &str = "watchlist";
/// The price alerts (`engine::machine::price_alerts`), saved beside the watchlist.
const META_PRICE_ALERTS: &str = "price_alerts";
const META_PROTECT: &str = "protect.";
const META_LIMITS: &str = "limits.in_force";
pub const DEFAULT_WATCHLIST: [&str; 6] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT"];

fn state_code(s: &TradingState) -> TradingStateCode {
    match s {
        TradingState::Active => TradingStateCode::Active,
        TradingState::Reducing { .. } => TradingStateCode::Reducing,
        TradingState::Halted { .. } => TradingStateCode::Halted,
    }
}

/// The trading state a journal record stands for. A restart never re-arms: a REDUCING record
/// by drawdown stays reducing until a person re-arms; by daily loss it lasts until the next
/// UTC midnight after the record.
pub fn state_from_record(rec: &TradingStateRecord) -> TradingState {
    match rec.state {
        TradingStateCode::Active => TradingState::Active,
        TradingStateCode::Halted => TradingState::Halted {
            reason: rec.reason.clone(),
            since_ms: rec.time_ms,
        },
        TradingStateCode::Reducing => {
            let trigger = Trigger::from_code(&rec.trigger).unwrap_or(Trigger::Drawdown);
            let until_ms = (trigger == Trigger::DailyLoss).then(|| risk::next_utc_midnight_ms(rec.time_ms));
            TradingState::Reducing {
                reason: rec.reason.clone(),
                trigger,
                since_ms: rec.time_ms,
                until_ms,
            }
        }
    }
}

impl Core {
    /// Restores everything the journal knows: trading state (never re-armed by a restart),
    /// orders, crbot's positions from its own fills, day-start equity, high-water mark, entries
    /// sent today and the watchlist.
    pub fn restore(
        journal: Journal,
        mode: Mode,
        limits: Limits,
        source: TicketSource,
        now_ms: i64,
    ) -> Result<Core, JournalError> {
        let trading = match journal.latest_trading_state()? {
            Some(stored) => state_from_record(&stored.record),
            None => {
                // A brand-new journal: nothing was ever halted, so trading starts active, and the
                // start is journaled so that every later state has a predecessor.
                journal.record_trading_state(&TradingStateRecord {
                    time_ms: now_ms,
                    state: TradingStateCode::Active,
                    reason: "new journal".to_string(),
                    trigger: Trigger::Startup.as_code().to_string(),
                    actor: source.as_code().to_string(),
                })?;
                TradingState::Active
            }
        };
        let mut state = EngineState::new(mode, limits, trading, now_ms);
        for o in journal.recent_orders(crate::engine::state::FINISHED_ORDERS_KEPT)? {
            if o.purpose == OrderPurpose::Entry
                && risk::utc_day(o.created_ms) == risk::utc_day(now_ms)
                && o.state != LocalOrderState::NotSent
                && o.state != LocalOrderState::Exchange(OrderStatus::Rejected)
            {
                state.entries.record(o.created_ms);
            }
            state.upsert_order(o);
        }
        for o in journal.open_orders()? {
            state.upsert_order(o);
        }
        // Positions are rebuilt from the journal's fills once the symbols' rules are known
        // (`replay_fills`), a page at a time; here only the quantities journaled per order.
        let (journaled_qty, replay) = match journal.last_fill_row()? {
            Some(upto) => (
                replay::journaled_quantities(&journal, &state, upto, REPLAY_PAGE)?,
                Some(Replay::new(upto)),
            ),
            None => (HashMap::new(), None),
        };
        let mut core = Core {
            backup_every_ms: None,
            backup_dir: None,
            state,
            journal,
            source,
            replay,
            journaled_qty,
        };
        core.restore_limits(now_ms)?;
        core.restore_protection()?;
        core.restore_equity(now_ms)?;
        core.restore_watchlist(now_ms)?;
        Ok(core)
    }

    /// The limits in force are the tighter of the configuration's and the journal's, field by
    /// field: a restart (or an edited `.env`) must never loosen a limit silently; loosening
    /// goes through the screen's typed confirmation. A tighter configuration takes effect at once.
    fn restore_limits(&mut self, now_ms: i64) -> Result<(), JournalError> {
        // What the configuration says, before the journal's limits are applied over it.
        self.state.configured_limits = Some(self.state.limits.clone());
        let stored: Option<Limits> = self
            .journal
            .get_meta(META_LIMITS)?
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(stored) = stored {
            let effective = tighter_of(&self.state.limits, &stored);
            if effective != self.state.limits {
                let text = "limits: the configuration is looser than the limits journaled earlier; \
                            keeping the tighter ones (loosen from the screen, with confirmation)";
                self.state.log(now_ms, LogLevel::Warn, LogKind::Limit, text);
                self.state
                    .warnings
                    .push("configured limits looser than journaled: tighter kept".to_string());
            }
            self.state.limits = effective;
        }
        self.save_limits()
    }

    /// Journals the limits now in force (after any change).
    pub fn save_limits(&mut self) -> Result<(), JournalError> {
        let text =
            serde_json::to_string(&self.state.limits).map_err(|e| JournalError::Invalid(e.to_string()))?;
        self.journal.set_meta(META_LIMITS, &text)
    }

    fn restore_protection(&mut self) -> Result<(), JournalError> {
        let entries: Vec<ClientOrderId> = self
            .state
            .orders
            .values()
            .filter(|o| o.purpose == OrderPurpose::Entry && o.state.is_open())
            .map(|o| o.client_order_id.clone())
            .collect();
        for cid in entries {
            let Some(text) = self.journal.get_meta(&format!("{META_PROTECT}{cid}"))? else {
                continue;
            };
            let mut parts = text.split_whitespace().map(|p| p.parse::<Price>());
            if let (Some(Ok(stop_loss)), Some(Ok(take_profit))) = (parts.next(), parts.next()) {
                self.state.protection.insert(
                    cid,
                    Protection {
                        stop_loss,
                        take_profit,
                    },
                );
            }
        }
        Ok(())
    }

    fn restore_equity(&mut self, now_ms: i64) -> Result<(), JournalError> {
        let day_start = self
            .journal
            .get_meta(META_DAY_START)?
            .and_then(|t| parse_day_start(&t));
        let hwm = self
            .journal
            .get_meta(META_HWM)?
            .and_then(|t| serde_json::from_str::<Money>(&t).ok());
        if let Ok(tracker) = EquityTracker::restore(day_start, hwm) {
            self.state.equity = tracker;
        }
        for (asset, price, time_ms) in self.journal.marks()? {
            self.state.held_marks.insert(
                asset,
                Mark {
                    price,
                    time_ms,
                    held: true,
                },
            );
        }
        let today = risk::utc_day(now_ms) * 86_400_000;
        self.state.flows = self
            .journal
            .capital_flows(today)?
            .into_iter()
            .map(|s| s.record)
            .collect();
        Ok(())
    }

    fn restore_watchlist(&mut self, now_ms: i64) -> Result<(), JournalError> {
        let saved: Option<Vec<String>> = self.saved_json(
            META_WATCHLIST,
            "watchlist",
            "starting with the default list",
            now_ms,
        )?;
        let names: Vec<String> = match saved {
            Some(v) if !v.is_empty() => v,
            _ => DEFAULT_WATCHLIST.iter().map(|s| s.to_string()).collect(),
        };
        self.state.watchlist = names.iter().filter_map(|n| Symbol::new(n).ok()).collect();
        self.state.selected = self.state.watchlist.first().cloned();
        if let Some(alerts) =
            self.saved_json(META_PRICE_ALERTS, "price alerts", "starting without them", now_ms)?
        {
            self.state.price_alerts = alerts;
        }
        Ok(())
    }

    /// A JSON value saved in the journal's `meta`. One that cannot be read is said in the log
    /// (with what the engine does `instead`) and taken as not saved.
    fn saved_json<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        what: &str,
        instead: &str,
        now_ms: i64,
    ) -> Result<Option<T>, JournalError> {
        let Some(text) = self.journal.get_meta(key)? else {
            return Ok(None);
        };
        match serde_json::from_str(&text) {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                let text = format!("the saved {what} cannot be read ({e}); {instead}");
                self.state.log(now_ms, LogLevel::Warn, LogKind::System, text);
                Ok(None)
            }
        }
    }

    /// Persists the watchlist (the screen's add/remove).
    pub fn save_watchlist(&mut self) -> Result<(), JournalError> {
        let names: Vec<&str> = self.state.watchlist.iter().map(|s| s.as_str()).collect();
        let text = serde_json::to_string(&names).map_err(|e| JournalError::Invalid(e.to_string()))?;
        self.journal.set_meta(META_WATCHLIST, &text)
    }

    /// Persists the price alerts (set, fired or cleared).
    pub fn save_price_alerts(&mut self) -> Result<(), JournalError> {
        let text = serde_json::to_string(&self.state.price_alerts)
            .map_err(|e| JournalError::Invalid(e.to_string()))?;
        self.journal.set_meta(META_PRICE_ALERTS, &text)
    }

    /// Persists day-start equity and the high-water mark after an equity sample.
    pub fn save_equity_marks(&mut self) -> Result<(), JournalError> {
        if let Some(d) = self.state.equity.day_start() {
            let t = format!(
                "{} {}",
                d.date,
                serde_json::to_string(&d.equity).unwrap_or_default()
            );
            self.journal.set_meta(META_DAY_START, &t)?;
        }
        if let Some(h) = self.state.equity.high_water_mark()
            && let Ok(t) = serde_json::to_string(h)
        {
            self.journal.set_meta(META_HWM, &t)?;
        }
        Ok(())
    }

    /// What a REST reconciliation of `symbols` must read: open orders and trades on them,
    /// crbot's unfinished orders there (their symbols are read too), the journal's last trade
    /// id per symbol, and crbot's orders whose executed quantity exceeds their journaled fills
    /// (a fill missed while the stream was down, which the trade-id cursor can no longer
    /// reach once a later fill on the symbol is journaled).
    pub fn resync_request(&self, symbols: impl IntoIterator<Item = Symbol>) -> ResyncRequest {
        let mut set: BTreeSet<Symbol> = symbols.into_iter().collect();
        let own_on = |o: &&Order| o.purpose != OrderPurpose::External && set.contains(&o.symbol);
        let unfinished: Vec<(Symbol, String)> = self
            .state
            .orders
            .values()
            .filter(own_on)
            .filter(|o| o.state.is_open())
            .map(|o| (o.symbol.clone(), o.client_order_id.to_string()))
            .collect();
        let journaled = |o: &Order| o.order_id.map(|id| self.journaled_qty(&o.symbol, id));
        let mut journaled_qty = HashMap::new();
        let mut fill_gaps = Vec::new();
        for o in self.state.orders.values().filter(own_on) {
            let (Some(id), Some(have)) = (o.order_id, journaled(o)) else {
                continue;
            };
            if o.state.is_open() {
                journaled_qty.insert((o.symbol.clone(), id), have);
            }
            if have < o.executed_qty {
                fill_gaps.push((o.symbol.clone(), id));
            }
        }
        set.extend(unfinished.iter().map(|(s, _)| s.clone()));
        let last_trade_ids = set
            .iter()
            .filter_map(|s| Some((s.clone(), self.journal.last_trade_id(s).ok().flatten()?)))
            .collect();
        ResyncRequest {
            symbols: set.into_iter().collect(),
            unfinished,
            last_trade_ids,
            journaled_qty,
            fill_gaps,
        }
    }

    /// Forgets the journaled quantities of orders no longer in memory (finished orders beyond
    /// `state::FINISHED_ORDERS_KEPT`): only those of the state's own orders are ever read, and
    /// the map otherwise grew by every order of a long run. Runs once it is well over the bound.
    fn prune_journaled(&mut self) {
        if self.journaled_qty.len() <= 2 * crate::engine::state::FINISHED_ORDERS_KEPT {
            return;
        }
        let known: std::collections::HashSet<(&Symbol, u64)> = self
            .state
            .orders
            .values()
            .filter_map(|o| Some((&o.symbol, o.order_id?)))
            .collect();
        self.journaled_qty.retain(|(s, id), _| known.contains(&(s, *id)));
    }

    /// The quantity journaled for one exchange order.
    pub fn journaled_qty(&self, symbol: &Symbol, order_id: u64) -> Qty {
        self.journaled_qty
            .get(&(symbol.clone(), order_id))
            .copied()
            .unwrap_or(Qty::ZERO)
    }

    /// crbot's orders on `symbol` that executed more than their journaled fills:
    /// their exchange order ids, to read their fills by order id.
    pub fn fill_gaps(&self, symbol: &Symbol) -> Vec<u64> {
        self.resync_request([symbol.clone()])
            .fill_gaps
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    }

    /// Books journaled own fills whose symbol rules are now known, in time order, reading the
    /// journal [`replay::REPLAY_PAGE`] fills at a time. Those of symbols whose rules are still
    /// unknown are booked by a later call, once they are.
    pub fn replay_fills(&mut self) {
        self.replay_fills_in_pages(replay::REPLAY_PAGE);
    }

    /// [`Core::replay_fills`], `page` fills read at a time (tests compare page sizes). A read
    /// of the journal that fails is a storage failure (tickets are refused: the positions are
    /// not whole); the replay resumes where it stopped at the next call.
    pub fn replay_fills_in_pages(&mut self, page: usize) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        match replay.run(&self.journal, &mut self.state, page) {
            Ok(replay::Left::Nothing) => self.replay = None,
            Ok(replay::Left::More) => {}
            Err(e) => {
                let at = replay.stopped_at_ms();
                self.storage_failed(&e, at);
            }
        }
    }

    fn storage_failed(&mut self, e: &JournalError, now_ms: i64) {
        if e.is_storage_failure() {
            self.state.storage_error = Some(e.to_string());
        }
        self.state
            .log(now_ms, LogLevel::Error, LogKind::System, format!("journal: {e}"));
    }

    /// The pre-trade gate. Journals the decision (approved or not); for an approved ticket,
    /// journals the order row (state SENDING) and returns what to send. Nothing may be sent
    /// that is not journaled first: a storage failure refuses the ticket.
    pub fn decide(
        &mut self,
        ticket: &Ticket,
        purpose: OrderPurpose,
        exit_confirmed: bool,
        now_ms: i64,
    ) -> Result<Prepared, Refusal> {
        if let Some(e) = &self.state.storage_error {
            return Err(Refusal::Storage(e.clone()));
        }
        let ctx = self.state.risk_context(exit_confirmed);
        let verdict = risk::check(&self.state.limits, &ctx, ticket, now_ms);
        let (approved, codes, reason) = match &verdict {
            Ok(a) => (true, Vec::new(), approval_note(a)),
            Err(denials) => (
                false,
                denials.iter().map(|d| d.code().to_string()).collect(),
                denials
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        let record = RiskEventRecord {
            time_ms: now_ms,
            source: self.source,
            ticket: ticket.clone(),
            approved,
            codes,
            reason: reason.clone(),
        };
        if let Err(e) = self.journal.record_risk_event(&record) {
            self.storage_failed(&e, now_ms);
            return Err(Refusal::Storage(e.to_string()));
        }
        let kind = if approved {
            LogKind::Risk
        } else {
            LogKind::Rejection
        };
        let level = if approved { LogLevel::Info } else { LogLevel::Warn };
        let verb = if approved { "approved" } else { "REJECTED" };
        let line = format!(
            "risk {verb} {} {} {}: {reason}",
            ticket.side, ticket.qty, ticket.symbol
        );
        self.state.log(now_ms, level, kind, line);
        let approved = verdict.map_err(Refusal::Risk)?;
        self.prepare(ticket, approved, purpose, now_ms)
    }

    fn prepare(
        &mut self,
        ticket: &Ticket,
        approved: RiskApproved<ApprovedOrder>,
        purpose: OrderPurpose,
        now_ms: i64,
    ) -> Result<Prepared, Refusal> {
        let cid = ClientOrderId::generate(now_ms, rand::random::<u64>());
        let a = approved.inner().clone();
        let request = self.approve_request(ticket, approved, cid.clone(), now_ms)?;
        let purpose = if a.is_entry { OrderPurpose::Entry } else { purpose };
        let order = Order {
            client_order_id: cid.clone(),
            order_id: None,
            order_list_id: None,
            symbol: a.symbol.clone(),
            side: a.side,
            order_type: a.order_type,
            price: a.price,
            stop_price: None,
            qty: a.qty,
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Sending,
            purpose,
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        if let Err(e) = self.journal.insert_order(&order) {
            self.storage_failed(&e, now_ms);
            return Err(Refusal::Storage(e.to_string()));
        }
        if a.is_entry {
            self.state.entries.record(now_ms);
            if let (Some(stop_loss), Some(take_profit)) = (a.stop_loss, a.take_profit) {
                // Persisted so an entry that fills while the console is down still gets its
                // protective OCO when the restart reconciles it.
                let key = format!("{META_PROTECT}{cid}");
                if let Err(e) = self.journal.set_meta(&key, &format!("{stop_loss} {take_profit}")) {
                    self.storage_failed(&e, now_ms);
                }
                self.state.protection.insert(
                    cid.clone(),
                    Protection {
                        stop_loss,
                        take_profit,
                    },
                );
            }
        }
        self.state.upsert_order(order);
        crate::failpoint::hit("before_send");
        Ok(Prepared { request, approved: a })
    }

    /// The request an approved ticket sends. Every sell (an exit or close, the kill switch's
    /// flatten, a stop-loss exit at market) is held once more to the reduction rule: a sell of
    /// at most crbot's unheld position, so that not even a planning mistake can make one sell
    /// the user's own coins. The engine's risk context never selects external holdings
    /// (`EngineState::risk_context`), so the ticket passed the same bound a moment ago and a
    /// refusal here is a bug: it is journaled and logged as a risk rejection, and nothing is
    /// sent. (Selling external holdings would need its own allowance here.)
    fn approve_request(
        &mut self,
        ticket: &Ticket,
        approved: RiskApproved<ApprovedOrder>,
        cid: ClientOrderId,
        now_ms: i64,
    ) -> Result<RiskApproved<OrderRequest>, Refusal> {
        if approved.is_entry {
            return Ok(approved.into_request(cid));
        }
        let request = approved.into_inner().to_request(cid);
        let held = self.state.unheld_position(&request.symbol);
        risk::approve_reduction(request, held, now_ms).map_err(|denial| {
            let record = RiskEventRecord {
                time_ms: now_ms,
                source: self.source,
                ticket: ticket.clone(),
                approved: false,
                codes: vec![denial.code().to_string()],
                reason: denial.to_string(),
            };
            if let Err(e) = self.journal.record_risk_event(&record) {
                self.storage_failed(&e, now_ms);
            }
            let line = format!(
                "risk REJECTED {} {} {}: {denial}",
                ticket.side, ticket.qty, ticket.symbol
            );
            tracing::error!(%denial, symbol = %ticket.symbol, "sell refused by the reduction check");
            self.state.log(now_ms, LogLevel::Error, LogKind::Rejection, line);
            Refusal::Risk(vec![denial])
        })
    }

    /// Approves a protective OCO against crbot's unheld position on its symbol. The OCO was
    /// sized from that position a moment ago, so a refusal is a bug: it is logged, with the
    /// position left unprotected, like every other protection that cannot be placed.
    fn approve_protection(&mut self, oco: OcoRequest, now_ms: i64) -> Option<RiskApproved<OcoRequest>> {
        let held = self.state.unheld_position(&oco.symbol);
        let symbol = oco.symbol.clone();
        match risk::approve_protection(oco, held, now_ms) {
            Ok(approved) => Some(approved),
            Err(denial) => {
                tracing::error!(%denial, %symbol, "protective OCO refused by the risk gate");
                let text = format!("{symbol}: protective OCO refused ({denial}); position unprotected");
                self.state.log(now_ms, LogLevel::Error, LogKind::Risk, text);
                None
            }
        }
    }

    /// Journals and applies an order report from the exchange (placement answer, query,
    /// user-data event). Unknown orders are adopted as external.
    pub fn on_exchange_order(&mut self, report: &OrderReport, now_ms: i64) -> Vec<FollowUp> {
        let cid = match ClientOrderId::new(report.order_client_id()) {
            Ok(c) => c,
            Err(_) => report.to_order(OrderPurpose::External).client_order_id,
        };
        let known = self.state.orders.contains_key(&cid);
        if !known {
            let order = report.to_order(OrderPurpose::External);
            if let Err(e) = self.journal.insert_order(&order) {
                self.storage_failed(&e, now_ms);
            }
            self.state.log(
                now_ms,
                LogLevel::Info,
                LogKind::Order,
                format!(
                    "external order {} {} {} {} ({})",
                    order.symbol, order.side, order.order_type, order.qty, report.status
                ),
            );
            self.state.upsert_order(order);
            return Vec::new();
        }
        self.apply_status(
            &cid,
            report.status,
            Some(report.order_id),
            report.order_list_id,
            report.executed_qty,
            report.cumulative_quote_qty,
            None,
            now_ms,
        )
    }

    /// Records a new status for one of crbot's orders, journal first.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_status(
        &mut self,
        cid: &ClientOrderId,
        status: OrderStatus,
        order_id: Option<u64>,
        order_list_id: Option<i64>,
        executed: Qty,
        cum_quote: Notional,
        error: Option<String>,
        now_ms: i64,
    ) -> Vec<FollowUp> {
        let Some(before) = self.state.orders.get(cid).cloned() else {
            return Vec::new();
        };
        // Never move backwards: a late NEW must not reopen a FILLED order.
        if let LocalOrderState::Exchange(old) = before.state
            && old.is_terminal()
            && !status.is_terminal()
        {
            return Vec::new();
        }
        // Nor backwards in fills: a late NEW after a PARTIALLY_FILLED keeps the partial status,
        // and the executed and quote amounts only grow (reports can arrive out of order).
        let status = match (before.state, status) {
            (LocalOrderState::Exchange(OrderStatus::PartiallyFilled), OrderStatus::New) => {
                OrderStatus::PartiallyFilled
            }
            _ => status,
        };
        let executed = executed.max(before.executed_qty);
        let cum_quote = cum_quote.max(before.cumulative_quote_qty);
        let update = OrderUpdate {
            state: LocalOrderState::Exchange(status),
            order_id: order_id.or(before.order_id),
            order_list_id: order_list_id.or(before.order_list_id),
            executed_qty: executed,
            cumulative_quote_qty: cum_quote,
            updated_ms: now_ms,
            last_error: error,
        };
        if let Err(e) = self.journal.update_order(cid, &update) {
            self.storage_failed(&e, now_ms);
        }
        if let Some(o) = self.state.orders.get_mut(cid) {
            o.state = update.state;
            o.order_id = update.order_id;
            o.order_list_id = update.order_list_id;
            o.executed_qty = executed;
            o.cumulative_quote_qty = cum_quote;
            o.updated_ms = now_ms;
        }
        if before.state != LocalOrderState::Exchange(status) {
            let (level, why) = match status {
                OrderStatus::Rejected => (LogLevel::Warn, ""),
                // Said even when its OCO sibling keeps working (no loss of protection then,
                // but a take-profit or an entry the trader counted on is gone).
                OrderStatus::ExpiredInMatch => (
                    LogLevel::Warn,
                    " (self-trade prevention: another order of this account crossed it)",
                ),
                _ => (LogLevel::Info, ""),
            };
            self.state.log(
                now_ms,
                level,
                LogKind::Order,
                format!(
                    "{} {} {} {} → {}{why}",
                    before.purpose.as_code(),
                    before.symbol,
                    before.side,
                    before.qty,
                    status
                ),
            );
        }
        if status.is_terminal() && before.state.is_open() && before.purpose.is_protective() {
            // Whether that leaves the position bare is the protection workflow's to judge,
            // once the input that ended it is fully applied (its sibling may end with it).
            self.state.ended_protective.push(cid.clone());
        }
        let mut follow = Vec::new();
        if status.is_terminal() && before.purpose == OrderPurpose::Entry && !executed.is_zero() {
            follow.extend(self.protection_for(cid, now_ms));
        }
        if status.is_terminal() && executed.is_zero() {
            self.state.protection.remove(cid);
        }
        follow
    }

    /// The protective OCO is due once an entry is terminal with something executed (the
    /// rule itself is [`protective_oco`]'s doc). While halted nothing is placed: the kill
    /// switch owns the book.
    fn protection_for(&mut self, cid: &ClientOrderId, now_ms: i64) -> Vec<FollowUp> {
        let Some(p) = self.state.protection.remove(cid) else {
            return Vec::new();
        };
        let Some(order) = self.state.orders.get(cid) else {
            return Vec::new();
        };
        if matches!(self.state.trading, TradingState::Halted { .. }) {
            let text = format!("{}: halted, protective OCO not placed", order.symbol);
            self.state.log(now_ms, LogLevel::Warn, LogKind::Risk, text);
            return Vec::new();
        }
        vec![FollowUp::Protect {
            entry: cid.clone(),
            stop_loss: p.stop_loss,
            take_profit: p.take_profit,
        }]
    }

    /// Plans the protective OCO of a finished entry from its journaled fills and journals both
    /// legs (and the list id) before it may be sent. `None` when nothing is to be sent (too
    /// small, invalid, still working): the reason is logged.
    pub fn prepare_protection(
        &mut self,
        entry: &ClientOrderId,
        stop_loss: Price,
        take_profit: Price,
        now_ms: i64,
    ) -> Option<RiskApproved<OcoRequest>> {
        let order = self.state.orders.get(entry)?.clone();
        let rules = self.state.rules.get(&order.symbol)?.clone();
        let LocalOrderState::Exchange(status) = order.state else {
            return None;
        };
        let fills: Vec<Fill> = match self.journal.fills_for(&order.symbol) {
            Ok(f) => f
                .into_iter()
                .filter(|f| f.client_order_id.as_ref() == Some(entry))
                .collect(),
            Err(e) => {
                self.storage_failed(&e, now_ms);
                return None;
            }
        };
        let id = |n: u64| ClientOrderId::generate(now_ms, rand::random::<u64>().wrapping_add(n));
        let ids = [id(0), id(1), id(2)];
        let plan = protective_oco(
            &EntryFills {
                symbol: &order.symbol,
                side: order.side,
                status,
                fills: &fills,
                position: self.state.unheld_position(&order.symbol),
            },
            &rules,
            stop_loss,
            take_profit,
            ids,
        );
        let oco = match plan {
            OcoPlan::Place(oco) => oco,
            OcoPlan::TooSmall { qty, reason } => {
                let text = format!(
                    "{}: filled {qty} too small for a protective OCO ({reason}); position unprotected",
                    order.symbol
                );
                self.state.log(now_ms, LogLevel::Warn, LogKind::Risk, text);
                return None;
            }
            OcoPlan::Invalid { reason } => {
                let text = format!("{}: protective OCO not possible: {reason}", order.symbol);
                self.state.log(now_ms, LogLevel::Warn, LogKind::Risk, text);
                return None;
            }
            OcoPlan::Wait | OcoPlan::NothingFilled => return None,
        };
        let oco = self.approve_protection(oco, now_ms)?;
        self.journal_oco_legs(&oco, now_ms)?;
        Some(oco)
    }

    /// Re-protects what is left of a position after a partial close (its OCO was cancelled so
    /// that the close could sell): a new OCO at the same stop-loss and take-profit for crbot's
    /// position less what its own open sells still hold ([`EngineState::unheld_position`]),
    /// rounded down to the step. Never sized from the balance: that holds the user's own coins
    /// too. Below the lot minimum or the minimum notional (at the stop) nothing is sent and the
    /// log says the rest is unprotected.
    pub fn prepare_reprotection(
        &mut self,
        symbol: &Symbol,
        stop_loss: Price,
        take_profit: Price,
        now_ms: i64,
    ) -> Option<RiskApproved<OcoRequest>> {
        let oco = match self.plan_reprotection(symbol, stop_loss, take_profit, now_ms) {
            Ok(oco) => oco,
            Err(Some(why)) => {
                let text = format!("{symbol}: {why}; unprotected");
                self.state.log(now_ms, LogLevel::Warn, LogKind::Risk, text);
                return None;
            }
            Err(None) => return None,
        };
        let oco = self.approve_protection(oco, now_ms)?;
        self.journal_oco_legs(&oco, now_ms)?;
        Some(oco)
    }

    /// The OCO a re-protection sends ([`Core::prepare_reprotection`]), not yet approved. `Err`
    /// with why when it is too small to send (`None`: there is nothing to protect at all).
    fn plan_reprotection(
        &self,
        symbol: &Symbol,
        stop_loss: Price,
        take_profit: Price,
        now_ms: i64,
    ) -> Result<OcoRequest, Option<String>> {
        let rules = self
            .state
            .rules
            .get(symbol)
            .ok_or_else(|| Some("no exchange rules for it".to_string()))?;
        let qty = rules.round_qty(OrderType::Limit, self.state.unheld_position(symbol));
        let min_qty = rules
            .filters
            .lot_size
            .as_ref()
            .map(|l| l.min_qty)
            .unwrap_or_default();
        let min_notional = rules
            .filters
            .notional
            .as_ref()
            .map(|n| n.min_notional)
            .unwrap_or_default();
        let notional = stop_loss.notional(qty).map(|n| n.value()).unwrap_or_default();
        if qty.is_zero() {
            return Err(None);
        }
        if qty.value() < min_qty || notional < min_notional {
            return Err(Some(format!("{qty} is too small to protect")));
        }
        let id = |n: u64| ClientOrderId::generate(now_ms, rand::random::<u64>().wrapping_add(n));
        Ok(OcoRequest {
            symbol: symbol.clone(),
            qty,
            take_profit,
            stop_loss,
            stop_limit: None,
            list_client_order_id: id(0),
            take_profit_client_order_id: id(1),
            stop_loss_client_order_id: id(2),
        })
    }

    /// The exchange refused a protective OCO (both legs are already marked NOT_SENT). When the
    /// market is already through its stop-loss, the stop the trader asked for has been hit:
    /// leaving the position unprotected would be the one outcome they did not ask for. So
    /// crbot exits at market, as the stop itself would have: the reason is journaled
    /// (`PROTECTION_STOP_HIT`), logged, and the sell goes through the risk gate and the
    /// journal as a STOP_LOSS order. Returns the sell to send, or `None` (the stop was not
    /// crossed, or the exit was refused: the log says the position is unprotected).
    ///
    /// "Through the stop" is the exchange's own word for it (`-2010` "…would trigger
    /// immediately."), or the best bid at or below the stop when the exchange answered the
    /// generic `-2010` for an OCO whose prices are on the wrong side of the market.
    pub fn protection_refused(
        &mut self,
        legs: &[ClientOrderId],
        code: Option<i64>,
        message: &str,
        now_ms: i64,
    ) -> Option<Prepared> {
        let stop_leg = legs
            .iter()
            .filter_map(|l| self.state.orders.get(l))
            .find(|o| o.purpose == OrderPurpose::StopLoss)?
            .clone();
        let stop = stop_leg.stop_price?;
        let symbol = stop_leg.symbol.clone();
        let bid = self.state.quotes.get(&symbol).map(|q| q.bid);
        let says_triggered = message.to_ascii_lowercase().contains("trigger immediately");
        let bid_through = bid.is_some_and(|b| b <= stop);
        if code != Some(CODE_NEW_ORDER_REJECTED) || !(says_triggered || bid_through) {
            return None;
        }
        let rules = self.state.rules.get(&symbol)?;
        let qty = rules.round_qty(OrderType::Market, self.state.sellable(&symbol));
        let bid_text = bid.map_or_else(|| "unknown".to_string(), |b| b.to_string());
        let reason = format!(
            "stop-loss {stop} already crossed (bid {bid_text}) when its protection was placed; \
             the exchange refused it ({message}): selling {qty} at market"
        );
        self.record_event(EventKind::ProtectionStopHit, Some(&symbol), &reason, now_ms);
        self.state.log(
            now_ms,
            LogLevel::Warn,
            LogKind::Risk,
            format!("{symbol}: {reason}"),
        );
        let ticket = Ticket {
            symbol: symbol.clone(),
            side: Side::Sell,
            kind: TicketKind::Market,
            qty,
            stop_loss: None,
            take_profit: None,
        };
        match self.decide(&ticket, OrderPurpose::StopLoss, false, now_ms) {
            Ok(p) => Some(p),
            Err(r) => {
                let text = format!("{symbol}: stop-loss exit at market refused ({r}); position UNPROTECTED");
                self.state.log(now_ms, LogLevel::Error, LogKind::Risk, text);
                None
            }
        }
    }

    /// Journals both legs of a protective OCO (state SENDING) before it may be sent.
    fn journal_oco_legs(&mut self, oco: &OcoRequest, now_ms: i64) -> Option<()> {
        let leg = |cid: &ClientOrderId, purpose, order_type, price, stop| Order {
            client_order_id: cid.clone(),
            order_id: None,
            order_list_id: None,
            symbol: oco.symbol.clone(),
            side: Side::Sell,
            order_type,
            price,
            stop_price: stop,
            qty: oco.qty,
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Sending,
            purpose,
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        let tp = leg(
            &oco.take_profit_client_order_id,
            OrderPurpose::TakeProfit,
            OrderType::LimitMaker,
            Some(oco.take_profit),
            None,
        );
        let sl = leg(
            &oco.stop_loss_client_order_id,
            OrderPurpose::StopLoss,
            OrderType::StopLoss,
            None,
            Some(oco.stop_loss),
        );
        self.record_own_order(tp, now_ms).ok()?;
        self.record_own_order(sl, now_ms).ok()?;
        crate::failpoint::hit("before_send");
        Some(())
    }

    /// Journals an order crbot builds itself (a protective leg) before it is sent.
    pub fn record_own_order(&mut self, order: Order, now_ms: i64) -> Result<(), JournalError> {
        self.journal
            .insert_order(&order)
            .inspect_err(|e| self.storage_failed(e, now_ms))?;
        self.state.upsert_order(order);
        Ok(())
    }

    /// Marks an order whose answer never came: UNKNOWN until reconciled.
    pub fn mark_unknown(&mut self, cid: &ClientOrderId, reason: &str, now_ms: i64) {
        // The user stream often reports an order before its lost REST answer times out: a
        // terminal status the exchange already gave is final and must not reopen as UNKNOWN.
        if let Some(LocalOrderState::Exchange(s)) = self.state.orders.get(cid).map(|o| o.state)
            && s.is_terminal()
        {
            return;
        }
        self.set_local_state(cid, LocalOrderState::Unknown, Some(reason.to_string()), now_ms);
        self.state.log(
            now_ms,
            LogLevel::Warn,
            LogKind::Order,
            format!("order {cid}: outcome unknown ({reason}); reconciling, not resending"),
        );
    }

    /// Marks an order whose placement failed for sure. One the exchange answered with an error
    /// code received the order and turned it down: `REJECTED`, with the exchange's code and
    /// message as its last error. Anything else (no connection, a rate-limit hold or ban kept
    /// on this side) never reached it: `NOT_SENT`.
    pub fn mark_refused(&mut self, cid: &ClientOrderId, e: &BrokerError, now_ms: i64) {
        let BrokerError::Api { code, msg, .. } = e else {
            self.mark_not_sent(cid, &e.to_string(), now_ms);
            return;
        };
        let reason = format!("code {code}: {msg}");
        let state = LocalOrderState::Exchange(OrderStatus::Rejected);
        self.set_local_state(cid, state, Some(reason.clone()), now_ms);
        self.state.protection.remove(cid);
        self.state.log(
            now_ms,
            LogLevel::Warn,
            LogKind::Rejection,
            format!("order {cid} rejected by the exchange: {reason}"),
        );
    }

    /// Marks an order that never reached the exchange.
    pub fn mark_not_sent(&mut self, cid: &ClientOrderId, reason: &str, now_ms: i64) {
        self.set_local_state(cid, LocalOrderState::NotSent, Some(reason.to_string()), now_ms);
        self.state.protection.remove(cid);
        self.state.log(
            now_ms,
            LogLevel::Warn,
            LogKind::Rejection,
            format!("order {cid} rejected: {reason}"),
        );
    }

    fn set_local_state(
        &mut self,
        cid: &ClientOrderId,
        state: LocalOrderState,
        error: Option<String>,
        now_ms: i64,
    ) {
        let Some(o) = self.state.orders.get(cid).cloned() else {
            return;
        };
        let update = OrderUpdate {
            state,
            order_id: o.order_id,
            order_list_id: o.order_list_id,
            executed_qty: o.executed_qty,
            cumulative_quote_qty: o.cumulative_quote_qty,
            updated_ms: now_ms,
            last_error: error,
        };
        if let Err(e) = self.journal.update_order(cid, &update) {
            self.storage_failed(&e, now_ms);
        }
        self.state.set_order_state(cid, state, now_ms);
    }

    /// Journals a fill (durably, deduplicated by symbol, trade id and order id), then books it if it is
    /// one of crbot's own. Returns true when the fill was new.
    pub fn on_fill(&mut self, fill: &Fill, now_ms: i64) -> bool {
        // `myTrades` (the resync after a dropped stream) carries no client order id: attribute
        // the fill to the order it belongs to by its exchange order id, or crbot's own fill
        // would be booked as external and its position never built.
        let mut fill = fill.clone();
        if fill.client_order_id.is_none() {
            fill.client_order_id = self
                .state
                .orders
                .values()
                .find(|o| o.symbol == fill.symbol && o.order_id == Some(fill.order_id))
                .map(|o| o.client_order_id.clone());
        }
        if fill.client_order_id.is_none() {
            // Not in memory (finished orders beyond the newest few thousand leave it): the
            // journal still knows crbot's order, and the order comes back with its fill.
            match self.journal.order_by_exchange_id(&fill.symbol, fill.order_id) {
                Ok(Some(order)) => {
                    fill.client_order_id = Some(order.client_order_id.clone());
                    self.state.upsert_order(order);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading the journal for a fill's order"),
            }
        }
        let fill = &fill;
        crate::failpoint::hit("before_fill_journal");
        // The commission's price is taken now, as the fill arrives, and journaled with it:
        // a restart replays the fill at this price, not at whatever BNB costs then.
        let fee_price = self.state.fee_price_at(fill);
        match self.journal.insert_fill_priced(fill, fee_price) {
            Ok(false) => return false,
            Ok(true) => {
                add_journaled(&mut self.journaled_qty, fill);
                self.prune_journaled();
            }
            Err(e) => {
                // Not recorded: do not book it either, so a resync books it once the journal
                // can take it again.
                self.storage_failed(&e, now_ms);
                return false;
            }
        }
        crate::failpoint::hit("after_fill_journal");
        let own = fill
            .client_order_id
            .as_ref()
            .and_then(|c| self.state.orders.get(c))
            .is_some_and(|o| o.purpose != OrderPurpose::External);
        let mut text = format!(
            "fill {} {} {} @ {}{}",
            fill.symbol,
            fill.side,
            fill.qty,
            fill.price,
            fee_text(fill, fee_price, self.state.rules.get(&fill.symbol))
        );
        if own {
            match self.state.apply_own_fill_priced(fill, fee_price) {
                Ok(Some(pnl)) => text.push_str(&format!(", realized {}", pnl.display_2dp())),
                Ok(None) => {}
                Err(e) => text.push_str(&format!(" (not booked: {e})")),
            }
        } else {
            text.push_str(" (external)");
        }
        self.state.log(now_ms, LogLevel::Info, LogKind::Fill, text);
        true
    }

    /// Changes the trading state, journal first. The caller acts (cancels) only after this
    /// returned Ok: a halt that is not durable must not be half-done.
    pub fn set_trading_state(
        &mut self,
        to: TradingState,
        trigger: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), JournalError> {
        let rec = TradingStateRecord {
            time_ms: now_ms,
            state: state_code(&to),
            reason: reason.to_string(),
            trigger: trigger.to_string(),
            actor: self.source.as_code().to_string(),
        };
        let result = self.journal.record_trading_state(&rec);
        // The in-memory state follows even when the journal failed: a halt must take effect.
        self.state.trading = to;
        let level = if matches!(self.state.trading, TradingState::Active) {
            LogLevel::Info
        } else {
            LogLevel::Warn
        };
        self.state.log(
            now_ms,
            level,
            LogKind::Kill,
            format!("trading → {} ({trigger}): {reason}", rec.state),
        );
        result.inspect_err(|e| self.storage_failed(e, now_ms)).map(|_| ())
    }

    /// Stage one of the kill switch, the state part: HALTED, durable before any cancel.
    pub fn halt(&mut self, trigger: KillTrigger, reason: &str, now_ms: i64) -> Result<(), JournalError> {
        let to = TradingState::Halted {
            reason: reason.to_string(),
            since_ms: now_ms,
        };
        self.set_trading_state(to, trigger.as_code(), reason, now_ms)
    }

    /// Re-arms trading (explicit, journaled).
    pub fn rearm(&mut self, by: &str, now_ms: i64) -> Result<(), String> {
        let t = risk::rearm(&self.state.trading, by, now_ms).map_err(|e| e.to_string())?;
        self.set_trading_state(t.to, Trigger::Rearm.as_code(), &t.detail, now_ms)
            .map_err(|e| e.to_string())
    }

    /// True when the journal is HALTED and no cancel sweep finished since the halt: a kill
    /// switch was interrupted (a crash mid-sweep) and its cancels must be finished.
    pub fn kill_sweep_pending(&self) -> bool {
        let Ok(Some(halt)) = self.journal.latest_trading_state() else {
            return false;
        };
        if halt.record.state != TradingStateCode::Halted {
            return false;
        }
        let events = self.journal.recent_events(500).unwrap_or_default();
        !events.iter().any(|e| {
            e.record.event_kind() == Some(EventKind::KillDone) && e.record.time_ms >= halt.record.time_ms
        })
    }

    /// Journals a generic event (kill-switch outcome per symbol, reconnects, errors).
    pub fn record_event(&mut self, kind: EventKind, symbol: Option<&Symbol>, detail: &str, now_ms: i64) {
        let rec = EventRecord::new(kind, symbol, detail, now_ms);
        if let Err(e) = self.journal.record_event(&rec) {
            self.storage_failed(&e, now_ms);
        }
    }

    /// Feeds an equity sample, persists the marks, and applies an automatic transition
    /// (daily loss, drawdown, P&L unavailable) when one is due. Returns it.
    ///
    /// `record` journals the sample (with the assets priced from a held price and its age) and
    /// the last known prices. An incomplete equity is never journaled: the curve holds only
    /// real equities; the last known prices still are, so that a later command can use them.
    pub fn sample_equity(&mut self, now_ms: i64, record: bool) -> Option<risk::Transition> {
        let transition = self.state.refresh_equity(now_ms);
        if record {
            let marks: Vec<_> = self
                .state
                .marks()
                .into_iter()
                .filter(|(a, m)| {
                    self.state.held_marks.get(a).is_none_or(|h| h.time_ms < m.time_ms)
                        && self.state.balances.contains_key(a)
                })
                .map(|(a, m)| (a, m.price, m.time_ms))
                .collect();
            if let Err(e) = self.journal.record_marks(&marks) {
                self.storage_failed(&e, now_ms);
            }
            for (a, price, time_ms) in marks {
                self.state.held_marks.insert(
                    a,
                    Mark {
                        price,
                        time_ms,
                        held: true,
                    },
                );
            }
            let sample = self.state.current_equity().zip(self.state.equity_report.as_ref());
            if let Some((equity, report)) = sample {
                let held: Vec<_> = report.held().map(|(a, age)| (a.clone(), age)).collect();
                if let Err(e) = self.journal.record_equity_sample(now_ms, &equity, &held) {
                    self.storage_failed(&e, now_ms);
                }
                if let Err(e) = self.save_equity_marks() {
                    self.storage_failed(&e, now_ms);
                }
            }
        }
        if let Some(t) = &transition {
            // A journal failure is reported by `set_trading_state`; the state changes anyway.
            let _ = self.set_trading_state(t.to.clone(), t.trigger.as_code(), &t.detail, now_ms);
        }
        transition
    }

    /// A capital flow seen on the user-data stream (`balanceUpdate`): applied to the balances
    /// and the P&L baselines together, and journaled.
    pub fn on_balance_update(&mut self, asset: &crate::domain::Asset, delta: Decimal, now_ms: i64) {
        let flow = self
            .state
            .apply_capital_flow(asset, delta, FlowSource::Stream, false, now_ms);
        self.journal_flow(&flow, now_ms);
    }

    fn journal_flow(&mut self, flow: &CapitalFlowRecord, now_ms: i64) {
        if let Err(e) = self.journal.record_capital_flow(flow) {
            self.storage_failed(&e, now_ms);
        }
        if let Err(e) = self.save_equity_marks() {
            self.storage_failed(&e, now_ms);
        }
    }

    /// The start-up half of capital-flow detection. `balances` are the exchange's, read with
    /// the account's `update_time_ms`, and the fills since the last checkpoint must already
    /// be journaled (`fills_complete`). Whatever the last checkpoint plus those fills plus the
    /// flows recorded since does not explain is a flow (deposit, withdrawal, transfer, or a
    /// trade crbot could not see): journaled, kept out of P&L. Then the checkpoint moves to
    /// these balances. With incomplete fills nothing is decided and the old checkpoint stays.
    /// Returns the flows found.
    pub fn reconcile_capital_flows(
        &mut self,
        update_time_ms: i64,
        fills_complete: bool,
        now_ms: i64,
    ) -> Vec<CapitalFlowRecord> {
        if !fills_complete {
            return Vec::new();
        }
        let totals: std::collections::BTreeMap<_, _> = self
            .state
            .balances
            .values()
            .map(|b| (b.asset.clone(), b.total().value()))
            .filter(|(_, v)| !v.is_zero())
            .collect();
        let mut found = Vec::new();
        match self.journal.balance_checkpoint() {
            Ok(Some(cp)) if update_time_ms >= cp.exchange_time_ms => {
                let fills = self.journal.fills_after(cp.exchange_time_ms);
                let flows = self.journal.capital_flows_after_row(cp.flow_row);
                let (Ok(fills), Ok(flows)) = (fills, flows) else {
                    return Vec::new();
                };
                let flows: Vec<_> = flows
                    .into_iter()
                    .map(|f| (f.record.asset, f.record.delta))
                    .collect();
                let rules = &self.state.rules;
                let changes = unexplained_changes(&cp.totals, &fills, &flows, &totals, |s| {
                    rules
                        .get(s)
                        .map(|r| (r.base_asset.clone(), r.quote_asset.clone()))
                });
                for (asset, delta) in changes {
                    let flow =
                        self.state
                            .apply_capital_flow(&asset, delta, FlowSource::Reconcile, true, now_ms);
                    self.journal_flow(&flow, now_ms);
                    found.push(flow);
                }
            }
            Ok(_) => {}
            Err(e) => {
                let text = format!("capital flows not checked: {e}");
                self.state.log(now_ms, LogLevel::Warn, LogKind::System, text);
                return found;
            }
        }
        let checkpoint = self.journal.last_flow_row().map(|flow_row| BalanceCheckpoint {
            exchange_time_ms: update_time_ms,
            flow_row,
            totals,
        });
        if let Err(e) = checkpoint.and_then(|c| self.journal.set_balance_checkpoint(&c)) {
            self.storage_failed(&e, now_ms);
        }
        found
    }

    /// The preview lines of a ticket (every rule and filter, pass or fail).
    pub fn preview_lines(&self, ticket: &Ticket, now_ms: i64) -> (Vec<RuleLine>, Option<ApprovedOrder>) {
        let ctx = self.state.risk_context(false);
        let lines = risk::report(&self.state.limits, &ctx, ticket, now_ms)
            .into_iter()
            .map(|o| RuleLine {
                code: o.code.to_string(),
                passed: o.passed,
                detail: o.detail,
            })
            .collect();
        let approved = risk::check(&self.state.limits, &ctx, ticket, now_ms)
            .ok()
            .map(RiskApproved::into_inner);
        (lines, approved)
    }

    /// A market sell ticket for `percent` of crbot's position on `symbol` (close / flatten).
    pub fn close_ticket(&self, symbol: &Symbol, percent: u8) -> Option<Ticket> {
        let pos = self.state.sellable(symbol);
        let qty = pos.checked_scale(Decimal::from(percent.min(100)) / Decimal::ONE_HUNDRED)?;
        if qty.is_zero() {
            return None;
        }
        Some(Ticket {
            symbol: symbol.clone(),
            side: Side::Sell,
            kind: TicketKind::Market,
            qty,
            stop_loss: None,
            take_profit: None,
        })
    }
}

/// Field by field, the stricter of two sets of limits.
pub fn tighter_of(a: &Limits, b: &Limits) -> Limits {
    Limits {
        max_daily_loss_pct: a.max_daily_loss_pct.min(b.max_daily_loss_pct),
        max_drawdown_pct: a.max_drawdown_pct.min(b.max_drawdown_pct),
        max_trades_per_day: a.max_trades_per_day.min(b.max_trades_per_day),
        max_position_size_pct: a.max_position_size_pct.min(b.max_position_size_pct),
        min_risk_reward: a.min_risk_reward.max(b.min_risk_reward),
        fat_finger_pct: a.fat_finger_pct.min(b.fat_finger_pct),
        max_quote_age_ms: a.max_quote_age_ms.min(b.max_quote_age_ms),
        taker_fee_pct: a.taker_fee_pct.max(b.taker_fee_pct),
    }
}

fn approval_note(a: &RiskApproved<ApprovedOrder>) -> String {
    let mut s = format!("{} {} {} {}", a.side, a.order_type, a.qty, a.symbol);
    if let Some(p) = a.price {
        s.push_str(&format!(" @ {p}"));
    }
    if let Some(n) = a.notional {
        s.push_str(&format!(", notional {}", n.display_dp(2)));
    }
    s
}

/// Reads `YYYY-MM-DD {"amount":..,"asset":..}` as written by `save_equity_marks`.
fn parse_day_start(text: &str) -> Option<DayStart> {
    let (date, money) = text.split_once(' ')?;
    Some(DayStart {
        date: date.parse().ok()?,
        equity: serde_json::from_str(money).ok()?,
    })
}

/// Adds a journaled fill's quantity to its order's total.
fn add_journaled(totals: &mut HashMap<(Symbol, u64), Qty>, fill: &Fill) {
    let total = totals
        .entry((fill.symbol.clone(), fill.order_id))
        .or_insert(Qty::ZERO);
    *total = total.checked_add(fill.qty).unwrap_or(*total);
}

/// `, fee 0.00010000 BNB (0.06 USDT)` for a fill's log line: the commission in its own asset
/// and, when it was priced at fill time, its value in the pair's quote asset; `, fee 0` when the
/// fill paid none; `(unpriced)` when no price was known then.
fn fee_text(fill: &Fill, fee_price: Option<Price>, rules: Option<&crate::domain::SymbolRules>) -> String {
    let fee = fill.commission.value();
    if fee.is_zero() {
        return ", fee 0".into();
    }
    let own = Money::new(fee, fill.commission_asset.clone()).display();
    let Some(quote) = rules.map(|r| &r.quote_asset) else {
        return format!(", fee {own}");
    };
    if *quote == fill.commission_asset {
        return format!(", fee {own}");
    }
    match fee_price.and_then(|p| fee.checked_mul(p.value())) {
        Some(v) => format!(", fee {own} ({})", Money::new(v, quote.clone()).display()),
        None => format!(", fee {own} (unpriced)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &std::path::Path) -> Journal {
        Journal::open(&dir.join("j.db"), Mode::Sim).expect("journal opens")
    }

    #[test]
    fn a_restart_with_looser_configured_limits_keeps_the_tighter_journaled_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tight = Limits {
            max_daily_loss_pct: Decimal::new(2, 0),
            ..Limits::default()
        };
        let core =
            Core::restore(journal(dir.path()), Mode::Sim, tight, TicketSource::Tui, 0).expect("restore");
        drop(core);
        // The configuration now says 5% (looser): the journaled 2% stays in force.
        let core = Core::restore(
            journal(dir.path()),
            Mode::Sim,
            Limits::default(),
            TicketSource::Tui,
            1,
        )
        .expect("restore");
        assert_eq!(core.state.limits.max_daily_loss_pct, Decimal::new(2, 0));
        assert!(!core.state.warnings.is_empty(), "the trader is told why");
    }

    #[test]
    fn a_tighter_configuration_takes_effect_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(
            Core::restore(
                journal(dir.path()),
                Mode::Sim,
                Limits::default(),
                TicketSource::Tui,
                0,
            )
            .expect("restore"),
        );
        let tighter = Limits {
            max_trades_per_day: 3,
            min_risk_reward: Decimal::new(2, 0),
            ..Limits::default()
        };
        let core = Core::restore(
            journal(dir.path()),
            Mode::Sim,
            tighter.clone(),
            TicketSource::Tui,
            1,
        )
        .expect("restore");
        assert_eq!(core.state.limits, tighter);
    }

    #[test]
    fn a_late_new_report_never_undoes_a_partial_fill() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut core = Core::restore(
            journal(dir.path()),
            Mode::Sim,
            Limits::default(),
            TicketSource::Tui,
            0,
        )
        .expect("restore");
        let cid = ClientOrderId::new("cr-test-1").expect("valid id");
        let order = Order {
            client_order_id: cid.clone(),
            order_id: None,
            order_list_id: None,
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some("100".parse().expect("ok")),
            stop_price: None,
            qty: "2".parse().expect("ok"),
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Sending,
            purpose: OrderPurpose::Exit,
            created_ms: 0,
            updated_ms: 0,
        };
        core.record_own_order(order, 0).expect("journaled");
        let one: Qty = "1".parse().expect("ok");
        let quote: Notional = "100".parse().expect("ok");
        core.apply_status(
            &cid,
            OrderStatus::PartiallyFilled,
            Some(7),
            None,
            one,
            quote,
            None,
            1,
        );
        core.apply_status(
            &cid,
            OrderStatus::New,
            Some(7),
            None,
            Qty::ZERO,
            Notional::ZERO,
            None,
            2,
        );
        for o in [
            core.state.orders[&cid].clone(),
            core.journal.order(&cid).expect("read").expect("row"),
        ] {
            assert_eq!(o.state, LocalOrderState::Exchange(OrderStatus::PartiallyFilled));
            assert_eq!(o.executed_qty, one);
            assert_eq!(o.cumulative_quote_qty, quote);
        }
    }

    #[test]
    fn a_finished_order_whose_fills_fall_short_is_read_by_order_id_until_they_are_journaled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let restore = |dir: &std::path::Path| {
            Core::restore(journal(dir), Mode::Sim, Limits::default(), TicketSource::Tui, 0).expect("restore")
        };
        let mut core = restore(dir.path());
        let btc = Symbol::new("BTCUSDT").expect("ok");
        let cid = ClientOrderId::new("cr-test-gap").expect("valid id");
        let order = Order {
            client_order_id: cid.clone(),
            order_id: None,
            order_list_id: None,
            symbol: btc.clone(),
            side: Side::Sell,
            order_type: OrderType::Limit,
            price: Some("100".parse().expect("ok")),
            stop_price: None,
            qty: "2".parse().expect("ok"),
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Sending,
            purpose: OrderPurpose::Exit,
            created_ms: 0,
            updated_ms: 0,
        };
        core.record_own_order(order, 0).expect("journaled");
        // A cancel's answer: half of it filled while nothing listened; no fill is known.
        let one: Qty = "1".parse().expect("ok");
        core.apply_status(
            &cid,
            OrderStatus::Canceled,
            Some(7),
            None,
            one,
            "100".parse().expect("ok"),
            None,
            1,
        );
        let req = core.resync_request([btc.clone()]);
        assert!(req.unfinished.is_empty());
        assert_eq!(req.fill_gaps, vec![(btc.clone(), 7)]);
        assert_eq!(
            restore(dir.path()).fill_gaps(&btc),
            vec![7],
            "after a restart too"
        );
        let fill = Fill {
            symbol: btc.clone(),
            trade_id: 3,
            order_id: 7,
            client_order_id: None,
            side: Side::Sell,
            price: "100".parse().expect("ok"),
            qty: one,
            commission: Qty::ZERO,
            commission_asset: crate::domain::Asset::usdt(),
            time_ms: 1,
            is_maker: true,
        };
        assert!(core.on_fill(&fill, 2));
        assert!(core.fill_gaps(&btc).is_empty());
        assert!(
            restore(dir.path()).fill_gaps(&btc).is_empty(),
            "after a restart too"
        );
    }

    #[test]
    fn tighter_of_picks_the_stricter_side_of_every_field() {
        let a = Limits {
            max_drawdown_pct: Decimal::new(5, 0),
            min_risk_reward: Decimal::new(1, 0),
            ..Limits::default()
        };
        let b = Limits {
            max_drawdown_pct: Decimal::new(8, 0),
            min_risk_reward: Decimal::new(3, 0),
            ..Limits::default()
        };
        let t = tighter_of(&a, &b);
        assert_eq!(t.max_drawdown_pct, Decimal::new(5, 0));
        assert_eq!(t.min_risk_reward, Decimal::new(3, 0));
    }
}
