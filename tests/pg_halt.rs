//! A halt shared through PostgreSQL: two processes on one database. `crbot serve` (sim mode, a
//! local exchange this test runs) and `crbot kill` run from another home with the same
//! `DATABASE_URL` (as from another host: no engine lock or socket in common, only the
//! database). The kill's halt row is durable before its first cancel leaves (a kill aborted
//! right after the halt leaves the halt in PostgreSQL and every order open), the engine hears
//! it through `NOTIFY` (`journal::notify`) and `/api/health` and the engine's stream (what an
//! attached screen draws) say HALTED; the real console attached to that serve (in tmux) shows
//! HALTED in its header. The listener itself: a notice arrives once the row is committed, never
//! for a write that failed, and it listens again after the server restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machine_support;
mod pg_support;
mod serve_support;
#[path = "sim_support/client.rs"]
mod sim_client;
mod support {
    pub mod tmux;
}

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crbot::api::auth::Scope;
use crbot::domain::Mode;
use crbot::journal::notify::{self, Notice};
use crbot::journal::{Journal, Location, PgTarget, TradingStateCode, TradingStateRecord};
use futures_util::StreamExt;
use pg_support::{PgCluster, PgDatabase};
use rust_decimal::Decimal;
use serde_json::Value;
use serve_support::Serve;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long anything awaited here may take before the test fails (a bound, not a measure:
/// the figures are in docs/PERFORMANCE.md).
const WAIT: Duration = Duration::from_secs(20);

fn location(url: &str) -> Location {
    Location::Postgres(PgTarget::parse(url).unwrap())
}

fn halt(reason: &str) -> TradingStateRecord {
    TradingStateRecord {
        time_ms: 1,
        state: TradingStateCode::Halted,
        reason: reason.into(),
        trigger: "CLI_KILL".into(),
        actor: "test".into(),
    }
}

/// The next notice, skipping none.
fn next(rx: &mpsc::Receiver<Notice>) -> Notice {
    rx.recv_timeout(WAIT).expect("a notice within the wait")
}

#[test]
fn a_change_is_heard_once_committed_and_the_listener_listens_again_after_a_restart() {
    // A cluster of its own: the test restarts its server.
    let cluster = Arc::new(PgCluster::start());
    let db = cluster.database();
    let loc = location(&db.url());
    let writer = Journal::open_at(&loc, Mode::Sim).unwrap();
    let (tx, rx) = mpsc::channel();
    let listener = notify::listen(&loc, Mode::Sim, move |n| {
        let _ = tx.send(n);
    })
    .unwrap()
    .expect("a listener on PostgreSQL");
    assert_eq!(next(&rx), Notice::Listening);

    let id = writer.record_trading_state(&halt("first")).unwrap();
    assert_eq!(next(&rx), Notice::Changed(id));
    // Heard means committed: another connection reads it at once.
    let reader = Journal::open_read_only_at(&loc, Mode::Sim).unwrap();
    assert_eq!(reader.latest_trading_state_id().unwrap(), id);
    drop(reader);

    // A limit change is no state change: not announced (the next notice below is the
    // listener's own).
    let limit = crbot::journal::LimitChangeRecord {
        time_ms: 2,
        limit: "max_open_orders".into(),
        old_value: "5".into(),
        new_value: "4".into(),
        confirmed: true,
        actor: "test".into(),
        reason: "tighten".into(),
    };
    writer.record_limit_change(&limit).unwrap();

    // The server goes away: the write fails (nothing heard), the listener says it listens
    // again once the server is back, and hears the next change.
    cluster.kill_server();
    assert!(writer.record_trading_state(&halt("while down")).is_err());
    cluster.restart_server();
    assert_eq!(next(&rx), Notice::Listening, "nothing else was heard meanwhile");
    let id2 = writer.record_trading_state(&halt("after restart")).unwrap();
    assert!(id2 > id);
    assert_eq!(next(&rx), Notice::Changed(id2));
    drop(listener);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "stopped");
}

#[test]
fn sqlite_has_no_listener() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::Sqlite(dir.path().join("journal-sim.db"));
    assert!(notify::listen(&loc, Mode::Sim, |_| {}).unwrap().is_none());
}

fn exchange_env(sim: &crbot::exchange::sim::SimHandle, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BINANCE_REST_URL", sim.rest_url()),
        ("BINANCE_WS_URL", sim.ws_url()),
        ("BINANCE_WS_API_URL", sim.ws_api_url()),
        ("BINANCE_API_KEY", sim.api_key()),
        ("BINANCE_API_SECRET", sim.api_secret().expose().to_string()),
        ("RATE_LIMIT_REQUESTS", "1000".to_string()),
        ("DATABASE_URL", url.to_string()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn health(base: &str) -> Value {
    reqwest::get(format!("{base}/api/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

async fn wait_health(base: &str, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let body = health(base).await;
        if body["status"] == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < WAIT, "health never became {want}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn open_orders(client: &sim_client::Client) -> usize {
    let r = client
        .signed("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_from_another_process_on_the_same_database_halts_serve_durably_before_any_cancel() {
    let db = PgDatabase::new();
    let sim = sim_client::start(sim_client::still_config()).await;
    let client = sim_client::Client::new(&sim);
    let env = exchange_env(&sim, &db.url());
    let serve = Serve::start(&borrowed(&env));
    wait_health(&serve.base, "ok").await;

    // The engine's stream, as `crbot attach` reads it.
    let mut request = format!("{}/api/stream", serve.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", serve.token(Scope::Read)).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    // A resting order with its protection, through the leader's API (another crbot on the
    // same database may not trade beside the engine that holds the account's lease).
    let other = tempfile::tempdir().unwrap();
    let mid = sim.mids().into_iter().find(|(s, _)| s == "BTCUSDT").unwrap().1;
    let price = |f: &str| (mid * f.parse::<Decimal>().unwrap()).round_dp(2).to_string();
    let placed = reqwest::Client::new()
        .post(format!("{}/api/orders", serve.base))
        .bearer_auth(serve.token(Scope::Trade))
        .json(&serde_json::json!({
            "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001",
            "limit_price": price("0.98"), "stop_loss": price("0.95"), "take_profit": price("1.05"),
        }))
        .send()
        .await
        .unwrap();
    let status = placed.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        placed.text().await.unwrap_or_default()
    );
    assert_eq!(open_orders(&client).await, 1);

    // The kill, aborted right after its halt is journaled: the halt is in PostgreSQL, and
    // serve's engine, hearing it, halts and finishes the kill's cancels itself (the halt was
    // durable before it read it, so before any cancel left).
    let out = serve_support::crbot(other.path(), &borrowed(&env))
        .arg("kill")
        .env("CRBOT_FAILPOINT", "kill_after_halt")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{out:?}");
    let killed_at = Instant::now();
    let journal = Journal::open_read_only_at(&location(&db.url()), Mode::Sim).unwrap();
    let state = journal.latest_trading_state().unwrap().unwrap();
    assert_eq!(state.record.state, TradingStateCode::Halted);
    wait_health(&serve.base, "halted").await;
    eprintln!(
        "serve showed the other process's halt {} ms after the kill ended",
        killed_at.elapsed().as_millis()
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("a halted snapshot on the stream within the wait")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["type"] == "snapshot" && v["data"]["header"]["trading"].get("Halted").is_some() {
                break;
            }
        }
    }
    let start = Instant::now();
    while open_orders(&client).await != 0 {
        assert!(
            start.elapsed() < WAIT,
            "the engine did not cancel after a halt written elsewhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same kill run again to its end: nothing left to cancel, the journal stays halted.
    let out = serve_support::crbot(other.path(), &borrowed(&env))
        .arg("kill")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(open_orders(&client).await, 0);
    assert_eq!(
        journal.latest_trading_state().unwrap().unwrap().record.state,
        TradingStateCode::Halted
    );
    assert_eq!(health(&serve.base).await["status"], "halted");
    for o in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(o).contains(db.cluster.password()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_console_shows_a_halt_written_by_another_process_on_the_database() {
    let db = PgDatabase::new();
    let sim = sim_client::start(sim_client::still_config()).await;
    let env = exchange_env(&sim, &db.url());
    let serve = Serve::start(&borrowed(&env));
    wait_health(&serve.base, "ok").await;

    // The console, attached to serve over TCP, in a home of its own with no engine.
    let console_home = tempfile::tempdir().unwrap();
    let command = serve_support::attached_console_command(console_home.path());
    let token = serve.token(Scope::Trade);
    let t = support::tmux::Tmux::start(
        "pghalt",
        160,
        48,
        &command,
        &[
            ("CRBOT_API_URL", serve.base.as_str()),
            ("CRBOT_API_TOKEN", token.as_str()),
            ("ENV", "development"),
        ],
        console_home.path(),
    );
    let header = |s: &str| s.lines().next().unwrap_or("").to_string();
    t.wait_for("the attached screen", WAIT, |s| header(s).contains("SIM"));
    assert!(!header(&t.screen()).contains("HALTED"));

    // `crbot kill` from another home on the same database.
    let other = tempfile::tempdir().unwrap();
    let out = serve_support::crbot(other.path(), &borrowed(&env))
        .arg("kill")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    t.wait_for("HALTED on the attached screen", WAIT, |s| {
        header(s).contains("HALTED")
    });
    wait_health(&serve.base, "halted").await;
}

/// The engine's side of a notice, on its own: the machine re-reads the journal when told and
/// applies another process's halt then, with no tick in between (the listener only makes this
/// input come sooner; the tick does the same read).
#[test]
fn a_notice_applies_a_halt_written_by_another_process_without_waiting_for_a_tick() {
    use crbot::engine::machine::Input;
    let mut s = machine_support::Script::started(
        crbot::risk::Limits::default(),
        false,
        machine_support::usdt_only(),
    );
    assert!(!s.snapshot().header.trading.is_halted());
    let other = Journal::open(&machine_support::journal_path(s.dir.path()), Mode::Sim).unwrap();
    other.record_trading_state(&halt("from another shell")).unwrap();
    // The notice alone (no tick) applies it.
    s.step(Input::TradingStateNotice);
    let snap = s.snapshot();
    assert!(snap.header.trading.is_halted(), "{:?}", snap.header.trading);
    assert!(
        snap.log.iter().any(|l| l.text.contains("from another shell")),
        "the log says where it came from"
    );
    // Heard twice (the notice and the next tick's read): applied once.
    let lines = snap.log.len();
    s.step(Input::TradingStateNotice);
    assert_eq!(s.snapshot().log.len(), lines);
}

/// The listening connection follows `DATABASE_URL`'s TLS rules as the journal's do: verified
/// TLS listens (encrypted); a plain URL to a server that requires TLS never listens.
#[test]
fn the_listener_connects_with_the_journal_s_tls_rules() {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let cluster = Arc::new(PgCluster::start_tls(&cert, &key, true));
    let db = cluster.database();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &cert).unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url(),
        ca.path().display()
    );
    let loc = location(&url);
    let writer = Journal::open_at(&loc, Mode::Sim).unwrap();
    let (tx, rx) = mpsc::channel();
    let _listener = notify::listen(&loc, Mode::Sim, move |n| {
        let _ = tx.send(n);
    })
    .unwrap();
    assert_eq!(next(&rx), Notice::Listening);
    let id = writer.record_trading_state(&halt("over TLS")).unwrap();
    assert_eq!(next(&rx), Notice::Changed(id));
    let plain = db.psql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE NOT s.ssl AND a.datname = current_database() AND a.pid <> pg_backend_pid()",
    );
    assert_eq!(
        plain, "0",
        "the journal's and the listener's connections are encrypted"
    );

    let (tx, rx) = mpsc::channel();
    let _plain = notify::listen(&location(&db.url()), Mode::Sim, move |n| {
        let _ = tx.send(n);
    })
    .unwrap();
    writer.record_trading_state(&halt("not heard in plain")).unwrap();
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "a plain connection to a TLS-only server never listens"
    );
}
