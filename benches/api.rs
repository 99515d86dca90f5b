//! The control API on loopback: round trip and throughput of a read route, and the kill switch
//! through `POST /api/kill`.
//!
//! Each round starts the local exchange in this process on a market that stands still, places 20
//! resting BUY limits on 5 symbols (journaled as the console would have), starts the console's
//! engine (`Runtime::run_with`, no screen) on that journal and serves the API router on
//! 127.0.0.1 with the rate limit off (`RATE_LIMIT_REQUESTS=0`), as `crbot serve` wires them.
//! The engine's REST traffic goes through a byte-level relay that timestamps each cancel-all
//! request line (see `common`).
//!
//! Measured:
//! - `GET /api/positions` round trip, one client on a kept-alive connection, sequential;
//! - `POST /api/orders` with `dry_run` round trip (the engine's risk verdict and the exact
//!   orders, nothing sent), sequential;
//! - requests per second the API holds for `GET /api/positions` with 32 concurrent clients;
//! - `POST /api/kill` → the first `DELETE /api/v3/openOrders` on the wire, and → its 202.
//!
//! Run: `cargo bench --bench api`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{StillMarket, WireLog, full_run, ms, now_ms, percentile, still_market};
use crbot::api::auth::{Scope, TokenKeys};
use crbot::api::{self, ApiSettings, EngineLink};
use crbot::config::Environment;
use crbot::engine::runtime::{Replies, Runtime, Services};
use crbot::exchange::sim::SimHandle;
use crbot::journal::TicketSource;
use crbot::secret::SecretString;
use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const KEY: &str = "a-bench-signing-key-of-at-least-32-characters";
const CLIENTS: usize = 32;

/// One engine with the API in front of it.
struct Rig {
    base: String,
    /// BTCUSDT's mid when the rig started (the market stands still).
    btc_mid: Decimal,
    token: String,
    log: WireLog,
    sim: SimHandle,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let StillMarket {
            sim: h,
            log,
            relay: relay_task,
            rest,
            core,
            dir,
        } = still_market(TicketSource::Engine).await;
        let btc_mid = h.mids().into_iter().find(|(s, _)| s == "BTCUSDT").unwrap().1;

        let (snap_tx, snap_rx) = watch::channel(core.state.snapshot(now_ms()));
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let stop = CancellationToken::new();
        let replies = Replies::default();
        let services = Services {
            alerts: None,
            replies: replies.clone(),
            secrets: None,
            keys_from: None,
            lease: None,
        };
        let channels = (cmd_rx, snap_tx, stop.clone());
        let engine = tokio::spawn(Runtime::run_with(core, rest, channels, false, None, services));
        let keys = TokenKeys::new(&SecretString::from(KEY)).unwrap();
        let token = keys.issue("bench", Scope::Trade, 1, now_ms() / 1000).unwrap();
        let settings = ApiSettings {
            env: Environment::Development,
            keys,
            rate_limit: None,
            cors_origins: Vec::new(),
        };
        let link = EngineLink {
            commands: cmd_tx,
            snapshots: snap_rx,
            rearm_passphrase: None,
            replies,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn({
            let stop = stop.clone();
            async move {
                let _ = api::serve(listener, api::router(link, settings), stop).await;
            }
        });
        // Let the start-up traffic settle: the figures are those of an engine at rest.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        log.take();
        Rig {
            base,
            btc_mid,
            token,
            log,
            sim: h,
            stop,
            tasks: vec![engine, server, relay_task],
            _dir: dir,
        }
    }

    async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        self.sim.shutdown().await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get_positions(c: &reqwest::Client, rig: &Rig) {
    let r = c
        .get(format!("{}/api/positions", rig.base))
        .bearer_auth(&rig.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
}

/// `n` sequential round trips on one kept-alive connection.
async fn round_trips(rig: &Rig, n: usize) -> Vec<Duration> {
    let c = client();
    get_positions(&c, rig).await;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        get_positions(&c, rig).await;
        out.push(t0.elapsed());
    }
    out.sort();
    out
}

/// `n` sequential `POST /api/orders` dry runs of a BTCUSDT limit entry the risk engine approves
/// (answered by the engine's live risk state; nothing is sent).
async fn dry_runs(rig: &Rig, n: usize) -> Vec<Duration> {
    let c = client();
    let round = |x: Decimal| x.round_dp(2).to_string();
    let body = serde_json::json!({
        "symbol": "BTCUSDT",
        "side": "buy",
        "quantity": "0.0005",
        "limit_price": round(rig.btc_mid * Decimal::new(99, 2)),
        "stop_loss": round(rig.btc_mid * Decimal::new(97, 2)),
        "take_profit": round(rig.btc_mid * Decimal::new(104, 2)),
        "dry_run": true,
    });
    let mut out = Vec::with_capacity(n);
    for i in 0..=n {
        let t0 = Instant::now();
        let r = c
            .post(format!("{}/api/orders", rig.base))
            .bearer_auth(&rig.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "dry run refused: {text}");
        if i > 0 {
            out.push(t0.elapsed());
        }
    }
    out.sort();
    out
}

/// Requests per second with `CLIENTS` clients asking as fast as they are answered for `span`.
async fn throughput(rig: &Arc<Rig>, span: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + span;
    let t0 = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (rig, done) = (rig.clone(), done.clone());
            tokio::spawn(async move {
                let c = client();
                while Instant::now() < until {
                    get_positions(&c, &rig).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

/// `POST /api/kill` → (first cancel on the wire, the 202).
async fn kill_through_api(rig: &Rig) -> (Duration, Duration) {
    let c = client();
    let t0 = Instant::now();
    let r = c
        .post(format!("{}/api/kill", rig.base))
        .bearer_auth(&rig.token)
        .json(&serde_json::json!({"flatten": false}))
        .send()
        .await
        .unwrap();
    let answered = t0.elapsed();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(t) = rig.log.first() {
            break t.duration_since(t0);
        }
        assert!(Instant::now() < deadline, "no cancel reached the exchange");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    (first, answered)
}

fn report(name: &str, sorted: &[Duration]) {
    println!(
        "api {name:<44} p50 {:>10}  p99 {:>10}  ({} samples)",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        sorted.len()
    );
}

fn main() {
    let full = full_run();
    let (trips, span, kill_rounds) = if full {
        (5000, Duration::from_secs(10), 10)
    } else {
        (50, Duration::from_millis(300), 1)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rig = Arc::new(Rig::start().await);
        report("GET /api/positions round trip", &round_trips(&rig, trips).await);
        report(
            "POST /api/orders (dry run) round trip",
            &dry_runs(&rig, trips / 5).await,
        );
        let rps = throughput(&rig, span).await;
        println!("api GET /api/positions, {CLIENTS} clients, rate limit off: {rps:.0} requests/s");
        Arc::try_unwrap(rig)
            .ok()
            .expect("rig still shared")
            .shutdown()
            .await;

        let (mut first, mut answered) = (Vec::new(), Vec::new());
        for i in 0..kill_rounds {
            let rig = Rig::start().await;
            let (f, a) = kill_through_api(&rig).await;
            eprintln!(
                "kill round {:>2}: first cancel {}, 202 after {}",
                i + 1,
                ms(f),
                ms(a)
            );
            first.push(f);
            answered.push(a);
            rig.shutdown().await;
        }
        first.sort();
        answered.sort();
        report("POST /api/kill → first cancel on the wire", &first);
        report("POST /api/kill → 202", &answered);
    });
}
