//! Leadership on PostgreSQL: one engine leads an account, the others wait as standbys and take
//! over when the leader's session ends.
//!
//! The lease itself (`journal::lease`: the advisory lock on a session of its own, the epoch, the
//! fenced order write) against a throw-away server; then two `crbot serve` processes on one
//! database and one local exchange: the standby's API, a takeover after `kill -9` (orders and
//! fills agree, no client order id sent twice), a kill mid-order, and a partition (a relay
//! between the leader and PostgreSQL that stops forwarding).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;
mod support {
    pub mod cli;
}

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crbot::api::auth::{Scope, TokenKeys};
use crbot::exchange::sim::SimConfig;
use crbot::secret::SecretString;
use serde_json::{Value, json};
use support::cli::CliExchange;

use crbot::domain::{
    ClientOrderId, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderType, Qty, Side, Symbol,
};
use crbot::journal::lease::{Candidate, Lease, LeaseState};
use crbot::journal::{Journal, JournalError, Location, PgTarget};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn candidate(name: &str) -> Candidate {
    Candidate {
        holder: name.to_string(),
        address: Some(format!("http://{name}.example:8002")),
    }
}

fn order(cid: &str) -> Order {
    Order {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        order_id: None,
        order_list_id: None,
        symbol: Symbol::new("BTCUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some("60000.01".parse().unwrap()),
        stop_price: None,
        qty: "0.001".parse().unwrap(),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Sending,
        purpose: OrderPurpose::Entry,
        created_ms: 1,
        updated_ms: 1,
    }
}

#[test]
fn one_campaign_leads_the_other_waits_naming_it_and_takes_over_when_it_goes() {
    let db = pg_support::PgDatabase::new();
    let target = PgTarget::parse(&db.url()).unwrap();
    let rt = rt();
    rt.block_on(async {
        let mut a = Lease::campaign(&target, Mode::Sim, candidate("alpha"));
        let epoch_a = tokio::time::timeout(Duration::from_secs(20), a.until_leader())
            .await
            .expect("the first campaign leads");
        assert!(a.guard().valid());
        assert_eq!(a.guard().epoch(), epoch_a);

        let mut b = Lease::campaign(&target, Mode::Sim, candidate("beta"));
        let state = b.first_answer(Duration::from_secs(20)).await;
        match state {
            LeaseState::Standby {
                leader: Some(leader),
                note: None,
            } => {
                assert_eq!(leader.holder, "alpha");
                assert_eq!(leader.address.as_deref(), Some("http://alpha.example:8002"));
                assert_eq!(leader.epoch, epoch_a);
            }
            other => panic!("the second campaign is a standby naming the leader: {other:?}"),
        }
        assert!(!b.guard().valid());
        // Another mode is another account: its lease is free.
        let mut paper = Lease::campaign(&target, Mode::Paper, candidate("gamma"));
        tokio::time::timeout(Duration::from_secs(20), paper.until_leader())
            .await
            .expect("another mode leads at once");

        let gone = Instant::now();
        drop(a);
        let epoch_b = tokio::time::timeout(Duration::from_secs(10), b.until_leader())
            .await
            .expect("the standby takes over within 10 s of the leader's session ending");
        assert!(epoch_b > epoch_a, "each new leader bumps the epoch");
        assert!(gone.elapsed() < Duration::from_secs(10));
        assert!(b.guard().valid());
    });
}

#[test]
fn an_order_is_journaled_only_under_the_current_epoch() {
    let db = pg_support::PgDatabase::new();
    let target = PgTarget::parse(&db.url()).unwrap();
    let location = Location::Postgres(target.clone());
    let rt = rt();
    let mut a = Lease::campaign(&target, Mode::Sim, candidate("alpha"));
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), a.until_leader()).await })
        .expect("leads");
    // The leadership table exists before the journal does: the journal is still created.
    let mut journal = Journal::open_at(&location, Mode::Sim).expect("a new journal beside the lease");
    journal.set_fence(a.guard());
    journal
        .insert_order(&order("crb-fence-1"))
        .expect("the leader journals its order");
    assert!(matches!(
        journal.insert_order(&order("crb-fence-1")),
        Err(JournalError::DuplicateOrder(_))
    ));

    // Another engine leads meanwhile (the epoch moves on): the old leader's write is refused
    // even while its own lease still looks valid to it.
    db.psql("UPDATE crbot_leadership SET epoch = epoch + 1");
    assert!(a.guard().valid());
    let err = journal.insert_order(&order("crb-fence-2")).expect_err("fenced");
    assert!(err.to_string().contains("lost the lease"), "{err}");
    assert!(
        journal
            .order(&ClientOrderId::new("crb-fence-2").unwrap())
            .unwrap()
            .is_none()
    );

    // A lease that is no longer held refuses at once.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let err = journal.insert_order(&order("crb-fence-3")).expect_err("no lease");
    assert!(err.to_string().contains("lost the lease"), "{err}");
}

#[test]
fn the_doctor_s_lease_check_gives_up_on_a_server_that_never_answers() {
    // Accepts connections and says nothing, as a hung server does.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(4).map_while(Result::ok) {
            conns.push(c);
        }
        conns
    });
    let target = PgTarget::parse(&format!("postgresql://crbot:pw@127.0.0.1:{port}/crbot")).unwrap();
    let start = Instant::now();
    let read = rt().block_on(crbot::journal::lease::read_leader(
        &target,
        Mode::Sim,
        Duration::from_millis(500),
    ));
    let took = start.elapsed();
    let err = read.expect_err("no answer");
    assert!(err.starts_with("could not check within 0.5 s"), "{err}");
    assert!(took < Duration::from_secs(5), "bounded: {took:?}");
    let item = crbot::doctor::check_lease(Some(&crbot::doctor::LeaseFacts {
        leader: Err(err),
        local_role: None,
        now_ms: 0,
    }));
    assert_eq!(item.status, crbot::doctor::CheckStatus::Fail);
    assert!(item.detail.starts_with("could not check within"), "{item:?}");
    drop(held);
}

// ----- two `crbot serve` processes on one database and one local exchange -------------------

const KEY: &str = "the leadership test's key, at least 32 characters";

/// A local exchange whose market does not move by itself (BTCUSDT near 97250).
fn exchange() -> CliExchange {
    CliExchange::start(SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    })
}

/// One `crbot serve` (its own home: another machine, as far as the account's lock file goes).
struct Node {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
    home: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(ex: &CliExchange, database_url: &str) -> Node {
        let home = tempfile::tempdir().unwrap();
        let mut c = crbot(ex, database_url, home.path());
        c.args(["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
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
            .to_string();
        Node {
            child,
            base,
            lines,
            home,
        }
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn role(&self, ex: &CliExchange) -> Option<String> {
        let (status, doc) = http(ex, "GET", &format!("{}/api/health", self.base), None);
        (status == 200).then(|| doc["role"].as_str().unwrap_or_default().to_string())
    }

    /// Waits until the node says it is `role`; how long that took.
    fn wait_role(&self, ex: &CliExchange, role: &str, within: Duration) -> Duration {
        let start = Instant::now();
        while self.role(ex).as_deref() != Some(role) {
            assert!(
                start.elapsed() < within,
                "{}: not {role} within {within:?}",
                self.base
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    }

    /// Waits until the leader has reconciled with the exchange (a dry run is answered).
    fn wait_ready(&self, ex: &CliExchange) {
        let probe = json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "dry_run": true});
        let start = Instant::now();
        loop {
            let (status, _) = http(ex, "POST", &format!("{}/api/orders", self.base), Some(&probe));
            if status == 200 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} never reconciled",
                self.base
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A protected market entry on `symbol` (one per symbol: the risk engine refuses a second
    /// entry while a position is open).
    fn order(&self, ex: &CliExchange, symbol: &str) -> (u16, Value) {
        http(
            ex,
            "POST",
            &format!("{}/api/orders", self.base),
            Some(&entry(symbol)),
        )
    }
}

/// On a fresh database and local exchange: a leader that has reconciled, and a standby beside
/// it.
fn leader_and_standby() -> (pg_support::PgDatabase, CliExchange, Node, Node) {
    let db = pg_support::PgDatabase::new();
    let ex = exchange();
    let a = Node::start(&ex, &db.url());
    a.wait_role(&ex, "leader", Duration::from_secs(60));
    a.wait_ready(&ex);
    let b = Node::start(&ex, &db.url());
    assert_eq!(b.role(&ex).as_deref(), Some("standby"));
    (db, ex, a, b)
}

/// `crbot --home HOME --mode sim` on `database_url`, aimed at the local exchange.
fn crbot(ex: &CliExchange, database_url: &str, home: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("crbot"));
    for v in [
        "CRBOT_HOME",
        "CRBOT_MODE",
        "BINANCE_TESTNET",
        "DEBUG",
        "CRBOT_API_ADDR",
        "PGPASSWORD",
    ] {
        c.env_remove(v);
    }
    c.env("ENV", "development")
        .env("SECRET_KEY", KEY)
        .env("RATE_LIMIT_REQUESTS", "0")
        .env("DATABASE_URL", database_url)
        .env("BINANCE_REST_URL", ex.handle.rest_url())
        .env("BINANCE_WS_URL", ex.handle.ws_url())
        .env("BINANCE_WS_API_URL", ex.handle.ws_api_url())
        .env("BINANCE_API_KEY", ex.handle.api_key())
        .env("BINANCE_API_SECRET", ex.handle.api_secret().expose())
        .arg("--home")
        .arg(home)
        .args(["--mode", "sim"]);
    c
}

/// A small protected entry on one of the local exchange's symbols (BTC near 97250, ETH near
/// 3380, BNB near 652).
fn entry(symbol: &str) -> Value {
    let (qty, sl, tp) = match symbol {
        "BTCUSDT" => ("0.001", "90000", "110000"),
        "ETHUSDT" => ("0.02", "3000", "3800"),
        _ => ("0.1", "600", "700"),
    };
    json!({"symbol": symbol, "side": "BUY", "quantity": qty, "stop_loss": sl, "take_profit": tp})
}

fn token() -> String {
    TokenKeys::new(&SecretString::from(KEY))
        .unwrap()
        .issue("test", Scope::Trade, 1, chrono::Utc::now().timestamp())
        .unwrap()
}

/// One request with a trade token; (status, JSON body or null). A refused connection is 0.
fn http(ex: &CliExchange, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    ex.rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), url).bearer_auth(token());
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    })
}

/// How many of the account's orders the exchange still has open.
fn open_on_exchange(ex: &CliExchange) -> usize {
    exchange_orders(ex)
        .iter()
        .filter(|o| matches!(o["status"].as_str(), Some("NEW" | "PARTIALLY_FILLED")))
        .count()
}

/// The exchange's orders on the symbols the tests trade (`allOrders`, signed as Binance
/// documents).
fn exchange_orders(ex: &CliExchange) -> Vec<Value> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut all = Vec::new();
    for symbol in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
        let query = format!(
            "symbol={symbol}&limit=1000&timestamp={}",
            chrono::Utc::now().timestamp_millis()
        );
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(ex.handle.api_secret().expose().as_bytes()).unwrap();
        mac.update(query.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes().as_slice());
        let url = format!(
            "{}/api/v3/allOrders?{query}&signature={signature}",
            ex.handle.rest_url()
        );
        all.extend(ex.rt.block_on(async {
            reqwest::Client::new()
                .get(url)
                .header("X-MBX-APIKEY", ex.handle.api_key())
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }));
    }
    all
}

/// The exchange's client order ids, each with how many orders carry it.
fn exchange_cids(ex: &CliExchange) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for o in exchange_orders(ex) {
        *seen
            .entry(o["clientOrderId"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    seen
}

/// The account's trades on the symbols the tests trade.
fn exchange_trade_ids(ex: &CliExchange) -> Vec<u64> {
    let mut ids = Vec::new();
    for symbol in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
        let sym = Symbol::new(symbol).unwrap();
        let fills = ex.rt.block_on(ex.rest().my_trades(&sym, None)).unwrap();
        ids.extend(fills.into_iter().map(|f| f.trade_id));
    }
    ids.sort_unstable();
    ids
}

fn journal_trade_ids(db: &pg_support::PgDatabase) -> Vec<u64> {
    let out = db.psql("SELECT trade_id FROM trades ORDER BY trade_id");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn journal_cids(db: &pg_support::PgDatabase) -> Vec<String> {
    let out = db.psql("SELECT client_order_id FROM orders ORDER BY client_order_id");
    out.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The journal and the exchange agree: every fill booked once, every order crbot made on the
/// exchange is in the journal, and no client order id reached the exchange twice.
fn assert_agree(ex: &CliExchange, db: &pg_support::PgDatabase) {
    let start = Instant::now();
    // The new leader's reconcile books what the old one missed; give it a moment.
    while journal_trade_ids(db) != exchange_trade_ids(ex) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "fills: journal {:?} vs exchange {:?}",
            journal_trade_ids(db),
            exchange_trade_ids(ex)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let journal = journal_cids(db);
    for (cid, n) in exchange_cids(ex) {
        assert_eq!(n, 1, "{cid} reached the exchange {n} times");
        assert!(
            journal.contains(&cid),
            "{cid} is on the exchange, not in the journal {journal:?}"
        );
    }
}

#[test]
fn the_standby_refuses_trades_naming_the_leader_and_takes_over_within_10_s_of_a_kill_9() {
    let (db, ex, mut a, b) = leader_and_standby();
    let said = b
        .lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a standby line");
    assert!(said.starts_with("standby: ") && said.contains(&a.base), "{said}");
    let (_, health) = http(&ex, "GET", &format!("{}/api/health", b.base), None);
    assert_eq!(health["leader"]["address"], a.base.as_str(), "{health}");
    assert_eq!(health["mode"], "sim");
    assert_eq!(health["status"], "ok");
    let (status, body) = b.order(&ex, "ETHUSDT");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "STANDBY");
    assert!(body["message"].as_str().unwrap().contains(&a.base), "{body}");

    let (status, body) = a.order(&ex, "BTCUSDT");
    assert_eq!(status, 201, "{body}");
    let first = body["order"]["client_order_id"].as_str().unwrap().to_string();

    // A command never trades beside the leader: on the standby's machine it goes through the
    // standby (refused, naming the leader); on a machine with no engine it finds the lease held.
    let order = [
        "order",
        "buy",
        "BNBUSDT",
        "0.1",
        "--stop-loss",
        "600",
        "--take-profit",
        "700",
    ];
    let third = tempfile::tempdir().unwrap();
    for home in [b.home.path(), third.path()] {
        let out = crbot(&ex, &db.url(), home).args(order).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{err}");
        assert!(err.contains(&a.base), "names the leader: {err}");
    }
    // The console there does not start a second engine: it says who leads and how to reach it.
    let out = crbot(&ex, &db.url(), third.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&a.base) && err.contains("CRBOT_API_URL"), "{err}");
    let bnb = exchange_orders(&ex)
        .into_iter()
        .filter(|o| o["symbol"] == "BNBUSDT")
        .count();
    assert_eq!(bnb, 0, "nothing was sent beside the leader");

    a.sigkill();
    let took = b.wait_role(&ex, "leader", Duration::from_secs(10));
    eprintln!("takeover after kill -9: {took:?}");
    b.wait_ready(&ex);
    assert_agree(&ex, &db);
    assert!(journal_cids(&db).contains(&first));
    let (status, body) = b.order(&ex, "ETHUSDT");
    assert_eq!(status, 201, "the new leader trades: {body}");
    assert_agree(&ex, &db);
    let epoch: i64 = db
        .psql("SELECT epoch FROM crbot_leadership")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(epoch, 2, "two leaders, two epochs");

    // `crbot kill --flatten` where no engine runs: the cancels go (a kill never waits on the
    // lease), the sells are the leader's.
    let out = crbot(&ex, &db.url(), third.path())
        .args(["kill", "--flatten"])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("flatten skipped") && said.contains(&b.base),
        "{said}"
    );
    assert_ne!(out.status.code(), Some(0), "the flatten did not complete: {said}");
    let sells = exchange_orders(&ex)
        .into_iter()
        .filter(|o| o["side"] == "SELL" && o["type"] == "MARKET")
        .count();
    assert_eq!(sells, 0, "no sell beside the leader");
    drop(b);
}

#[test]
fn a_leader_killed_right_after_an_order_loses_no_fill_and_sends_nothing_twice() {
    let (db, ex, mut a, b) = leader_and_standby();
    // The order goes; the leader dies while it is under way (its answer, its fill, its
    // protective OCO may or may not have been handled).
    let url = format!("{}/api/orders", a.base);
    let body = entry("BTCUSDT");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent = std::thread::spawn(move || {
        rt.block_on(async {
            let _ = reqwest::Client::new()
                .post(url)
                .bearer_auth(token())
                .json(&body)
                .timeout(Duration::from_secs(20))
                .send()
                .await;
        })
    });
    // Killed as soon as the exchange has the order.
    let start = Instant::now();
    while exchange_orders(&ex).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the order never reached the exchange"
        );
    }
    a.sigkill();
    sent.join().unwrap();
    let placed: Vec<String> = exchange_cids(&ex).into_keys().collect();
    b.wait_role(&ex, "leader", Duration::from_secs(10));
    b.wait_ready(&ex);
    assert_agree(&ex, &db);
    for cid in &placed {
        assert!(
            journal_cids(&db).contains(cid),
            "{cid} was journaled before it was sent"
        );
    }
    let (status, body) = b.order(&ex, "ETHUSDT");
    assert_eq!(status, 201, "{body}");
    assert_agree(&ex, &db);
}

/// A TCP relay that can stop forwarding while keeping both sockets open (a network partition
/// as the two ends see it: silence, no reset).
struct Relay {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl Relay {
    fn start(to_port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = frozen.clone();
        std::thread::spawn(move || {
            for down in listener.incoming().map_while(Result::ok) {
                let Ok(up) = TcpStream::connect(("127.0.0.1", to_port)) else {
                    continue;
                };
                for (mut from, mut to) in [(down.try_clone().unwrap(), up.try_clone().unwrap()), (up, down)] {
                    let f = f.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while f.load(Ordering::Acquire) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, frozen }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::Release);
    }
}

#[test]
fn a_partitioned_leader_stops_trading_before_the_standby_takes_over_and_never_sends_again() {
    let db = pg_support::PgDatabase::new();
    let ex = exchange();
    let relay = Relay::start(db.cluster.port());
    let through_relay = db
        .url()
        .replace(&format!(":{}/", db.cluster.port()), &format!(":{}/", relay.port));
    let a = Node::start(&ex, &through_relay);
    a.wait_role(&ex, "leader", Duration::from_secs(60));
    a.wait_ready(&ex);
    let b = Node::start(&ex, &db.url());
    assert_eq!(b.role(&ex).as_deref(), Some("standby"));
    let (status, body) = a.order(&ex, "BTCUSDT");
    assert_eq!(status, 201, "{body}");

    relay.freeze(true);
    // 3 s after its last heartbeat the leader refuses orders, saying why, while the standby
    // still waits (the server ends the leader's session only after 5 s of silence). An order
    // sent before then would wait on the silent journal (and fail unsent after 10 s): none is.
    std::thread::sleep(Duration::from_millis(3_300));
    let (status, refused) = a.order(&ex, "ETHUSDT");
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "LEASE_LOST", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("lost the lease"),
        "{refused}"
    );
    assert_eq!(
        b.role(&ex).as_deref(),
        Some("standby"),
        "the old leader stopped before the standby led"
    );
    b.wait_role(&ex, "leader", Duration::from_secs(20));
    b.wait_ready(&ex);
    let before = exchange_orders(&ex).len();

    relay.freeze(false);
    // The old leader stopped its engine and waits as a standby behind the new one.
    a.wait_role(&ex, "standby", Duration::from_secs(60));
    let start = Instant::now();
    loop {
        let (_, health) = http(&ex, "GET", &format!("{}/api/health", a.base), None);
        if health["leader"]["address"] == b.base.as_str() {
            assert!(health["lease_lost"].as_str().is_some(), "{health}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{health}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body) = a.order(&ex, "ETHUSDT");
    assert_eq!(status, 503, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&b.base), "{body}");
    assert_eq!(exchange_orders(&ex).len(), before, "the old leader sent nothing");
    let (status, body) = b.order(&ex, "ETHUSDT");
    assert_eq!(status, 201, "{body}");
    assert_agree(&ex, &db);

    // The kill switch works on a standby too: the halt goes into the shared journal and the
    // leader stops trading and cancels every open order.
    let (status, body) = http(&ex, "POST", &format!("{}/api/kill", a.base), Some(&json!({})));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["trading_state"], "HALTED", "{body}");
    let start = Instant::now();
    loop {
        let (_, health) = http(&ex, "GET", &format!("{}/api/health", b.base), None);
        if health["status"] == "halted" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the leader did not halt: {health}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = b.order(&ex, "BNBUSDT");
    assert_eq!(status, 422, "halted: {body}");
    let start = Instant::now();
    while let open @ 1.. = open_on_exchange(&ex) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{open} orders still open after a kill on the standby"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(a);
}
