//! The console's engine as a state machine: `Engine::update(input, now) -> Vec<Effect>`.
//!
//! Owns: every decision the console takes. An [`Input`] (a command from the screen, a market
//! or user-data event, the tick, or the [`Answer`] to an earlier effect) and the time it is
//! given go in; the state changes and the [`Effect`]s to perform come out, in order. The
//! workflows each live in a module of their own with the state they own: `tickets` (preview,
//! submit, placement answers, cancels), `protection` (the OCO after a fill, closes and the
//! re-protection of what a partial close leaves), `lost` (protection the exchange ended
//! without a fill: told loudly, offered again, never re-placed by itself), `halts` (the kill
//! switch, automatic halts,
//! flatten, re-arm), `limits` (limit changes from the screen), `sync` (start-up loads, the
//! REST resync, order resolution, the streams) and `schedule` (the tick: equity samples,
//! clock and rules refreshes, scheduled backups, a `crbot kill` seen in the journal).
//!
//! Must not: touch the network, spawn a task, sleep, or read a clock — the executor
//! (`engine::runtime`) does all of that and feeds the results back as inputs. The one store it
//! writes is the journal, through [`Core`], and on purpose synchronously: a decision is
//! journaled before the effect that acts on it is even emitted (journal first), and a failed
//! write refuses the effect rather than racing it.

mod alerts;
mod focus;
mod halts;
mod kill_reply;
mod limits;
mod lost;
mod price_alerts;
mod protection;
mod schedule;
mod sync;
mod tickets;

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::SymbolRules;
use crate::domain::broker::{Account, BookQuote, ListReport, OcoRequest, OrderOutcome, OrderReport, Placed};
use crate::domain::{ClientOrderId, Fill, Mode, OrderRequest, Symbol};
use crate::engine::backup::{self, BackupOutcome};
use crate::engine::core::Core;
use crate::engine::kill::{Halted, KillEvent, KillReport};
use crate::engine::snapshot::Candle;
use crate::engine::snapshot::{Command, KillSource, RateLimitUsage, RequestId, Snapshot, TicketDraft};
use crate::engine::state::TickerLine;
use crate::exchange::binance::events::{MarketEvent, UserEvent};
use crate::exchange::binance::reconcile::{Resolution, ResyncReport, ResyncRequest};
use crate::risk::{RiskApproved, TradingState};
use crate::secret::SecretString;
use crate::vault::VaultError;

pub use focus::{FocusAnswer, FocusEffect};
pub use lost::status_words;
pub use sync::candle;
pub use tickets::{Placement, Reply, headroom, outgoing_orders};

/// Something that happened, for the engine to act on.
#[derive(Debug)]
pub enum Input {
    /// The console started: the executor has opened the streams.
    Started,
    /// The trader did something on the screen.
    Command(Command),
    /// Market data (quotes, tickers, candles, stream health).
    Market(MarketEvent),
    /// The account's own events (orders, fills, balances, stream health).
    User(UserEvent),
    /// The periodic tick, with the exchange client's own gauges at that moment.
    Tick(TickFacts),
    /// The result of an earlier [`Effect`].
    Answer(Answer),
    /// The journal announced a trading-state change (PostgreSQL's `NOTIFY`, heard by
    /// `journal::notify`): read it now rather than at the next tick.
    TradingStateNotice,
}

/// What the exchange client reports about itself at a tick: request weight and order counts
/// against the exchange's limits, and the measured clock offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickFacts {
    pub rate: RateLimitUsage,
    pub clock_offset_ms: i64,
}

/// The result of an effect, fed back as an input.
#[derive(Debug)]
pub enum Answer {
    /// Every symbol's rules (filters, status).
    Info(Result<Vec<SymbolRules>, String>),
    Clock(Result<i64, String>),
    Klines(Symbol, Vec<Candle>),
    Tickers(Vec<(Symbol, TickerLine)>),
    /// A symbol's book at start-up (used only while no streamed quote has arrived).
    Book(Symbol, BookQuote),
    Resynced(Box<Result<ResyncReport, String>>),
    /// Time to try a failed resync again.
    RetryResync,
    Placed {
        cid: ClientOrderId,
        draft: Option<TicketDraft>,
        outcome: Box<OrderOutcome<Placed>>,
    },
    OcoPlaced {
        legs: [ClientOrderId; 2],
        outcome: Box<OrderOutcome<ListReport>>,
    },
    Cancelled {
        cid: ClientOrderId,
        outcome: Box<OrderOutcome<OrderReport>>,
    },
    Resolved {
        cid: ClientOrderId,
        resolution: Resolution,
        fills: Vec<Fill>,
    },
    /// The kill sweep's task is running (its first cancels are on their way): what is left
    /// to journal of the kill can be written now without delaying them.
    SweepStarted {
        reason: Option<String>,
    },
    /// The kill sweep's progress.
    Kill(KillEvent),
    /// The kill sweep's report, after its last progress event.
    SweepReport(Box<KillReport>),
    /// A backup finished on its own thread: journaled and shown here.
    Backup(Box<BackupOutcome>),
    /// A start-up read failed (candles, tickers, a book): shown, never silent; the streams
    /// fill the gap as they run.
    LoadFailed {
        what: String,
        error: String,
    },
    /// The user-data stream could not even be started.
    UserStreamFailed(String),
    /// The protective OCO of a position being closed was cancelled (or not), with the
    /// exchange's open orders and balances for the close.
    CloseReady {
        symbol: Symbol,
        cancel: Box<OrderOutcome<OrderReport>>,
        open: Result<Vec<OrderReport>, String>,
        account: Box<Result<Account, String>>,
    },
    /// The exchange refused a protective OCO; the market and balances as they are now, for
    /// deciding whether its stop has already been hit.
    OcoRefused {
        legs: [ClientOrderId; 2],
        code: Option<i64>,
        message: String,
        book: Result<BookQuote, String>,
        account: Box<Result<Account, String>>,
    },
    /// The vault answered a re-arm's passphrase. `state_row`/`trading` are the trading state
    /// when the re-arm was asked: if either changed meanwhile (a kill), the re-arm is dropped.
    RearmChecked {
        verdict: Result<(), VaultError>,
        state_row: i64,
        trading: TradingState,
    },
    /// How an alert's delivery ended (sent, failed, dropped): journaled.
    AlertDelivered(Box<crate::alerts::Delivery>),
    /// The selected symbol's book snapshot, a chart's backfill, a history read.
    Focus(FocusAnswer),
    /// A re-arm's keys, fetched again from the secrets backend and installed in the client
    /// (`Ok`: where from), or why not. `state_row`/`trading` as for [`Answer::RearmChecked`].
    KeysFetched {
        verdict: Result<String, String>,
        state_row: i64,
        trading: TradingState,
    },
}

/// Work for the executor, in the order given. Each that has a result answers with an
/// [`Answer`].
#[derive(Debug)]
pub enum Effect {
    /// Measure the exchange's clock offset → [`Answer::Clock`].
    SyncClock,
    /// Read every symbol's rules, after `delay` (a retry) → [`Answer::Info`].
    LoadRules { delay: Duration },
    /// A symbol's recent 1-minute candles → [`Answer::Klines`].
    LoadCandles(Symbol),
    /// A symbol's book → [`Answer::Book`].
    LoadBook(Symbol),
    /// 24-hour tickers → [`Answer::Tickers`].
    LoadTickers(Vec<Symbol>),
    /// Compare the journal with the exchange → [`Answer::Resynced`].
    Resync(ResyncRequest),
    /// Wake the engine after the delay to try a failed resync again → [`Answer::RetryResync`].
    RetryResyncAfter(Duration),
    /// Send an order (journaled as SENDING already) → [`Answer::Placed`].
    Place {
        request: RiskApproved<OrderRequest>,
        draft: Option<TicketDraft>,
    },
    /// Send a protective OCO (both legs journaled already) → [`Answer::OcoPlaced`].
    PlaceOco(RiskApproved<OcoRequest>),
    /// Cancel one order → [`Answer::Cancelled`].
    Cancel { symbol: Symbol, cid: ClientOrderId },
    /// Cancel a position's protective OCO through one leg, then read its open orders and the
    /// balances → [`Answer::CloseReady`].
    PrepareClose { symbol: Symbol, leg: ClientOrderId },
    /// Read the book and the balances after a refused OCO → [`Answer::OcoRefused`].
    ReadAfterOcoRefusal {
        symbol: Symbol,
        legs: [ClientOrderId; 2],
        code: Option<i64>,
        message: String,
    },
    /// Settle an order whose outcome is unknown by its client id, after `delay`, with its
    /// fills when it executed → [`Answer::Resolved`]. Never a resend.
    Resolve {
        symbol: Symbol,
        cid: ClientOrderId,
        delay: Duration,
    },
    /// Start the kill switch's cancel sweep (HALTED is journaled already) →
    /// [`Answer::SweepStarted`], then [`Answer::Kill`] as it goes.
    Sweep(Halted),
    /// Copy the journal off the loop → [`Answer::Backup`].
    Backup {
        journal: crate::journal::Location,
        mode: Mode,
        dest: PathBuf,
        reason: backup::Reason,
        started_ms: i64,
    },
    /// Check a re-arm's passphrase against the vault (slow on purpose) → [`Answer::RearmChecked`].
    CheckPassphrase {
        vault: PathBuf,
        passphrase: SecretString,
        state_row: i64,
        trading: TradingState,
    },
    /// Fetch the keys again from the secrets backend (`SECRETS_BACKEND=aws`/`hashicorp`) and
    /// install them in the client, for a re-arm → [`Answer::KeysFetched`].
    FetchKeys { state_row: i64, trading: TradingState },
    /// The symbols the market stream follows.
    SetWatchlist(Vec<Symbol>),
    /// The selected symbol's detail: what the stream follows for it, its book snapshot, its
    /// chart's backfill, the history read → [`Answer::Focus`].
    Focus(FocusEffect),
    /// Hand an alert to the webhook's delivery task (never waited for) →
    /// [`Answer::AlertDelivered`] when its delivery ends.
    Alert(crate::alerts::Alert),
    /// Finish `crbot health`'s report with the exchange client's gauges and the journal's
    /// check (a connection of its own, off the loop) → the reply to `request`.
    Health {
        request: RequestId,
        parts: Box<crate::engine::reports::HealthParts>,
        /// Where the journal is (a file or PostgreSQL), to check it on a connection of its own.
        journal: crate::journal::Location,
    },
    /// Export the journal as CSV files into `dir` (a connection of its own, off the loop) →
    /// the reply to `request`.
    Export {
        request: RequestId,
        journal: crate::journal::Location,
        mode: Mode,
        dir: PathBuf,
    },
    /// `crbot ping` over the engine's client → the reply to `request`.
    Ping { request: RequestId, mode: Mode },
    /// The answer to a command that carried a request id (`Command::Order`,
    /// `Command::Trades`): the executor
    /// hands it to whoever waits for it. Never an action on the exchange.
    Reply { request: RequestId, reply: Reply },
}

/// The console's engine: the journal-backed core plus the state of each workflow.
pub struct Engine {
    core: Core,
    sync: sync::SyncState,
    protection: protection::Closes,
    /// Protective lists crbot is ending itself; the lost ones are in the state.
    lost: lost::LostWatch,
    halts: halts::HaltState,
    schedule: schedule::Schedule,
    /// What has been alerted; `None` while alerts are off.
    alerts: Option<alerts::AlertWatch>,
    /// Client orders waiting for their placement's answer, by client order id.
    awaiting: tickets::Awaiting,
    /// Requesters of a kill's whole outcome (`Command::KillReport`).
    kill_waiters: Vec<kill_reply::KillWaiter>,
    /// The selected symbol's book, tape and chart; the history read.
    focus: focus::FocusState,
    /// Effects of the input being handled, in order.
    out: Vec<Effect>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("mode", &self.core.state.mode)
            .field("reconciled", &self.sync.reconciled)
            .finish()
    }
}

impl Engine {
    /// An engine over a restored core, at `now`. `auto_flatten`: an automatic breach halts
    /// and flattens (`AUTO_HALT_ACTION=halt_flatten`) instead of reducing. `vault`: the file a
    /// re-arm's passphrase is checked against, in a mode with keys from a vault.
    pub fn new(core: Core, auto_flatten: bool, vault: Option<PathBuf>, now: i64) -> Engine {
        let state_row = core.journal.latest_trading_state_id().unwrap_or(0);
        Engine {
            core,
            sync: sync::SyncState::new(state_row),
            protection: protection::Closes::default(),
            lost: lost::LostWatch::default(),
            halts: halts::HaltState::new(auto_flatten, vault),
            schedule: schedule::Schedule::new(now),
            alerts: None,
            awaiting: tickets::Awaiting::default(),
            kill_waiters: Vec::new(),
            focus: focus::FocusState::new(),
            out: Vec::new(),
        }
    }

    /// Handles one input at `now` (epoch ms) and returns what to do, in order.
    pub fn update(&mut self, input: Input, now: i64) -> Vec<Effect> {
        if focus::touches_history(&input) {
            self.mark_history_dirty();
        }
        match input {
            Input::Started => self.start(now),
            Input::Command(c) => self.on_command(c, now),
            Input::Market(ev) => self.on_market(ev, now),
            Input::User(ev) => {
                self.on_user(ev, now);
                self.reprotect_finished_closes(now);
            }
            Input::Tick(facts) => self.on_tick(facts, now),
            Input::TradingStateNotice => self.check_shared_state(now),
            Input::Answer(a) => {
                self.on_answer(a, now);
                self.reprotect_finished_closes(now);
            }
        }
        self.watch_lost_protection(now);
        self.check_price_alerts(now);
        self.follow_focus(now);
        self.decide_alerts(now);
        std::mem::take(&mut self.out)
    }

    /// What the screen shows now.
    pub fn snapshot(&self, now: i64) -> Snapshot {
        let mut snap = self.core.state.snapshot(now);
        snap.rearm_needs_passphrase = self.rearm_needs_passphrase();
        self.fill_focus(&mut snap, now);
        snap
    }

    /// The journal-backed core (read-only: every change goes through `update`).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Start-up reconciliation is done: tickets are accepted.
    pub fn reconciled(&self) -> bool {
        self.sync.reconciled
    }

    fn emit(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    fn on_command(&mut self, cmd: Command, now: i64) {
        use crate::journal::KillTrigger;
        match cmd {
            Command::Kill => {
                self.kill(KillTrigger::Key, "kill switch pressed", now);
            }
            Command::KillFrom(KillSource::Shell) => {
                self.kill(KillTrigger::Cli, "kill switch from the command line", now);
            }
            Command::KillFrom(KillSource::Api) => {
                self.kill(KillTrigger::Api, "kill switch from the control API", now);
            }
            Command::Flatten { percent } => self.flatten(percent, now),
            Command::Rearm { passphrase } => self.request_rearm(passphrase, now),
            Command::PreviewTicket(draft) => self.preview(draft, now),
            Command::SubmitTicket(draft) => self.submit(draft, now),
            Command::CancelOrder(cid) => self.cancel(&cid, now),
            Command::ClosePosition { symbol, percent } => self.close_position(symbol, percent, now),
            Command::AddSymbol(s) => self.add_symbol(s, now),
            Command::RemoveSymbol(s) => self.remove_symbol(&s, now),
            Command::SetPriceAlert {
                symbol,
                crossing,
                price,
            } => self.set_price_alert(symbol, crossing, price, now),
            Command::ClearPriceAlerts(symbol) => self.clear_price_alerts(symbol, now),
            Command::Reprotect {
                symbol,
                stop_loss,
                take_profit,
            } => self.reprotect(symbol, stop_loss, take_profit, now),
            Command::SelectSymbol(s) => self.core.state.selected = Some(s),
            Command::SetChartInterval(i) => self.set_chart_interval(i),
            Command::ProposeLimit { name, value } => self.propose_limit(name, value, now),
            Command::ConfirmLimit { typed } => self.confirm_limit(&typed, now),
            Command::CancelLimitChange => self.core.state.pending_limit = None,
            // The executor stops on Quit; nothing to decide here.
            Command::Quit => {}
            Command::Order {
                request,
                ticket,
                dry_run,
            } => self.client_order(request, ticket, dry_run, now),
            Command::Trades { request, since_ms } => self.trades(request, since_ms),
            Command::Backup { request, dest } => self.backup_for(request, dest, now),
            Command::Report { request, kind } => self.report(request, kind, now),
            Command::Export { request, dir } => self.emit(Effect::Export {
                request,
                journal: self.core.journal.location().clone(),
                mode: self.core.state.mode,
                dir,
            }),
            Command::KillReport {
                request,
                source,
                flatten,
            } => {
                let (trigger, reason) = match source {
                    KillSource::Shell => (KillTrigger::Cli, "kill switch from the command line"),
                    KillSource::Api => (KillTrigger::Api, "kill switch from the control API"),
                };
                let recorded = self.kill(trigger, reason, now);
                self.wait_for_kill(request, flatten, recorded);
            }
        }
    }

    /// A read command's report: built here from the state, or (health, ping) finished by the
    /// executor with what only it has. Nothing before the start-up reconciliation.
    fn report(&mut self, request: RequestId, kind: crate::engine::snapshot::ReportKind, now: i64) {
        use crate::engine::reports;
        use crate::engine::snapshot::ReportKind;
        if kind == ReportKind::Ping {
            let mode = self.core.state.mode;
            return self.emit(Effect::Ping { request, mode });
        }
        if !self.sync.reconciled {
            return self.emit(Effect::Reply {
                request,
                reply: Reply::NotReady,
            });
        }
        match reports::build(kind, &self.core.state, &[], now) {
            Some(report) => self.emit(Effect::Reply {
                request,
                reply: Reply::Report(Box::new(report)),
            }),
            None => {
                let mut parts = reports::health_parts(&self.core.state, now);
                parts.journal_path = self.core.journal.path().to_path_buf();
                self.emit(Effect::Health {
                    request,
                    parts: Box::new(parts),
                    journal: self.core.journal.location().clone(),
                });
            }
        }
    }

    fn on_answer(&mut self, answer: Answer, now: i64) {
        match answer {
            Answer::Placed { cid, draft, outcome } => {
                let placement = Placement::of(&outcome);
                self.kill_sell_answered(&cid, &outcome);
                self.on_placed(cid.clone(), draft, *outcome, now);
                self.reply_placed(&cid, placement);
            }
            Answer::OcoPlaced { legs, outcome } => self.on_oco_placed(legs, *outcome, now),
            Answer::Cancelled { cid, outcome } => self.on_cancelled(cid, *outcome, now),
            Answer::CloseReady {
                symbol,
                cancel,
                open,
                account,
            } => self.on_close_ready(symbol, *cancel, open, *account, now),
            Answer::OcoRefused {
                legs,
                code,
                message,
                book,
                account,
            } => self.on_oco_refused(legs, code, message, book, *account, now),
            Answer::SweepStarted { reason } => self.on_sweep_started(reason, now),
            Answer::Kill(ev) => {
                self.kill_progress_for_waiters(&ev);
                self.on_kill_event(ev, now);
            }
            Answer::SweepReport(report) => self.on_sweep_report(*report),
            Answer::RearmChecked {
                verdict,
                state_row,
                trading,
            } => self.on_rearm_checked(verdict, state_row, trading, now),
            Answer::KeysFetched {
                verdict,
                state_row,
                trading,
            } => self.on_keys_fetched(verdict, state_row, trading, now),
            Answer::Backup(outcome) => {
                self.reply_backup(&outcome);
                self.kill_backup_for_waiters(&outcome);
                self.on_backup(*outcome, now);
            }
            Answer::AlertDelivered(d) => self.on_alert_delivered(*d, now),
            Answer::Focus(a) => self.on_focus_answer(a, now),
            other => self.on_sync_answer(other, now),
        }
    }
}
