//! The console's event loop: the one task that owns the engine state.
//!
//! Owns: the order in which things happen. Commands from the screen come first (the kill
//! switch above everything), then answers of I/O tasks, then market and user-data events,
//! then the 250 ms tick (stale marks, equity, automatic halts, a `crbot kill` from another
//! shell seen in the journal). Network calls run in spawned tasks that report back on a
//! channel, so a slow exchange never blocks the loop, and the loop never blocks the screen.
//! Must not: draw, read keys, or send an order that did not pass [`Core::decide`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::domain::{
    ClientOrderId, Fill, LocalOrderState, Money, MoneyError, OrderPurpose, OrderStatus, Price, Quote, Symbol,
};
use crate::engine::backup::{self, BackupOutcome};
use crate::engine::core::{Core, FollowUp, Prepared, Refusal};
use crate::engine::kill::{self, Halted, KillEvent};
use crate::engine::snapshot::{
    Candle, Command, KillLine, KillProgress, KillStage, LimitChangePending, LimitName, LogKind, LogLevel,
    Snapshot, StreamHealth, StreamStatus as ViewStreamStatus, TicketOutcome, TicketPreview, TicketResult,
};
use crate::engine::state::TickerLine;
use crate::engine::ticket::parse_draft;
use crate::exchange::binance::error::OrderOutcome;
use crate::exchange::binance::events::{MarketEvent, StreamStatus, UserEvent};
use crate::exchange::binance::market::{MarketStreamConfig, MarketStreamHandle, spawn_market_stream};
use crate::exchange::binance::reconcile::{Resolution, ResolveConfig, ResyncReport, resolve_unknown, resync};
use crate::exchange::binance::rest::{BinanceRest, OcoRequest};
use crate::exchange::binance::user::{UserStreamConfig, spawn_user_stream};
use crate::exchange::binance::wire::{
    ExchangeInfo, ExchangeOrder, Kline, OrderListReport, PlacedOrder, Ticker24h,
};
use crate::journal::{EventKind, KillTrigger};
use crate::risk::Broker;
use crate::risk::{self, LimitChange, TradingState};
use crate::secret::SecretString;
use crate::vault::VaultError;

/// The loop's tick: stale marks, equity, automatic halts, the journal poll for `crbot kill`.
const TICK: Duration = Duration::from_millis(250);
/// At most one snapshot per frame (~30 fps); bursts of market data coalesce.
const PUBLISH_EVERY: Duration = Duration::from_millis(33);
/// Equity is journaled at most this often.
const EQUITY_JOURNAL_EVERY_MS: i64 = 60_000;
/// The clock offset is re-measured this often (every few minutes).
const CLOCK_SYNC_EVERY_MS: i64 = 5 * 60_000;
/// Symbol rules (filters, status) are re-read this often.
const RULES_REFRESH_EVERY_MS: i64 = 30 * 60_000;

/// A close of a protected position: the OCO is cancelled first (it locks the balance), then the
/// close sells, then what is left is protected again at the same prices.
#[derive(Debug, Clone)]
struct PendingClose {
    percent: u8,
    stop_loss: Option<Price>,
    take_profit: Option<Price>,
}

/// Answers from spawned I/O tasks.
#[derive(Debug)]
enum Internal {
    Info(Result<ExchangeInfo, String>),
    Clock(Result<i64, String>),
    Klines(Symbol, Vec<Kline>),
    Tickers(Vec<Ticker24h>),
    Quote(Symbol, Quote),
    Resynced(Box<Result<ResyncReport, String>>),
    Placed {
        cid: ClientOrderId,
        draft: Option<crate::engine::snapshot::TicketDraft>,
        outcome: Box<OrderOutcome<PlacedOrder>>,
    },
    OcoPlaced {
        legs: [ClientOrderId; 2],
        outcome: Box<OrderOutcome<OrderListReport>>,
    },
    Cancelled {
        cid: ClientOrderId,
        outcome: Box<OrderOutcome<ExchangeOrder>>,
    },
    Resolved {
        cid: ClientOrderId,
        resolution: Resolution,
        fills: Vec<Fill>,
    },
    Kill(KillEvent),
    /// A backup finished on its own thread: journaled and shown here, on the loop.
    Backup(Box<BackupOutcome>),
    RetryResync,
    /// A start-up read that failed (candles, tickers, a book): shown, never silent; the
    /// streams fill the gap as they run.
    LoadFailed {
        what: String,
        error: String,
    },
    /// The protective OCO of a position being closed was cancelled (or not): the exchange's
    /// open orders and balances for the close.
    CloseReady {
        symbol: Symbol,
        cancel: Box<OrderOutcome<ExchangeOrder>>,
        open: Result<Vec<ExchangeOrder>, String>,
        account: Box<Result<crate::exchange::binance::wire::AccountInfo, String>>,
    },
    /// The exchange refused a protective OCO; the market and balances as they are now, for
    /// deciding whether its stop has already been hit (`Runtime::on_oco_refused`).
    OcoRefused {
        legs: [ClientOrderId; 2],
        code: Option<i64>,
        message: String,
        book: Result<crate::exchange::binance::wire::BookTicker, String>,
        account: Box<Result<crate::exchange::binance::wire::AccountInfo, String>>,
    },
    /// The vault answered a re-arm's passphrase. `state_row`/`trading` are the trading state
    /// when the re-arm was asked: if either changed meanwhile (a kill), the re-arm is dropped.
    RearmChecked {
        verdict: Result<(), VaultError>,
        state_row: i64,
        trading: TradingState,
    },
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The console engine.
pub struct Runtime {
    core: Core,
    rest: BinanceRest,
    tx: mpsc::UnboundedSender<Internal>,
    market: Option<MarketStreamHandle>,
    /// The journal's trading-state row id last seen (ours or another process's).
    state_row: i64,
    /// Start-up reconciliation done: tickets are refused before it.
    reconciled: bool,
    resync_running: bool,
    last_equity_journal_ms: i64,
    dirty: bool,
    /// `AUTO_HALT_ACTION=halt_flatten`: an automatic breach halts and flattens instead of reducing.
    auto_flatten: bool,
    last_clock_sync_ms: i64,
    last_rules_ms: i64,
    last_backup_ms: i64,
    /// A scheduled backup is being written: the next waits for it rather than pile up.
    scheduled_backup_running: bool,
    started_ms: i64,
    /// Said once: no symbol has had a quote since start (no market data at all).
    warned_no_data: bool,
    /// Closes waiting for their position's protective OCO to be cancelled.
    closing: BTreeMap<Symbol, PendingClose>,
    /// Partial closes whose remainder gets a new OCO once they finish: close id → (symbol, SL, TP).
    reprotect: BTreeMap<ClientOrderId, (Symbol, Price, Price)>,
    /// Stage two due once stage one is done and balances are re-read (automatic halt-flatten).
    flatten_after_kill: Option<u8>,
    /// The vault whose passphrase a re-arm must give, in a mode with keys. `None` there means
    /// keys from the environment (development): nothing to check against.
    vault: Option<PathBuf>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("mode", &self.core.state.mode)
            .finish()
    }
}

impl Runtime {
    /// Runs until `cancel` fires or the screen's command channel closes. `vault` is the vault
    /// file a re-arm's passphrase is checked against (modes with keys unlocked from a vault).
    pub async fn run(
        core: Core,
        rest: BinanceRest,
        mut commands: mpsc::Receiver<Command>,
        snapshots: watch::Sender<Snapshot>,
        cancel: CancellationToken,
        auto_flatten: bool,
        vault: Option<PathBuf>,
    ) {
        let (tx, mut internal) = mpsc::unbounded_channel();
        let state_row = core.journal.latest_trading_state_id().unwrap_or(0);
        let mut rt = Runtime {
            core,
            rest,
            tx,
            market: None,
            state_row,
            reconciled: false,
            resync_running: false,
            last_equity_journal_ms: 0,
            dirty: true,
            auto_flatten,
            last_clock_sync_ms: now_ms(),
            last_rules_ms: now_ms(),
            last_backup_ms: now_ms(),
            scheduled_backup_running: false,
            started_ms: now_ms(),
            warned_no_data: false,
            closing: BTreeMap::new(),
            reprotect: BTreeMap::new(),
            flatten_after_kill: None,
            vault,
        };
        let (market_tx, mut market_rx) = mpsc::channel::<MarketEvent>(4096);
        let (user_tx, mut user_rx) = mpsc::channel::<UserEvent>(1024);
        let watchlist = rt.core.state.watchlist.clone();
        let (handle, _market_task) = spawn_market_stream(
            rt.rest.endpoints().clone(),
            rt.rest.clock().clone(),
            watchlist.clone(),
            market_tx,
            cancel.child_token(),
            MarketStreamConfig::default(),
        );
        rt.market = Some(handle);
        match spawn_user_stream(
            rt.rest.clone(),
            user_tx,
            cancel.child_token(),
            UserStreamConfig::default(),
        ) {
            Ok(_) => {}
            Err(e) => {
                let t = now_ms();
                rt.core.state.log(
                    t,
                    LogLevel::Error,
                    LogKind::Connection,
                    format!("user-data stream: {e}"),
                );
                rt.core.state.user_stream = StreamHealth {
                    status: ViewStreamStatus::Down,
                    latency_ms: None,
                };
            }
        }
        rt.initial_load(&watchlist);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Quit) | None => break,
                    Some(c) => rt.on_command(c),
                },
                Some(ev) = internal.recv() => {
                    rt.on_internal(ev);
                    rt.reprotect_finished_closes(now_ms());
                }
                Some(ev) = user_rx.recv() => {
                    rt.on_user(ev);
                    rt.reprotect_finished_closes(now_ms());
                }
                Some(ev) = market_rx.recv() => rt.on_market(ev),
                _ = tick.tick() => rt.on_tick(),
                _ = publish.tick(), if rt.dirty => {
                    rt.dirty = false;
                    let _ = snapshots.send(rt.core.state.snapshot(now_ms()));
                }
            }
        }
        let t = now_ms();
        rt.core.state.log(
            t,
            LogLevel::Info,
            LogKind::System,
            "console closed; open orders stay on the exchange",
        );
    }

    fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = Internal> + Send + 'static,
    {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(fut.await);
        });
    }

    /// Rules, clock, candles, 24 h tickers, books, and the start-up reconciliation.
    fn initial_load(&mut self, watchlist: &[Symbol]) {
        let rest = self.rest.clone();
        self.spawn(async move {
            Internal::Clock(
                rest.sync_clock()
                    .await
                    .map(|s| s.offset_ms)
                    .map_err(|e| e.to_string()),
            )
        });
        let rest = self.rest.clone();
        self.spawn(async move { Internal::Info(rest.exchange_info(&[]).await.map_err(|e| e.to_string())) });
        for s in watchlist {
            self.load_symbol(s.clone());
        }
        let rest = self.rest.clone();
        let syms = watchlist.to_vec();
        self.spawn(async move {
            match rest.ticker_24hr(&syms).await {
                Ok(list) => Internal::Tickers(list),
                Err(e) => Internal::LoadFailed {
                    what: "24 h tickers".to_string(),
                    error: e.to_string(),
                },
            }
        });
    }

    fn load_symbol(&mut self, s: Symbol) {
        let rest = self.rest.clone();
        let sym = s.clone();
        self.spawn(async move {
            match rest.klines(&sym, "1m", 500).await {
                Ok(rows) => Internal::Klines(sym, rows),
                Err(e) => Internal::LoadFailed {
                    what: format!("{sym} candles"),
                    error: e.to_string(),
                },
            }
        });
        let rest = self.rest.clone();
        self.spawn(async move {
            match rest.book_ticker(&s).await {
                Ok(b) => Internal::Quote(
                    s,
                    Quote {
                        bid: b.bid,
                        ask: b.ask,
                        time_ms: now_ms(),
                    },
                ),
                Err(e) => Internal::LoadFailed {
                    what: format!("{s} book"),
                    error: e.to_string(),
                },
            }
        });
    }

    /// REST resync: at start-up and after every user-stream (re)subscription.
    fn start_resync(&mut self) {
        if self.resync_running {
            return;
        }
        self.resync_running = true;
        let mut symbols: BTreeSet<Symbol> = self.core.state.watchlist.iter().cloned().collect();
        symbols.extend(self.core.state.orders.values().map(|o| o.symbol.clone()));
        let req = self.core.resync_request(symbols);
        let rest = self.rest.clone();
        self.spawn(async move {
            Internal::Resynced(Box::new(resync(&rest, &req).await.map_err(|e| e.to_string())))
        });
    }

    fn on_command(&mut self, cmd: Command) {
        let now = now_ms();
        self.dirty = true;
        match cmd {
            Command::Kill => self.kill(KillTrigger::Key, "kill switch pressed", now),
            Command::Flatten { percent } => self.flatten(percent, now),
            Command::Rearm { passphrase } => self.request_rearm(passphrase, now),
            Command::PreviewTicket(draft) => self.preview(draft, now),
            Command::SubmitTicket(draft) => self.submit(draft, now),
            Command::CancelOrder(cid) => self.cancel(&cid, now),
            Command::ClosePosition { symbol, percent } => self.close_position(symbol, percent, now),
            Command::AddSymbol(s) => {
                if !self.core.state.watchlist.contains(&s) {
                    self.core.state.watchlist.push(s.clone());
                    self.save_watchlist(now);
                    self.load_symbol(s);
                    self.push_watchlist();
                }
            }
            Command::RemoveSymbol(s) => {
                self.core.state.watchlist.retain(|x| *x != s);
                self.save_watchlist(now);
                self.push_watchlist();
            }
            Command::SelectSymbol(s) => self.core.state.selected = Some(s),
            Command::ProposeLimit { name, value } => self.propose_limit(name, value, now),
            Command::ConfirmLimit { typed } => self.confirm_limit(&typed, now),
            Command::CancelLimitChange => self.core.state.pending_limit = None,
            Command::Quit => {}
        }
    }

    /// Closes `percent` of crbot's position. A protected position's OCO locks its balance, so
    /// the OCO is cancelled first; the close follows once the exchange confirms (see
    /// `Internal::CloseReady`), and a partial close re-protects the remainder.
    fn close_position(&mut self, symbol: Symbol, percent: u8, now: i64) {
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
        self.closing.insert(
            symbol.clone(),
            PendingClose {
                percent,
                stop_loss,
                take_profit,
            },
        );
        let text = format!("close {percent}% of {symbol}: cancelling its protective OCO first");
        self.core.state.log(now, LogLevel::Info, LogKind::Order, text);
        let rest = self.rest.clone();
        let cid = first.client_order_id.clone();
        self.spawn(async move {
            // Cancelling one leg cancels the whole order list.
            let cancel = rest.cancel_order(&symbol, cid.as_str()).await;
            let open = rest.open_orders(Some(&symbol)).await.map_err(|e| e.to_string());
            let account = rest.account().await.map_err(|e| e.to_string());
            Internal::CloseReady {
                symbol,
                cancel: Box::new(cancel),
                open,
                account: Box::new(account),
            }
        });
    }

    fn close_now(&mut self, symbol: &Symbol, percent: u8, reprotect: Option<(Price, Price)>, now: i64) {
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
                    self.reprotect
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

    fn on_close_ready(
        &mut self,
        symbol: Symbol,
        cancel: OrderOutcome<ExchangeOrder>,
        open: Result<Vec<ExchangeOrder>, String>,
        account: Result<crate::exchange::binance::wire::AccountInfo, String>,
        now: i64,
    ) {
        let Some(pc) = self.closing.remove(&symbol) else {
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
    fn on_oco_refused(
        &mut self,
        legs: [ClientOrderId; 2],
        code: Option<i64>,
        message: String,
        book: Result<crate::exchange::binance::wire::BookTicker, String>,
        account: Result<crate::exchange::binance::wire::AccountInfo, String>,
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
    fn reprotect_finished_closes(&mut self, now: i64) {
        if self.reprotect.is_empty() {
            return;
        }
        let done: Vec<ClientOrderId> = self
            .reprotect
            .keys()
            .filter(|c| self.core.state.orders.get(*c).is_none_or(|o| !o.state.is_open()))
            .cloned()
            .collect();
        for cid in done {
            let Some((symbol, sl, tp)) = self.reprotect.remove(&cid) else {
                continue;
            };
            if let Some(oco) = self.core.prepare_reprotection(&symbol, sl, tp, now) {
                self.send_oco(oco);
            }
        }
    }

    fn save_watchlist(&mut self, now: i64) {
        if let Err(e) = self.core.save_watchlist() {
            let text = format!("watchlist not saved ({e}); it will not survive a restart");
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
        }
    }

    fn push_watchlist(&self) {
        if let Some(m) = &self.market {
            let m = m.clone();
            let list = self.core.state.watchlist.clone();
            tokio::spawn(async move {
                m.set_watchlist(list).await;
            });
        }
    }

    /// Stage one: HALTED (journal first), then cancel everything, cancels before all else.
    fn kill(&mut self, trigger: KillTrigger, reason: &str, now: i64) {
        let halted = kill::halt(Some(&mut self.core), trigger, reason, now);
        if let Some(e) = halted.halt_error() {
            // The halt is in memory and on screen; the cancels must still go.
            let text = format!("halt not journaled: {e}");
            self.core.state.log(now, LogLevel::Error, LogKind::Kill, text);
        }
        self.sweep(halted, now);
        self.note_own_state_write();
    }

    /// Stage one's exchange part: cancel every open order everywhere, then verify. The sweep
    /// runs on its own task; its progress comes back to the loop as `Internal::Kill`.
    fn sweep(&mut self, halted: Halted, now: i64) {
        self.core.state.kill = Some(KillProgress {
            started_ms: now,
            stage: KillStage::Cancelling,
            lines: Vec::new(),
            done: false,
        });
        let mut running = halted.sweep(Some(&mut self.core), &self.rest, now);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = running.next().await {
                if tx.send(Internal::Kill(ev)).is_err() {
                    break;
                }
            }
        });
    }

    fn flatten(&mut self, percent: u8, now: i64) {
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
        for t in plan.tickets {
            match self.core.decide(&t, OrderPurpose::Flatten, true, now) {
                Ok(p) => self.send(p, None),
                Err(r) => self.refused(None, r, now),
            }
        }
    }

    fn preview(&mut self, draft: crate::engine::snapshot::TicketDraft, now: i64) {
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
                    approved: approved.is_some() && self.reconciled,
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

    fn submit(&mut self, draft: crate::engine::snapshot::TicketDraft, now: i64) {
        if !self.reconciled {
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

    fn refused(&mut self, draft: Option<crate::engine::snapshot::TicketDraft>, r: Refusal, now: i64) {
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

    fn send(&mut self, p: Prepared, draft: Option<crate::engine::snapshot::TicketDraft>) {
        let rest = self.rest.clone();
        let cid = p.request.client_order_id.clone();
        let req = p.request;
        self.spawn(async move {
            Internal::Placed {
                cid,
                draft,
                outcome: Box::new(rest.place_order(&req).await),
            }
        });
    }

    fn cancel(&mut self, cid: &ClientOrderId, now: i64) {
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
        } else {
            self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::Order,
                format!("cancel {} {}", order.symbol, cid),
            );
        }
        let rest = self.rest.clone();
        let cid = cid.clone();
        self.spawn(async move {
            let outcome = rest.cancel_order(&order.symbol, cid.as_str()).await;
            Internal::Cancelled {
                cid,
                outcome: Box::new(outcome),
            }
        });
    }

    fn propose_limit(&mut self, name: LimitName, value: Decimal, now: i64) {
        let current = self.core.state.limits.clone();
        let new = with_limit(&current, name, value);
        match risk::propose_limits(&current, &new) {
            Err(e) => self
                .core
                .state
                .log(now, LogLevel::Warn, LogKind::Limit, e.to_string()),
            Ok(LimitChange::Unchanged) => {}
            Ok(LimitChange::Tighten { limits, changes }) => {
                let text = format!("{} tightened to {value} (in force now)", name.env_name());
                self.apply_limits(limits, &changes, LogLevel::Info, text, now);
            }
            Ok(LimitChange::Loosen(pending)) => {
                let view = LimitChangePending {
                    name,
                    from: limit_of(&current, name),
                    to: value,
                    phrase: pending.phrase().to_string(),
                };
                self.core.state.pending_limit = Some((pending, view));
            }
        }
    }

    fn confirm_limit(&mut self, typed: &str, now: i64) {
        let Some((pending, view)) = self.core.state.pending_limit.take() else {
            return;
        };
        match pending.confirm(typed) {
            Ok(limits) => {
                let text = format!("{} loosened to {} (confirmed)", view.name.env_name(), view.to);
                self.apply_limits(limits, pending.changes(), LogLevel::Warn, text, now);
            }
            Err(e) => {
                let text = format!("limit not changed: {e}");
                self.core.state.log(now, LogLevel::Warn, LogKind::Limit, text);
            }
        }
    }

    /// Puts new limits in force: each change journaled, the set saved for restarts, and said.
    fn apply_limits(
        &mut self,
        limits: risk::Limits,
        changes: &[risk::FieldChange],
        level: LogLevel,
        text: String,
        now: i64,
    ) {
        for c in changes {
            self.journal_limit(c.name, &c.from, &c.to, true, now);
        }
        self.core.state.limits = limits;
        if let Err(e) = self.core.save_limits() {
            let text = format!("limits not journaled: {e}");
            self.core.state.log(now, LogLevel::Error, LogKind::Limit, text);
        }
        self.core.state.log(now, level, LogKind::Limit, text);
    }

    fn journal_limit(&mut self, name: &str, from: &str, to: &str, confirmed: bool, now: i64) {
        let rec = crate::journal::LimitChangeRecord {
            time_ms: now,
            limit: name.to_string(),
            old_value: from.to_string(),
            new_value: to.to_string(),
            confirmed,
            actor: "tui".to_string(),
            reason: "changed from the screen".to_string(),
        };
        if self.core.journal.record_limit_change(&rec).is_ok() {
            self.note_own_state_write();
        }
    }

    fn note_own_state_write(&mut self) {
        if let Ok(id) = self.core.journal.latest_trading_state_id() {
            self.state_row = id;
        }
    }

    fn follow(&mut self, follow: Vec<FollowUp>, now: i64) {
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

    fn send_oco(&mut self, oco: crate::risk::RiskApproved<OcoRequest>) {
        let rest = self.rest.clone();
        let legs = [
            oco.take_profit_client_order_id.clone(),
            oco.stop_loss_client_order_id.clone(),
        ];
        self.spawn(async move {
            Internal::OcoPlaced {
                legs,
                outcome: Box::new(rest.place_oco(&oco).await),
            }
        });
    }

    fn resolve(&mut self, symbol: Symbol, cid: ClientOrderId) {
        let rest = self.rest.clone();
        self.spawn(async move {
            let (resolution, fills) = resolve_with_fills(&rest, &symbol, &cid).await;
            Internal::Resolved {
                cid,
                resolution,
                fills,
            }
        });
    }

    fn on_internal(&mut self, ev: Internal) {
        let now = now_ms();
        self.dirty = true;
        match ev {
            Internal::Info(Ok(info)) => {
                for r in info.symbols {
                    self.core.state.rules.insert(r.symbol.clone(), r);
                }
                self.core.replay_fills();
                self.start_resync();
            }
            Internal::Info(Err(e)) => {
                self.core.state.log(
                    now,
                    LogLevel::Error,
                    LogKind::Connection,
                    format!("exchange info: {e}; retrying"),
                );
                let rest = self.rest.clone();
                self.spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Internal::Info(rest.exchange_info(&[]).await.map_err(|e| e.to_string()))
                });
            }
            Internal::Clock(Ok(offset)) => self.core.state.clock_offset_ms = Some(offset),
            Internal::Clock(Err(e)) => self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Connection,
                format!("clock sync: {e}"),
            ),
            Internal::Klines(s, rows) => {
                for k in rows {
                    self.core.state.on_candle(s.clone(), candle(&k));
                }
            }
            Internal::Tickers(list) => {
                for t in list {
                    self.core.state.on_ticker(
                        t.symbol.clone(),
                        TickerLine {
                            last: t.last,
                            change_pct: Some(t.change_percent),
                        },
                    );
                }
            }
            Internal::Quote(s, q) => {
                self.core.state.quotes.entry(s).or_insert(q);
            }
            Internal::Resynced(report) => {
                self.resync_running = false;
                match *report {
                    Ok(r) => self.apply_resync(r, now),
                    Err(e) => {
                        self.core.state.log(
                            now,
                            LogLevel::Error,
                            LogKind::Connection,
                            format!("resync failed: {e}; retrying in 2 s"),
                        );
                        self.spawn(async {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            Internal::RetryResync
                        });
                    }
                }
            }
            Internal::Placed { cid, draft, outcome } => self.on_placed(cid, draft, *outcome, now),
            Internal::OcoPlaced { legs, outcome } => match *outcome {
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
                        crate::exchange::binance::error::ClientError::Api { msg, .. } => msg.clone(),
                        other => other.to_string(),
                    };
                    // The market may be through the stop; the streamed quote and balances can
                    // lag the exchange, so read both before deciding (Internal::OcoRefused).
                    let symbol = legs
                        .iter()
                        .find_map(|l| self.core.state.orders.get(l))
                        .map(|o| o.symbol.clone());
                    match symbol {
                        Some(symbol) => {
                            let rest = self.rest.clone();
                            let code = e.code();
                            self.spawn(async move {
                                let book = rest.book_ticker(&symbol).await.map_err(|e| e.to_string());
                                let account = rest.account().await.map_err(|e| e.to_string());
                                Internal::OcoRefused {
                                    legs,
                                    code,
                                    message,
                                    book,
                                    account: Box::new(account),
                                }
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
            },
            Internal::Cancelled { cid, outcome } => match *outcome {
                OrderOutcome::Done(o) => {
                    let f = self.core.on_exchange_order(&o, now);
                    self.follow(f, now);
                }
                OrderOutcome::Rejected(e) => {
                    self.core
                        .state
                        .log(now, LogLevel::Warn, LogKind::Order, format!("cancel {cid}: {e}"));
                    if let Some(o) = self.core.state.orders.get(&cid) {
                        self.resolve(o.symbol.clone(), cid.clone());
                    }
                }
                OrderOutcome::Unknown { reason } => {
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Order,
                        format!("cancel {cid}: outcome unknown ({reason})"),
                    );
                    if let Some(o) = self.core.state.orders.get(&cid) {
                        self.resolve(o.symbol.clone(), cid.clone());
                    }
                }
            },
            Internal::Resolved {
                cid,
                resolution,
                fills,
            } => match resolution {
                Resolution::Found(o) => {
                    // As with a placement answer: the order (its id), then its fills, then the
                    // protective OCO, which is sized from the journaled fills.
                    let f = self.core.on_exchange_order(&o, now);
                    for fill in &fills {
                        self.core.on_fill(fill, now);
                    }
                    self.follow(f, now);
                    self.refresh_ticket_result(&cid);
                }
                Resolution::NotFound => {
                    self.core
                        .mark_not_sent(&cid, "never reached the exchange (confirmed not found)", now);
                    self.refresh_ticket_result(&cid);
                }
                Resolution::StillUnknown { reason } => {
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Order,
                        format!("order {cid} still unknown: {reason}; will retry"),
                    );
                    let sym = self.core.state.orders.get(&cid).map(|o| o.symbol.clone());
                    if let Some(symbol) = sym {
                        let rest = self.rest.clone();
                        self.spawn(async move {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            let (resolution, fills) = resolve_with_fills(&rest, &symbol, &cid).await;
                            Internal::Resolved {
                                cid,
                                resolution,
                                fills,
                            }
                        });
                    }
                }
            },
            Internal::Kill(ev) => self.on_kill_event(ev, now),
            Internal::Backup(outcome) => self.on_backup(*outcome, now),
            Internal::RetryResync => self.start_resync(),
            Internal::LoadFailed { what, error } => {
                let text = format!("could not load {what}: {error}");
                self.core
                    .state
                    .log(now, LogLevel::Warn, LogKind::Connection, text);
            }
            Internal::CloseReady {
                symbol,
                cancel,
                open,
                account,
            } => self.on_close_ready(symbol, *cancel, open, *account, now),
            Internal::OcoRefused {
                legs,
                code,
                message,
                book,
                account,
            } => self.on_oco_refused(legs, code, message, book, *account, now),
            Internal::RearmChecked {
                verdict,
                state_row,
                trading,
            } => match verdict {
                Ok(()) if state_row == self.state_row && trading == self.core.state.trading => {
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
                Err(e) => {
                    self.core
                        .state
                        .log(now, LogLevel::Warn, LogKind::Kill, format!("re-arm refused: {e}"))
                }
            },
        }
    }

    /// The screen's confirmed re-arm. In a mode with keys it takes the vault passphrase, as
    /// `crbot resume` does; Argon2 is slow on purpose, so the check runs off the loop and
    /// answers with [`Internal::RearmChecked`].
    fn request_rearm(&mut self, passphrase: Option<SecretString>, now: i64) {
        if !self.core.state.mode.needs_keys() {
            return self.rearm(now);
        }
        let Some(path) = self.vault.clone() else {
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
        let tx = self.tx.clone();
        let state_row = self.state_row;
        let trading = self.core.state.trading.clone();
        tokio::task::spawn_blocking(move || {
            let mut source = crate::vault::ScriptedSource::new([pass]);
            let verdict = crate::vault::unlock_contents(&path, &mut source, &|_| {}, 1).map(|_| ());
            let _ = tx.send(Internal::RearmChecked {
                verdict,
                state_row,
                trading,
            });
        });
    }

    fn rearm(&mut self, now: i64) {
        match self.core.rearm("tui", now) {
            Ok(()) => self.note_own_state_write(),
            Err(e) => self
                .core
                .state
                .log(now, LogLevel::Warn, LogKind::Kill, format!("re-arm: {e}")),
        }
    }

    fn on_placed(
        &mut self,
        cid: ClientOrderId,
        draft: Option<crate::engine::snapshot::TicketDraft>,
        outcome: OrderOutcome<PlacedOrder>,
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
                if let Some(o) = self.core.state.orders.get(&cid) {
                    self.resolve(o.symbol.clone(), cid.clone());
                }
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
    fn refresh_ticket_result(&mut self, cid: &ClientOrderId) {
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

    fn apply_resync(&mut self, r: ResyncReport, now: i64) {
        let account_time_ms = r.account.update_time_ms;
        self.core.state.set_balances(r.account.balances, true);
        // Follow-ups (a protective OCO) wait until the fills below are journaled: the OCO is
        // sized from an entry's journaled fills, and orders first give the fills their ids.
        let mut follow = Vec::new();
        for (cid, res) in r.orders {
            let Ok(cid) = ClientOrderId::new(&cid) else {
                continue;
            };
            match res {
                Resolution::Found(o) => follow.extend(self.core.on_exchange_order(&o, now)),
                Resolution::NotFound => {
                    let sending = self.core.state.orders.get(&cid).is_some_and(|o| {
                        matches!(
                            o.state,
                            LocalOrderState::Sending | LocalOrderState::Unknown | LocalOrderState::Pending
                        )
                    });
                    if sending {
                        self.core.mark_not_sent(
                            &cid,
                            "never reached the exchange (confirmed not found)",
                            now,
                        );
                    }
                }
                Resolution::StillUnknown { reason } => {
                    self.core.mark_unknown(&cid, &reason, now);
                }
            }
        }
        for o in &r.open_orders {
            follow.extend(self.core.on_exchange_order(o, now));
        }
        // Orders we think open that the exchange no longer lists were finished while we were away:
        // query them (resync did for crbot's own; external ones are simply closed).
        let open_ids: BTreeSet<String> = r
            .open_orders
            .iter()
            .map(|o| o.order_client_id().to_string())
            .collect();
        let stale_external: Vec<ClientOrderId> = self
            .core
            .state
            .orders
            .values()
            .filter(|o| {
                o.purpose == OrderPurpose::External
                    && o.state.is_open()
                    && !open_ids.contains(o.client_order_id.as_str())
            })
            .map(|o| o.client_order_id.clone())
            .collect();
        for cid in stale_external {
            self.core.apply_status(
                &cid,
                OrderStatus::Canceled,
                None,
                None,
                crate::domain::Qty::ZERO,
                crate::domain::Notional::ZERO,
                None,
                now,
            );
        }
        for fill in &r.fills {
            self.core.on_fill(fill, now);
        }
        // With every fill journaled, what they do not explain in the balances happened while
        // no stream was watching: deposits, withdrawals, transfers (kept out of P&L).
        self.core.reconcile_capital_flows(account_time_ms, true, now);
        self.follow(follow, now);
        if !self.reconciled {
            self.reconciled = true;
            if self.core.kill_sweep_pending() {
                // Halted, but the sweep never finished (crbot died mid-kill): finish it now.
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Kill,
                    "an interrupted kill switch is being finished",
                );
                self.sweep(Halted::interrupted(&self.core), now);
            }
            self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::System,
                "reconciled with the exchange: tickets accepted",
            );
        } else {
            self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::Connection,
                "resynced with the exchange",
            );
        }
        // A breach first seen here (a loss made while the console was closed) must act too.
        if let Some(t) = self.core.sample_equity(now, true) {
            self.on_transition(t, now);
        }
        if self.core.state.kill.as_ref().is_some_and(|k| k.done)
            && let Some(percent) = self.flatten_after_kill.take()
        {
            self.flatten(percent, now);
        }
    }

    fn on_kill_event(&mut self, ev: KillEvent, now: i64) {
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
                self.start_backup(backup::Reason::AfterKill, now);
                self.start_resync();
            }
        }
    }

    /// The posture's backup schedule (staging daily, production hourly); the backup service
    /// prunes old copies to one a week after the first week.
    fn scheduled_backup(&mut self, now: i64) {
        let Some(every) = self.core.backup_every_ms else {
            return;
        };
        if self.scheduled_backup_running || now - self.last_backup_ms < every {
            return;
        }
        self.last_backup_ms = now;
        self.scheduled_backup_running = true;
        self.start_backup(backup::Reason::Scheduled, now);
    }

    /// Starts a backup off the loop: a copy of a large journal takes seconds, and nothing
    /// here (least of all the kill key) may wait for it. Its outcome returns as
    /// `Internal::Backup`.
    fn start_backup(&mut self, reason: backup::Reason, now: i64) {
        let journal = self.core.journal.path().to_path_buf();
        let folder = match &self.core.backup_dir {
            Some(dir) => dir.clone(),
            None => backup::folder(journal.parent().unwrap_or(std::path::Path::new("."))),
        };
        let dest = backup::file_in(&folder, self.core.state.mode, now);
        let mode = self.core.state.mode;
        self.spawn(async move {
            Internal::Backup(Box::new(backup::spawn(journal, mode, dest, reason, now).await))
        });
    }

    /// A backup's outcome: shown, and journaled (`BACKUP` is what `crbot doctor` looks for).
    fn on_backup(&mut self, outcome: BackupOutcome, now: i64) {
        if outcome.reason == backup::Reason::Scheduled {
            self.scheduled_backup_running = false;
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

    fn on_user(&mut self, ev: UserEvent) {
        let now = now_ms();
        self.dirty = true;
        match ev {
            UserEvent::Order(u) => {
                if let Some(fill) = &u.fill {
                    self.core.on_fill(fill, now);
                }
                let cid = u.order_client_id().to_string();
                if let Ok(cid) = ClientOrderId::new(&cid)
                    && self.core.state.orders.contains_key(&cid)
                {
                    let f = self.core.apply_status(
                        &cid,
                        u.status,
                        Some(u.order_id),
                        u.order_list_id,
                        u.cumulative_qty,
                        u.cumulative_quote,
                        None,
                        now,
                    );
                    self.follow(f, now);
                    self.refresh_ticket_result(&cid);
                } else {
                    let o = ExchangeOrder {
                        symbol: u.symbol.clone(),
                        order_id: u.order_id,
                        order_list_id: u.order_list_id,
                        client_order_id: u.client_order_id.clone(),
                        orig_client_order_id: u.orig_client_order_id.clone(),
                        side: u.side,
                        order_type: u.order_type,
                        time_in_force: None,
                        status: u.status,
                        price: u.price,
                        stop_price: u.stop_price,
                        orig_qty: u.qty,
                        executed_qty: u.cumulative_qty,
                        cumulative_quote_qty: u.cumulative_quote,
                        time_ms: u.transaction_ms,
                        update_ms: u.event_ms,
                    };
                    self.core.on_exchange_order(&o, now);
                }
            }
            UserEvent::AccountPosition { balances, .. } => self.core.state.set_balances(balances, false),
            // A deposit, withdrawal or transfer: not performance. The balance and the P&L
            // baselines change together, and the flow is journaled and shown.
            UserEvent::BalanceDelta { asset, delta, .. } => self.core.on_balance_update(&asset, delta, now),
            UserEvent::ListStatus(_) => {}
            UserEvent::Subscribed { .. } => {
                self.core.state.user_stream = StreamHealth {
                    status: ViewStreamStatus::Connected,
                    latency_ms: None,
                };
                self.core.state.log(
                    now,
                    LogLevel::Info,
                    LogKind::Connection,
                    "user-data stream subscribed",
                );
                if !self.core.state.rules.is_empty() {
                    self.start_resync();
                }
            }
            UserEvent::Disconnected { reason } => {
                self.core.state.user_stream = StreamHealth {
                    status: ViewStreamStatus::Reconnecting { attempt: 1 },
                    latency_ms: None,
                };
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Connection,
                    format!("user-data stream lost: {reason}"),
                );
            }
            UserEvent::Terminated => {}
            UserEvent::Malformed { total } => {
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Connection,
                    format!("malformed user-data frame ({total} so far)"),
                );
            }
        }
    }

    fn on_market(&mut self, ev: MarketEvent) {
        let now = now_ms();
        self.dirty = true;
        match ev {
            MarketEvent::BookTicker { symbol, bid, ask, .. } => self.core.state.on_quote(
                symbol,
                Quote {
                    bid,
                    ask,
                    time_ms: now,
                },
            ),
            MarketEvent::MiniTicker {
                symbol, open, close, ..
            } => {
                let change = if open.is_zero() {
                    None
                } else {
                    Some((close.value() - open.value()) * Decimal::ONE_HUNDRED / open.value())
                };
                self.core.state.on_ticker(
                    symbol,
                    TickerLine {
                        last: close,
                        change_pct: change,
                    },
                );
            }
            MarketEvent::Kline { symbol, kline, .. } => self.core.state.on_candle(symbol, candle(&kline)),
            MarketEvent::Depth { .. } => {}
            MarketEvent::Status(s) => match s {
                StreamStatus::Connected { .. } => {
                    self.core.state.market_stream.status = ViewStreamStatus::Connected;
                    self.core.state.log(
                        now,
                        LogLevel::Info,
                        LogKind::Connection,
                        "market stream connected",
                    );
                }
                StreamStatus::Disconnected { reason } => {
                    let attempt = match self.core.state.market_stream.status {
                        ViewStreamStatus::Reconnecting { attempt } => attempt + 1,
                        _ => 1,
                    };
                    self.core.state.market_stream.status = ViewStreamStatus::Reconnecting { attempt };
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Connection,
                        format!("market stream lost: {reason}"),
                    );
                }
                StreamStatus::Latency { ms } => {
                    self.core.state.market_stream.latency_ms = u32::try_from(ms.max(0)).ok()
                }
                StreamStatus::Stale { symbol } => {
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Connection,
                        format!("{symbol}: no market data, STALE (entries refused)"),
                    );
                }
                StreamStatus::Fresh { .. } | StreamStatus::ServerShutdown => {}
                StreamStatus::Malformed { total } => {
                    if total == 1 || total % 100 == 0 {
                        self.core.state.log(
                            now,
                            LogLevel::Warn,
                            LogKind::Connection,
                            format!("malformed market frames: {total}"),
                        );
                    }
                }
            },
        }
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        self.dirty = true;
        // The verdict of the ticket being typed follows the market (fat finger, quote age,
        // balance), not only the keystrokes.
        if let Some(draft) = self.core.state.preview.as_ref().map(|p| p.draft.clone()) {
            self.preview(draft, now);
        }
        self.scheduled_backup(now);
        if !self.warned_no_data && now - self.started_ms > 10_000 {
            let all_stale = self
                .core
                .state
                .watchlist
                .iter()
                .all(|s| self.core.state.is_stale(s, now));
            if all_stale && !self.core.state.watchlist.is_empty() {
                self.warned_no_data = true;
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
        if now - self.last_clock_sync_ms >= CLOCK_SYNC_EVERY_MS {
            self.last_clock_sync_ms = now;
            let rest = self.rest.clone();
            self.spawn(async move {
                Internal::Clock(
                    rest.sync_clock()
                        .await
                        .map(|s| s.offset_ms)
                        .map_err(|e| e.to_string()),
                )
            });
        }
        if now - self.last_rules_ms >= RULES_REFRESH_EVERY_MS {
            self.last_rules_ms = now;
            let rest = self.rest.clone();
            self.spawn(
                async move { Internal::Info(rest.exchange_info(&[]).await.map_err(|e| e.to_string())) },
            );
        }
        // A `crbot kill` (or resume, or limit change) from another shell lands in the journal.
        if let Ok(id) = self.core.journal.latest_trading_state_id()
            && id > self.state_row
        {
            self.state_row = id;
            if let Ok(Some(stored)) = self.core.journal.latest_trading_state() {
                let state = crate::engine::core::state_from_record(&stored.record);
                if state != self.core.state.trading {
                    let text = format!(
                        "trading state changed from another shell: {} ({})",
                        stored.record.state, stored.record.reason
                    );
                    self.core.state.trading = state;
                    self.core.state.log(now, LogLevel::Warn, LogKind::Kill, text);
                    self.start_resync();
                }
            }
        }
        let rate = self.rest.usage();
        self.core.state.rate = crate::engine::snapshot::RateLimitUsage {
            weight_used: rate.weight_used,
            weight_limit: rate.weight_limit,
            orders_10s: rate.orders_10s,
            orders_10s_limit: rate.orders_10s_limit,
        };
        self.core.state.clock_offset_ms = Some(self.rest.clock().offset_ms());
        if self.reconciled && !self.core.state.balances.is_empty() {
            let record = now - self.last_equity_journal_ms >= EQUITY_JOURNAL_EVERY_MS;
            if record {
                self.last_equity_journal_ms = now;
            }
            if let Some(t) = self.core.sample_equity(now, record) {
                self.on_transition(t, now);
            }
        }
    }

    /// Acts on an automatic transition, wherever the sample that caused it was taken.
    fn on_transition(&mut self, t: risk::Transition, now: i64) {
        self.note_own_state_write();
        let breach = matches!(t.to, TradingState::Reducing { .. });
        let halt = kill::automatic_trigger(t.trigger).filter(|_| breach && self.auto_flatten);
        if let Some(trigger) = halt {
            let reason = format!("automatic halt ({}): {}", t.trigger, t.detail);
            self.kill(trigger, &reason, now);
            // Not now: the protective legs still lock the position, so the free balance
            // would make all of it "dust". After the cancels and a fresh balance read.
            self.flatten_after_kill = Some(100);
        } else if breach {
            self.cancel_entries(now);
        }
    }

    /// Automatic halts (daily loss, drawdown) take the path to *reducing*: entry orders are
    /// cancelled, protective orders stay.
    fn cancel_entries(&mut self, now: i64) {
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

/// Resolves an unknown order by query and, when it executed, reads its fills too: the user
/// stream may have missed them (it is often down when answers are lost), and a protective
/// OCO is sized from journaled fills.
async fn resolve_with_fills(
    rest: &BinanceRest,
    symbol: &Symbol,
    cid: &ClientOrderId,
) -> (Resolution, Vec<Fill>) {
    let resolution = resolve_unknown(rest, symbol, cid.as_str(), &ResolveConfig::default()).await;
    let fills = match &resolution {
        Resolution::Found(o) if !o.executed_qty.is_zero() => rest
            .my_trades(symbol, None)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.order_id == o.order_id)
            .collect(),
        _ => Vec::new(),
    };
    (resolution, fills)
}

/// The value of one screen-editable limit.
fn limit_of(limits: &risk::Limits, name: LimitName) -> Decimal {
    match name {
        LimitName::DailyLoss => limits.max_daily_loss_pct,
        LimitName::Drawdown => limits.max_drawdown_pct,
        LimitName::TradesPerDay => Decimal::from(limits.max_trades_per_day),
        LimitName::PositionSize => limits.max_position_size_pct,
        LimitName::MinRiskReward => limits.min_risk_reward,
    }
}

/// `limits` with one screen-editable limit set to `value` (a trade count is truncated; one that
/// does not fit is 0, which the limits' validation refuses with its range).
fn with_limit(limits: &risk::Limits, name: LimitName, value: Decimal) -> risk::Limits {
    let mut new = limits.clone();
    match name {
        LimitName::DailyLoss => new.max_daily_loss_pct = value,
        LimitName::Drawdown => new.max_drawdown_pct = value,
        LimitName::TradesPerDay => {
            new.max_trades_per_day = u32::try_from(value.trunc().mantissa()).unwrap_or(0)
        }
        LimitName::PositionSize => new.max_position_size_pct = value,
        LimitName::MinRiskReward => new.min_risk_reward = value,
    }
    new
}

fn candle(k: &Kline) -> Candle {
    Candle {
        open_ms: k.open_time_ms,
        open: k.open,
        high: k.high,
        low: k.low,
        close: k.close,
    }
}

/// The exact orders a ticket would send: the entry and, for an entry, the protective OCO legs.
/// The legs cover what the entry's fills leave after a commission taken in the base asset, so
/// their quantity is the entry's less the taker fee, rounded down to the step (with the fee
/// paid in BNB the legs get the whole quantity; they never get more than this).
fn outgoing_orders(
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
fn headroom(day_start: &Money, day_pnl: &Money, max_loss_pct: Decimal) -> Result<Money, MoneyError> {
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
