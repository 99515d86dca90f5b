//! One engine per account, with real processes: `crbot serve` (sim mode, aimed at a local
//! exchange started in this test) holds the account's lock and serves the control API on its
//! 0600 unix socket; the commands of a second shell go through it; with no engine, parallel
//! commands take the lock in turn.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod cli;
}

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crbot::cli::remote::Remote;
use crbot::exchange::sim::SimConfig;
use serde_json::Value;
use support::cli::CliExchange;

const ENTRY: [&str; 8] = [
    "order",
    "buy",
    "BTCUSDT",
    "0.001",
    "--stop-loss",
    "90000",
    "--take-profit",
    "110000",
];

/// A local exchange whose market does not move by itself (BTCUSDT near 97250).
fn exchange(env: &[(&'static str, &str)]) -> CliExchange {
    let mut ex = CliExchange::start(SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    });
    ex.env = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    ex
}

/// The command `ex.crbot()` builds, as a process that can be left running.
fn spawn(ex: &CliExchange, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("crbot"));
    for v in [
        "CRBOT_HOME",
        "CRBOT_MODE",
        "BINANCE_TESTNET",
        "DATABASE_URL",
        "DEBUG",
        "CRBOT_API_ADDR",
    ] {
        c.env_remove(v);
    }
    c.env("ENV", "development")
        .env("SECRET_KEY", "the socket test's key, at least 32 characters")
        .env("BINANCE_REST_URL", ex.handle.rest_url())
        .env("BINANCE_WS_URL", ex.handle.ws_url())
        .env("BINANCE_WS_API_URL", ex.handle.ws_api_url())
        .env("BINANCE_API_KEY", ex.handle.api_key())
        .env("BINANCE_API_SECRET", ex.handle.api_secret().expose());
    for (k, v) in &ex.env {
        c.env(k, v);
    }
    c.arg("--home").arg(ex.home()).args(["--mode", "sim"]).args(args);
    c
}

struct Serve {
    child: Child,
    _lines: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(ex: &CliExchange) -> Serve {
        let mut child = spawn(ex, &["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
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
        assert!(first.starts_with("api=http://"), "{first}");
        let serve = Serve { child, _lines: lines };
        // Ready for tickets once it has reconciled with the exchange (a dry run says so).
        let remote = socket(ex);
        let probe =
            serde_json::json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "dry_run": true});
        wait_until(ex, "the engine reconciled", Duration::from_secs(30), || {
            ex.rt
                .block_on(remote.call("POST", "/api/orders", Some(&probe), Duration::from_secs(5)))
                .is_ok_and(|(s, _)| s == 200)
        });
        serve
    }

    fn terminate(mut self) -> i32 {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

fn socket_path(ex: &CliExchange) -> PathBuf {
    ex.home().join("engine-sim.sock")
}

fn socket(ex: &CliExchange) -> Remote {
    Remote::at(socket_path(ex))
}

fn get(ex: &CliExchange, path: &str) -> Value {
    let (status, doc) = ex
        .rt
        .block_on(socket(ex).call("GET", path, None, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(status, 200, "{path}: {doc}");
    doc
}

fn wait_until(_ex: &CliExchange, what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn purposes(orders: &Value) -> Vec<String> {
    orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["purpose"].as_str().unwrap().to_string())
        .collect()
}

fn crbot_positions(doc: &Value) -> Vec<Value> {
    doc["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["external"] != Value::Bool(true) && p["dust"] != Value::Bool(true))
        .cloned()
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn serve_holds_the_account_and_serves_its_socket_0600_without_a_token_until_it_stops() {
    let ex = exchange(&[]);
    let serve = Serve::start(&ex);
    let path = socket_path(&ex);
    assert_eq!(mode_of(&path), 0o600, "owner-only socket");
    // No token over the socket: its permissions are its authentication.
    let doc = get(&ex, "/api/positions");
    assert!(doc["positions"].is_array(), "{doc}");

    // A second engine for the same account refuses, naming the first one's pid.
    let out = spawn(&ex, &["serve", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pid {}", serve.child.id())), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");

    // Nor does a console start a second engine: it attaches to this one as a screen (see
    // tests/e2e_attach.rs), which without a terminal fails on the terminal alone.
    let out = spawn(&ex, &[]).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("setting up the terminal"), "{err}");
    let doc = get(&ex, "/api/positions");
    assert!(doc["positions"].is_array(), "serve still answers: {doc}");

    assert_eq!(serve.terminate(), 0);
    assert!(!path.exists(), "the socket is removed on a clean stop");
}

#[test]
fn an_order_from_a_second_shell_is_the_engines_own_protected_after_its_fill_and_counted_once() {
    let ex = exchange(&[]);
    let _serve = Serve::start(&ex);

    let (code, out, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("placed"), "{out}");
    // The engine places the protective OCO of its client's entry after the fill.
    wait_until(&ex, "the OCO from the engine", Duration::from_secs(10), || {
        let p = purposes(&get(&ex, "/api/orders"));
        p.contains(&"STOP_LOSS".to_string()) && p.contains(&"TAKE_PROFIT".to_string())
    });
    assert_eq!(get(&ex, "/api/risk")["limits"]["trades_used"], 1);
    // `pnl` from a third shell reads beside the engine and agrees.
    let pnl = ex.json(&["pnl"]);
    assert_eq!(pnl["trades_used"], 1, "{pnl}");
    // The engine's live risk state sees the position: a second entry is a duplicate.
    let (code, _, err) = ex.run(&ENTRY);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("DUPLICATE_POSITION"), "{err}");
    assert_eq!(
        get(&ex, "/api/risk")["limits"]["trades_used"],
        1,
        "a refusal is no trade"
    );
}

#[test]
fn a_kill_flatten_from_another_shell_is_in_the_engines_snapshot_within_a_second() {
    let ex = exchange(&[]);
    let _serve = Serve::start(&ex);
    let (code, _, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}");
    wait_until(&ex, "the position", Duration::from_secs(10), || {
        !crbot_positions(&get(&ex, "/api/positions")).is_empty()
    });

    let (code, out, err) = ex.run(&["kill", "--flatten"]);
    assert_eq!(code, 0, "{err}\n{out}");
    // The engine journals who stopped trading: a shell, not the screen's key.
    assert!(
        out.contains("trading state: HALTED: kill switch from the command line"),
        "{out}"
    );
    let done = Instant::now();
    wait_until(&ex, "the flatten in the engine", Duration::from_secs(1), || {
        crbot_positions(&get(&ex, "/api/positions")).is_empty()
    });
    assert!(done.elapsed() <= Duration::from_secs(1));
    assert_eq!(get(&ex, "/api/risk")["trading"]["state"], "halted");
    assert!(get(&ex, "/api/orders")["orders"].as_array().unwrap().is_empty());
}

#[test]
fn a_dry_run_prints_the_same_alone_and_through_the_engine() {
    let ex = exchange(&[]);
    let refused = [
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--take-profit",
        "110000",
        "--dry-run",
    ];
    let alone = ex.run(&refused);
    let alone_json = ex.run(&[
        "--json", refused[0], refused[1], refused[2], refused[3], refused[4], refused[5], refused[6],
    ]);
    let approved_alone = ex.run(&[
        "--json",
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
        "--dry-run",
    ]);
    let _serve = Serve::start(&ex);
    let through = ex.run(&refused);
    let through_json = ex.run(&[
        "--json", refused[0], refused[1], refused[2], refused[3], refused[4], refused[5], refused[6],
    ]);
    let approved_through = ex.run(&[
        "--json",
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
        "--dry-run",
    ]);
    assert_eq!(alone.0, 3, "{alone:?}");
    assert_eq!(
        (alone.0, unaged(&alone.1), &alone.2),
        (through.0, unaged(&through.1), &through.2),
        "the same exit code, stdout and stderr"
    );
    assert_eq!(
        (alone_json.0, unaged(&alone_json.1), &alone_json.2),
        (through_json.0, unaged(&through_json.1), &through_json.2)
    );
    assert_eq!(approved_alone.0, 0, "{approved_alone:?}");
    let a: Value = serde_json::from_str(&approved_alone.1).unwrap();
    let t: Value = serde_json::from_str(&approved_through.1).unwrap();
    assert_eq!(a["orders"], t["orders"], "the exact orders");
    assert_eq!(a["approved"], t["approved"]);
}

/// The text without the quote's age (`…, 15 ms old`), which differs from run to run.
fn unaged(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(" ms old") {
            Some(end) => {
                let start = l[..end].rfind(' ').map_or(0, |i| i + 1);
                format!("{}N{}", &l[..start], &l[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `n` copies of `crbot order …` at once (one per args) and returns their exit codes.
fn parallel(ex: &CliExchange, orders: &[Vec<&str>]) -> Vec<(i32, String)> {
    let children: Vec<Child> = orders
        .iter()
        .map(|args| {
            spawn(ex, args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

fn entries() -> Vec<Vec<&'static str>> {
    vec![
        ENTRY.to_vec(),
        vec![
            "order",
            "buy",
            "ETHUSDT",
            "0.01",
            "--stop-loss",
            "3100",
            "--take-profit",
            "3900",
        ],
        vec![
            "order",
            "buy",
            "SOLUSDT",
            "0.1",
            "--stop-loss",
            "170",
            "--take-profit",
            "210",
        ],
        vec![
            "order",
            "buy",
            "BNBUSDT",
            "0.05",
            "--stop-loss",
            "600",
            "--take-profit",
            "760",
        ],
    ]
}

fn check_one_entry(results: &[(i32, String)]) {
    let sent = results.iter().filter(|(c, _)| *c == 0).count();
    assert_eq!(
        sent, 1,
        "exactly one entry within MAX_TRADES_PER_DAY=1: {results:?}"
    );
    for (code, err) in results.iter().filter(|(c, _)| *c != 0) {
        assert_eq!(*code, 3, "{err}");
        assert!(err.contains("TRADES_PER_DAY"), "{err}");
    }
}

#[test]
fn parallel_entries_through_the_engine_never_exceed_the_trades_per_day() {
    let ex = exchange(&[("MAX_TRADES_PER_DAY", "1")]);
    let _serve = Serve::start(&ex);
    check_one_entry(&parallel(&ex, &entries()));
    trades_used_becomes_one(&ex);
}

/// The day's trade count follows the entry's fill, which the engine hears on the user stream a
/// moment after the command returned: it reaches 1 and stays there.
fn trades_used_becomes_one(ex: &CliExchange) {
    let used = || get(ex, "/api/risk")["limits"]["trades_used"].as_u64();
    wait_until(ex, "the entry counted", Duration::from_secs(10), || {
        used() == Some(1)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(used(), Some(1), "one entry counted once");
}

#[test]
fn parallel_entries_on_one_symbol_through_the_engine_open_one_position() {
    let ex = exchange(&[]);
    let _serve = Serve::start(&ex);
    let six: Vec<Vec<&str>> = (0..6).map(|_| ENTRY.to_vec()).collect();
    let results = parallel(&ex, &six);
    assert_eq!(results.iter().filter(|(c, _)| *c == 0).count(), 1, "{results:?}");
    for (code, err) in results.iter().filter(|(c, _)| *c != 0) {
        assert_eq!(*code, 3, "{err}");
        assert!(err.contains("DUPLICATE_POSITION"), "{err}");
    }
    trades_used_becomes_one(&ex);
}

#[test]
fn parallel_entries_with_no_engine_take_the_account_in_turn() {
    let ex = exchange(&[("MAX_TRADES_PER_DAY", "1")]);
    check_one_entry(&parallel(&ex, &entries()));
    // Six entries on one symbol: one position, never a duplicate.
    let ex = exchange(&[]);
    let six: Vec<Vec<&str>> = (0..6).map(|_| ENTRY.to_vec()).collect();
    let results = parallel(&ex, &six);
    assert_eq!(results.iter().filter(|(c, _)| *c == 0).count(), 1, "{results:?}");
    let orders = ex.json(&["orders"]);
    let entries = orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["purpose"] == "ENTRY")
        .count();
    assert_eq!(entries, 0, "the one entry filled; nothing else open: {orders}");
    let positions = ex.json(&["positions"]);
    assert_eq!(crbot_positions(&positions).len(), 1, "{positions}");
}

#[test]
fn parallel_orders_in_sim_mode_with_no_engine_lose_nothing() {
    // No URL overrides: each command runs the local exchange on the account kept in
    // `<data>/sim-exchange.json`, one after the other (the account's lock).
    let home = tempfile::tempdir().unwrap();
    let children: Vec<Child> = entries()
        .into_iter()
        .map(|args| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("crbot"));
            for v in [
                "CRBOT_HOME",
                "CRBOT_MODE",
                "BINANCE_TESTNET",
                "BINANCE_REST_URL",
                "BINANCE_WS_URL",
                "BINANCE_WS_API_URL",
                "BINANCE_API_KEY",
                "BINANCE_API_SECRET",
                "DATABASE_URL",
                "DEBUG",
            ] {
                c.env_remove(v);
            }
            c.env("ENV", "development")
                .arg("--home")
                .arg(home.path())
                .args(["--mode", "sim", "--json"])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        ids.push(doc["order"]["order_id"].as_u64().expect("an exchange order id"));
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "distinct orderIds: {ids:?}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("sim-exchange.json")).unwrap())
            .unwrap();
    for id in &ids {
        assert!(
            saved["account"]["orders"].get(id.to_string()).is_some(),
            "order {id} kept in sim-exchange.json"
        );
    }
    for asset in ["BTC", "ETH", "SOL", "BNB"] {
        let free = saved["account"]["balances"][asset]["free"]
            .as_str()
            .unwrap_or("0");
        assert!(
            free != "0",
            "{asset} bought and kept: {}",
            saved["account"]["balances"]
        );
    }
}

#[test]
fn a_backup_from_another_shell_is_made_by_the_engine_and_printed_as_alone() {
    let ex = exchange(&[]);
    let out = tempfile::tempdir().unwrap();
    let alone_path = out.path().join("alone.db");
    ex.json(&["orders"]); // the journal exists
    let alone = ex.json(&["backup", alone_path.to_str().unwrap()]);
    let _serve = Serve::start(&ex);
    let copy = out.path().join("through.db");
    let (code, text, err) = ex.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let journal = ex.home().join("journal-sim.db");
    assert_eq!(
        text.trim(),
        format!(
            "backup of {} written to {} ({} bytes)",
            journal.display(),
            copy.display(),
            std::fs::metadata(&copy).unwrap().len()
        )
    );
    let again = ex.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(again.0, 1, "an existing file is never overwritten: {again:?}");
    assert!(again.2.contains("already exists"), "{}", again.2);
    let through = ex.json(&["backup", out.path().join("json.db").to_str().unwrap()]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&alone), keys(&through));
    assert_eq!(alone["source"], through["source"]);
    let backup = crbot::journal::Journal::open_existing(&copy, crbot::domain::Mode::Sim).unwrap();
    assert!(backup.integrity_check().unwrap());
    // A relative path is the caller's, not the engine's working folder.
    let rel = ex
        .crbot()
        .current_dir(out.path())
        .args(["backup", "relative.db"])
        .output()
        .unwrap();
    assert_eq!(
        rel.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rel.stderr)
    );
    assert!(out.path().join("relative.db").exists());
}

/// A crbot BTCUSDT position protected by its OCO, and a resting buy of someone else's on the
/// same symbol (one symbol: the sweep's lines come in one order).
fn kill_scenario(ex: &CliExchange, engine: bool) {
    let (code, out, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}\n{out}");
    if engine {
        wait_until(ex, "the OCO from the engine", Duration::from_secs(10), || {
            purposes(&get(ex, "/api/orders")).contains(&"STOP_LOSS".to_string())
        });
    }
    resting_buy(ex, 1);
}

/// Someone else's limit buy well below the market.
fn resting_buy(ex: &CliExchange, n: u32) {
    use crbot::domain::{ClientOrderId, OrderRequest, OrderType, Side, Symbol, TimeInForce};
    let req = OrderRequest {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        qty: "0.001".parse().unwrap(),
        price: Some("90000".parse().unwrap()),
        stop_price: None,
        client_order_id: ClientOrderId::new(&format!("someone-else-{n}")).unwrap(),
    };
    let placed = ex.rt.block_on(ex.rest().place_order_unchecked(&req));
    assert!(placed.done().is_some(), "resting buy not placed");
}

/// The text with what differs from run to run replaced: the home folder, client order ids,
/// exchange order ids, the backup's file name.
fn normal(text: &str, home: &Path) -> String {
    let text = text.replace(&home.display().to_string(), "HOME");
    let word = |w: &str| -> String {
        let core = w.trim_end_matches([':', ',', ';', '"']);
        let tail = &w[core.len()..];
        if core.starts_with("cr-") || core.starts_with("crb-") {
            format!("CID{tail}")
        } else if core.contains("journal-sim-") {
            format!("BACKUP{tail}")
        } else if core.starts_with('(')
            && core.ends_with(')')
            && core[1..core.len() - 1].chars().all(|c| c.is_ascii_digit())
        {
            format!("(ID){tail}")
        } else {
            w.to_string()
        }
    };
    text.lines()
        .map(|l| l.split(' ').map(word).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_kill_through_the_engine_prints_what_a_kill_alone_prints() {
    let alone = exchange(&[]);
    kill_scenario(&alone, false);
    let alone_text = alone.run(&["kill", "--flatten"]);
    resting_buy(&alone, 2);
    let alone_json = alone.run(&["--json", "kill", "--flatten"]);

    let through = exchange(&[]);
    let _serve = Serve::start(&through);
    kill_scenario(&through, true);
    let through_text = through.run(&["kill", "--flatten"]);
    resting_buy(&through, 2);
    let through_json = through.run(&["--json", "kill", "--flatten"]);

    assert_eq!(alone_text.0, 0, "{alone_text:?}");
    for line in [
        "kill: verifying nothing is open",
        "kill: DONE",
        "flatten:",
        "  BTCUSDT SELL",
        "journal backup: ",
    ] {
        assert!(alone_text.1.contains(line), "{line}: {}", alone_text.1);
    }
    assert_eq!(
        (through_text.0, normal(&through_text.1, through.home())),
        (alone_text.0, normal(&alone_text.1, alone.home())),
        "the same exit code and lines; stderr: {}",
        through_text.2
    );
    assert_eq!(through_json.0, alone_json.0, "{through_json:?}");
    let a: Value = serde_json::from_str(&alone_json.1).unwrap();
    let t: Value = serde_json::from_str(&through_json.1).unwrap();
    assert!(a["backup"]["path"].is_string(), "{a}");
    assert!(a["cancelled"].as_u64().is_some_and(|n| n >= 1), "{a}");
    assert_eq!(
        normal(&serde_json::to_string_pretty(&t).unwrap(), through.home()),
        normal(&serde_json::to_string_pretty(&a).unwrap(), alone.home()),
    );
}

/// Each read command's (exit code, stdout, stderr), in text and `--json`.
fn reads(ex: &CliExchange) -> Vec<(String, (i32, String, String))> {
    let mut all = Vec::new();
    for cmd in ["orders", "positions", "pnl", "balance"] {
        all.push((cmd.to_string(), ex.run(&[cmd])));
        all.push((format!("--json {cmd}"), ex.run(&["--json", cmd])));
    }
    all
}

/// `health` and `ping`, text and `--json`.
fn probes(ex: &CliExchange) -> Vec<(String, (i32, String, String))> {
    let mut all = Vec::new();
    for cmd in ["health", "ping"] {
        all.push((cmd.to_string(), ex.run(&[cmd])));
        all.push((format!("--json {cmd}"), ex.run(&["--json", cmd])));
    }
    all
}

/// Every number (a run of digits, its sign included) as `N`.
fn numberless(text: &str) -> String {
    let mut out = String::new();
    let mut digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    out.replace("-N", "N")
}

#[test]
fn the_read_commands_print_through_the_engine_what_they_print_alone_without_opening_the_journal() {
    let ex = exchange(&[]);
    let (code, out, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}\n{out}");
    let alone = reads(&ex);
    let alone_probes = probes(&ex);
    let alone_export = ex.run(&[
        "journal",
        "export",
        "--csv",
        ex.home().join("alone").to_str().unwrap(),
    ]);
    let _serve = Serve::start(&ex);
    // The journal's path no longer opens (a folder stands there): a command that opened it
    // would fail. The engine keeps the connection it opened at start.
    let journal = ex.home().join("journal-sim.db");
    let aside = ex.home().join("journal-sim.db.aside");
    std::fs::rename(&journal, &aside).unwrap();
    std::fs::create_dir(&journal).unwrap();
    let through = reads(&ex);
    // The trap works: a command that opens the journal itself fails on it.
    let csv = ex.home().join("csv");
    let export = ex.run(&["journal", "export", "--csv", csv.to_str().unwrap()]);
    assert_eq!(export.0, 1, "{export:?}");
    std::fs::remove_dir(&journal).unwrap();
    std::fs::rename(&aside, &journal).unwrap();
    for ((cmd, a), (_, t)) in alone.iter().zip(&through) {
        assert_eq!(a.0, 0, "{cmd} alone: {a:?}");
        assert_eq!(
            (t.0, normal(&t.1, ex.home()), normal(&t.2, ex.home())),
            (a.0, normal(&a.1, ex.home()), normal(&a.2, ex.home())),
            "crbot {cmd}: the same exit code, stdout and stderr"
        );
    }
    // health and ping measure (clock offset, latencies, request weight): the same lines and
    // keys, numbers aside. The engine answers from its own client and state.
    let through_probes = probes(&ex);
    for ((cmd, a), (_, t)) in alone_probes.iter().zip(&through_probes) {
        // This market prints no trade, so ping finds the stream silent (exit 1) either way.
        assert!(cmd.ends_with("ping") || a.0 == 0, "{cmd} alone: {a:?}");
        assert_eq!(
            (t.0, numberless(&t.1), numberless(&t.2)),
            (a.0, numberless(&a.1), numberless(&a.2)),
            "crbot {cmd}: the same exit code, stdout and stderr, numbers aside"
        );
    }
    // The export is written by the engine: the same files and lines.
    let through_export = ex.run(&[
        "journal",
        "export",
        "--csv",
        ex.home().join("through").to_str().unwrap(),
    ]);
    assert_eq!(alone_export.0, 0, "{alone_export:?}");
    assert_eq!(
        (through_export.0, through_export.1.replace("/through/", "/alone/")),
        (alone_export.0, alone_export.1.clone())
    );
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(ex.home().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("through"), names("alone"));
    // The fills are the journal's as they were (orders, risk events and equity move on with
    // the running engine: its reconcile, its readiness dry runs, its samples).
    let trades = |dir: &str| std::fs::read_to_string(ex.home().join(dir).join("trades.csv")).unwrap();
    assert_eq!(trades("through"), trades("alone"));
    assert_eq!(
        trades("alone").lines().count(),
        2,
        "one fill: {}",
        trades("alone")
    );
    // Through the engine the command does not connect at all: aimed at a closed port, it
    // still answers with the engine's view (alone it could not connect).
    for cmd in ["health", "ping", "orders"] {
        let out = ex
            .crbot()
            .env("BINANCE_REST_URL", "http://127.0.0.1:9")
            .args(["--json", cmd])
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert!(doc.is_object(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!doc.to_string().contains("127.0.0.1:9/"), "{cmd}: {doc}");
    }
    let positions: Value = serde_json::from_str(&through[3].1.1).unwrap();
    let row = &positions["positions"][0];
    let pct = row["unrealized_pct"].as_str().unwrap();
    assert!(pct.split('.').nth(1).is_some_and(|d| d.len() == 2), "{row}");
    let avg = row["avg_entry"].as_str().unwrap();
    assert!(
        avg.split('.').nth(1).is_none_or(|d| d.len() <= 2),
        "to the tick: {row}"
    );
}
