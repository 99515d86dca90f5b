//! The market-stream task: one combined-stream connection for the
//! watchlist.
//!
//! Owns: the WebSocket connection, SUBSCRIBE/UNSUBSCRIBE as the watchlist and the selected
//! symbol (its book's diffs, trades and chart timeframe: [`focus_streams_for`]) change (batched,
//! at most 4 control messages a second against Binance's 5), pong for every ping, reconnect
//! with backoff and jitter (proactively before the 24 h limit and at once on
//! `serverShutdown`), per-symbol staleness, and counting malformed frames. Events go to the
//! engine on a `market_queue` (quotes, tickers and forming candles conflated there; trades,
//! diffs, closed candles and statuses wait for room, so none is lost). Must not: keep quotes
//! (the engine does), block the engine, or die on bad input.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::ops::ControlFlow;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::clock::{Clock, local_now_ms};
use super::endpoints::Endpoints;
use super::events::{
    MarketEvent, MarketFrame, StreamStatus, focus_streams_for, parse_market_frame, streams_for,
};
use super::market_queue::{MarketSender, QueueStats};
use super::ws_session::{self, End, Flow, Prepare, Session, SessionTimings, Ws};
use crate::domain::Symbol;

/// Tunables of the market stream.
#[derive(Debug, Clone)]
pub struct MarketStreamConfig {
    /// A symbol with no message for this long is reported stale.
    pub stale_after: Duration,
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// Reconnect before Binance's 24 h cut.
    pub max_connection_age: Duration,
    /// Minimum gap between our control messages (Binance allows 5 incoming messages/s).
    pub control_gap: Duration,
    /// How often a latency status is emitted.
    pub latency_every: Duration,
}

impl Default for MarketStreamConfig {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(5),
            reconnect_base: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(23 * 3600 + 30 * 60),
            control_gap: Duration::from_millis(250),
            latency_every: Duration::from_secs(5),
        }
    }
}

/// Tracks the last message time per symbol and reports transitions to and from stale.
#[derive(Debug, Clone, Default)]
pub struct StaleTracker {
    last_ms: HashMap<Symbol, i64>,
    stale: HashSet<Symbol>,
}

impl StaleTracker {
    /// A symbol starts its clock when it is watched (so a symbol that never speaks goes stale).
    pub fn watch(&mut self, symbol: &Symbol, now_ms: i64) {
        self.last_ms.entry(symbol.clone()).or_insert(now_ms);
    }

    pub fn unwatch(&mut self, symbol: &Symbol) {
        self.last_ms.remove(symbol);
        self.stale.remove(symbol);
    }

    /// A message arrived; `true` if the symbol was stale and is fresh again.
    pub fn seen(&mut self, symbol: &Symbol, now_ms: i64) -> bool {
        if let Some(t) = self.last_ms.get_mut(symbol) {
            *t = now_ms;
        }
        self.stale.remove(symbol)
    }

    /// Symbols that just went stale.
    pub fn newly_stale(&mut self, now_ms: i64, stale_after_ms: i64) -> Vec<Symbol> {
        let mut out: Vec<Symbol> = self
            .last_ms
            .iter()
            .filter(|(s, t)| now_ms - **t >= stale_after_ms && !self.stale.contains(*s))
            .map(|(s, _)| s.clone())
            .collect();
        out.sort();
        for s in &out {
            self.stale.insert(s.clone());
        }
        out
    }

    pub fn last_seen_ms(&self, symbol: &Symbol) -> Option<i64> {
        self.last_ms.get(symbol).copied()
    }

    pub fn is_stale(&self, symbol: &Symbol) -> bool {
        self.stale.contains(symbol)
    }
}

/// Control messages still to send after a watchlist change.
#[derive(Debug, Default)]
struct ControlQueue {
    subscribe: BTreeSet<String>,
    unsubscribe: BTreeSet<String>,
    next_id: i64,
}

impl ControlQueue {
    fn change(&mut self, active: &BTreeSet<String>, wanted: &BTreeSet<String>) {
        // `active` is the intended server state; a pending opposite message cancels out.
        for s in wanted.difference(active) {
            if !self.unsubscribe.remove(s) {
                self.subscribe.insert(s.clone());
            }
        }
        for s in active.difference(wanted) {
            if !self.subscribe.remove(s) {
                self.unsubscribe.insert(s.clone());
            }
        }
    }

    /// The next batched control message (unsubscribes first) and its streams, if any.
    fn next_message(&mut self) -> Option<(String, Vec<String>)> {
        let (method, set) = if !self.unsubscribe.is_empty() {
            ("UNSUBSCRIBE", &mut self.unsubscribe)
        } else if !self.subscribe.is_empty() {
            ("SUBSCRIBE", &mut self.subscribe)
        } else {
            return None;
        };
        // Keep a message well under the 1024-stream connection limit.
        let batch: Vec<String> = set.iter().take(200).cloned().collect();
        for s in &batch {
            set.remove(s);
        }
        self.next_id += 1;
        let msg = serde_json::json!({"method": method, "params": batch, "id": self.next_id}).to_string();
        Some((msg, batch))
    }
}

enum Command {
    SetWatchlist(Vec<Symbol>),
    /// The selected symbol and its chart's interval (`None`: no symbol selected).
    SetFocus(Option<(Symbol, String)>),
}

/// The owner's handle: change the watchlist, read counters.
#[derive(Debug, Clone)]
pub struct MarketStreamHandle {
    commands: mpsc::Sender<Command>,
    malformed: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    queue: QueueStats,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::SetWatchlist(s) => write!(f, "SetWatchlist({})", s.len()),
            Command::SetFocus(s) => write!(f, "SetFocus({s:?})"),
        }
    }
}

impl MarketStreamHandle {
    /// Replaces the watchlist; the task subscribes and unsubscribes the difference. Queued at
    /// once, in call order, like [`MarketStreamHandle::set_focus`]. False once the stream task
    /// is gone.
    pub fn set_watchlist(&self, symbols: Vec<Symbol>) -> bool {
        self.queue(Command::SetWatchlist(symbols))
    }

    /// Follows another selected symbol (or timeframe): only its book, trades and chart are
    /// subscribed, whatever the watchlist's length. False once the stream task is gone.
    pub fn set_focus(&self, focus: Option<(Symbol, String)>) -> bool {
        self.queue(Command::SetFocus(focus))
    }

    /// Queues a command at once, in the order of the calls (a send from a task of its own
    /// could overtake the one before and leave the stream on a list or symbol no longer
    /// wanted); only when the queue is full does a task wait to send it.
    fn queue(&self, command: Command) -> bool {
        match self.commands.try_send(command) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(command)) => {
                let commands = self.commands.clone();
                tokio::spawn(async move { commands.send(command).await });
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn malformed_count(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Connections opened after the first one.
    pub fn reconnect_count(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Quotes, tickers and forming candles that a newer one replaced in the market queue
    /// before the owner read them (nothing else is ever dropped).
    pub fn superseded_count(&self) -> u64 {
        self.queue.superseded_count()
    }
}

/// Starts the market-stream task. It runs until `cancel` fires or the event receiver is dropped.
pub fn spawn_market_stream(
    endpoints: Endpoints,
    clock: Clock,
    watchlist: Vec<Symbol>,
    events: MarketSender,
    cancel: CancellationToken,
    config: MarketStreamConfig,
) -> (MarketStreamHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(16);
    let handle = MarketStreamHandle {
        commands: tx,
        malformed: Arc::new(AtomicU64::new(0)),
        reconnects: Arc::new(AtomicU64::new(0)),
        queue: events.stats(),
    };
    let timings = SessionTimings {
        reconnect_base: config.reconnect_base,
        reconnect_max: config.reconnect_max,
        max_connection_age: config.max_connection_age,
        tick_every: config.control_gap,
    };
    let task = MarketTask {
        endpoints,
        clock,
        watchlist,
        focus: None,
        events,
        config,
        commands: rx,
        malformed: handle.malformed.clone(),
        reconnects: handle.reconnects.clone(),
        stale: StaleTracker::default(),
        connections: 0,
        conn: Connection::new(BTreeSet::new()),
    };
    let join = tokio::spawn(ws_session::run(task, cancel, timings));
    (handle, join)
}

struct MarketTask {
    endpoints: Endpoints,
    clock: Clock,
    watchlist: Vec<Symbol>,
    focus: Option<(Symbol, String)>,
    events: MarketSender,
    config: MarketStreamConfig,
    commands: mpsc::Receiver<Command>,
    malformed: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    stale: StaleTracker,
    /// Connections opened so far; every one after the first is a reconnect.
    connections: u64,
    conn: Connection,
}

/// What one connection knows; started afresh for every connection.
struct Connection {
    /// The streams the server has, or will have once the queued messages are sent.
    active: BTreeSet<String>,
    queue: ControlQueue,
    last_latency_emit: Instant,
    latency: Option<i64>,
}

impl Connection {
    fn new(active: BTreeSet<String>) -> Self {
        Self {
            active,
            queue: ControlQueue::default(),
            last_latency_emit: Instant::now(),
            latency: None,
        }
    }
}

fn wanted_streams(watchlist: &[Symbol]) -> BTreeSet<String> {
    watchlist.iter().flat_map(streams_for).collect()
}

/// The watchlist's streams and the selected symbol's.
fn wanted_with_focus(watchlist: &[Symbol], focus: &Option<(Symbol, String)>) -> BTreeSet<String> {
    let mut all = wanted_streams(watchlist);
    if let Some((symbol, interval)) = focus {
        all.extend(focus_streams_for(symbol, interval));
    }
    all
}

/// `Continue` while the owner listens, `Stop` once it is gone.
fn owner_alive(alive: bool) -> Flow {
    if alive {
        ControlFlow::Continue(())
    } else {
        ControlFlow::Break(End::Stop)
    }
}

impl MarketTask {
    /// Queues an event for the owner; `false` once the owner is gone. A quote, ticker or
    /// forming candle never waits (the queue keeps the newest per symbol). Trades, diffs,
    /// closed candles and statuses wait while the queue is full of them: losing a diff would
    /// cost the book a resync, so a stalled owner stalls this task instead, and the socket's
    /// unread frames wait in TCP (a ping is answered once the owner takes an event again;
    /// Binance allows a minute).
    async fn emit(&self, ev: MarketEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    fn stale_after_ms(&self) -> i64 {
        i64::try_from(self.config.stale_after.as_millis()).unwrap_or(i64::MAX)
    }

    async fn on_event(&mut self, ev: MarketEvent, now: i64, backoff: &mut Backoff) -> Flow {
        // A stable stream resets the reconnect backoff.
        backoff.reset();
        if let Some(e) = ev.event_ms() {
            self.conn.latency = Some(self.clock.server_time_at(now) - e);
        }
        if let Some(s) = ev.symbol().cloned()
            && self.stale.seen(&s, now)
            && !self
                .emit(MarketEvent::Status(StreamStatus::Fresh { symbol: s }))
                .await
        {
            return ControlFlow::Break(End::Stop);
        }
        owner_alive(self.emit(ev).await)
    }
}

impl Session for MarketTask {
    const NAME: &'static str = "market stream";
    type Command = Command;

    async fn prepare(&mut self, cancel: &CancellationToken) -> Prepare {
        if self.watchlist.is_empty() && self.focus.is_none() {
            // Nothing to watch: wait for a watchlist instead of holding an empty socket.
            return tokio::select! {
                _ = cancel.cancelled() => Prepare::Stop,
                cmd = self.commands.recv() => match cmd {
                    Some(Command::SetWatchlist(w)) => {
                        self.watchlist = w;
                        Prepare::Again
                    }
                    Some(Command::SetFocus(f)) => {
                        self.focus = f;
                        Prepare::Again
                    }
                    None => Prepare::Stop,
                },
            };
        }
        let streams = wanted_with_focus(&self.watchlist, &self.focus);
        let list: Vec<String> = streams.iter().cloned().collect();
        let url = self.endpoints.stream_url(&list);
        self.conn = Connection::new(streams);
        Prepare::Connect(url)
    }

    async fn on_connected(&mut self, _ws: &mut Ws) -> Flow {
        self.connections += 1;
        if self.connections > 1 {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let streams = self.conn.active.len();
        if !self
            .emit(MarketEvent::Status(StreamStatus::Connected { streams }))
            .await
        {
            return ControlFlow::Break(End::Stop);
        }
        self.conn.last_latency_emit = Instant::now();
        let now = local_now_ms();
        for s in &self.watchlist {
            self.stale.watch(s, now);
        }
        ControlFlow::Continue(())
    }

    async fn on_tick(&mut self, ws: &mut Ws) -> Flow {
        if let Some((msg, _)) = self.conn.queue.next_message() {
            ws_session::send_text(ws, msg).await?;
        }
        let now = local_now_ms();
        for s in self.stale.newly_stale(now, self.stale_after_ms()) {
            if !self
                .emit(MarketEvent::Status(StreamStatus::Stale { symbol: s }))
                .await
            {
                return ControlFlow::Break(End::Stop);
            }
        }
        if let Some(ms) = self.conn.latency
            && self.conn.last_latency_emit.elapsed() >= self.config.latency_every
        {
            self.conn.last_latency_emit = Instant::now();
            if !self.emit(MarketEvent::Status(StreamStatus::Latency { ms })).await {
                return ControlFlow::Break(End::Stop);
            }
        }
        ControlFlow::Continue(())
    }

    async fn next_command(&mut self) -> Option<Command> {
        self.commands.recv().await
    }

    async fn on_command(&mut self, command: Command) -> Flow {
        match command {
            Command::SetWatchlist(w) => {
                let now = local_now_ms();
                for s in &self.watchlist {
                    if !w.contains(s) {
                        self.stale.unwatch(s);
                    }
                }
                for s in &w {
                    self.stale.watch(s, now);
                }
                self.watchlist = w;
            }
            Command::SetFocus(f) => self.focus = f,
        }
        let wanted = wanted_with_focus(&self.watchlist, &self.focus);
        self.conn.queue.change(&self.conn.active, &wanted);
        self.conn.active = wanted;
        ControlFlow::Continue(())
    }

    async fn on_text(&mut self, ws: &mut Ws, backoff: &mut Backoff, text: &str) -> Flow {
        let now = local_now_ms();
        match parse_market_frame(text, now) {
            Ok(MarketFrame::Event(ev)) => self.on_event(ev, now, backoff).await,
            Ok(MarketFrame::Reply { id, error: Some(err) }) => {
                tracing::warn!(?id, %err, "market stream control message refused");
                ControlFlow::Continue(())
            }
            Ok(MarketFrame::Reply { .. }) | Ok(MarketFrame::Ignored) => ControlFlow::Continue(()),
            Ok(MarketFrame::ServerShutdown) => {
                if !self.emit(MarketEvent::Status(StreamStatus::ServerShutdown)).await {
                    return ControlFlow::Break(End::Stop);
                }
                let _ = ws.close(None).await;
                ControlFlow::Break(End::renew("serverShutdown"))
            }
            Err(e) => ws_session::skip_malformed(self, &e.to_string()).await,
        }
    }

    fn malformed_counter(&self) -> &AtomicU64 {
        &self.malformed
    }

    async fn report_malformed(&mut self, total: u64) -> bool {
        self.emit(MarketEvent::Status(StreamStatus::Malformed { total }))
            .await
    }

    async fn report_disconnected(&mut self, reason: String) -> bool {
        self.emit(MarketEvent::Status(StreamStatus::Disconnected { reason }))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Symbol {
        Symbol::new(n).expect("ok")
    }

    #[test]
    fn silent_symbols_go_stale_once_and_recover_on_the_next_message() {
        let mut t = StaleTracker::default();
        t.watch(&s("BTCUSDT"), 0);
        t.watch(&s("ETHUSDT"), 0);
        t.seen(&s("ETHUSDT"), 4000);
        assert_eq!(t.newly_stale(5000, 5000), vec![s("BTCUSDT")]);
        assert!(t.newly_stale(6000, 5000).is_empty(), "reported once");
        assert_eq!(t.newly_stale(9000, 5000), vec![s("ETHUSDT")]);
        assert!(t.seen(&s("BTCUSDT"), 9500));
        assert!(!t.is_stale(&s("BTCUSDT")));
        assert!(!t.seen(&s("BTCUSDT"), 9600), "already fresh");
        t.unwatch(&s("ETHUSDT"));
        assert_eq!(t.last_seen_ms(&s("ETHUSDT")), None);
    }

    #[test]
    fn watchlist_changes_batch_into_one_unsubscribe_then_one_subscribe() {
        let mut q = ControlQueue::default();
        let old = wanted_streams(&[s("BTCUSDT")]);
        let new = wanted_streams(&[s("ETHUSDT"), s("BNBUSDT")]);
        q.change(&old, &new);
        let (m1, b1) = q.next_message().expect("unsubscribe");
        assert!(m1.contains("\"UNSUBSCRIBE\""), "{m1}");
        assert_eq!(b1.len(), 3);
        let (m2, b2) = q.next_message().expect("subscribe");
        assert!(
            m2.contains("\"SUBSCRIBE\"") && m2.contains("ethusdt@bookTicker"),
            "{m2}"
        );
        assert_eq!(b2.len(), 6);
        assert!(q.next_message().is_none());
    }

    #[test]
    fn a_symbol_added_then_removed_before_sending_sends_nothing() {
        let mut q = ControlQueue::default();
        let none = BTreeSet::new();
        let one = wanted_streams(&[s("BTCUSDT")]);
        q.change(&none, &one);
        q.change(&one, &none);
        assert!(q.next_message().is_none());
        // Removed then re-added before the unsubscribe went out: the server still has it.
        q.change(&one, &none);
        q.change(&none, &one);
        assert!(q.next_message().is_none());
    }

    #[test]
    fn a_new_selection_moves_only_the_focus_streams() {
        let mut q = ControlQueue::default();
        let list = [s("BTCUSDT"), s("ETHUSDT")];
        let old = wanted_with_focus(&list, &Some((s("BTCUSDT"), "1m".into())));
        let new = wanted_with_focus(&list, &Some((s("ETHUSDT"), "5m".into())));
        q.change(&old, &new);
        let (_, gone) = q.next_message().expect("unsubscribe");
        assert_eq!(
            gone,
            vec!["btcusdt@aggTrade", "btcusdt@depth@100ms"],
            "the watchlist's own kline_1m stays"
        );
        let (_, added) = q.next_message().expect("subscribe");
        assert_eq!(
            added,
            vec!["ethusdt@aggTrade", "ethusdt@depth@100ms", "ethusdt@kline_5m"]
        );
        let books = new.iter().filter(|n| n.ends_with("@depth@100ms")).count();
        assert_eq!(books, 1, "one book, however long the watchlist");
    }

    #[test]
    fn selections_reach_the_stream_task_in_the_order_they_were_made() {
        let (tx, mut rx) = mpsc::channel(16);
        let handle = MarketStreamHandle {
            commands: tx,
            malformed: Arc::default(),
            reconnects: Arc::default(),
            queue: crate::exchange::binance::market_queue::channel(1).0.stats(),
        };
        let names = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"];
        for n in names {
            assert!(handle.set_focus(Some((Symbol::new(n).expect("ok"), "1m".into()))));
        }
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| match c {
                Command::SetFocus(Some((s, _))) => s.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(got, names, "queued at once, in order, without a task");
        drop(rx);
        assert!(!handle.set_focus(None), "the stream task is gone");
    }
}
