//! A clean stop of `crbot serve` (SIGTERM) flushes the alerts still queued: they get
//! `alerts::FLUSH_WAIT` (3 s) to reach the webhook, and what could not be delivered by then is
//! counted on stderr. A local HTTP listener is the webhook, answering each POST after a delay
//! the test chooses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod serve_support;
#[path = "sim_support/client.rs"]
mod sim_client;

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crbot::cli::remote::Remote;
use serde_json::{Value, json};

/// A webhook that records the `kind` of each alert as its request arrives, then answers 200
/// after `delay`.
async fn slow_webhook(delay: Duration) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body["kind"].as_str().unwrap_or_default().to_string());
                tokio::time::sleep(delay).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

struct Running {
    child: Child,
    home: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crbot serve` against `sim` with `hook` as its webhook, stderr piped; returns once its
/// engine answers on the socket and has reconciled.
async fn serve(sim: &crbot::exchange::sim::SimHandle, hook: &str) -> Running {
    let home = tempfile::tempdir().unwrap();
    let secret = sim.api_secret().expose().to_string();
    let env = [
        ("BINANCE_REST_URL", sim.rest_url()),
        ("BINANCE_WS_URL", sim.ws_url()),
        ("BINANCE_WS_API_URL", sim.ws_api_url()),
        ("BINANCE_API_KEY", sim.api_key()),
        ("BINANCE_API_SECRET", secret),
        ("ALERT_WEBHOOK_URL", hook.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let child = serve_support::crbot(home.path(), &env)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running { child, home };
    let socket = socket(&running);
    let probe = json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "dry_run": true});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = socket
            .call("POST", "/api/orders", Some(&probe), Duration::from_secs(5))
            .await
            .is_ok_and(|(s, _)| s == 200);
        if ready {
            return running;
        }
        assert!(Instant::now() < deadline, "serve's engine never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn socket(r: &Running) -> Remote {
    Remote::at(r.home.path().join("engine-sim.sock"))
}

/// The kill switch through the socket, then waits until its sweep is done: by then the
/// HALTED and KILL alerts are queued (HALTED being sent first).
async fn kill(r: &Running, hook: &mut tokio::sync::mpsc::UnboundedReceiver<String>) {
    let s = socket(r);
    let (status, _) = s
        .call("POST", "/api/kill", Some(&json!({})), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 202);
    let first = tokio::time::timeout(Duration::from_secs(30), hook.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "HALTED");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, risk) = s
            .call("GET", "/api/risk", None, Duration::from_secs(5))
            .await
            .unwrap();
        if risk["kill"]["done"] == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep never finished: {risk}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM, then the exit code and stderr.
fn terminate(mut r: Running) -> (Option<i32>, String) {
    let pid = libc::pid_t::try_from(r.child.id()).unwrap();
    // SAFETY: kill(2) with our own child's pid and a valid signal; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = r.child.wait().unwrap();
    let mut err = String::new();
    for line in std::io::BufReader::new(r.child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        err.push_str(&line);
        err.push('\n');
    }
    (status.code(), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_queued_at_sigterm_are_still_delivered() {
    let sim = sim_client::start(sim_client::still_config()).await;
    let (url, mut hook) = slow_webhook(Duration::from_millis(800)).await;
    let running = serve(&sim, &url).await;
    kill(&running, &mut hook).await;
    // HALTED is being answered; KILL waits behind it in the queue.
    let (code, err) = tokio::task::spawn_blocking(move || terminate(running))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let mut kinds = Vec::new();
    while let Ok(k) = hook.try_recv() {
        kinds.push(k);
    }
    assert!(
        kinds.contains(&"KILL".to_string()),
        "the queued KILL alert was delivered: {kinds:?}\n{err}"
    );
    assert!(!err.contains("not delivered"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_the_webhook_does_not_take_within_the_flush_are_counted_on_stderr() {
    let sim = sim_client::start(sim_client::still_config()).await;
    let (url, mut hook) = slow_webhook(Duration::from_secs(600)).await;
    let running = serve(&sim, &url).await;
    kill(&running, &mut hook).await;
    let (code, err) = tokio::task::spawn_blocking(move || terminate(running))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "a clean stop still: {err}");
    assert!(
        err.contains("2 alerts not delivered to the webhook within 3 s of stopping"),
        "{err}"
    );
}
