//! The trading commands end to end: the built `crbot` binary against a local exchange started
//! in this test (a market that does not move by itself, so prices are known), with the URL
//! overrides and the exchange's own test key, as a user would point crbot at `crbot sim`.
#![allow(clippy::unwrap_used)]

mod support {
    pub mod cli;
}

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use crbot::domain::{Mode, OrderRequest, OrderType, Side, Symbol, TimeInForce};
use crbot::exchange::sim::{self, SimConfig};
use crbot::journal::{EventKind, Journal, KillTrigger};
use rust_decimal::Decimal;
use serde_json::Value;

/// The shared harness, with this file's extras.
struct Exchange(support::cli::CliExchange);

impl std::ops::Deref for Exchange {
    type Target = support::cli::CliExchange;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Exchange {
    fn start() -> Exchange {
        // The market does not move by itself: BTCUSDT stays near 97250.
        Self::start_with(Duration::from_secs(3600))
    }

    /// A market that moves (the stream has something to say).
    fn start_moving() -> Exchange {
        Self::start_with(SimConfig::default().step_interval)
    }

    fn start_with(step_interval: Duration) -> Exchange {
        Self::start_config(SimConfig {
            step_interval,
            ..SimConfig::default()
        })
    }

    fn start_config(config: SimConfig) -> Exchange {
        Exchange(support::cli::CliExchange::start(config))
    }

    fn exchange_open_orders(&self) -> usize {
        let rest = self.rest();
        self.rt.block_on(rest.open_orders(None)).unwrap().len()
    }

    fn journal_path(&self) -> PathBuf {
        self.home().join("journal-sim.db")
    }
}

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

#[test]
fn order_places_a_real_order_that_orders_positions_and_pnl_show() {
    let ex = Exchange::start();
    let (code, out, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("FILLED"), "{out}");
    assert!(out.contains("protective OCO"), "{out}");

    // The protective OCO rests on the exchange.
    assert_eq!(ex.exchange_open_orders(), 2);

    let orders = ex.json(&["orders"]);
    let list = orders["orders"].as_array().unwrap();
    let purposes: Vec<&str> = list.iter().map(|o| o["purpose"].as_str().unwrap()).collect();
    assert_eq!(list.len(), 2, "{orders}");
    assert!(
        purposes.contains(&"TAKE_PROFIT") && purposes.contains(&"STOP_LOSS"),
        "{orders}"
    );

    let positions = ex.json(&["positions"]);
    let btc = positions["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "BTCUSDT")
        .unwrap_or_else(|| panic!("no BTCUSDT position: {positions}"));
    assert_eq!(btc["external"], false);
    assert!(btc["avg_entry"].as_str().is_some(), "{btc}");
    // The fill price (the screen's Entry) beside the cost per unit with the fee: the BTC fee
    // leaves fewer coins for the same cost, so the cost per unit is the higher.
    let fill: Decimal = btc["avg_fill"].as_str().unwrap().parse().unwrap();
    let entry: Decimal = btc["avg_entry"].as_str().unwrap().parse().unwrap();
    assert!(fill < entry, "{btc}");

    let pnl = ex.json(&["pnl"]);
    assert_eq!(pnl["trades_used"], 1, "{pnl}");
    assert!(pnl["equity"].as_str().is_some(), "{pnl}");
    // The exchange took 0.1% of the 0.001 BTC bought, in BTC: reported exactly, with its value.
    let fees = &pnl["fees"]["by_position"][0];
    assert_eq!(fees["symbol"], "BTCUSDT", "{pnl}");
    assert_eq!(fees["paid"]["BTC"], "0.000001", "{pnl}");
    assert!(fees["value"]["USDT"].as_str().is_some(), "{pnl}");
    assert_eq!(pnl["fees"]["total"]["complete"], true, "{pnl}");
    let (_, text, _) = ex.run(&["pnl"]);
    assert!(
        text.contains("fees BTCUSDT: ") && text.contains("0.00000100 BTC"),
        "{text}"
    );
}

#[test]
fn entry_without_stop_loss_exits_3_with_missing_stop_loss() {
    let ex = Exchange::start();
    let (code, out, err) = ex.run(&["order", "buy", "BTCUSDT", "0.001", "--take-profit", "110000"]);
    assert_eq!(code, 3, "{err}\n{out}");
    assert!(out.contains("MISSING_STOP_LOSS"), "{out}");
    assert!(
        err.contains("MISSING_STOP_LOSS") && err.lines().count() >= 1,
        "{err}"
    );
    assert_eq!(ex.exchange_open_orders(), 0);
}

#[test]
fn oversized_entry_is_rejected_with_exit_3_and_the_position_size_rule() {
    let ex = Exchange::start();
    // 0.01 BTC ≈ 972 USDT, over 5 % of ≈ 10 326 USDT equity.
    let (code, out, err) = ex.run(&[
        "--json",
        "order",
        "buy",
        "BTCUSDT",
        "0.01",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 3, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["approved"], false);
    assert_eq!(v["rejections"][0]["code"], "POSITION_SIZE", "{v}");
    assert_eq!(ex.exchange_open_orders(), 0);
}

#[test]
fn dry_run_prints_the_orders_and_sends_nothing() {
    let ex = Exchange::start();
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96000",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("APPROVED") && out.contains("BUY LIMIT 0.001 BTCUSDT @ 96000"),
        "{out}"
    );
    assert!(out.contains("STOP_LOSS") && out.contains("LIMIT_MAKER"), "{out}");
    assert_eq!(ex.exchange_open_orders(), 0, "a dry run sent an order");
    let journal = Journal::open(&ex.journal_path(), Mode::Sim).unwrap();
    assert!(
        journal.recent_orders(10).unwrap().is_empty(),
        "a dry run journaled an order"
    );
    let events = journal.recent_risk_events(10).unwrap();
    assert_eq!(events.len(), 1, "the dry run's decision is journaled");
    assert!(events[0].record.approved);
}

#[test]
fn kill_halts_cancels_everything_even_unknown_orders_and_resume_rearms() {
    let ex = Exchange::start();
    // One resting entry of crbot's own…
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96000",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    // …and one placed elsewhere, which the journal does not know.
    let rest = ex.rest();
    let foreign = OrderRequest {
        symbol: Symbol::new("ETHUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        qty: "0.01".parse().unwrap(),
        price: Some("3300".parse().unwrap()),
        stop_price: None,
        client_order_id: crbot::domain::ClientOrderId::new("someone-else-1").unwrap(),
    };
    assert!(
        ex.rt
            .block_on(rest.place_order_unchecked(&foreign))
            .done()
            .is_some()
    );
    assert_eq!(ex.exchange_open_orders(), 2);

    let kill = ex.json(&["kill"]);
    assert_eq!(kill["ok"], true, "{kill}");
    assert_eq!(kill["halt_recorded"], true, "{kill}");
    assert!(
        kill["trading_state"].as_str().unwrap().starts_with("HALTED"),
        "{kill}"
    );
    assert!(kill["backup"]["path"].as_str().is_some(), "{kill}");
    assert_eq!(ex.exchange_open_orders(), 0, "orders left open after kill");

    // Halted: a new entry is refused by the risk engine.
    let (code, out, _) = ex.run(&ENTRY);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("STATE_HALTED"), "{out}");

    let resume = ex.json(&["resume"]);
    assert_eq!(resume["rearmed"], true, "{resume}");
    assert_eq!(resume["trading_state"], "ACTIVE");
    let again = ex.json(&["resume"]);
    assert_eq!(again["rearmed"], false, "{again}");
    let (code, out, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "after resume the entry should pass: {err}\n{out}");
}

#[test]
fn kill_journals_the_halt_the_sweep_and_its_backup_as_the_console_does() {
    let ex = Exchange::start();
    let (code, _, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}");
    let kill = ex.json(&["kill"]);
    assert_eq!(kill["ok"], true, "{kill}");
    let journal = Journal::open(&ex.journal_path(), Mode::Sim).unwrap();
    let halt = journal.latest_trading_state().unwrap().unwrap().record;
    assert_eq!(halt.trigger, KillTrigger::Cli.as_code());
    let events = journal.recent_events(100).unwrap();
    let has = |kind: EventKind, symbol: Option<&str>| {
        events.iter().any(|e| {
            e.record.event_kind() == Some(kind) && e.record.symbol.as_ref().map(|s| s.as_str()) == symbol
        })
    };
    assert!(has(EventKind::Kill, None), "{events:?}");
    assert!(has(EventKind::KillCancel, Some("BTCUSDT")), "{events:?}");
    assert!(has(EventKind::KillDone, None), "{events:?}");
    // The backup is journaled (what `crbot doctor` reads) and lies in the data folder's backups.
    let path = kill["backup"]["path"].as_str().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.record.event_kind() == Some(EventKind::Backup) && e.record.detail == path),
        "{events:?}"
    );
    assert_eq!(
        Path::new(path).parent(),
        Some(ex.home().join("backups").as_path())
    );
}

#[test]
fn kill_flatten_sells_crbots_position_and_reports_dust() {
    let ex = Exchange::start();
    let (code, _, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}");
    let kill = ex.json(&["kill", "--flatten"]);
    assert_eq!(kill["ok"], true, "{kill}");
    let sells = kill["flatten"]["sells"].as_array().unwrap();
    assert_eq!(sells.len(), 1, "{kill}");
    assert_eq!(sells[0]["symbol"], "BTCUSDT");
    assert_eq!(sells[0]["ok"], true, "{kill}");
    // 0.001 bought, commission 0.000001 BTC: the lot step (0.00001) leaves 0.000009 as dust.
    let dust = kill["flatten"]["dust"].as_array().unwrap();
    assert_eq!(dust.len(), 1, "{kill}");
    assert_eq!(dust[0]["asset"], "BTC");
    assert_eq!(ex.exchange_open_orders(), 0);
}

#[test]
fn selling_part_of_a_protected_position_moves_its_protection_to_the_rest() {
    let ex = Exchange::start();
    let (code, _, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.002",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ex.exchange_open_orders(), 2, "the entry is protected by an OCO");
    // The OCO holds the whole position: the sell cancels it, sells, and protects the rest.
    let (code, out, err) = ex.run(&["order", "sell", "BTCUSDT", "0.001"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rest = ex.rest();
    let open = ex.rt.block_on(rest.open_orders(None)).unwrap();
    assert_eq!(open.len(), 2, "a new OCO on what is left: {open:?}");
    assert!(
        open.iter()
            .all(|o| o.orig_qty < "0.001".parse().unwrap() && !o.orig_qty.is_zero()),
        "the new legs cover the rest, not the whole: {open:?}"
    );
}

#[test]
fn backup_writes_a_valid_journal_and_export_writes_the_csv_files() {
    let ex = Exchange::start();
    let (code, _, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}");
    let out_dir = tempfile::tempdir().unwrap();
    let backup = out_dir.path().join("copy.db");
    let (code, out, err) = ex.run(&["backup", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("copy.db"), "{out}");
    let copy = Journal::open(&backup, Mode::Sim).unwrap();
    assert!(copy.integrity_check().unwrap());
    assert!(
        !copy.recent_orders(10).unwrap().is_empty(),
        "the backup lacks the orders"
    );

    let csv = out_dir.path().join("csv");
    let v = ex.json(&["journal", "export", "--csv", csv.to_str().unwrap()]);
    assert_eq!(v["files"].as_array().unwrap().len(), 7, "{v}");
    for name in [
        "orders.csv",
        "trades.csv",
        "risk_events.csv",
        "equity_curve.csv",
        "positions.csv",
        "fees_daily.csv",
        "capital_flows.csv",
    ] {
        assert!(csv.join(name).is_file(), "{name} missing");
    }
}

#[test]
fn doctor_fails_without_a_vault_in_testnet_and_prints_each_item() {
    let ex = Exchange::start();
    let out = ex.crbot_in("testnet").arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL") && text.contains("vault"), "{text}");
    assert!(text.contains("PASS") && text.contains("clock offset"), "{text}");

    let out = ex.crbot().args(["--json", "doctor"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "sim needs no vault: {v}");
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn invalid_limit_in_the_environment_exits_1_with_one_line_naming_it() {
    let ex = Exchange::start();
    let out = ex
        .crbot()
        .env("MAX_DAILY_LOSS_PERCENT", "150")
        .arg("balance")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("MAX_DAILY_LOSS_PERCENT"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn json_output_of_the_read_commands_parses() {
    let ex = Exchange::start_moving();
    let balance = ex.json(&["balance"]);
    assert!(
        balance["balances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["asset"] == "USDT"),
        "{balance}"
    );
    assert!(balance["equity_usdt"].as_str().is_some());
    let health = ex.json(&["health"]);
    assert_eq!(health["trading_state"], "ACTIVE", "{health}");
    assert_eq!(health["journal"]["integrity_ok"], true, "{health}");
    let ping = ex.json(&["ping"]);
    assert_eq!(ping["ok"], true, "{ping}");
    assert_eq!(ping["stream_reachable"], true, "{ping}");
}

#[test]
fn malformed_quantity_is_a_usage_error() {
    let ex = Exchange::start();
    let (code, _, err) = ex.run(&["order", "buy", "BTCUSDT", "lots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("QTY"), "{err}");
}

#[test]
fn an_order_answered_503_after_acceptance_is_resolved_by_client_id_not_resent() {
    let ex = Exchange::start();
    ex.handle.faults().set(sim::Faults {
        order_503: 1,
        ..sim::Faults::default()
    });
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96000",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("resolved"), "{out}");
    // Exactly one order on the exchange: resolved, never sent twice.
    assert_eq!(ex.exchange_open_orders(), 1);
    let journal = Journal::open(&ex.journal_path(), Mode::Sim).unwrap();
    let orders = journal.recent_orders(10).unwrap();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].state.as_code(), "NEW");
}

/// The user's flow: `crbot sim` in one shell, `crbot order` / `crbot orders` in another.
#[test]
fn order_against_crbot_sim_in_another_process_then_orders_shows_it() {
    use std::io::BufRead;
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("crbot"))
        .args(["sim", "--addr", "127.0.0.1:0", "--seed", "7", "--state"])
        .arg(state.path().join("sim.json"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Stopped however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Stop(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    let field = |name: &str| -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("`{name}` missing from the banner: {line}"))
            .to_string()
    };
    let home = tempfile::tempdir().unwrap();
    let crbot = || {
        let mut c = Command::cargo_bin("crbot").unwrap();
        c.env_remove("CRBOT_HOME")
            .env_remove("DATABASE_URL")
            .env_remove("BINANCE_TESTNET")
            .env("ENV", "development")
            .env("BINANCE_REST_URL", field("rest"))
            .env("BINANCE_WS_URL", field("ws"))
            .env("BINANCE_WS_API_URL", field("ws_api"))
            .env("BINANCE_API_KEY", field("api_key"))
            .env("BINANCE_API_SECRET", field("api_secret"))
            .arg("--home")
            .arg(home.path())
            .args(["--mode", "testnet"])
            .timeout(Duration::from_secs(60));
        c
    };
    let placed = crbot()
        .args([
            "order",
            "buy",
            "ETHUSDT",
            "0.01",
            "--limit",
            "3300",
            "--stop-loss",
            "3000",
            "--take-profit",
            "3800",
        ])
        .output()
        .unwrap();
    let orders = crbot().args(["--json", "orders"]).output().unwrap();
    assert_eq!(
        placed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&placed.stderr)
    );
    let v: Value = serde_json::from_slice(&orders.stdout).unwrap();
    let list = v["orders"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["symbol"], "ETHUSDT");
    assert_eq!(list[0]["purpose"], "ENTRY");
}

/// `--mode sim` with no URL: the exchange runs inside each command on the persisted account,
/// so an order placed by one command is seen by the next.
#[test]
fn sim_mode_without_a_console_keeps_the_account_between_commands() {
    let home = tempfile::tempdir().unwrap();
    let crbot = || {
        let mut c = Command::cargo_bin("crbot").unwrap();
        for v in [
            "CRBOT_HOME",
            "DATABASE_URL",
            "BINANCE_TESTNET",
            "BINANCE_REST_URL",
            "BINANCE_WS_URL",
            "BINANCE_WS_API_URL",
            "BINANCE_API_KEY",
            "BINANCE_API_SECRET",
        ] {
            c.env_remove(v);
        }
        c.env("ENV", "development")
            .arg("--home")
            .arg(home.path())
            .args(["--mode", "sim"])
            .timeout(Duration::from_secs(60));
        c
    };
    let placed = crbot().args(ENTRY).output().unwrap();
    assert_eq!(
        placed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&placed.stderr)
    );
    let orders = crbot().args(["--json", "orders"]).output().unwrap();
    let v: Value = serde_json::from_slice(&orders.stdout).unwrap();
    let purposes: Vec<&str> = v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(purposes.len(), 2, "{v}");
    assert!(
        purposes.contains(&"STOP_LOSS") && purposes.contains(&"TAKE_PROFIT"),
        "{v}"
    );
}

#[test]
fn no_command_prints_or_writes_the_api_secret() {
    let ex = Exchange::start();
    let secret = ex.handle.api_secret().expose().to_string();
    let mut seen = String::new();
    for args in [
        &ENTRY[..],
        &["orders"],
        &["--json", "health"],
        &["doctor"],
        &["kill", "--flatten"],
        &["resume"],
    ] {
        let (_, out, err) = ex.run(args);
        seen.push_str(&out);
        seen.push_str(&err);
    }
    assert!(!seen.contains(&secret), "the secret was printed");
    let mut stack = vec![ex.home().to_path_buf()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "the secret is in {}", path.display());
            }
        }
    }
    assert!(files >= 2, "expected the journal and a log in the home folder");
}

#[test]
fn kill_still_cancels_when_the_journal_cannot_record_the_halt_and_says_so() {
    let ex = Exchange::start();
    let rest = ex.rest();
    let order = OrderRequest {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        qty: "0.001".parse().unwrap(),
        price: Some("95000".parse().unwrap()),
        stop_price: None,
        client_order_id: crbot::domain::ClientOrderId::new("placed-elsewhere-1").unwrap(),
    };
    assert!(
        ex.rt
            .block_on(rest.place_order_unchecked(&order))
            .done()
            .is_some()
    );
    // The journal is a file that is not a journal: crbot must refuse it, and cancel anyway.
    let broken = ex.home().join("broken.db");
    std::fs::write(&broken, b"this is not a SQLite database, just text").unwrap();
    let out = ex
        .crbot()
        .env("DATABASE_URL", &broken)
        .args(["--json", "kill"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WARNING") && err.contains("NOT recorded"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["halt_recorded"], false, "{v}");
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        ex.exchange_open_orders(),
        0,
        "kill did not cancel without a journal"
    );
    assert_eq!(
        std::fs::read(&broken).unwrap(),
        b"this is not a SQLite database, just text",
        "the refused file was changed"
    );
}

#[test]
fn a_limit_entry_that_fills_later_gets_its_protective_oco_from_the_next_command() {
    let ex = Exchange::start();
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96500",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("NEW"), "{out}");
    // The market falls through the limit while no crbot process runs.
    ex.handle.set_price("BTCUSDT", "96000".parse().unwrap()).unwrap();
    let orders = ex.json(&["orders"]);
    let purposes: Vec<&str> = orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["purpose"].as_str().unwrap())
        .collect();
    assert!(
        purposes.contains(&"STOP_LOSS") && purposes.contains(&"TAKE_PROFIT") && !purposes.contains(&"ENTRY"),
        "{orders}"
    );
    assert_eq!(ex.exchange_open_orders(), 2);
    // Placed once: a further command does not place it again.
    let again = ex.json(&["orders"]);
    assert_eq!(again["orders"].as_array().unwrap().len(), 2, "{again}");
    assert_eq!(ex.exchange_open_orders(), 2);
}

/// A crossing limit entry whose answer is lost (`faults`), then what a reconciled order must
/// be: crbot's own order with everything its ticket asked for.
fn assert_lost_entry_is_reconciled_as_crbots_protected_position(faults: sim::Faults) {
    let ex = Exchange::start();
    let ask = ex
        .rt
        .block_on(ex.rest().book_ticker(&Symbol::new("BTCUSDT").unwrap()))
        .unwrap()
        .ask
        .to_string();
    ex.handle.faults().set(faults);
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        &ask,
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    ex.handle.faults().set(sim::Faults::default());
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("resolved") && out.contains("FILLED"), "{out}");
    assert!(!out.contains("no protective OCO"), "{out}");

    // The protective OCO rests on the exchange, and the entry was sent exactly once.
    assert_eq!(ex.exchange_open_orders(), 2, "{out}");
    let all = ex
        .rt
        .block_on(ex.rest().open_orders(None))
        .unwrap()
        .into_iter()
        .map(|o| o.order_type.to_string())
        .collect::<Vec<_>>();
    assert!(all.contains(&"STOP_LOSS".to_string()), "{all:?}");

    // Its fills carry its client order id.
    let journal = Journal::open(&ex.journal_path(), Mode::Sim).unwrap();
    let orders = journal.recent_orders(10).unwrap();
    let entries: Vec<_> = orders
        .iter()
        .filter(|o| o.purpose == crbot::domain::OrderPurpose::Entry)
        .collect();
    assert_eq!(entries.len(), 1, "{orders:?}");
    let fills = journal.fills().unwrap();
    assert!(!fills.is_empty());
    assert!(
        fills
            .iter()
            .all(|f| f.client_order_id.as_ref() == Some(&entries[0].client_order_id)),
        "{fills:?}"
    );
    drop(journal);

    // It counts as crbot's position…
    let positions = ex.json(&["positions"]);
    let btc = positions["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "BTCUSDT")
        .unwrap_or_else(|| panic!("no BTCUSDT position: {positions}"))
        .clone();
    assert_eq!(btc["external"], false, "{positions}");

    // …and the kill switch cancels its protection and flatten sells it.
    let kill = ex.json(&["kill", "--flatten"]);
    assert_eq!(kill["ok"], true, "{kill}");
    let sells = kill["flatten"]["sells"].as_array().unwrap();
    assert_eq!(sells.len(), 1, "{kill}");
    assert_eq!(sells[0]["ok"], true, "{kill}");
    assert_eq!(ex.exchange_open_orders(), 0);
}

#[test]
fn an_entry_answered_503_is_reconciled_as_crbots_own_protected_position() {
    assert_lost_entry_is_reconciled_as_crbots_protected_position(sim::Faults {
        order_503: 1,
        ..sim::Faults::default()
    });
}

#[test]
fn an_entry_whose_answer_times_out_is_reconciled_as_crbots_own_protected_position() {
    // Longer than the client's order timeout (12 s): the order is placed, its answer never
    // arrives in time.
    assert_lost_entry_is_reconciled_as_crbots_protected_position(sim::Faults {
        order_delay_ms: Some(15_000),
        ..sim::Faults::default()
    });
}

/// A ban file that cannot be this exchange's: one written by an older version (no origin, and
/// a time decades away: a message misread), and one for another exchange.
#[test]
fn a_stored_ban_of_another_exchange_neither_stops_kill_and_ping_nor_is_reported() {
    // A moving market: `ping` also checks that the stream has something to say.
    let ex = Exchange::start_moving();
    for stored in ["2111643641190", "2111643641190 https://api.binance.com"] {
        std::fs::write(ex.home().join("ban-until-sim"), stored).unwrap();
        let (code, out, err) = ex.run(&["kill"]);
        assert_eq!(code, 0, "{stored}: {err}\n{out}");
        assert!(
            !out.contains("banned") && !err.contains("banned"),
            "{stored}: {out}{err}"
        );
        assert!(out.contains("kill: DONE"), "{out}");
        let (code, out, err) = ex.run(&["ping"]);
        assert_eq!(code, 0, "{stored}: {err}\n{out}");
        assert!(
            !out.contains("banned") && !err.contains("banned"),
            "{stored}: {out}{err}"
        );
        ex.run(&["resume"]);
    }
}

/// A ban stored for this very exchange but wrong (it answers): one probe, and it is lifted.
#[test]
fn a_wrong_stored_ban_of_this_exchange_is_probed_lifted_and_the_kill_goes_through() {
    let ex = Exchange::start();
    let (code, _, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96000",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ex.exchange_open_orders(), 1);
    let file = ex.home().join("ban-until-sim");
    std::fs::write(&file, format!("2111643641190 {}", ex.handle.rest_url())).unwrap();
    let (code, out, err) = ex.run(&["kill"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("kill: DONE"), "{out}");
    assert!(!out.contains("banned") && !err.contains("banned"), "{out}{err}");
    assert_eq!(
        ex.exchange_open_orders(),
        0,
        "the kill switch cancelled the order"
    );
    let left: i64 = std::fs::read_to_string(&file)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(left < 2111643641190, "the stored ban is lifted");
}

/// A kill switch that could not send anything never says it cancelled anything.
#[test]
fn a_kill_during_a_real_ban_says_nothing_was_sent_and_never_all_orders_cancelled() {
    // A ban longer than the kill switch waits for.
    let ex = Exchange::start_config(SimConfig {
        step_interval: Duration::from_secs(3600),
        rate_limits: sim::RateLimits {
            ban_ms: 600_000,
            ..sim::RateLimits::default()
        },
        ..SimConfig::default()
    });
    let (code, _, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96000",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}");
    // The exchange bans this IP: a 429, then two requests during its back-off.
    let rest = ex.rest();
    ex.handle.faults().set(sim::Faults {
        next_429: 1,
        ..sim::Faults::default()
    });
    let url = format!("{}/api/v3/ping", ex.handle.rest_url());
    for _ in 0..3 {
        ex.rt.block_on(reqwest::get(&url)).unwrap();
    }
    let banned = ex.rt.block_on(rest.ping());
    assert!(
        matches!(banned, Err(crbot::domain::broker::BrokerError::Banned { .. })),
        "{banned:?}"
    );
    let (code, out, err) = ex.run(&["kill"]);
    assert_eq!(code, 1, "{err}\n{out}");
    assert!(!out.contains("all orders cancelled"), "{out}");
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(out.contains("not cancelled"), "{out}");
}

#[test]
fn a_read_answered_429_waits_for_retry_after_and_succeeds() {
    let ex = Exchange::start();
    ex.handle.faults().set(sim::Faults {
        next_429: 1,
        ..sim::Faults::default()
    });
    let (code, out, err) = ex.run(&["--json", "balance"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(err.contains("rate limited"), "the wait is said on stderr: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v.is_object(), "{v}");
}

#[test]
fn an_order_answered_429_waits_then_is_looked_up_and_placed_exactly_once() {
    // Two orders per 10 s; someone else has just used both, so crbot's entry is answered 429
    // (-1015), and after the wait its protective OCO (two orders) is answered 429 too.
    let ex = Exchange::start_config(SimConfig {
        step_interval: Duration::from_secs(3600),
        rate_limits: sim::RateLimits {
            orders_per_10s: 2,
            ..sim::RateLimits::default()
        },
        ..SimConfig::default()
    });
    let rest = ex.rest();
    for n in 0..2 {
        let req = OrderRequest {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            qty: "0.001".parse().unwrap(),
            price: Some(format!("{}", 80000 + n).parse().unwrap()),
            stop_price: None,
            client_order_id: crbot::domain::ClientOrderId::new(&format!("elsewhere-{n}")).unwrap(),
        };
        assert!(ex.rt.block_on(rest.place_order_unchecked(&req)).done().is_some());
    }
    let (code, out, err) = ex.run(&ENTRY);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(err.contains("rate limited"), "{err}");
    let all = ex
        .rt
        .block_on(rest.open_orders(None))
        .unwrap()
        .into_iter()
        .filter(|o| !o.order_client_id().starts_with("elsewhere"))
        .count();
    assert_eq!(all, 2, "the protective OCO rests: {out}");
    let journal = Journal::open(&ex.journal_path(), Mode::Sim).unwrap();
    let entry = journal
        .recent_orders(10)
        .unwrap()
        .into_iter()
        .find(|o| o.purpose == crbot::domain::OrderPurpose::Entry)
        .unwrap();
    assert_eq!(entry.state.as_code(), "FILLED");
}
