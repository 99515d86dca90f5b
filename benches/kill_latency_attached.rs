//! Kill switch latency through an attached screen: the console engine runs headless with the
//! control API on loopback (as under `crbot serve`), and a screen attached to it by
//! `attach::open` (the bridge the attached console draws from) presses the kill key. The local
//! exchange runs in this process with 20 resting orders on 5 symbols, as in `kill_latency`.
//!
//! Measured from the moment `Command::Kill` is handed to the attached screen's command channel
//! (the key press; from there: the bridge, a WebSocket frame over TCP, the API's stream reader,
//! the engine's command channel):
//! (a) until the first `DELETE /api/v3/openOrders` reaches the exchange's socket,
//! (b) until the last of the 5 has, and
//! (c) until the attached screen's snapshot shows the exchange confirmed nothing is open
//!     (published by the engine at most every 33 ms, streamed at most every 50 ms).
//! The wire times come from the same byte-level TCP relay in front of the exchange's REST port.
//!
//! Run: `cargo bench --bench kill_latency_attached` (prints median and p95 of each figure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{ORDERS_PER_SYMBOL, SYMBOLS, StillMarket, full_run, ms, now_ms, percentile, still_market};
use crbot::api::auth::{Scope, TokenKeys};
use crbot::api::{ApiSettings, EngineLink};
use crbot::attach::{self, Target};
use crbot::config::{Environment, RemoteEngine};
use crbot::engine::runtime::Runtime;
use crbot::engine::snapshot::{Command, KillStage};
use crbot::journal::TicketSource;
use crbot::secret::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 20;
const SMOKE_ROUNDS: usize = 2;
struct Sample {
    first: Duration,
    all: Duration,
    confirmed: Duration,
}

async fn one_round() -> Sample {
    let StillMarket {
        sim: h,
        log,
        relay: relay_task,
        rest,
        core,
        dir: _dir,
    } = still_market(TicketSource::Tui).await;

    let (snap_tx, snap_rx) = watch::channel(core.state.snapshot(now_ms()));
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(Runtime::run(
        core,
        rest.clone(),
        cmd_rx,
        snap_tx,
        cancel.clone(),
        false,
        None,
    ));
    let (api_addr, token) = serve_api(cmd_tx, snap_rx, cancel.clone()).await;
    let attached = attach::open(Target::Remote(RemoteEngine {
        url: format!("http://{api_addr}").parse().unwrap(),
        token: SecretString::from(token),
    }))
    .await
    .unwrap();
    let mut screen = attached.snapshots.clone();
    // Let the start-up traffic (rules, candles, tickers, reconciliation) settle, so that
    // the figures are those of a console at rest, as when a trader reaches for the key.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    log.take();
    screen.borrow_and_update();

    let t0 = Instant::now();
    attached.commands.send(Command::Kill).await.unwrap();
    let confirmed = loop {
        screen.changed().await.unwrap();
        let s = screen.borrow_and_update().clone();
        if let Some(k) = &s.kill
            && k.done
            && k.stage == KillStage::Cancelled
        {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the kill never completed");
    };
    let wire = log.take();
    assert_eq!(wire.len(), SYMBOLS.len(), "one cancel-all per symbol expected");
    let left = rest.open_orders(None).await.unwrap();
    assert!(left.is_empty(), "{} orders still open after the kill", left.len());

    drop(attached.commands);
    let _ = attached.task.await;
    cancel.cancel();
    let _ = engine.await;
    relay_task.abort();
    h.shutdown().await;
    Sample {
        first: wire.iter().min().unwrap().duration_since(t0),
        all: wire.iter().max().unwrap().duration_since(t0),
        confirmed,
    }
}

/// The control API over the engine's channels on a loopback port, and a trade-scope token.
async fn serve_api(
    commands: mpsc::Sender<Command>,
    snapshots: watch::Receiver<crbot::engine::snapshot::Snapshot>,
    stop: CancellationToken,
) -> (SocketAddr, String) {
    const KEY: &str = "the attached kill bench's key, 32 characters or more";
    let keys = || TokenKeys::new(&SecretString::from(KEY)).unwrap();
    let settings = ApiSettings {
        env: Environment::Development,
        keys: keys(),
        rate_limit: None,
        cors_origins: Vec::new(),
    };
    let link = EngineLink {
        commands,
        snapshots,
        rearm_passphrase: None,
        replies: Default::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crbot::api::serve(
        listener,
        crbot::api::router(link, settings),
        stop,
    ));
    let token = keys()
        .issue("bench", Scope::Trade, 1, chrono::Utc::now().timestamp())
        .unwrap();
    (addr, token)
}

fn main() {
    let rounds = if full_run() { ROUNDS } else { SMOKE_ROUNDS };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut samples = Vec::new();
    for i in 0..rounds {
        let s = rt.block_on(one_round());
        eprintln!(
            "round {:>2}: first cancel {}, all cancels {}, confirmed {}",
            i + 1,
            ms(s.first),
            ms(s.all),
            ms(s.confirmed)
        );
        samples.push(s);
    }
    let report = |name: &str, target: Duration, f: &dyn Fn(&Sample) -> Duration| {
        let mut v: Vec<Duration> = samples.iter().map(f).collect();
        v.sort();
        let (med, p95) = (percentile(&v, 0.5), percentile(&v, 0.95));
        let verdict = if p95 <= target { "within" } else { "OVER" };
        println!(
            "attached kill latency {name:<40} median {:>10}  p95 {:>10}  (target ≤ {}, p95 {verdict})",
            ms(med),
            ms(p95),
            ms(target)
        );
    };
    println!(
        "kill latency through an attached screen: {rounds} rounds, {} open orders on {} symbols",
        SYMBOLS.len() * ORDERS_PER_SYMBOL,
        SYMBOLS.len()
    );
    report(
        "(a) key → first cancel on the wire",
        Duration::from_millis(10),
        &|s| s.first,
    );
    report("(b) key → all cancels sent", Duration::from_millis(50), &|s| {
        s.all
    });
    report(
        "(c) key → attached screen shows none open",
        Duration::from_secs(1),
        &|s| s.confirmed,
    );
}
