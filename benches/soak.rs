//! Soak: the release console, in tmux, against a standalone local exchange whose fault switches
//! cycle the whole time, for an accelerated market day; then the kill key, and an audit.
//!
//! ```sh
//! cargo bench --bench soak                                # 15 min, --speed 96: a market day
//! SOAK_MINUTES=3 SOAK_SPEED=480 cargo bench --bench soak  # a quick look
//! ```
//!
//! What runs: `crbot sim --speed S` as its own process (S × real time: 96 turns 15 minutes into
//! the price movement of a day), and `crbot --mode sim` in a tmux pane pointed at it with the
//! `BINANCE_*_URL` overrides and its key. Every 30 s the next fault is switched on through
//! `POST /sim/control/faults` (dropped connections, malformed frames, a 503 and a 12 s delay on
//! an order, 429s, a skewed clock, periodic drops), the previous one off. Meanwhile the bench
//! types order tickets into the console the way a trader does (a limit entry with a stop-loss
//! and a take-profit on a symbol without a position), so entries fill, protective OCOs rest and
//! trigger as the accelerated market moves, and orders meet every fault.
//!
//! At the end, with connections still being dropped, a ticket is opened and the kill key pressed
//! mid-typing. Then it checks, and exits non-zero when any check fails:
//! - the console never died and no log line or screen shows a panic;
//! - its resident memory (`VmRSS`, sampled every 5 s, and the kernel's peak `VmHWM`) stayed
//!   within 50 MB;
//! - the kill switch halted trading and the exchange has no open order or order list;
//! - nothing was lost: every trade in the exchange's `myTrades` is in the journal with the same
//!   order, price, quantity and commission, and every order the exchange has for the account
//!   is journaled under its client order id with the exchange's final status and executed
//!   quantity (read after the console quit, so after its last reconciliation).
//!
//! Figures and the command are recorded in docs/PERFORMANCE.md.

#[path = "../tests/support/tmux.rs"]
mod tmux;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tmux::{Tmux, panel, panel_rows};

const RSS_BUDGET_KB: u64 = 50 * 1024;
const FAULT_PERIOD: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(10);

/// The fault cycle: each entry replaces the previous one (`reset` first).
fn fault_cycle() -> Vec<(&'static str, Value)> {
    vec![
        ("drop_ws_now", json!({"drop_ws_now": true})),
        ("order_503=1", json!({"order_503": 1})),
        ("next_429=3", json!({"next_429": 3})),
        ("order_delay_ms=12000", json!({"order_delay_ms": 12_000})),
        ("malformed_ws_every=25", json!({"malformed_ws_every": 25})),
        ("clock_offset_ms=1500", json!({"clock_offset_ms": 1_500})),
        ("drop_ws_every_secs=12", json!({"drop_ws_every_secs": 12})),
        ("none", json!({})),
    ]
}

fn crbot() -> &'static str {
    env!("CARGO_BIN_EXE_crbot")
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The standalone local exchange and a signed client for it.
struct Exchange {
    child: Child,
    rest: String,
    ws: String,
    ws_api: String,
    key: String,
    secret: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Exchange {
    fn start(speed: u64, state: &Path) -> Exchange {
        let mut child = Command::new(crbot())
            .args(["sim", "--addr", "127.0.0.1:0", "--seed", "11", "--speed"])
            .arg(speed.to_string())
            .arg("--state")
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("crbot sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("crbot sim prints its endpoints");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("`{name}=` in {line:?}"))
                .to_string()
        };
        Exchange {
            rest: field("rest"),
            ws: field("ws"),
            ws_api: field("ws_api"),
            key: field("api_key"),
            secret: field("api_secret"),
            child,
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            http: reqwest::Client::new(),
        }
    }

    fn get(&self, path: &str, params: &[(&str, String)], signed: bool) -> Result<Value, String> {
        use crbot::exchange::binance::sign::{KeyMaterial, sign_rest};
        use crbot::secret::SecretString;
        let mut all: Vec<(&str, String)> = params.to_vec();
        let query = if signed {
            all.push(("recvWindow", "10000".into()));
            all.push(("timestamp", chrono::Utc::now().timestamp_millis().to_string()));
            let key = KeyMaterial::hmac(SecretString::from(self.secret.as_str()));
            sign_rest(&key, &all).map_err(|e| e.to_string())?.query
        } else {
            all.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        let url = format!("{}{path}?{query}", self.rest.trim_end_matches('/'));
        self.rt.block_on(async {
            let resp = self
                .http
                .get(&url)
                .header("X-MBX-APIKEY", &self.key)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("GET {path}: {status} {body}"));
            }
            serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
        })
    }

    /// A signed GET, asked again while the exchange answers 429 or is otherwise busy.
    fn get_retrying(&self, path: &str, params: &[(&str, String)]) -> Value {
        let mut last = String::new();
        for _ in 0..20 {
            match self.get(path, params, true) {
                Ok(v) => return v,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("{path} kept failing: {last}");
    }

    fn faults(&self, patch: &Value) -> Result<(), String> {
        let mut body = json!({"reset": true});
        if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
            b.extend(p.clone());
        }
        let url = format!("{}/sim/control/faults", self.rest.trim_end_matches('/'));
        self.rt.block_on(async {
            let resp = self
                .http
                .post(&url)
                .header("X-MBX-APIKEY", &self.key)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(format!(
                    "{}: {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                ))
            }
        })
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A symbol's tick, lot step and minimum notional, from `exchangeInfo`.
#[derive(Debug, Clone, Copy)]
struct Rules {
    tick: Decimal,
    step: Decimal,
    min_qty: Decimal,
    min_notional: Decimal,
}

fn rules(ex: &Exchange) -> BTreeMap<String, Rules> {
    let info = ex.get("/api/v3/exchangeInfo", &[], false).expect("exchangeInfo");
    let dec = |v: &Value| v.as_str().and_then(|s| s.parse::<Decimal>().ok());
    let mut out = BTreeMap::new();
    for s in info["symbols"].as_array().into_iter().flatten() {
        let Some(name) = s["symbol"].as_str() else {
            continue;
        };
        let mut r = Rules {
            tick: Decimal::ZERO,
            step: Decimal::ZERO,
            min_qty: Decimal::ZERO,
            min_notional: Decimal::ZERO,
        };
        for f in s["filters"].as_array().into_iter().flatten() {
            match f["filterType"].as_str() {
                Some("PRICE_FILTER") => r.tick = dec(&f["tickSize"]).unwrap_or_default(),
                Some("LOT_SIZE") => {
                    r.step = dec(&f["stepSize"]).unwrap_or_default();
                    r.min_qty = dec(&f["minQty"]).unwrap_or_default();
                }
                Some("NOTIONAL" | "MIN_NOTIONAL") => {
                    r.min_notional = dec(&f["minNotional"]).unwrap_or_default();
                }
                _ => {}
            }
        }
        if !r.tick.is_zero() && !r.step.is_zero() {
            out.insert(name.to_string(), r);
        }
    }
    out
}

fn floor_to(v: Decimal, step: Decimal) -> Decimal {
    ((v / step).floor() * step).normalize()
}

fn ceil_to(v: Decimal, step: Decimal) -> Decimal {
    ((v / step).ceil() * step).normalize()
}

/// `VmRSS` and `VmHWM` of `pid`, in kB.
fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn panel_text(screen: &str, title: &str) -> String {
    panel(screen, title).unwrap_or_default().join("\n")
}

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

fn ticket_focus(screen: &str, field: &str) -> bool {
    panel_rows(screen, "Order ticket")
        .iter()
        .any(|w| w.first().is_some_and(|f| *f == format!(">{field}")))
}

/// Polls the screen until `cond` holds; `None` after `timeout`.
fn poll(t: &Tmux, timeout: Duration, cond: impl Fn(&str) -> bool) -> Option<String> {
    let start = Instant::now();
    loop {
        let s = t.screen();
        if cond(&s) {
            return Some(s);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (bid, ask) of every watchlist row with numbers.
fn quotes(screen: &str) -> BTreeMap<String, (Decimal, Decimal)> {
    panel_rows(screen, "Watchlist")
        .into_iter()
        .filter(|w| w.len() == 5)
        .filter_map(|w| {
            let sym = w[0].trim_start_matches('>').to_string();
            Some((sym, (w[2].parse().ok()?, w[3].parse().ok()?)))
        })
        .collect()
}

/// Symbols crbot holds a (non-dust) position in or has an entry open on.
fn busy_symbols(screen: &str) -> Vec<String> {
    let mut busy: Vec<String> = panel_rows(screen, "Positions")
        .into_iter()
        .filter(|w| w.len() >= 2 && w[1] != "dust" && w[1] != "ext")
        .map(|w| w[0].clone())
        .collect();
    for w in panel_rows(screen, "Open orders") {
        if w.iter().any(|c| c == "entry")
            && let Some(s) = w.iter().find(|c| c.ends_with("USDT"))
        {
            busy.push(s.clone());
        }
    }
    busy
}

#[derive(Debug, PartialEq)]
enum Ticket {
    Sent,
    Refused(String),
    Stuck(&'static str),
}

/// Fills one field of the open ticket: focus it with Tab, clear it, type `text`.
fn fill_field(t: &Tmux, field: &str, text: &str) -> Result<(), &'static str> {
    for _ in 0..8 {
        if ticket_focus(&t.screen(), field) {
            break;
        }
        t.keys(&["Tab"]);
        std::thread::sleep(Duration::from_millis(60));
    }
    poll(t, STEP, |s| ticket_focus(s, field)).ok_or("field focus")?;
    t.key_n("BSpace", 24);
    t.type_text(text);
    Ok(())
}

/// Types a limit entry with its stop-loss and take-profit and sends it when approved.
fn ticket(t: &Tmux, symbol: &str, qty: Decimal, price: Decimal, sl: Decimal, tp: Decimal) -> Ticket {
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(100));
    t.keys(&["Escape"]);
    if poll(t, STEP, |s| {
        panel_text(s, "Order ticket").contains("No ticket open")
    })
    .is_none()
    {
        return Ticket::Stuck("no ticket panel");
    }
    t.keys(&["t"]);
    if poll(t, STEP, |s| ticket_focus(s, "qty/amount")).is_none() {
        return Ticket::Stuck("ticket did not open");
    }
    t.key_n("BTab", 3);
    let steps = [
        ("symbol", symbol.to_string()),
        ("side", "BUY".to_string()),
        ("type", "LIMIT".to_string()),
        ("qty/amount", qty.to_string()),
        ("price", price.to_string()),
        ("stop-loss", sl.to_string()),
        ("take-profit", tp.to_string()),
    ];
    for (field, text) in &steps {
        if let Err(e) = fill_field(t, field, text) {
            return Ticket::Stuck(e);
        }
    }
    let tp_text = tp.to_string();
    let Some(screen) = poll(t, STEP, |s| {
        let rows = panel_rows(s, "Order ticket");
        let typed = rows.iter().any(|w| {
            w.first()
                .is_some_and(|f| f.trim_start_matches('>') == "take-profit")
                && w.get(1) == Some(&tp_text)
        });
        let p = panel_text(s, "Order ticket");
        typed && (p.contains("APPROVED") || p.contains("REFUSED"))
    }) else {
        return Ticket::Stuck("no verdict");
    };
    let p = panel_text(&screen, "Order ticket");
    if p.contains("REFUSED") {
        let codes: Vec<String> = panel_rows(&screen, "Order ticket")
            .into_iter()
            .filter(|w| w.first().is_some_and(|c| c == "✗"))
            .filter_map(|w| w.get(1).cloned())
            .collect();
        t.keys(&["Escape"]);
        return Ticket::Refused(codes.join(","));
    }
    t.keys(&["Enter"]);
    if poll(t, STEP, |s| panel(s, "Send this ticket?").is_some()).is_none() {
        t.keys(&["Escape"]);
        return Ticket::Stuck("no confirm step");
    }
    t.keys(&["y"]);
    Ticket::Sent
}

/// The sim journal in `home` (`journal-sim.<ext>`, not its `-wal`/`-shm` companions).
fn journal_path(home: &Path) -> PathBuf {
    std::fs::read_dir(home)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("journal-sim.") && !n.ends_with("-wal") && !n.ends_with("-shm")
            })
        })
        .unwrap_or_else(|| home.join("journal-sim.db"))
}

/// Every file under `dir` whose text contains "panicked".
fn panics_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n.to_string_lossy().contains("log"))
                && let Ok(text) = std::fs::read(&p)
                && String::from_utf8_lossy(&text).contains("panicked")
            {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

struct Report {
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, what: String) {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failures.push(what);
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; no harness options are taken.
    let minutes = env_num("SOAK_MINUTES", 15);
    let speed = env_num("SOAK_SPEED", 96);
    let home = tempfile::tempdir().expect("temp home");
    let ex = Exchange::start(speed, &home.path().join("sim-state.json"));
    let rules = rules(&ex);
    println!(
        "soak: {minutes} min at --speed {speed} ({:.1} h of market time), exchange {}",
        (minutes * speed) as f64 / 60.0,
        ex.rest
    );

    let env = [
        ("BINANCE_REST_URL", ex.rest.as_str()),
        ("BINANCE_WS_URL", ex.ws.as_str()),
        ("BINANCE_WS_API_URL", ex.ws_api.as_str()),
        ("BINANCE_API_KEY", ex.key.as_str()),
        ("BINANCE_API_SECRET", ex.secret.as_str()),
        ("MAX_TRADES_PER_DAY", "1000"),
        ("MAX_DAILY_LOSS_PERCENT", "50"),
        ("MAX_DRAWDOWN_PERCENT", "50"),
        ("NO_COLOR", "1"),
    ];
    let command = format!("exec {} --mode sim --home '{}'", crbot(), home.path().display());
    let t = Tmux::start("soak", 160, 48, &command, &env, home.path());
    let pid = t.pane_pid().expect("the console's pid");
    let started = poll(&t, Duration::from_secs(60), |s| {
        panel_text(s, "Risk & event log").contains("reconciled with the exchange") && !quotes(s).is_empty()
    });
    let mut report = Report { failures: Vec::new() };
    report.check(started.is_some(), "the console started and reconciled".into());
    if started.is_none() {
        println!("{}", t.screen());
        std::process::exit(1);
    }

    let cycle = fault_cycle();
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let mut next_fault = Instant::now();
    let mut fault_i = 0usize;
    let mut next_sample = Instant::now();
    let (mut rss_first, mut rss_max, mut rss_last) = (0u64, 0u64, 0u64);
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut faults_set = 0u32;
    let mut symbol_i = 0usize;
    let mut console_died = false;
    while Instant::now() < deadline {
        if !t.alive() {
            console_died = true;
            break;
        }
        if Instant::now() >= next_fault {
            let (name, patch) = &cycle[fault_i % cycle.len()];
            match ex.faults(patch) {
                Ok(()) => faults_set += 1,
                Err(e) => println!("fault {name}: {e}"),
            }
            fault_i += 1;
            next_fault += FAULT_PERIOD;
        }
        if Instant::now() >= next_sample {
            if let Some((rss, _)) = rss_kb(pid) {
                if rss_first == 0 {
                    rss_first = rss;
                }
                rss_max = rss_max.max(rss);
                rss_last = rss;
            }
            next_sample += Duration::from_secs(5);
        }
        // One ticket on the next symbol that is free.
        let screen = t.screen();
        let q = quotes(&screen);
        let busy = busy_symbols(&screen);
        let free: Vec<&String> = q
            .keys()
            .filter(|s| !busy.contains(s) && rules.contains_key(*s))
            .collect();
        if let Some(sym) = free.get(symbol_i % free.len().max(1)).copied() {
            symbol_i += 1;
            let r = rules[sym];
            let (_, ask) = q[sym];
            let price = ceil_to(ask * Decimal::new(1001, 3), r.tick);
            let sl = floor_to(price * Decimal::new(985, 3), r.tick);
            let tp = ceil_to(price * Decimal::new(102, 2), r.tick);
            let notional = Decimal::from(60).max(r.min_notional * Decimal::from(2));
            let qty = ceil_to((notional / price).max(r.min_qty), r.step);
            let outcome = ticket(&t, sym, qty, price, sl, tp);
            let key = match &outcome {
                Ticket::Sent => "sent".to_string(),
                Ticket::Refused(codes) => format!("refused {codes}"),
                Ticket::Stuck(why) => format!("stuck: {why}"),
            };
            *outcomes.entry(key).or_default() += 1;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    report.check(!console_died, "the console ran the whole soak".into());

    // The kill key mid-typing, with connections still being dropped.
    let _ = ex.faults(&json!({"drop_ws_every_secs": 7, "malformed_ws_every": 40}));
    t.keys(&["Escape"]);
    t.keys(&["Escape"]);
    let _ = poll(&t, STEP, |s| {
        panel_text(s, "Order ticket").contains("No ticket open")
    });
    t.keys(&["t"]);
    let _ = poll(&t, STEP, |s| ticket_focus(s, "qty/amount"));
    t.type_text("0.0");
    let pressed = Instant::now();
    t.keys(&["C-k"]);
    let halted = poll(&t, Duration::from_secs(30), |s| {
        header(s).contains("HALTED") && panel_text(s, "KILL SWITCH").contains("done")
    });
    let kill_screen_ms = pressed.elapsed().as_millis();
    report.check(
        halted.is_some(),
        format!("kill key: HALTED and the kill switch done on screen ({kill_screen_ms} ms)"),
    );
    let open = ex.get_retrying("/api/v3/openOrders", &[]);
    let lists = ex.get_retrying("/api/v3/openOrderList", &[]);
    report.check(
        open.as_array().is_some_and(Vec::is_empty) && lists.as_array().is_some_and(Vec::is_empty),
        format!("the exchange has no open order or list after the kill: {open} {lists}"),
    );
    if let Some((rss, hwm)) = rss_kb(pid) {
        rss_last = rss;
        rss_max = rss_max.max(rss).max(hwm);
    }
    report.check(
        rss_max <= RSS_BUDGET_KB,
        format!(
            "memory: RSS {} kB at start, {} kB at the end, peak {} kB (budget {} kB)",
            rss_first, rss_last, rss_max, RSS_BUDGET_KB
        ),
    );
    let screen = t.screen();
    report.check(!screen.contains("panicked"), "no panic on the screen".into());

    // Quit, so the journal is complete and closed.
    let _ = ex.faults(&json!({}));
    for _ in 0..3 {
        t.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    t.keys(&["q"]);
    match poll(&t, STEP, |s| panel(s, "Quit crbot?").is_some()) {
        Some(_) => t.keys(&["y"]),
        None => println!("no quit confirmation; the screen:\n{}", t.screen()),
    }
    let quit = Instant::now();
    while t.alive() && quit.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    report.check(!t.alive(), "the console quit".into());
    if t.pane_exit().as_deref() != Some("exit 0") {
        println!("the pane after quitting:\n{}", t.screen());
    }
    let exit = t.pane_exit();
    report.check(
        exit.as_deref() == Some("exit 0"),
        format!("the console exited with status 0 ({exit:?})"),
    );
    let panics = panics_in(home.path());
    report.check(panics.is_empty(), format!("no panic in the log files {panics:?}"));

    // Nothing lost: the exchange's records against the journal.
    let journal = rusqlite::Connection::open_with_flags(
        journal_path(home.path()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the journal opens");
    let mut journal_trades: BTreeMap<(String, u64), (u64, String, String, String)> = BTreeMap::new();
    {
        let mut st = journal
            .prepare("SELECT symbol, trade_id, order_id, price, qty, commission FROM trades")
            .expect("trades");
        let rows = st
            .query_map([], |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64),
                    (r.get::<_, i64>(2)? as u64, r.get(3)?, r.get(4)?, r.get(5)?),
                ))
            })
            .expect("rows");
        for row in rows.flatten() {
            journal_trades.insert(row.0, row.1);
        }
    }
    let mut journal_orders: BTreeMap<String, (String, String)> = BTreeMap::new();
    {
        let mut st = journal
            .prepare("SELECT client_order_id, state, executed_qty FROM orders")
            .expect("orders");
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
            .expect("rows");
        for row in rows.flatten() {
            journal_orders.insert(row.0, row.1);
        }
    }
    let same = |a: &str, b: &str| match (a.parse::<Decimal>(), b.parse::<Decimal>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    let (mut exchange_trades, mut exchange_orders) = (0usize, 0usize);
    let mut lost = Vec::new();
    for sym in rules.keys() {
        let trades = ex.get_retrying(
            "/api/v3/myTrades",
            &[("symbol", sym.clone()), ("limit", "1000".into())],
        );
        for tr in trades.as_array().into_iter().flatten() {
            exchange_trades += 1;
            let id = tr["id"].as_u64().unwrap_or(0);
            let s = |k: &str| tr[k].as_str().unwrap_or("").to_string();
            match journal_trades.get(&(sym.clone(), id)) {
                Some((order_id, price, qty, fee))
                    if *order_id == tr["orderId"].as_u64().unwrap_or(0)
                        && same(price, &s("price"))
                        && same(qty, &s("qty"))
                        && same(fee, &s("commission")) => {}
                other => lost.push(format!("trade {sym} #{id}: exchange {tr}, journal {other:?}")),
            }
        }
        let orders = ex.get_retrying(
            "/api/v3/allOrders",
            &[("symbol", sym.clone()), ("limit", "1000".into())],
        );
        for o in orders.as_array().into_iter().flatten() {
            exchange_orders += 1;
            let cid = o["clientOrderId"].as_str().unwrap_or("").to_string();
            let status = o["status"].as_str().unwrap_or("");
            let executed = o["executedQty"].as_str().unwrap_or("");
            match journal_orders.get(&cid) {
                Some((state, exec)) if state == status && same(exec, executed) => {}
                other => lost.push(format!(
                    "order {sym} {cid}: exchange {status} executed {executed}, journal {other:?}"
                )),
            }
        }
    }
    for l in lost.iter().take(20) {
        println!("  {l}");
    }
    report.check(
        lost.is_empty() && exchange_trades > 0,
        format!(
            "nothing lost: {exchange_trades} exchange trades and {exchange_orders} exchange orders all in the journal ({} mismatches)",
            lost.len()
        ),
    );

    println!("tickets: {outcomes:?}");
    println!("faults switched: {faults_set}");
    if report.failures.is_empty() {
        println!("soak: PASS");
    } else {
        println!("soak: FAIL ({} checks)", report.failures.len());
        std::process::exit(1);
    }
}
