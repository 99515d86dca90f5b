//! A screen attached to a standby `crbot serve` on PostgreSQL: two `crbot serve` on one
//! database and one local exchange, and the attached screen's bridge (`attach::open`, what the
//! console runs with `CRBOT_API_URL`/`CRBOT_API_TOKEN`) on each.
//!
//! The standby's stream shows its own snapshot (the STANDBY banner naming the leader, no account
//! figure), the kill key on it halts the leader (its open orders are cancelled on the exchange)
//! and both screens show HALTED within a second; its other commands are refused with the
//! STANDBY message on the screen; when the standby takes over, the same screen reconnects and
//! draws the new leader's live snapshot. The real console attached to a standby (in tmux) shows
//! the banner and halts the account on Ctrl-K. Beside: the address a leader advertises
//! (`CRBOT_ADVERTISE_URL`), and read commands on a machine with no engine while another leads
//! (they write nothing to the shared journal).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;
mod serve_support;
#[path = "sim_support/client.rs"]
mod sim_client;
mod support {
    pub mod tmux;
}

use std::time::{Duration, Instant};

use crbot::api::auth::Scope;
use crbot::attach::{self, Attached, Target};
use crbot::config::RemoteEngine;
use crbot::engine::snapshot::{Command, Snapshot};
use crbot::secret::SecretString;
use pg_support::PgDatabase;
use rust_decimal::Decimal;
use serde_json::Value;
use serve_support::Serve;

/// How long anything awaited here may take before the test fails (a bound, not a measure).
const WAIT: Duration = Duration::from_secs(30);
/// The bound on a kill reaching both screens: the design's second, doubled for a loaded
/// two-core CI machine (the measured figure is printed; it is typically a few hundred ms).
const HALT_WITHIN: Duration = Duration::from_secs(2);

fn env(sim: &crbot::exchange::sim::SimHandle, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BINANCE_REST_URL", sim.rest_url()),
        ("BINANCE_WS_URL", sim.ws_url()),
        ("BINANCE_WS_API_URL", sim.ws_api_url()),
        ("BINANCE_API_KEY", sim.api_key()),
        ("BINANCE_API_SECRET", sim.api_secret().expose().to_string()),
        ("RATE_LIMIT_REQUESTS", "0".to_string()),
        ("DATABASE_URL", url.to_string()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn health(base: &str) -> Value {
    match reqwest::get(format!("{base}/api/health")).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn wait_role(base: &str, role: &str) {
    let start = Instant::now();
    loop {
        let h = health(base).await;
        if h["role"] == role {
            return;
        }
        assert!(start.elapsed() < WAIT, "{base} never became {role}: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Until the leader has reconciled (a dry run is answered).
async fn wait_ready(serve: &Serve) {
    let start = Instant::now();
    let probe = serde_json::json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "dry_run": true});
    loop {
        let status = reqwest::Client::new()
            .post(format!("{}/api/orders", serve.base))
            .bearer_auth(serve.token(Scope::Trade))
            .json(&probe)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never reconciled",
            serve.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screen(serve: &Serve, scope: Scope) -> Attached {
    attach::open(Target::Remote(RemoteEngine {
        url: url::Url::parse(&serve.base).unwrap(),
        token: SecretString::new(serve.token(scope)),
    }))
    .await
    .expect("the screen attaches")
}

/// Waits until the screen's snapshot satisfies `cond`; how long that took.
async fn wait_screen(
    screen: &mut Attached,
    what: &str,
    within: Duration,
    cond: impl Fn(&Snapshot) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond(&screen.snapshots.borrow_and_update()) {
            return start.elapsed();
        }
        let left = within.saturating_sub(start.elapsed());
        let changed = tokio::time::timeout(left, screen.snapshots.changed()).await;
        assert!(
            matches!(changed, Ok(Ok(()))),
            "{what}: not within {within:?}; last: {:?} {:?}",
            screen.snapshots.borrow().header,
            screen.snapshots.borrow().standby
        );
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
async fn a_screen_on_the_standby_sees_it_halts_the_leader_and_follows_the_takeover() {
    let db = PgDatabase::new();
    let sim = sim_client::start(sim_client::still_config()).await;
    let client = sim_client::Client::new(&sim);
    let env = env(&sim, &db.url());
    let mut leader = Serve::start(&borrowed(&env));
    wait_role(&leader.base, "leader").await;
    wait_ready(&leader).await;
    let standby = Serve::start(&borrowed(&env));
    wait_role(&standby.base, "standby").await;

    // A resting order with its protection on the leader.
    let mid = sim.mids().into_iter().find(|(s, _)| s == "BTCUSDT").unwrap().1;
    let price = |f: &str| (mid * f.parse::<Decimal>().unwrap()).round_dp(2).to_string();
    let placed = reqwest::Client::new()
        .post(format!("{}/api/orders", leader.base))
        .bearer_auth(leader.token(Scope::Trade))
        .json(&serde_json::json!({
            "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001",
            "limit_price": price("0.98"), "stop_loss": price("0.95"), "take_profit": price("1.05"),
        }))
        .send()
        .await
        .unwrap();
    assert!(
        placed.status().is_success(),
        "{}",
        placed.text().await.unwrap_or_default()
    );
    assert_eq!(open_orders(&client).await, 1);

    // A read-scope screen on the standby: its snapshot, the banner naming the leader, no figure.
    let mut on_standby = screen(&standby, Scope::Trade).await;
    let mut on_leader = screen(&leader, Scope::Read).await;
    wait_screen(&mut on_standby, "the leader named, the state read", WAIT, |s| {
        s.standby
            .as_ref()
            .is_some_and(|b| b.trading_known && b.leader_address.as_deref() == Some(leader.base.as_str()))
    })
    .await;
    {
        let s = on_standby.snapshots.borrow();
        assert!(!s.header.trading.is_halted(), "{:?}", s.header.trading);
        assert!(s.equity.is_none(), "no equity a standby does not know");
        assert!(s.books.balances.is_empty() && s.positions.is_empty() && s.orders.is_empty());
    }
    assert!(
        on_leader.snapshots.borrow().standby.is_none(),
        "the leader's own snapshot"
    );

    // Anything but the kill is the leader's: refused, and the screen says why.
    on_standby
        .commands
        .send(Command::Rearm { passphrase: None })
        .await
        .unwrap();
    wait_screen(&mut on_standby, "the STANDBY refusal on the screen", WAIT, |s| {
        s.header
            .warnings
            .first()
            .is_some_and(|w| w.contains("standby") && w.contains(&leader.base))
    })
    .await;

    // The kill key on the standby's screen: both screens show HALTED, the leader cancels.
    let pressed = Instant::now();
    on_standby.commands.send(Command::Kill).await.unwrap();
    let halted =
        |s: &Snapshot| s.header.trading.is_halted() && s.standby.as_ref().is_none_or(|b| b.trading_known);
    wait_screen(
        &mut on_standby,
        "HALTED on the standby's screen",
        HALT_WITHIN,
        halted,
    )
    .await;
    let on_standby_ms = pressed.elapsed().as_millis();
    wait_screen(
        &mut on_leader,
        "HALTED on the leader's screen",
        HALT_WITHIN,
        halted,
    )
    .await;
    let on_leader_ms = pressed.elapsed().as_millis();
    eprintln!(
        "kill key on the standby's screen: HALTED there after {on_standby_ms} ms, on the leader's after {on_leader_ms} ms"
    );
    assert_eq!(health(&leader.base).await["status"], "halted");
    let start = Instant::now();
    while open_orders(&client).await != 0 {
        assert!(
            start.elapsed() < WAIT,
            "the leader did not cancel after the standby's kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The leader goes: the standby leads, and the same screen shows its live snapshot.
    leader.terminate();
    wait_role(&standby.base, "leader").await;
    wait_screen(&mut on_standby, "the new leader's live snapshot", WAIT, |s| {
        s.standby.is_none() && s.header.trading.is_halted() && s.equity.is_some()
    })
    .await;
    drop(on_leader);
}

/// `crbot serve --addr ADDR` with `env`, its `api=` line read (a wildcard address is reached on
/// loopback).
fn serve_at(addr: &str, env: &[(&str, &str)]) -> Serve {
    use std::io::BufRead;
    let home = tempfile::tempdir().unwrap();
    let mut child = serve_support::crbot(home.path(), env)
        .args(["serve", "--addr", addr])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(90)).expect("api= line");
    let base = first
        .strip_prefix("api=")
        .unwrap_or_else(|| panic!("{first}"))
        .replace("0.0.0.0", "127.0.0.1");
    Serve {
        child,
        base,
        lines,
        home,
    }
}

async fn refused_order(serve: &Serve) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{}/api/orders", serve.base))
        .bearer_auth(serve.token(Scope::Trade))
        .json(&serde_json::json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_advertises_crbot_advertise_url_and_nothing_for_a_wildcard_bind() {
    let db = PgDatabase::new();
    let sim = sim_client::start(sim_client::still_config()).await;
    let env = env(&sim, &db.url());

    // Bound to every address, nothing advertised: the standby says the address is unknown,
    // never 0.0.0.0.
    let mut wild = serve_at("0.0.0.0:0", &borrowed(&env));
    wait_role(&wild.base, "leader").await;
    let second = Serve::start(&borrowed(&env));
    wait_role(&second.base, "standby").await;
    let h = health(&second.base).await;
    assert!(h["leader"]["holder"].is_string(), "{h}");
    assert!(h["leader"]["address"].is_null(), "{h}");
    let refused = refused_order(&second).await;
    assert_eq!(refused["error"], "STANDBY", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("address unknown") && !message.contains("0.0.0.0"),
        "{message}"
    );

    // The next leader advertises what it was told.
    let advertised = "https://crbot-b.example.test:8443";
    let mut with_url = env.clone();
    with_url.push(("CRBOT_ADVERTISE_URL", format!("{advertised}/")));
    drop(second);
    wild.terminate();
    let leader = Serve::start(&borrowed(&with_url));
    wait_role(&leader.base, "leader").await;
    let standby = Serve::start(&borrowed(&env));
    wait_role(&standby.base, "standby").await;
    assert_eq!(
        health(&standby.base).await["leader"]["address"],
        advertised,
        "leader {} standby {} row {}",
        leader.base,
        standby.base,
        db.psql("SELECT holder, address FROM crbot_leadership")
    );
    let refused = refused_order(&standby).await;
    assert!(
        refused["message"].as_str().unwrap().contains(advertised),
        "{refused}"
    );
    let mut on_standby = screen(&standby, Scope::Read).await;
    wait_screen(
        &mut on_standby,
        "the advertised address on the banner",
        WAIT,
        |s| s.standby.as_ref().and_then(|b| b.leader_address.as_deref()) == Some(advertised),
    )
    .await;

    // A URL that is not an http(s) one is refused at start, naming the variable.
    let mut bad = env.clone();
    bad.push(("CRBOT_ADVERTISE_URL", "ftp://crbot-b.example.test".into()));
    let home = tempfile::tempdir().unwrap();
    let out = serve_support::crbot(home.path(), &borrowed(&bad))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CRBOT_ADVERTISE_URL"));
}

/// Rows in every journal table, by table.
fn row_counts(db: &PgDatabase) -> String {
    let tables = db.psql(
        "SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables \
         WHERE schemaname = current_schema() AND tablename <> 'crbot_leadership'",
    );
    let counts: Vec<String> = tables
        .split_whitespace()
        .map(|t| format!("{t}={}", db.psql(&format!("SELECT count(*) FROM {t}"))))
        .collect();
    counts.join(" ")
}

#[test]
fn a_read_command_beside_a_leader_on_another_machine_writes_nothing_and_says_whose_view_it_is() {
    use crbot::journal::lease::{Candidate, Lease, LeaseState};
    let db = PgDatabase::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_client::start(sim_client::still_config()));
    let env = env(&sim, &db.url());
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        serve_support::crbot(home.path(), &borrowed(&env))
            .args(args)
            .output()
            .unwrap()
    };
    // Alone, a read command is the account's engine for its run: it reconciles into the journal
    // (an equity sample at least), which is what must not happen beside a leader.
    let out = run(&["balance"]);
    assert!(out.status.success(), "{out:?}");
    let before = row_counts(&db);
    let out = run(&["balance"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alone = row_counts(&db);
    assert_ne!(before, alone, "a command alone writes its reconciliation");

    // Another machine leads (the lease held here, as its engine would).
    let target = crbot::journal::PgTarget::parse(&db.url()).unwrap();
    let me = Candidate {
        holder: "other-host pid 1".into(),
        address: Some("https://crbot-a.example.test:8002".into()),
    };
    let mut lease = Lease::campaign(&target, crbot::domain::Mode::Sim, me);
    rt.block_on(async { tokio::time::timeout(WAIT, lease.until_leader()).await })
        .expect("the lease is held");
    assert!(matches!(lease.state(), LeaseState::Leader { .. }));
    let before = row_counts(&db);
    for args in [["balance"], ["positions"], ["orders"], ["pnl"]] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("https://crbot-a.example.test:8002") && err.contains("nothing was written"),
            "{args:?} says whose view it shows: {err}"
        );
        assert_eq!(row_counts(&db), before, "{args:?} wrote to the shared journal");
    }
    let json = run(&["balance", "--json"]);
    assert!(json.status.success());
    assert_eq!(row_counts(&db), before);
    drop(lease);
}

/// The real console, attached to a standby over TCP in tmux: its header says STANDBY and names
/// the leader; Ctrl-K there halts the account and the header shows HALTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_attached_to_a_standby_shows_the_banner_and_its_kill_key_halts() {
    support::tmux::require_tmux();
    let db = PgDatabase::new();
    let sim = sim_client::start(sim_client::still_config()).await;
    let env = env(&sim, &db.url());
    let leader = Serve::start(&borrowed(&env));
    wait_role(&leader.base, "leader").await;
    wait_ready(&leader).await;
    let standby = Serve::start(&borrowed(&env));
    wait_role(&standby.base, "standby").await;

    let console_home = tempfile::tempdir().unwrap();
    let command = serve_support::attached_console_command(console_home.path());
    let token = standby.token(Scope::Trade);
    let t = support::tmux::Tmux::start(
        "pgstandby",
        160,
        48,
        &command,
        &[
            ("CRBOT_API_URL", standby.base.as_str()),
            ("CRBOT_API_TOKEN", token.as_str()),
            ("ENV", "development"),
        ],
        console_home.path(),
    );
    let head = |s: &str| s.lines().take(3).collect::<Vec<_>>().join("\n");
    let screen = t.wait_for("the standby's banner", WAIT, |s| {
        let h = head(s);
        h.contains("STANDBY") && h.contains(&leader.base) && h.contains("ACTIVE")
    });
    assert!(!head(&screen).contains("HALTED"), "{screen}");
    t.keys(&["C-k"]);
    t.wait_for("HALTED on the console attached to the standby", WAIT, |s| {
        head(s).contains("HALTED") && !head(s).contains("confirming")
    });
    let start = Instant::now();
    while health(&leader.base).await["status"] != "halted" {
        assert!(start.elapsed() < WAIT, "the leader did not halt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
