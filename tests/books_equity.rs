//! Equity is never silently short, and balances are fresh after crbot's own start-up orders:
//! the built `crbot` binary against a local exchange started here, on a market that does not
//! move by itself (prices are known), with the exchange's own test key.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, SimConfig, SimHandle};
use rust_decimal::Decimal;
use serde_json::Value;

struct Exchange {
    rt: tokio::runtime::Runtime,
    handle: SimHandle,
    home: tempfile::TempDir,
    /// The weight window (minute) the last burn used: each burn needs a fresh one.
    burnt_window: std::cell::Cell<i64>,
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Polls `cond` until it holds or `timeout` passes (then panics naming `what`).
fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

impl Exchange {
    fn start(balances: &[(&str, &str)]) -> Exchange {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = SimConfig {
            // The market does not move by itself.
            step_interval: Duration::from_secs(3600),
            starting_balances: balances.iter().map(|(a, v)| (a.to_string(), d(v))).collect(),
            ..SimConfig::default()
        };
        let handle = rt
            .block_on(sim::start("127.0.0.1:0".parse().unwrap(), config))
            .unwrap();
        Exchange {
            rt,
            handle,
            home: tempfile::tempdir().unwrap(),
            burnt_window: std::cell::Cell::new(0),
        }
    }

    fn crbot(&self, home: &Path) -> Command {
        let mut c = Command::cargo_bin("crbot").unwrap();
        for v in [
            "CRBOT_HOME",
            "CRBOT_MODE",
            "BINANCE_TESTNET",
            "DATABASE_URL",
            "DEBUG",
            "MAX_DAILY_LOSS_PERCENT",
        ] {
            c.env_remove(v);
        }
        c.env("ENV", "development")
            .env("BINANCE_REST_URL", self.handle.rest_url())
            .env("BINANCE_WS_URL", self.handle.ws_url())
            .env("BINANCE_WS_API_URL", self.handle.ws_api_url())
            .env("BINANCE_API_KEY", self.handle.api_key())
            .env("BINANCE_API_SECRET", self.handle.api_secret().expose())
            .arg("--home")
            .arg(home)
            .args(["--mode", "sim"])
            .timeout(Duration::from_secs(60));
        c
    }

    /// Runs crbot in `home`: (exit code, stdout, stderr).
    fn run_in(&self, home: &Path, args: &[&str]) -> (i32, String, String) {
        let out = self.crbot(home).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_in(self.home.path(), args)
    }

    fn json_in(&self, home: &Path, args: &[&str]) -> (i32, Value, String) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run_in(home, &all);
        let v = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("crbot {args:?}: not JSON ({e}):\n{out}\n{err}"));
        (code, v, err)
    }

    fn rest(&self) -> BinanceRest {
        BinanceRest::without_ban_store(
            Endpoints::local(self.handle.addr()).unwrap(),
            Some(Credentials::hmac(
                &self.handle.api_key(),
                self.handle.api_secret().expose(),
            )),
            RestConfig::default(),
        )
        .unwrap()
    }

    /// The exchange's request weight used in the current minute, the ping (weight 1) that
    /// asks included.
    fn weight_now(&self, rest: &BinanceRest) -> u32 {
        self.rt.block_on(rest.ping()).unwrap();
        rest.usage().weight_used
    }

    /// Runs `args` with the exchange's request weight so used that crbot's own guard (90 % of
    /// the limit) admits everything up to the price requests and refuses those: the case of
    /// a user running `crbot balance` many times in one minute. `pre` is the weight the command
    /// uses before its first price request.
    fn run_with_prices_refused(&self, home: &Path, pre: u32, args: &[&str]) -> (i32, Value, String) {
        let rest = self.rest();
        // A fresh weight window, early enough that crbot's guard refuses (it would wait out the
        // last few seconds of a window instead).
        wait_until(
            "the start of a fresh weight window",
            Duration::from_secs(130),
            || {
                let now = chrono::Utc::now().timestamp_millis();
                now.div_euclid(60_000) != self.burnt_window.get()
                    && (500..15_000).contains(&now.rem_euclid(60_000))
            },
        );
        self.burnt_window
            .set(chrono::Utc::now().timestamp_millis().div_euclid(60_000));
        let budget = 6000 * 90 / 100;
        let target = budget - pre - 1;
        let mut used = self.weight_now(&rest);
        while used + 20 < target {
            self.rt.block_on(rest.exchange_info(&[])).unwrap();
            used = self.weight_now(&rest);
        }
        while used < target {
            used = self.weight_now(&rest);
        }
        assert_eq!(used, target);
        self.json_in(home, args)
    }
}

fn amount(v: &Value) -> Decimal {
    d(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")))
}

/// 10000 USDT + 1 ETH × 3380 + 10 SOL × 182.5 + 1000 XRP × 2.215.
const TRUE_EQUITY: &str = "17420";

#[test]
fn balance_never_prints_or_records_a_partial_equity_when_price_requests_are_refused() {
    let ex = Exchange::start(&[("USDT", "10000"), ("ETH", "1"), ("SOL", "10"), ("XRP", "1000")]);
    let truth = d(TRUE_EQUITY);
    let close = |v: &Value| (amount(v) - truth).abs() <= d("1");

    // Every price known: the true equity, recorded with the prices seen.
    let (code, first, err) = ex.json_in(ex.home.path(), &["balance"]);
    assert_eq!(code, 0, "{err}");
    assert!(close(&first["equity_usdt"]), "{first}");

    // The weight one `balance` uses before it asks for prices.
    let rest = ex.rest();
    wait_until("the start of a weight window", Duration::from_secs(70), || {
        let ms = chrono::Utc::now().timestamp_millis().rem_euclid(60_000);
        (500..40_000).contains(&ms)
    });
    let before = ex.weight_now(&rest);
    let (code, _, err) = ex.json_in(ex.home.path(), &["balance"]);
    assert_eq!(code, 0, "{err}");
    // Less this measuring ping and the three price requests (weight 2 each).
    let pre = ex.weight_now(&rest) - before - 1 - 3 * 2;

    // Prices refused, last known prices seconds old: used, and said so with their age.
    let (code, held, err) = ex.run_with_prices_refused(ex.home.path(), pre, &["balance"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        close(&held["equity_usdt"]),
        "a partial equity was printed: {held}"
    );
    let notes = held["notes"].to_string();
    assert!(notes.contains("no quote"), "the prices were not refused: {held}");
    assert_eq!(first["equity_complete"], true, "{first}");
    assert_eq!(held["equity_status"], "complete_held_prices", "{held}");
    let held_assets: Vec<&str> = held["held_prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asset"].as_str().unwrap())
        .collect();
    assert_eq!(held_assets, ["ETH", "SOL", "XRP"], "{held}");

    // A fresh journal has no last known prices: the equity is unknown, not smaller, and it
    // says so in the document and on stderr; no P&L is computed and nothing reaches the curve.
    let fresh = tempfile::tempdir().unwrap();
    let (code, pnl, err) = ex.run_with_prices_refused(fresh.path(), pre, &["pnl"]);
    assert_eq!(code, 1, "no P&L is a failure, not a figure: {pnl}");
    assert!(err.contains("equity incomplete"), "{err}");
    assert_eq!(pnl["equity"], Value::Null, "{pnl}");
    assert_eq!(pnl["equity_complete"], false, "{pnl}");
    assert_eq!(pnl["equity_status"], "incomplete", "{pnl}");
    assert_eq!(pnl["unpriced"], serde_json::json!(["ETH", "SOL", "XRP"]), "{pnl}");
    assert_eq!(pnl["day_pnl"], Value::Null, "{pnl}");
    assert_eq!(pnl["drawdown_pct"], Value::Null, "{pnl}");
    let journal = rusqlite::Connection::open(fresh.path().join("journal-sim.db")).unwrap();
    let samples: i64 = journal
        .query_row("SELECT COUNT(*) FROM equity_curve", [], |r| r.get(0))
        .unwrap();
    assert_eq!(samples, 0, "an incomplete equity reached the curve");

    // Every sample ever recorded is the true equity.
    let journal = rusqlite::Connection::open(ex.home.path().join("journal-sim.db")).unwrap();
    let mut stmt = journal.prepare("SELECT equity FROM equity_curve").unwrap();
    let recorded: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(!recorded.is_empty());
    for e in recorded {
        assert!((d(&e) - truth).abs() <= d("1"), "recorded {e}, true {truth}");
    }
}

/// A limit buy of 2 SOL with its stop-loss and take-profit rests below the market; the price
/// then crosses while no crbot process runs, so the entry fills unprotected.
fn entry_filled_while_crbot_was_not_running(ex: &Exchange) {
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "SOLUSDT",
        "2",
        "--limit",
        "180",
        "--stop-loss",
        "170",
        "--take-profit",
        "200",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    ex.handle.set_price("SOLUSDT", d("179")).unwrap();
}

fn sol_row(doc: &Value) -> Value {
    doc["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "SOL")
        .unwrap_or_else(|| panic!("no SOL row: {doc}"))
        .clone()
}

#[test]
fn a_sell_as_the_first_command_after_a_startup_protective_order_succeeds() {
    let ex = Exchange::start(&[("USDT", "10000")]);
    entry_filled_while_crbot_was_not_running(&ex);
    // The first command protects the position (the OCO locks the SOL), then sells half: it
    // must see that the SOL is locked and move the protection, not send a sell the exchange
    // refuses for want of free balance.
    let (code, out, err) = ex.run(&["order", "sell", "SOLUSDT", "1"]);
    assert_eq!(code, 0, "the sell failed:\n{err}\n{out}");
    assert!(!err.contains("-2010") && !out.contains("-2010"), "{err}\n{out}");
    let truth = ex.rt.block_on(ex.rest().account()).unwrap();
    let sol = truth.balances.iter().find(|b| b.asset.as_str() == "SOL").unwrap();
    assert!(sol.total().value() < d("1.1"), "half was sold: {sol:?}");
    assert!(
        !sol.locked.is_zero(),
        "the rest of the position is protected again: {sol:?}"
    );
}

#[test]
fn balance_as_the_first_command_after_a_startup_protective_order_shows_the_locked_balance() {
    let ex = Exchange::start(&[("USDT", "10000")]);
    entry_filled_while_crbot_was_not_running(&ex);
    let (code, shown, err) = ex.json_in(ex.home.path(), &["balance"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("protect") || shown["notes"].to_string().contains("protect"),
        "{err}\n{shown}"
    );
    let truth = ex.rt.block_on(ex.rest().account()).unwrap();
    let sol = truth.balances.iter().find(|b| b.asset.as_str() == "SOL").unwrap();
    assert!(!sol.locked.is_zero(), "the OCO locks the position: {sol:?}");
    let row = sol_row(&shown);
    assert_eq!(amount(&row["free"]), sol.free.value(), "{row}");
    assert_eq!(amount(&row["locked"]), sol.locked.value(), "{row}");
}
