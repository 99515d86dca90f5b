//! A market burst: 50 000 stream messages a second for 10 s into the console's engine and
//! screen, in this process, with the kill key pressed in the middle of it.
//!
//! What runs: the local exchange (a market standing still) with 20 resting BUY limits on 5
//! symbols, its REST port behind the byte-level relay of `kill_latency` (which timestamps each
//! cancel-all); the console engine (`Runtime::run`, channels as `src/console.rs` wires them)
//! with REST and the user-data stream on that exchange, but its market stream pointed at a
//! stream server of this bench that speaks Binance's combined-stream protocol (subscriptions
//! answered) on a thread of its own; and the screen (`ui::run`, 160×48) drawing into a test
//! backend that records, at each frame's flush, when it was drawn and which quote it shows.
//!
//! The mix, per 100 messages: 64 `@bookTicker` over the six watched symbols, 20 `@aggTrade`,
//! 10 `@miniTicker`, 5 `@kline_1m` and 1 `@depth@100ms` diff of the selected symbol (BTCUSDT),
//! each diff continuing the last so that the local book stays live while none is lost. Every
//! BTCUSDT `@bookTicker` is a numbered marker: its bid is 50 000.00 + n × 0.01, a range no other
//! figure on the screen takes, so the frame's text says the newest marker it reflects.
//!
//! Measured over the burst:
//! - frames drawn per second (each 1 s window; budget ≤ 30);
//! - tick-to-screen: for every marker, from just before it is written to the socket until the
//!   first frame showing it or a later one (a later quote supersedes it), p50 / p99 (≤ 50 ms);
//! - where that time goes: marker → the first published snapshot showing it (the market queue,
//!   the engine, and the wait for the next publish), snapshot → the first frame showing it (the
//!   screen's wait for its next frame, and the frame's work), and the intervals between
//!   published snapshots and between frames;
//! - the kill key (Ctrl-K into the screen's input, halfway through) until the first
//!   `DELETE /api/v3/openOrders` reaches the exchange (≤ 10 ms), and until all five have.
//!
//! Run: `cargo bench --bench burst`. `BENCH_SMOKE=1` (or `cargo test --bench burst`): a 1 s
//! burst, same checks, figures not quotable. `BURST_FRAME_MS=n`: the screen's shortest time
//! between frames (default `ui::FRAME_INTERVAL`), to see how its phase against the engine's
//! publishing moves tick-to-screen; a diagnostic, not what the console runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/frames.rs"]
mod frames;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{StillMarket, ms, now_ms, percentile, rest_via, still_market};
use crbot::engine::runtime::Runtime;
use crbot::engine::snapshot::{BookStatus, KillStage, Snapshot};
use crbot::journal::TicketSource;
use crbot::ui::{self, UiConfig};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures_util::{SinkExt, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const RATE: f64 = 50_000.0;
const BURST: Duration = Duration::from_secs(10);
const SMOKE_BURST: Duration = Duration::from_secs(1);
/// Before the burst: the start-up traffic settles on a quiet stream (as in `kill_latency`).
const SETTLE: Duration = Duration::from_millis(2000);
/// The quiet stream's rate, before and after the burst.
const QUIET_RATE: f64 = 200.0;
const WIDTH: u16 = 160;
const HEIGHT: u16 = 48;
/// The markers' bids: 50 000.00 + n × 0.01, n below [`MARKER_SPAN`].
const MARKER_BASE: i64 = 50_000;
const MARKER_SPAN: u64 = 100_000;

fn marker_base() -> Decimal {
    Decimal::from(MARKER_BASE)
}

/// What the stream server shares with the bench.
#[derive(Default)]
struct Feed {
    /// When each marker was written (index: its number).
    markers: Mutex<Vec<Instant>>,
    burst: AtomicBool,
    stop: AtomicBool,
    /// Messages written during the burst.
    sent_in_burst: AtomicU64,
}

/// One connection's message sequence.
struct Mix {
    i: u64,
    /// The last diff's `u` (`None`: no diff yet on this connection).
    depth_id: Option<u64>,
}

impl Mix {
    /// The next frame; a marker's number is taken (and stamped `at`) in `feed`.
    fn next(&mut self, feed: &Feed, at: Instant) -> String {
        self.i += 1;
        let (i, k) = (self.i, self.i % 100);
        let now = now_ms();
        let sym = (k % 6) as usize;
        let name = frames::SYMBOLS[sym];
        let base = frames::base_price(sym);
        if k < 64 {
            if sym == 0 {
                let mut markers = feed.markers.lock().unwrap();
                let n = markers.len() as u64 % MARKER_SPAN;
                markers.push(at);
                let bid = marker_base() + Decimal::new(n as i64, 2);
                return frames::book_ticker(name, i, bid, bid + Decimal::new(1, 2));
            }
            let tick = Decimal::new(1, base.scale());
            let bid = base + tick * Decimal::from(i % 7);
            frames::book_ticker(name, i, bid, bid + tick)
        } else if k < 84 {
            let price = frames::base_price(0) + Decimal::new((i % 50) as i64, 2);
            frames::agg_trade("BTCUSDT", i, now, price, i % 2 == 0)
        } else if k < 94 {
            frames::mini_ticker(name, now, base)
        } else if k < 99 {
            frames::kline(name, "1m", now, now - now % 60_000, base, false)
        } else {
            // The first diff spans any snapshot id the exchange may answer; each later one
            // continues it, so the book is live as long as no diff is lost.
            let (first, last) = match self.depth_id {
                None => (1, 1_000_000_000),
                Some(u) => (u + 1, u + 1),
            };
            self.depth_id = Some(last);
            frames::depth_diff("BTCUSDT", now, first, last, frames::base_price(0))
        }
    }
}

/// Serves one market-stream connection: answers its subscriptions and writes the mix at the
/// quiet rate, or at [`RATE`] while the burst is on, until told to stop.
async fn serve_connection(tcp: tokio::net::TcpStream, feed: Arc<Feed>) {
    let _ = tcp.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (reply_tx, mut replies) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            if let Message::Text(text) = msg
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(id) = v.get("id")
            {
                let _ = reply_tx.send(serde_json::json!({"result": null, "id": id}).to_string());
            }
        }
    });
    let mut mix = Mix { i: 0, depth_id: None };
    let mut credit = 0.0f64;
    let mut last = Instant::now();
    while !feed.stop.load(Ordering::Relaxed) {
        while let Ok(reply) = replies.try_recv() {
            if sink.feed(Message::text(reply)).await.is_err() {
                return;
            }
        }
        let burst = feed.burst.load(Ordering::Relaxed);
        let now = Instant::now();
        credit += now.duration_since(last).as_secs_f64() * if burst { RATE } else { QUIET_RATE };
        last = now;
        let n = credit.floor().min(5_000.0);
        credit -= n;
        for _ in 0..n as u64 {
            if sink.feed(Message::text(mix.next(&feed, now))).await.is_err() {
                return;
            }
        }
        if burst {
            feed.sent_in_burst.fetch_add(n as u64, Ordering::Relaxed);
        }
        if sink.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = sink.close().await;
}

/// The stream server on a thread and runtime of its own (the exchange's side of the socket is
/// not the console's CPU budget in production either; here it shares the two cores).
fn start_stream_server(feed: Arc<Feed>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve_connection(tcp, feed.clone()));
            }
        });
    });
    addr
}

/// One frame: when it was flushed and the newest marker it shows.
type FrameLog = Arc<Mutex<Vec<(Instant, Option<u64>)>>>;

/// The marker a snapshot shows: BTCUSDT's bid in the watchlist, when in the markers' range.
fn marker_in(snapshot: &Snapshot) -> Option<u64> {
    let bid = snapshot
        .watchlist
        .iter()
        .find(|r| r.symbol.as_str() == frames::SYMBOLS[0])?
        .bid?
        .value();
    let n = (bid - marker_base()) * Decimal::ONE_HUNDRED;
    if n.is_sign_negative() || n >= Decimal::from(MARKER_SPAN) {
        return None;
    }
    u64::try_from(n.trunc().mantissa()).ok()
}

/// Records, as each snapshot is published, when the bench saw it and the marker it shows.
async fn record_snapshots(mut snapshots: watch::Receiver<Snapshot>, log: FrameLog) {
    while snapshots.changed().await.is_ok() {
        let shown = marker_in(&snapshots.borrow_and_update());
        log.lock().unwrap().push((Instant::now(), shown));
    }
}

/// A test backend that records each frame at its flush (where a terminal's bytes would leave).
struct Recording {
    inner: TestBackend,
    frames: FrameLog,
}

impl Recording {
    /// The lowest figure in the markers' range on the screen: BTCUSDT's bid (its ask is the
    /// next cent).
    fn marker_shown(&self) -> Option<u64> {
        let buffer = self.inner.buffer();
        let width = buffer.area.width as usize;
        let (lo, hi) = (marker_base(), marker_base() + Decimal::from(MARKER_SPAN / 100));
        let mut best: Option<Decimal> = None;
        for row in buffer.content.chunks(width) {
            let line: String = row.iter().map(Cell::symbol).collect();
            for token in line.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')) {
                let Ok(v) = token.replace(',', "").parse::<Decimal>() else {
                    continue;
                };
                if v >= lo && v < hi && best.is_none_or(|b| v < b) {
                    best = Some(v);
                }
            }
        }
        best.map(|b| u64::try_from(((b - marker_base()) * Decimal::ONE_HUNDRED).trunc().mantissa()).unwrap())
    }
}

impl Backend for Recording {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()?;
        let shown = self.marker_shown();
        self.frames.lock().unwrap().push((Instant::now(), shown));
        Ok(())
    }
}

impl ui::Ring for Recording {
    fn ring(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Figures {
    sent: u64,
    burst: Duration,
    fps_max: usize,
    fps_mean: f64,
    /// Tick-to-screen of every marker written in the burst.
    latencies: Vec<Duration>,
    /// Markers written in the burst that no frame ever showed.
    unshown: usize,
    /// Marker written → the first published snapshot showing it (or a later marker).
    to_snapshot: Vec<Duration>,
    /// That snapshot → the first frame showing the marker (or a later one).
    snapshot_to_frame: Vec<Duration>,
    /// Between consecutive published snapshots, and between frames, during the burst.
    publish_intervals: Vec<Duration>,
    frame_intervals: Vec<Duration>,
    first_cancel: Duration,
    all_cancels: Duration,
    kill_done: Duration,
    book_live_at_end: bool,
}

/// Frames per 1 s window of the burst: the most in any window, and the mean.
fn frames_per_second(frames: &[(Instant, Option<u64>)], start: Instant, burst: Duration) -> (usize, f64) {
    let secs = burst.as_secs().max(1) as usize;
    let mut buckets = vec![0usize; secs];
    for (t, _) in frames {
        if *t >= start {
            let i = t.duration_since(start).as_secs() as usize;
            if i < secs {
                buckets[i] += 1;
            }
        }
    }
    // A sliding 1 s window too, so that no second straddling two buckets hides more frames.
    let in_burst: Vec<Instant> = frames
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t >= start && t.duration_since(start) < burst)
        .collect();
    let mut sliding = 0;
    let mut lo = 0;
    for hi in 0..in_burst.len() {
        while in_burst[hi].duration_since(in_burst[lo]) >= Duration::from_secs(1) {
            lo += 1;
        }
        sliding = sliding.max(hi - lo + 1);
    }
    let mean = buckets.iter().sum::<usize>() as f64 / secs as f64;
    (sliding.max(*buckets.iter().max().unwrap_or(&0)), mean)
}

/// For every marker written in `[start, end)`, in order: when it was written, and the first
/// entry of `shown` (frames or snapshots, in time order) showing it or a later one.
fn first_showing(
    markers: &[Instant],
    shown: &[(Instant, Option<u64>)],
    start: Instant,
    end: Instant,
) -> Vec<(Instant, Option<Instant>)> {
    let mut out = Vec::new();
    let mut f = 0;
    for (n, sent) in markers.iter().enumerate() {
        if *sent < start || *sent >= end {
            continue;
        }
        let n = n as u64 % MARKER_SPAN;
        // Entries are in time order and the markers' numbers only grow: one pass.
        while f < shown.len() && (shown[f].0 < *sent || shown[f].1.is_none_or(|s| s < n)) {
            f += 1;
        }
        out.push((*sent, shown.get(f).map(|(t, _)| *t)));
    }
    out
}

/// For every marker written in `[start, end)`: the first frame showing it or a later one.
fn tick_to_screen(
    markers: &[Instant],
    frames: &[(Instant, Option<u64>)],
    start: Instant,
    end: Instant,
) -> (Vec<Duration>, usize) {
    let seen = first_showing(markers, frames, start, end);
    let out: Vec<Duration> = seen
        .iter()
        .filter_map(|(sent, at)| at.map(|t| t.duration_since(*sent)))
        .collect();
    let unshown = seen.len() - out.len();
    (out, unshown)
}

/// Where tick-to-screen goes, per marker shown: written → snapshot, snapshot → frame.
fn split_at_snapshot(
    markers: &[Instant],
    snapshots: &[(Instant, Option<u64>)],
    frames: &[(Instant, Option<u64>)],
    start: Instant,
    end: Instant,
) -> (Vec<Duration>, Vec<Duration>) {
    let to_snap = first_showing(markers, snapshots, start, end);
    let to_frame = first_showing(markers, frames, start, end);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for ((sent, snap), (_, frame)) in to_snap.iter().zip(&to_frame) {
        if let (Some(snap), Some(frame)) = (snap, frame) {
            a.push(snap.duration_since(*sent));
            b.push(frame.saturating_duration_since(*snap));
        }
    }
    a.sort();
    b.sort();
    (a, b)
}

/// The gaps between consecutive entries within `[start, end)`, sorted.
fn intervals(log: &[(Instant, Option<u64>)], start: Instant, end: Instant) -> Vec<Duration> {
    let times: Vec<Instant> = log
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t >= start && *t < end)
        .collect();
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1].duration_since(w[0])).collect();
    gaps.sort();
    gaps
}

/// "p50 … p99 … max …" of a sorted list.
fn spread(sorted: &[Duration]) -> String {
    match sorted.last() {
        None => "none".into(),
        Some(max) => format!(
            "p50 {}  p99 {}  max {}",
            ms(percentile(sorted, 0.5)),
            ms(percentile(sorted, 0.99)),
            ms(*max)
        ),
    }
}

/// `BURST_FRAME_MS`, when set to a number of milliseconds.
fn frame_interval_override() -> Option<u64> {
    std::env::var("BURST_FRAME_MS").ok()?.parse().ok()
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn run_burst(burst: Duration) -> Figures {
    let StillMarket {
        sim,
        log,
        relay,
        rest: checker,
        core,
        dir: _dir,
    } = still_market(TicketSource::Tui).await;
    let feed = Arc::new(Feed::default());
    let stream_addr = start_stream_server(feed.clone());
    // The engine's own client: REST through the relay that logs cancels (as the checker's),
    // the market stream from the bench's server.
    let mut endpoints = checker.endpoints().clone();
    endpoints.ws = format!("ws://{stream_addr}").parse().unwrap();
    let rest = rest_via(endpoints, &sim);
    let wire = log;

    let (snap_tx, snap_rx) = watch::channel(core.state.snapshot(now_ms()));
    let mut watcher: watch::Receiver<Snapshot> = snap_rx.clone();
    let snapshots: FrameLog = Arc::default();
    let recorder = tokio::spawn(record_snapshots(snap_rx.clone(), snapshots.clone()));
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(Runtime::run(
        core,
        rest,
        cmd_rx,
        snap_tx,
        cancel.clone(),
        false,
        None,
    ));

    let frames: FrameLog = Arc::default();
    let mut terminal = Terminal::new(Recording {
        inner: TestBackend::new(WIDTH, HEIGHT),
        frames: frames.clone(),
    })
    .unwrap();
    let (keys, key_rx) = mpsc::unbounded_channel::<Event>();
    let input =
        futures_util::stream::unfold(key_rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    let mut config = UiConfig {
        bell: false,
        mouse: false,
        ..UiConfig::default()
    };
    if let Some(ms) = frame_interval_override() {
        config.frame_interval = Duration::from_millis(ms);
    }
    let screen = ui::run(&mut terminal, snap_rx, cmd_tx, input, config);

    let driver = async {
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            watcher.borrow_and_update().focus.book.status,
            BookStatus::Live,
            "the selected symbol's book is live before the burst"
        );
        let start = Instant::now();
        feed.burst.store(true, Ordering::Relaxed);
        tokio::time::sleep(burst / 2).await;
        wire.take();
        let t0 = Instant::now();
        keys.send(Event::Key(KeyEvent::new(
            KeyCode::Char('k'),
            KeyModifiers::CONTROL,
        )))
        .unwrap();
        let w = wire.clone();
        wait_for("the first cancel", Duration::from_secs(10), || {
            w.first().is_some()
        })
        .await;
        let mut kill_done = None;
        let until = start + burst;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let s = watcher.borrow_and_update();
            if kill_done.is_none()
                && s.kill
                    .as_ref()
                    .is_some_and(|k| k.done && k.stage == KillStage::Cancelled)
            {
                kill_done = Some(t0.elapsed());
            }
        }
        feed.burst.store(false, Ordering::Relaxed);
        let end = Instant::now();
        let sent = feed.sent_in_burst.load(Ordering::Relaxed);
        // The last markers of the burst reach the screen within a few frames.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let book_live_at_end = watcher.borrow_and_update().focus.book.status == BookStatus::Live;
        if kill_done.is_none() {
            let t = Instant::now();
            while kill_done.is_none() && t.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let s = watcher.borrow_and_update();
                if s.kill
                    .as_ref()
                    .is_some_and(|k| k.done && k.stage == KillStage::Cancelled)
                {
                    kill_done = Some(t0.elapsed());
                }
            }
        }
        let cancels = wire.take();
        assert_eq!(cancels.len(), common::SYMBOLS.len(), "one cancel-all per symbol");
        drop(keys);
        (start, end, sent, t0, cancels, kill_done, book_live_at_end)
    };
    let (stats, (start, end, sent, t0, cancels, kill_done, book_live_at_end)) = tokio::join!(screen, driver);
    let stats = stats.unwrap();
    feed.stop.store(true, Ordering::Relaxed);
    let left = checker.open_orders(None).await.unwrap();
    assert!(left.is_empty(), "{} orders still open after the kill", left.len());
    cancel.cancel();
    let _ = engine.await;
    relay.abort();
    recorder.abort();
    sim.shutdown().await;

    let frames = frames.lock().unwrap().clone();
    let snapshots = snapshots.lock().unwrap().clone();
    assert_eq!(frames.len() as u64, stats.frames, "every frame recorded");
    let markers = feed.markers.lock().unwrap().clone();
    let (mut latencies, unshown) = tick_to_screen(&markers, &frames, start, end);
    latencies.sort();
    let (fps_max, fps_mean) = frames_per_second(&frames, start, end - start);
    let (to_snapshot, snapshot_to_frame) = split_at_snapshot(&markers, &snapshots, &frames, start, end);
    Figures {
        to_snapshot,
        snapshot_to_frame,
        publish_intervals: intervals(&snapshots, start, end),
        frame_intervals: intervals(&frames, start, end),
        sent,
        burst: end - start,
        fps_max,
        fps_mean,
        latencies,
        unshown,
        first_cancel: cancels.iter().min().unwrap().duration_since(t0),
        all_cancels: cancels.iter().max().unwrap().duration_since(t0),
        kill_done: kill_done.expect("the kill completed"),
        book_live_at_end,
    }
}

fn main() {
    let smoke = std::env::var_os("BENCH_SMOKE").is_some() || !common::full_run();
    let burst = if smoke { SMOKE_BURST } else { BURST };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let f = rt.block_on(run_burst(burst));
    let verdict = |ok: bool| if ok { "within" } else { "OVER" };
    let secs = f.burst.as_secs_f64();
    if let Some(ms) = frame_interval_override() {
        println!("screen's frame interval set to {ms} ms (BURST_FRAME_MS)");
    }
    println!(
        "burst: {} messages in {:.2} s = {:.0} messages/s (target {RATE:.0}){}",
        f.sent,
        secs,
        f.sent as f64 / secs,
        if smoke { "  [smoke run]" } else { "" }
    );
    println!(
        "frames drawn per second: max {} (any 1 s window), mean {:.1}  (budget ≤ 30: {})",
        f.fps_max,
        f.fps_mean,
        verdict(f.fps_max <= 30)
    );
    let p99 = percentile(&f.latencies, 0.99);
    println!(
        "tick-to-screen ({} markers, {} never shown): p50 {}  p99 {}  max {}  (budget p99 ≤ 50 ms: {})",
        f.latencies.len(),
        f.unshown,
        ms(percentile(&f.latencies, 0.5)),
        ms(p99),
        ms(*f.latencies.last().unwrap()),
        verdict(p99 <= Duration::from_millis(50))
    );
    println!(
        "  marker → published snapshot (market queue, engine, wait for the publish): {}",
        spread(&f.to_snapshot)
    );
    println!(
        "  snapshot → frame (the screen's wait for its next frame, and the frame): {}",
        spread(&f.snapshot_to_frame)
    );
    println!(
        "  between snapshots published: {}  ({} in the burst)",
        spread(&f.publish_intervals),
        f.publish_intervals.len() + 1
    );
    println!(
        "  between frames drawn: {}  ({} in the burst)",
        spread(&f.frame_intervals),
        f.frame_intervals.len() + 1
    );
    println!(
        "kill key → first cancel on the wire {}  (budget ≤ 10 ms: {}); all 5 cancels {}; screen shows none open {}",
        ms(f.first_cancel),
        verdict(f.first_cancel <= Duration::from_millis(10)),
        ms(f.all_cancels),
        ms(f.kill_done)
    );
    println!(
        "selected symbol's book after the burst: {}",
        if f.book_live_at_end {
            "live"
        } else {
            "NOT live (a diff was lost)"
        }
    );
}
