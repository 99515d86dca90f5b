//! The console's executor: runs the engine's effects and feeds their results back.
//!
//! Owns: the order in which things reach the engine — commands from the screen first (the kill
//! switch above everything), then answers of effects, then user-data events, then the 250 ms
//! tick and the snapshot's publishing when due, then market events (from the market queue,
//! where a newer quote replaces one still waiting) — the wall clock (each input is given the time it is handled at), the
//! exchange client, the streams, and the snapshot publisher. Every effect that waits on the
//! network, a disk copy or the vault's key derivation runs on a task of its own and answers on a
//! channel, so nothing slow ever stands between a key press and the engine.
//! Must not: decide anything. What to do is `engine::machine::Engine::update`'s alone.

use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::alerts::{AlertQueue, Retry, Webhook};
use crate::domain::{ClientOrderId, Fill, Mode, Symbol};
use crate::engine::backup;
use crate::engine::core::Core;
use crate::engine::machine::{
    Answer, Effect, Engine, FocusAnswer, FocusEffect, Input, Reply, TickFacts, candle,
};
use crate::engine::snapshot::{Command, RateLimitUsage, RequestId, Snapshot};
use crate::engine::state::TickerLine;
use crate::exchange::binance::events::UserEvent;
use crate::exchange::binance::market::{MarketStreamConfig, MarketStreamHandle, spawn_market_stream};
use crate::exchange::binance::market_queue;
use crate::exchange::binance::reconcile::{Resolution, ResolveConfig, resolve_unknown, resync};
use crate::exchange::binance::rest::BinanceRest;
use crate::exchange::binance::user::{UserStreamConfig, spawn_user_stream};
use crate::risk::Broker;

/// The loop's tick: stale marks, equity, automatic halts, the journal poll for `crbot kill`.
const TICK: Duration = Duration::from_millis(250);
/// At most one snapshot per frame (~29 fps); bursts of market data coalesce. Just longer than
/// the screen's shortest frame interval (`ui::FRAME_INTERVAL`, 33 ms from a draw's start), so
/// the screen draws each snapshot as it arrives instead of waiting for its next frame.
const PUBLISH_EVERY: Duration = Duration::from_millis(34);
/// Market events that keep their order (trades, diffs, closed candles, statuses) the queue
/// holds before the stream task waits; quotes are conflated beside them.
const MARKET_QUEUE: usize = 4096;

/// The wall clock, read here only: the engine is given the time of each input.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs the console's engine until `cancel` fires or the screen's command channel closes.
#[derive(Debug)]
pub struct Runtime;

/// What runs effects: the exchange client, the market stream's handle and the answers' channel.
struct Executor {
    rest: BinanceRest,
    answers: mpsc::UnboundedSender<Answer>,
    market: Option<MarketStreamHandle>,
    /// Where alerts go for delivery; `None` without a webhook.
    alerts: Option<AlertQueue>,
    replies: Replies,
    /// Where a re-arm fetches the keys again (`SECRETS_BACKEND=aws`/`hashicorp`).
    secrets: Option<crate::secrets::SecretsSettings>,
    /// Where the keys came from, for `health`'s report.
    keys_from: Option<String>,
    /// The PostgreSQL lease this engine leads under: no order leaves once it is not valid.
    lease: Option<crate::journal::lease::LeaseGuard>,
    /// The history's read-only journal connection, opened at the first read and kept (a
    /// PostgreSQL connection per read, up to one a second, would cost a login each); dropped
    /// after a failed read, to be opened again at the next.
    history_reader: std::sync::Arc<std::sync::Mutex<Option<crate::journal::Journal>>>,
}

/// Who waits for the answer of a command that carries a request id (`Command::Order`): the
/// runtime's `RequestId → oneshot::Sender` map, shared with the clients that send such
/// commands (the control API). A waiter that went away is dropped silently: the engine's
/// decision stands, journaled, whoever listens.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    inner: Arc<Mutex<ReplyMap>>,
}

#[derive(Debug, Default)]
struct ReplyMap {
    next: RequestId,
    waiting: HashMap<RequestId, oneshot::Sender<Reply>>,
}

impl Replies {
    /// A fresh request id and where its answer will arrive.
    pub fn register(&self) -> (RequestId, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.next += 1;
        let id = map.next;
        map.waiting.insert(id, tx);
        (id, rx)
    }

    /// Forgets a request whose command could not be sent.
    pub fn forget(&self, request: RequestId) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.waiting.remove(&request);
    }

    fn answer(&self, request: RequestId, reply: Reply) {
        let waiter = {
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            map.waiting.remove(&request)
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => tracing::warn!(request, "an engine reply nobody waits for"),
        }
    }
}

/// The services an engine may run with beside its channels: the webhook's alerts, and the
/// waiters for the answers of client commands.
#[derive(Debug, Default)]
pub struct Services {
    pub alerts: Option<AlertService>,
    pub replies: Replies,
    /// The secrets backend the keys came from, when a service: a re-arm fetches them again.
    pub secrets: Option<crate::secrets::SecretsSettings>,
    /// Where the keys came from, as `health` says it (never a key).
    pub keys_from: Option<String>,
    /// The engine's lease on a PostgreSQL journal (leadership): checked just before each new
    /// order or OCO leaves; cancels always go.
    pub lease: Option<crate::journal::lease::LeaseGuard>,
}

impl Runtime {
    /// Runs until `cancel` fires or the screen's command channel closes. `vault` is the vault
    /// file a re-arm's passphrase is checked against (modes with keys unlocked from a vault).
    pub async fn run(
        core: Core,
        rest: BinanceRest,
        commands: mpsc::Receiver<Command>,
        snapshots: watch::Sender<Snapshot>,
        cancel: CancellationToken,
        auto_flatten: bool,
        vault: Option<std::path::PathBuf>,
    ) {
        let channels = (commands, snapshots, cancel);
        Self::run_with(core, rest, channels, auto_flatten, vault, Services::default()).await;
    }

    /// [`Runtime::run`] with `services`: alerts to their webhook when given, and the answers of
    /// commands that carry a request id to their waiters.
    pub async fn run_with(
        core: Core,
        rest: BinanceRest,
        (mut commands, snapshots, cancel): (
            mpsc::Receiver<Command>,
            watch::Sender<Snapshot>,
            CancellationToken,
        ),
        auto_flatten: bool,
        vault: Option<std::path::PathBuf>,
        Services {
            alerts,
            replies,
            secrets,
            keys_from,
            lease,
        }: Services,
    ) {
        let watchlist = core.state.watchlist.clone();
        let mode = core.state.mode;
        let (listener, mut notices) = listen_for_state_changes(&core);
        let mut engine = Engine::new(core, auto_flatten, vault, now_ms());
        if secrets.is_some() {
            engine.refetch_keys_on_rearm();
        }
        let (answers, mut answer_rx) = mpsc::unbounded_channel();
        let alerts_stop = cancel.child_token();
        let (queue, delivery) = match alerts {
            Some(service) => {
                engine.watch_alerts(now_ms());
                let (queue, task) = service.spawn(mode, alerts_stop.clone(), answers.clone());
                (Some(queue), Some(task))
            }
            None => (None, None),
        };
        let mut exec = Executor {
            rest,
            answers,
            market: None,
            alerts: queue,
            replies,
            secrets,
            keys_from,
            lease,
            history_reader: Default::default(),
        };
        // Quotes, tickers and forming candles are conflated per symbol in this queue, so under a
        // burst a quote never waits behind thousands of older ones; trades, diffs and closed
        // candles keep their order within the 4 096 places (`market_queue`'s doc).
        let (market_tx, mut market_rx) = market_queue::channel(MARKET_QUEUE);
        let (user_tx, mut user_rx) = mpsc::channel::<UserEvent>(1024);
        let (handle, _market_task) = spawn_market_stream(
            exec.rest.endpoints().clone(),
            exec.rest.clock().clone(),
            watchlist,
            market_tx,
            cancel.child_token(),
            MarketStreamConfig::default(),
        );
        exec.market = Some(handle);
        if let Err(e) = spawn_user_stream(
            exec.rest.clone(),
            user_tx,
            cancel.child_token(),
            UserStreamConfig::default(),
        ) {
            exec.step(
                &mut engine,
                Input::Answer(Answer::UserStreamFailed(e.to_string())),
            );
        }
        exec.step(&mut engine, Input::Started);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut dirty = true;
        loop {
            let input = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Quit) | None => break,
                    Some(c) => Input::Command(c),
                },
                // A halt from another process, heard as it commits: before anything else
                // queued, with the tick's poll as the fallback.
                Some(()) = notices.recv() => {
                    while notices.try_recv().is_ok() {}
                    Input::TradingStateNotice
                }
                Some(a) = answer_rx.recv() => Input::Answer(a),
                Some(ev) = user_rx.recv() => Input::User(ev),
                // The tick and the publisher come before market data: both are due a few times
                // a second at most, and a burst that never lets the market queue run dry must
                // not hold back the automatic halts, nor leave the screen on an old snapshot.
                _ = tick.tick() => Input::Tick(exec.tick_facts()),
                _ = publish.tick(), if dirty => {
                    dirty = false;
                    let _ = snapshots.send(engine.snapshot(now_ms()));
                    continue;
                }
                Some(ev) = market_rx.recv() => Input::Market(ev),
            };
            exec.step(&mut engine, input);
            dirty = true;
        }
        if let Some(task) = delivery {
            alerts_stop.cancel();
            flush_alerts(task, &mut answer_rx, &mut exec, &mut engine).await;
        }
        if let Some(listener) = listener {
            // Dropping it joins the listener's thread: a blocking wait, kept off this loop's.
            let _ = tokio::task::spawn_blocking(move || drop(listener)).await;
        }
        tracing::info!("console closed; open orders stay on the exchange");
    }
}

/// On a PostgreSQL journal, a dedicated connection listening for trading-state changes (a
/// `crbot kill` from another shell or host), each a wake-up on the returned channel; nothing
/// on SQLite, or when it cannot start (said in the log: the tick's poll still sees them).
fn listen_for_state_changes(
    core: &Core,
) -> (
    Option<crate::journal::notify::Listener>,
    mpsc::UnboundedReceiver<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let location = core.journal.location();
    let listener = crate::journal::notify::listen(location, core.state.mode, move |_| {
        let _ = tx.send(());
    })
    .unwrap_or_else(|e| {
        tracing::warn!("trading-state changes will be polled only: {e}");
        None
    });
    (listener, rx)
}

/// A clean stop: the alerts still queued get [`crate::alerts::FLUSH_WAIT`] to be delivered;
/// their outcomes are journaled, and how many were not delivered is said on stderr and in the
/// log.
async fn flush_alerts(
    task: tokio::task::JoinHandle<usize>,
    answers: &mut mpsc::UnboundedReceiver<Answer>,
    exec: &mut Executor,
    engine: &mut Engine,
) {
    let wait = crate::alerts::FLUSH_WAIT + Duration::from_secs(1);
    let left = match tokio::time::timeout(wait, task).await {
        Ok(Ok(left)) => left,
        _ => exec.alerts.as_ref().map_or(0, AlertQueue::len).max(1),
    };
    while let Ok(answer) = answers.try_recv() {
        if let a @ Answer::AlertDelivered(_) = answer {
            exec.step(engine, Input::Answer(a));
        }
    }
    if left > 0 {
        let line = format!(
            "{} not delivered to the webhook within {} s of stopping",
            crate::domain::plural::count(left, "alert", "alerts"),
            crate::alerts::FLUSH_WAIT.as_secs()
        );
        tracing::warn!("{line}");
        eprintln!("crbot: {line}");
    }
}

impl Executor {
    /// One input through the engine, then its effects, in order.
    fn step(&mut self, engine: &mut Engine, input: Input) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for effect in engine.update(input, now_ms()) {
                if let Some(next) = self.run(effect) {
                    queue.push_back(next);
                }
            }
        }
    }

    /// The selected symbol's detail and the history read: answered as [`Answer::Focus`].
    fn run_focus_effect(&mut self, effect: FocusEffect) {
        let rest = self.rest.clone();
        match effect {
            FocusEffect::Follow(focus) => {
                if let Some(m) = &self.market {
                    m.set_focus(focus.map(|(s, i)| (s, i.wire().to_string())));
                }
            }
            FocusEffect::LoadDepth { symbol, delay } => self.spawn(async move {
                tokio::time::sleep(delay).await;
                let depth = rest
                    .depth_when_allowed(&symbol, 1000)
                    .await
                    .map_err(|e| e.to_string());
                Answer::Focus(FocusAnswer::Depth { symbol, depth })
            }),
            FocusEffect::LoadChart { symbol, interval } => self.spawn(async move {
                let candles = rest
                    .klines(&symbol, interval.wire(), 500)
                    .await
                    .map(|rows| rows.iter().map(candle).collect())
                    .map_err(|e| e.to_string());
                Answer::Focus(FocusAnswer::Chart {
                    symbol,
                    interval,
                    candles,
                })
            }),
            FocusEffect::LoadHistory { journal, mode, rows } => {
                let reader = self.history_reader.clone();
                self.spawn(async move {
                    let read =
                        tokio::task::spawn_blocking(move || read_history(&reader, &journal, mode, rows))
                            .await
                            .unwrap_or_else(|e| Err(format!("history read stopped: {e}")));
                    Answer::Focus(FocusAnswer::History(read))
                })
            }
        }
    }

    /// The client's gauges at a tick.
    fn tick_facts(&self) -> TickFacts {
        let rate = self.rest.usage();
        TickFacts {
            rate: RateLimitUsage {
                weight_used: rate.weight_used,
                weight_limit: rate.weight_limit,
                orders_10s: rate.orders_10s,
                orders_10s_limit: rate.orders_10s_limit,
            },
            clock_offset_ms: self.rest.clock().offset_ms(),
        }
    }

    fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = Answer> + Send + 'static,
    {
        let tx = self.answers.clone();
        tokio::spawn(async move {
            let _ = tx.send(fut.await);
        });
    }

    /// Starts one effect. The kill sweep's start is answered at once (returned, for the same
    /// step); everything else answers through the channel when done.
    fn run(&mut self, effect: Effect) -> Option<Input> {
        let rest = self.rest.clone();
        match effect {
            Effect::Sweep(halted) => return Some(self.start_sweep(halted)),
            Effect::SyncClock => self.spawn(async move {
                Answer::Clock(
                    rest.sync_clock()
                        .await
                        .map(|s| s.offset_ms)
                        .map_err(|e| e.to_string()),
                )
            }),
            Effect::LoadRules { delay } => self.spawn(async move {
                tokio::time::sleep(delay).await;
                Answer::Info(
                    rest.exchange_info(&[])
                        .await
                        .map(|i| i.symbols)
                        .map_err(|e| e.to_string()),
                )
            }),
            Effect::LoadCandles(sym) => self.spawn(async move {
                match rest.klines(&sym, "1m", 500).await {
                    Ok(rows) => Answer::Klines(sym, rows.iter().map(candle).collect()),
                    Err(e) => load_failed(format!("{sym} candles"), e),
                }
            }),
            Effect::LoadBook(sym) => self.spawn(async move {
                match rest.book_quote(&sym).await {
                    Ok(b) => Answer::Book(sym, b),
                    Err(e) => load_failed(format!("{sym} book"), e),
                }
            }),
            Effect::LoadTickers(syms) => self.spawn(async move {
                match rest.ticker_24hr(&syms).await {
                    Ok(list) => Answer::Tickers(
                        list.into_iter()
                            .map(|t| {
                                let line = TickerLine {
                                    last: t.last,
                                    change_pct: Some(t.change_percent),
                                };
                                (t.symbol, line)
                            })
                            .collect(),
                    ),
                    Err(e) => load_failed("24 h tickers".to_string(), e),
                }
            }),
            Effect::Resync(req) => self.spawn(async move {
                Answer::Resynced(Box::new(resync(&rest, &req).await.map_err(|e| e.to_string())))
            }),
            Effect::RetryResyncAfter(delay) => self.spawn(async move {
                tokio::time::sleep(delay).await;
                Answer::RetryResync
            }),
            other => self.run_order_effect(other),
        }
        None
    }

    /// The effects that act on orders, and the slow local ones (backup, vault).
    fn run_order_effect(&mut self, effect: Effect) {
        let rest = self.rest.clone();
        let lease = self.lease.clone();
        let leading = move || lease.as_ref().is_none_or(|l| l.valid());
        match effect {
            Effect::Place { request, draft } if !leading() => {
                let cid = request.client_order_id.clone();
                let outcome = Box::new(crate::domain::broker::OrderOutcome::Rejected(lease_lost()));
                self.spawn(async move { Answer::Placed { cid, draft, outcome } });
            }
            Effect::PlaceOco(oco) if !leading() => {
                let legs = [
                    oco.take_profit_client_order_id.clone(),
                    oco.stop_loss_client_order_id.clone(),
                ];
                let outcome = Box::new(crate::domain::broker::OrderOutcome::Rejected(lease_lost()));
                self.spawn(async move { Answer::OcoPlaced { legs, outcome } });
            }
            Effect::Place { request, draft } => self.spawn(async move {
                let cid = request.client_order_id.clone();
                // Through the broker, which takes nothing the risk gate did not approve.
                let outcome = Box::new(rest.place_order(&request).await);
                Answer::Placed { cid, draft, outcome }
            }),
            Effect::PlaceOco(oco) => self.spawn(async move {
                let legs = [
                    oco.take_profit_client_order_id.clone(),
                    oco.stop_loss_client_order_id.clone(),
                ];
                let outcome = Box::new(rest.place_oco(&oco).await);
                Answer::OcoPlaced { legs, outcome }
            }),
            Effect::Cancel { symbol, cid } => self.spawn(async move {
                let outcome = Box::new(rest.cancel_order(&symbol, cid.as_str()).await);
                Answer::Cancelled { cid, outcome }
            }),
            Effect::PrepareClose { symbol, leg } => self.spawn(async move {
                let cancel = Box::new(rest.cancel_order(&symbol, leg.as_str()).await);
                let open = rest.open_orders(Some(&symbol)).await.map_err(|e| e.to_string());
                let account = Box::new(rest.account().await.map_err(|e| e.to_string()));
                Answer::CloseReady {
                    symbol,
                    cancel,
                    open,
                    account,
                }
            }),
            Effect::ReadAfterOcoRefusal {
                symbol,
                legs,
                code,
                message,
            } => self.spawn(async move {
                let book = rest.book_quote(&symbol).await.map_err(|e| e.to_string());
                let account = Box::new(rest.account().await.map_err(|e| e.to_string()));
                Answer::OcoRefused {
                    legs,
                    code,
                    message,
                    book,
                    account,
                }
            }),
            Effect::Resolve { symbol, cid, delay } => self.spawn(async move {
                tokio::time::sleep(delay).await;
                let (resolution, fills) = resolve_with_fills(&rest, &symbol, &cid).await;
                Answer::Resolved {
                    cid,
                    resolution,
                    fills,
                }
            }),
            Effect::Backup {
                journal,
                mode,
                dest,
                reason,
                started_ms,
            } => self.spawn(async move {
                Answer::Backup(Box::new(
                    backup::spawn(journal, mode, dest, reason, started_ms).await,
                ))
            }),
            Effect::CheckPassphrase {
                vault,
                passphrase,
                state_row,
                trading,
            } => {
                let tx = self.answers.clone();
                tokio::task::spawn_blocking(move || {
                    let mut source = crate::vault::ScriptedSource::new([passphrase]);
                    let verdict = crate::vault::unlock_contents(&vault, &mut source, &|_| {}, 1).map(|_| ());
                    let _ = tx.send(Answer::RearmChecked {
                        verdict,
                        state_row,
                        trading,
                    });
                });
            }
            Effect::FetchKeys { state_row, trading } => {
                let (settings, rest) = (self.secrets.clone(), self.rest.clone());
                self.spawn(async move {
                    let verdict = match settings {
                        Some(s) => crate::secrets::fetch(&s)
                            .await
                            .map(|keys| {
                                rest.replace_credentials(crate::engine::session::credentials_from(keys));
                                s.describe()
                            })
                            .map_err(|e| e.to_string()),
                        None => Err("no secrets backend to fetch the keys from".to_string()),
                    };
                    Answer::KeysFetched {
                        verdict,
                        state_row,
                        trading,
                    }
                })
            }
            Effect::Alert(alert) => {
                if let Some(q) = &self.alerts {
                    q.push(alert);
                }
            }
            Effect::SetWatchlist(list) => {
                if let Some(m) = &self.market {
                    m.set_watchlist(list);
                }
            }
            Effect::Focus(effect) => self.run_focus_effect(effect),
            other @ (Effect::Reply { .. }
            | Effect::Health { .. }
            | Effect::Export { .. }
            | Effect::Ping { .. }) => {
                self.run_reply_effect(other);
            }
            // Started by `run` before it gets here.
            Effect::Sweep(_)
            | Effect::SyncClock
            | Effect::LoadRules { .. }
            | Effect::LoadCandles(_)
            | Effect::LoadBook(_)
            | Effect::LoadTickers(_)
            | Effect::Resync(_)
            | Effect::RetryResyncAfter(_) => {}
        }
    }

    /// The answers to a client's request: a reply as it is, or a report that needs the
    /// exchange or the journal first (health, ping, export), built off the loop.
    fn run_reply_effect(&mut self, effect: Effect) {
        let rest = self.rest.clone();
        match effect {
            Effect::Reply { request, reply } => self.replies.answer(request, reply),
            Effect::Health {
                request,
                mut parts,
                journal,
            } => {
                parts.keys_from = self.keys_from.clone();
                let replies = self.replies.clone();
                tokio::spawn(async move {
                    let mode = parts.mode;
                    let integrity = tokio::task::spawn_blocking(move || {
                        crate::journal::Journal::open_read_only_at(&journal, mode)
                            .and_then(|j| j.integrity_check())
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                    let url = rest.endpoints().rest.to_string();
                    let report = crate::engine::reports::health(&parts, &url, &rest.usage(), &integrity, &[]);
                    replies.answer(request, Reply::Report(Box::new(report)));
                });
            }
            Effect::Export {
                request,
                journal,
                mode,
                dir,
            } => {
                let replies = self.replies.clone();
                tokio::task::spawn_blocking(move || {
                    let written = std::fs::create_dir_all(&dir)
                        .map_err(|e| format!("{}: {e}", dir.display()))
                        .and_then(|()| {
                            crate::journal::Journal::open_for_reading_at(&journal, mode)
                                .and_then(|(j, _)| j.export_csv(&dir))
                                .map_err(|e| format!("export to {}: {e}", dir.display()))
                        });
                    replies.answer(request, Reply::Exported(written));
                });
            }
            Effect::Ping { request, mode } => {
                let replies = self.replies.clone();
                tokio::spawn(async move {
                    let report = crate::engine::reports::ping(mode, &rest).await;
                    replies.answer(request, Reply::Report(Box::new(report)));
                });
            }
            _ => {}
        }
    }

    /// The kill sweep on its own task, its progress forwarded to the engine as it comes.
    fn start_sweep(&mut self, halted: crate::engine::kill::Halted) -> Input {
        let reason = halted.reason().map(str::to_owned);
        let mut running = halted.sweep(None, &self.rest, now_ms());
        let tx = self.answers.clone();
        tokio::spawn(async move {
            while let Some(ev) = running.next().await {
                if tx.send(Answer::Kill(ev)).is_err() {
                    return;
                }
            }
            let report = running.report().await;
            let _ = tx.send(Answer::SweepReport(Box::new(report)));
        });
        Input::Answer(Answer::SweepStarted { reason })
    }
}

/// The webhook alerts go to, and the queue they wait in (shared with the control API, which
/// raises its own). The delivery task runs beside the engine loop and reports each outcome as
/// [`Answer::AlertDelivered`], for the engine to journal.
#[derive(Debug, Clone)]
pub struct AlertService {
    pub webhook: Webhook,
    pub queue: AlertQueue,
    pub retry: Retry,
}

impl AlertService {
    fn spawn(
        self,
        mode: Mode,
        cancel: CancellationToken,
        answers: mpsc::UnboundedSender<Answer>,
    ) -> (AlertQueue, tokio::task::JoinHandle<usize>) {
        let queue = self.queue.clone();
        let task = tokio::spawn(crate::alerts::deliver(
            self.queue,
            self.webhook,
            mode,
            self.retry,
            cancel,
            move |d| {
                let _ = answers.send(Answer::AlertDelivered(Box::new(d)));
            },
        ));
        (queue, task)
    }
}

fn load_failed(what: String, error: impl std::fmt::Display) -> Answer {
    Answer::LoadFailed {
        what,
        error: error.to_string(),
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

/// The newest fills and orders, on the kept read-only connection (opened when there is none,
/// or when it is of another journal); a failed read drops it. Blocking: run off the loop.
fn read_history(
    reader: &std::sync::Mutex<Option<crate::journal::Journal>>,
    journal: &crate::journal::Location,
    mode: Mode,
    rows: usize,
) -> Result<(Vec<Fill>, Vec<crate::domain::Order>), String> {
    // Only one history read runs at a time (the engine waits for its answer); a lock poisoned
    // by a read that panicked leaves no connection behind.
    let mut slot = reader.lock().unwrap_or_else(|poisoned| {
        let mut slot = poisoned.into_inner();
        *slot = None;
        slot
    });
    let j = match slot.take() {
        Some(j) if j.location() == journal && j.mode() == mode => j,
        _ => crate::journal::Journal::open_read_only_at(journal, mode).map_err(|e| e.to_string())?,
    };
    let read = j
        .recent_fills(rows)
        .and_then(|fills| Ok((fills, j.recent_orders(rows)?)))
        .map_err(|e| e.to_string());
    if read.is_ok() {
        *slot = Some(j);
    }
    read
}

/// Why an order was not sent by an engine that lost its lease: it never left.
fn lease_lost() -> crate::domain::broker::BrokerError {
    crate::domain::broker::BrokerError::Connect(format!("not sent: {}", crate::journal::lease::LOST_MESSAGE))
}
