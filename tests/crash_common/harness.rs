//! The crash harness, shared by `benches/crash.rs` (≥ 100 runs) and
//! `tests/crash_sample.rs` (one run per failpoint).
//!
//! One run: a fresh local exchange (in this process, a market that stands still) and a fresh
//! crbot home; the built `crbot` binary, in testnet mode pointed at that exchange, runs a fixed
//! script — a MARKET entry with stop-loss and take-profit on BTCUSDT (fills, then a protective
//! OCO), two resting LIMIT entries on ETHUSDT and SOLUSDT, then `crbot kill` — and ONE of its
//! commands is crashed: either a failpoint (`CRBOT_FAILPOINT`, an abort at an exact point of
//! an order's life) or a SIGKILL at a random fraction of that command's usual duration
//! (measured by one clean calibration run). The rest of the script runs on, then
//! crbot is restarted (`crbot orders`, `crbot positions`: both reconcile at start), and the
//! journal (opened after every crbot process has ended) is checked against the exchange:
//! - every exchange order with a crbot client id is in the journal with the same status;
//! - every journal order is settled (no SENDING/UNKNOWN left) and agrees with the exchange
//!   (an order the journal says never left is not on the exchange);
//! - every exchange fill is in the journal exactly once, and the journal has no other;
//! - no client order id reached the exchange twice, and no ticket became two orders;
//! - balances equal the starting balances moved by the journal's fills;
//! - a halt recorded before the restart is still in force after it, a kill that ran to its
//!   end left the journal halted and nothing open, and no order was cancelled without a halt
//!   in the journal (the halt is durable before any cancel leaves).
//!
//! The journal is an SQLite file in the run's home, or (`CRASH_STORE=postgres`, or
//! [`Harness::with_store`]) a fresh database per run on one throw-away PostgreSQL cluster that
//! the harness starts (`tests/pg_support`), with `DATABASE_URL=postgresql://…`.
//!
//! Runs are reproducible from their seed (the fault and its timing derive from it; the
//! SIGKILL's effect still depends on the machine's timing).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crbot::domain::{LocalOrderState, Mode, OrderPurpose, Symbol};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, SimConfig, SimHandle};
use crbot::journal::{Journal, Location, PgTarget, TradingStateCode};
use hmac::{KeyInit, Mac};
use rust_decimal::Decimal;

#[path = "../pg_support/mod.rs"]
mod pg_support;

/// Where the runs' journals are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// A file in each run's home (the default).
    Sqlite,
    /// A database per run on a PostgreSQL cluster the harness starts.
    Postgres,
}

impl Store {
    /// `CRASH_STORE=postgres` (or `postgresql`, `pg`); SQLite otherwise.
    pub fn from_env() -> Store {
        match std::env::var("CRASH_STORE").as_deref() {
            Ok("postgres" | "postgresql" | "pg") => Store::Postgres,
            _ => Store::Sqlite,
        }
    }
}

/// The failpoints crbot's order and kill paths call (`crbot::failpoint::POINTS`).
pub const POINTS: [&str; 6] = crbot::failpoint::POINTS;

/// The script's steps.
const STEPS: usize = 4;
const KILL_STEP: usize = 3;
const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
const ASSETS: [&str; 5] = ["USDT", "BNB", "BTC", "ETH", "SOL"];

/// How one command of the script is crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `CRBOT_FAILPOINT=point:nth` for the command of `step`.
    Failpoint {
        step: usize,
        point: &'static str,
        nth: u32,
    },
    /// SIGKILL the command of `step` once `permille`/1000 of its usual duration (measured by
    /// one clean calibration run) has passed.
    Sigkill { step: usize, permille: u64 },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Failpoint { step, point, nth } => write!(f, "failpoint {point}:{nth} at step {step}"),
            Fault::Sigkill { step, permille } => {
                write!(f, "SIGKILL at {:.1} % of step {step}", *permille as f64 / 10.0)
            }
        }
    }
}

/// splitmix64: a seeded, dependency-free generator (runs must be reproducible).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The failpoint fault for `point` (the step where it is reached), with its hit count from `rng`.
pub fn failpoint_fault(point: &'static str, rng: &mut Rng) -> Fault {
    let (step, nth) = match point {
        // The entry's order row, or (second hit) the protective OCO's legs.
        "before_send" => (rng.below(3) as usize, if rng.below(2) == 0 { 1 } else { 2 }),
        "after_send" => (rng.below(3) as usize, 1),
        "before_fill_journal" | "after_fill_journal" => (0, 1),
        _ => (KILL_STEP, 1),
    };
    let nth = if step == 0 { nth } else { 1 };
    Fault::Failpoint { step, point, nth }
}

/// A random fault: half failpoints, half SIGKILLs at a random moment of a random command.
pub fn random_fault(rng: &mut Rng) -> Fault {
    if rng.below(2) == 0 {
        let point = POINTS[rng.below(POINTS.len() as u64) as usize];
        failpoint_fault(point, rng)
    } else {
        Fault::Sigkill {
            step: rng.below(STEPS as u64) as usize,
            permille: rng.below(1000),
        }
    }
}

/// What one run found.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub seed: u64,
    pub fault: Fault,
    /// The crash happened (the failpoint was reached / the process was still running).
    pub fired: bool,
    pub discrepancies: Vec<String>,
    /// Facts worth knowing that are not discrepancies.
    pub notes: Vec<String>,
    pub elapsed: Duration,
    /// How long each command of the script ran.
    pub step_times: Vec<Duration>,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {:>20} {:<42} fired={:<5} discrepancies={} ({:.1} s)",
            self.seed,
            self.fault.to_string(),
            self.fired,
            self.discrepancies.len(),
            self.elapsed.as_secs_f64()
        )?;
        for d in &self.discrepancies {
            write!(f, "\n    DISCREPANCY: {d}")?;
        }
        for n in &self.notes {
            write!(f, "\n    note: {n}")?;
        }
        Ok(())
    }
}

/// The harness: the crbot binary and a runtime for the exchange.
pub struct Harness {
    pub bin: PathBuf,
    rt: tokio::runtime::Runtime,
    /// Print every command's output (debugging).
    pub verbose: bool,
    /// How long each step takes without a fault (for SIGKILL timing).
    calibration: std::sync::OnceLock<Vec<Duration>>,
    /// The PostgreSQL cluster the runs' databases are on, with `Store::Postgres`.
    cluster: Option<std::sync::Arc<pg_support::PgCluster>>,
}

struct Outcome {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    killed: bool,
}

impl Outcome {
    fn aborted(&self) -> bool {
        self.status.and_then(|s| s.signal()) == Some(libc::SIGABRT)
    }
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

struct Run<'a> {
    h: &'a Harness,
    sim: SimHandle,
    home: tempfile::TempDir,
    /// The run's database, with `Store::Postgres`.
    db: Option<pg_support::PgDatabase>,
}

impl Run<'_> {
    fn journal_path(&self) -> PathBuf {
        self.home.path().join("journal-testnet.db")
    }

    /// What `DATABASE_URL` says: the file, or the run's database.
    fn database_url(&self) -> String {
        match &self.db {
            Some(db) => db.url(),
            None => self.journal_path().display().to_string(),
        }
    }

    fn location(&self) -> Location {
        match &self.db {
            Some(db) => Location::Postgres(PgTarget::parse(&db.url()).unwrap()),
            None => Location::Sqlite(self.journal_path()),
        }
    }

    /// Runs `sql` on the journal, behind crbot's back.
    fn tamper(&self, sql: &str) {
        match &self.db {
            Some(db) => {
                db.psql(sql);
            }
            None => {
                let c = rusqlite::Connection::open(self.journal_path()).unwrap();
                c.execute_batch(sql).unwrap();
            }
        }
    }

    fn command(&self, args: &[String]) -> Command {
        let mut c = Command::new(&self.h.bin);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("ENV", "development")
            .env("DATABASE_URL", self.database_url())
            .env("MAX_TRADES_PER_DAY", "1000")
            .env("BINANCE_REST_URL", self.sim.rest_url())
            .env("BINANCE_WS_URL", self.sim.ws_url())
            .env("BINANCE_WS_API_URL", self.sim.ws_api_url())
            .env("BINANCE_API_KEY", self.sim.api_key())
            .env("BINANCE_API_SECRET", self.sim.api_secret().expose())
            .current_dir(self.home.path())
            .arg("--mode")
            .arg("testnet")
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // An abort must not leave a core file behind (the harness aborts crbot on purpose).
        #[allow(unsafe_code)]
        unsafe {
            c.pre_exec(|| {
                let zero = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                Ok(())
            });
        }
        c
    }

    /// Runs crbot; `failpoint` arms one; `kill_after` SIGKILLs it after that long.
    fn crbot(&self, args: &[String], failpoint: Option<String>, kill_after: Option<Duration>) -> Outcome {
        let mut c = self.command(args);
        if let Some(fp) = failpoint {
            c.env("CRBOT_FAILPOINT", fp);
        }
        let mut child = c.spawn().expect("crbot starts");
        let mut killed = false;
        if let Some(after) = kill_after {
            let deadline = Instant::now() + after;
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() >= deadline {
                    killed = child.kill().is_ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let out = child.wait_with_output().unwrap();
        let o = Outcome {
            status: Some(out.status),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            killed: killed && out.status.signal() == Some(libc::SIGKILL),
        };
        if self.h.verbose {
            eprintln!(
                "  $ crbot {} [{:?}]\n{}{}",
                args.join(" "),
                o.status,
                o.stdout,
                o.stderr
            );
        }
        o
    }
}

/// stderr without crbot's standing warnings (plain-text keys, http:// on loopback).
fn errors(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("crbot: warning:"))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Rounds down to a multiple of `step`.
fn floor_to(v: Decimal, step: Decimal) -> Decimal {
    ((v / step).floor() * step).normalize()
}

impl Harness {
    /// A harness on the store `CRASH_STORE` names (SQLite by default).
    pub fn new(bin: PathBuf) -> Self {
        Harness::with_store(bin, Store::from_env())
    }

    /// A harness whose runs journal in `store`; for PostgreSQL, on the cluster this process's
    /// tests share (started when none runs).
    pub fn with_store(bin: PathBuf, store: Store) -> Self {
        let cluster = (store == Store::Postgres).then(pg_support::PgCluster::shared);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Harness {
            bin,
            rt,
            verbose: std::env::var_os("CRASH_VERBOSE").is_some(),
            calibration: std::sync::OnceLock::new(),
            cluster,
        }
    }

    pub fn store(&self) -> Store {
        if self.cluster.is_some() {
            Store::Postgres
        } else {
            Store::Sqlite
        }
    }

    /// The script's commands, priced from the exchange's current mids.
    fn script(&self, sim: &SimHandle) -> Vec<Vec<String>> {
        let mids: BTreeMap<String, Decimal> = sim.mids().into_iter().collect();
        let tick = dec("0.01");
        let entry = |sym: &str, step: &str, notional: &str, limit: Option<Decimal>| {
            let mid = mids[sym];
            let base = limit.unwrap_or(mid);
            let qty = floor_to(dec(notional) / base, dec(step));
            let sl = floor_to(base * dec("0.97"), tick);
            let tp = floor_to(base * dec("1.05"), tick);
            let mut v = vec!["order".to_string(), "buy".into(), sym.into(), qty.to_string()];
            if let Some(l) = limit {
                v.push("--limit".into());
                v.push(l.to_string());
            }
            v.extend([
                "--stop-loss".into(),
                sl.to_string(),
                "--take-profit".into(),
                tp.to_string(),
            ]);
            v
        };
        let below = |sym: &str| floor_to(mids[sym] * dec("0.98"), tick);
        vec![
            entry("BTCUSDT", "0.00001", "300", None),
            entry("ETHUSDT", "0.0001", "250", Some(below("ETHUSDT"))),
            entry("SOLUSDT", "0.001", "250", Some(below("SOLUSDT"))),
            vec!["kill".to_string()],
        ]
    }

    /// One run with `fault`; `seed` only labels it.
    pub fn run(&self, seed: u64, fault: Fault) -> RunReport {
        self.run_tampered(seed, fault, None)
    }

    /// A run whose journal the SQL `tamper` alters after the restart, before the checks (to
    /// show that the checks see what they claim to).
    pub fn run_tampered(&self, seed: u64, fault: Fault, tamper: Option<&str>) -> RunReport {
        let usual: Vec<Duration> = match fault {
            Fault::Sigkill { .. } => self.step_durations().clone(),
            Fault::Failpoint { .. } => Vec::new(),
        };
        let started = Instant::now();
        let mut step_times = Vec::new();
        let config = SimConfig {
            // A market that stands still: prices are known, resting orders stay resting.
            step_interval: Duration::from_secs(3600),
            seed,
            ..SimConfig::default()
        };
        let sim = self
            .rt
            .block_on(sim::start("127.0.0.1:0".parse().unwrap(), config))
            .unwrap();
        let starting: BTreeMap<String, Decimal> =
            SimConfig::default().starting_balances.into_iter().collect();
        let run = Run {
            h: self,
            sim,
            home: tempfile::tempdir().unwrap(),
            db: self.cluster.as_ref().map(|c| c.database()),
        };
        let script = self.script(&run.sim);
        let mut fired = false;
        let mut notes = Vec::new();
        let mut discrepancies = Vec::new();
        let mut kill_completed = false;
        for (i, args) in script.iter().enumerate() {
            let (fp, kill_after) = match &fault {
                Fault::Failpoint { step, point, nth } if *step == i => (Some(format!("{point}:{nth}")), None),
                Fault::Sigkill { step, permille } if *step == i => {
                    let usual = usual.get(i).copied().unwrap_or(Duration::from_millis(300));
                    (None, Some(usual * (*permille as u32) / 1000))
                }
                _ => (None, None),
            };
            let faulted = fp.is_some() || kill_after.is_some();
            let t = Instant::now();
            let o = run.crbot(args, fp, kill_after);
            step_times.push(t.elapsed());
            if faulted {
                fired = o.aborted() || o.killed;
            } else if !o.ok() && i != KILL_STEP {
                // A refusal after a crash can be right (e.g. a duplicate entry); record it.
                notes.push(format!(
                    "step {i} `{}` exited {:?}: {}",
                    args.join(" "),
                    o.status.and_then(|s| s.code()),
                    errors(&o.stderr)
                ));
            }
            if i == KILL_STEP {
                kill_completed = o.ok();
                if !faulted && !o.ok() {
                    discrepancies.push(format!(
                        "kill without a fault failed ({:?}): {} {}",
                        o.status,
                        o.stdout.trim(),
                        errors(&o.stderr)
                    ));
                }
            }
        }
        // Before the restart: what the journal says about the trading state, and what is open.
        let halted_before = self.latest_state(&run.location()) == Some(TradingStateCode::Halted);
        let open_before = self.rt.block_on(self.exchange_open(&run.sim));
        if !halted_before {
            // Nothing in the script cancels but the kill, and its halt must be durable first.
            let cancelled = self.rt.block_on(async {
                let mut n = 0;
                for symbol in SYMBOLS {
                    n += Self::all_orders(&run.sim, symbol)
                        .await
                        .iter()
                        .filter(|o| o["status"] == "CANCELED")
                        .count();
                }
                n
            });
            if cancelled > 0 {
                discrepancies.push(format!(
                    "{cancelled} order(s) cancelled on the exchange, but no halt in the journal"
                ));
            }
        }
        if kill_completed {
            if !halted_before {
                discrepancies.push("kill completed but the journal is not HALTED".into());
            }
            if open_before > 0 {
                discrepancies.push(format!("kill completed but {open_before} order(s) are open"));
            }
        } else if open_before > 0 {
            notes.push(format!(
                "kill did not complete; {open_before} order(s) left open (halted in journal: {halted_before})"
            ));
        }
        // The restart: both commands reconcile with the exchange at start.
        for args in [["orders"], ["positions"]] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let o = run.crbot(&args, None, None);
            if !o.ok() {
                discrepancies.push(format!(
                    "restart `crbot {}` failed ({:?}): {}",
                    args.join(" "),
                    o.status,
                    errors(&o.stderr)
                ));
            }
        }
        let halted_after = self.latest_state(&run.location()) == Some(TradingStateCode::Halted);
        if halted_before && !halted_after {
            discrepancies.push("HALTED before the restart, not after it".into());
        }
        if run.db.is_some() && run.journal_path().exists() {
            discrepancies.push("DATABASE_URL names PostgreSQL, but an SQLite journal was written".into());
        }
        if let Some(sql) = tamper {
            run.tamper(sql);
        }
        discrepancies.extend(
            self.rt
                .block_on(self.compare(&run.sim, &run.location(), &starting)),
        );
        let sim = run.sim;
        self.rt.block_on(sim.shutdown());
        RunReport {
            seed,
            fault,
            fired,
            discrepancies,
            notes,
            elapsed: started.elapsed(),
            step_times,
        }
    }

    /// The script's step durations on this machine, from one run without a fault.
    fn step_durations(&self) -> &Vec<Duration> {
        self.calibration.get_or_init(|| {
            let never = Fault::Failpoint {
                step: usize::MAX,
                point: "none",
                nth: 1,
            };
            let r = self.run(0, never);
            assert!(
                r.discrepancies.is_empty(),
                "the calibration run found discrepancies: {r}"
            );
            eprintln!(
                "crash harness: calibration (ms per step): {:?}",
                r.step_times.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
            );
            r.step_times
        })
    }

    fn latest_state(&self, journal: &Location) -> Option<TradingStateCode> {
        let j = Journal::open_existing_at(journal, Mode::Testnet).ok()?;
        j.latest_trading_state().ok().flatten().map(|s| s.record.state)
    }

    fn rest(sim: &SimHandle) -> BinanceRest {
        BinanceRest::without_ban_store(
            Endpoints::local(sim.addr()).unwrap(),
            Some(Credentials::hmac(&sim.api_key(), sim.api_secret().expose())),
            RestConfig::default(),
        )
        .unwrap()
    }

    async fn exchange_open(&self, sim: &SimHandle) -> usize {
        Self::rest(sim)
            .open_orders(None)
            .await
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    /// `GET /api/v3/allOrders` for one symbol (crbot's client has no call for it), signed by hand.
    async fn all_orders(sim: &SimHandle, symbol: &str) -> Vec<serde_json::Value> {
        let ts = chrono::Utc::now().timestamp_millis().to_string();
        let query = format!("symbol={symbol}&limit=1000&timestamp={ts}");
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(sim.api_secret().expose().as_bytes()).unwrap();
        mac.update(query.as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        let url = format!("{}/api/v3/allOrders?{query}&signature={sig}", sim.rest_url());
        let r = reqwest::Client::new()
            .get(url)
            .header("X-MBX-APIKEY", sim.api_key())
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        body.as_array()
            .cloned()
            .unwrap_or_else(|| panic!("allOrders {symbol}: {body}"))
    }

    /// Every check of the module doc that compares the journal with the exchange.
    async fn compare(
        &self,
        sim: &SimHandle,
        location: &Location,
        starting: &BTreeMap<String, Decimal>,
    ) -> Vec<String> {
        let mut d = Vec::new();
        let journal = match Journal::open_existing_at(location, Mode::Testnet) {
            Ok(j) => j,
            Err(e) => return vec![format!("journal cannot be opened: {e}")],
        };
        let orders = journal.recent_orders(100_000).unwrap();
        let by_cid: BTreeMap<String, _> = orders
            .iter()
            .map(|o| (o.client_order_id.as_str().to_string(), o.clone()))
            .collect();
        let rest = Self::rest(sim);

        // Orders on the exchange.
        let mut on_exchange: BTreeSet<String> = BTreeSet::new();
        for symbol in SYMBOLS {
            let all = Self::all_orders(sim, symbol).await;
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            let mut buys = 0;
            let mut take_profits = 0;
            for o in &all {
                let cid = o["clientOrderId"].as_str().unwrap_or_default().to_string();
                let status = o["status"].as_str().unwrap_or_default();
                *seen.entry(cid.clone()).or_default() += 1;
                match (o["side"].as_str(), o["type"].as_str()) {
                    (Some("BUY"), _) => buys += 1,
                    (Some("SELL"), Some("LIMIT_MAKER")) => take_profits += 1,
                    _ => {}
                }
                if !cid.starts_with("cr-") {
                    continue;
                }
                on_exchange.insert(cid.clone());
                match by_cid.get(&cid) {
                    None => d.push(format!(
                        "{symbol} order {cid} ({status}) is on the exchange, not in the journal"
                    )),
                    Some(j) if j.state.as_code() != status => d.push(format!(
                        "{symbol} order {cid}: exchange {status}, journal {}",
                        j.state.as_code()
                    )),
                    Some(_) => {}
                }
            }
            for (cid, n) in seen.iter().filter(|(_, n)| **n > 1) {
                d.push(format!("{symbol}: client order id {cid} sent {n} times"));
            }
            if buys > 1 {
                d.push(format!("{symbol}: {buys} BUY orders for one ticket"));
            }
            if take_profits > 1 {
                d.push(format!("{symbol}: {take_profits} protective OCOs for one entry"));
            }
        }
        // Orders in the journal.
        for o in orders.iter().filter(|o| o.purpose != OrderPurpose::External) {
            let cid = o.client_order_id.as_str();
            match o.state {
                LocalOrderState::Pending | LocalOrderState::Sending | LocalOrderState::Unknown => {
                    d.push(format!(
                        "{} order {cid} still {} after the restart",
                        o.symbol,
                        o.state.as_code()
                    ))
                }
                LocalOrderState::NotSent if on_exchange.contains(cid) => d.push(format!(
                    "{} order {cid} NOT_SENT in the journal but on the exchange",
                    o.symbol
                )),
                LocalOrderState::Exchange(_) if !on_exchange.contains(cid) => d.push(format!(
                    "{} order {cid} {} in the journal, unknown to the exchange",
                    o.symbol,
                    o.state.as_code()
                )),
                _ => {}
            }
        }

        // Fills.
        let fills = journal.fills().unwrap();
        let mut journal_fills: BTreeMap<(String, u64), usize> = BTreeMap::new();
        for f in &fills {
            *journal_fills
                .entry((f.symbol.as_str().to_string(), f.trade_id))
                .or_default() += 1;
        }
        let mut exchange_fills = BTreeSet::new();
        for symbol in SYMBOLS {
            let s = Symbol::new(symbol).unwrap();
            let trades = rest.my_trades(&s, None).await.unwrap();
            for t in trades {
                let key = (symbol.to_string(), t.trade_id);
                match journal_fills.get(&key) {
                    Some(1) => {}
                    Some(n) => d.push(format!("{symbol} trade {} journaled {n} times", t.trade_id)),
                    None => d.push(format!("{symbol} trade {} not in the journal", t.trade_id)),
                }
                exchange_fills.insert(key);
            }
        }
        for key in journal_fills.keys().filter(|k| !exchange_fills.contains(*k)) {
            d.push(format!(
                "{} trade {} in the journal, not on the exchange",
                key.0, key.1
            ));
        }

        // Balances: the starting balances moved by the journal's fills.
        let mut expected: BTreeMap<String, Decimal> = starting.clone();
        let base_of = |s: &str| s.trim_end_matches("USDT").to_string();
        for f in &fills {
            let qty = f.qty.value();
            let quote = qty * f.price.value();
            let base = base_of(f.symbol.as_str());
            let sign = if f.side == crbot::domain::Side::Buy {
                Decimal::ONE
            } else {
                -Decimal::ONE
            };
            *expected.entry(base).or_default() += sign * qty;
            *expected.entry("USDT".into()).or_default() -= sign * quote;
            *expected
                .entry(f.commission_asset.as_str().to_string())
                .or_default() -= f.commission.value();
        }
        match rest.account().await {
            Ok(acct) => {
                for asset in ASSETS {
                    let have: Decimal = acct
                        .balances
                        .iter()
                        .filter(|b| b.asset.as_str() == asset)
                        .map(|b| b.free.value() + b.locked.value())
                        .sum();
                    let want = expected.get(asset).copied().unwrap_or_default();
                    if (have - want).abs() > dec("0.00000001") {
                        d.push(format!(
                            "{asset}: exchange balance {have}, journal fills imply {want}"
                        ));
                    }
                }
            }
            Err(e) => d.push(format!("account: {e}")),
        }
        d
    }
}

/// Runs `faults` and prints one line per run and the summary line; returns the reports.
pub fn run_all(h: &Harness, faults: Vec<(u64, Fault)>) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for (seed, fault) in faults {
        let r = h.run(seed, fault);
        println!("{r}");
        reports.push(r);
    }
    let discrepancies: usize = reports.iter().map(|r| r.discrepancies.len()).sum();
    let fired = reports.iter().filter(|r| r.fired).count();
    println!(
        "crash harness: {} runs, {} discrepancies",
        reports.len(),
        discrepancies
    );
    println!(
        "crash harness: {fired} of {} crashes landed (the rest ended first)",
        reports.len()
    );
    reports
}
