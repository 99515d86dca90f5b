//! The command-line contract (README "Commands"): commands exist, usage errors exit 2, global
//! options are accepted before or after the subcommand.

use assert_cmd::Command;
use predicates::prelude::*;

fn crbot() -> Command {
    let mut c = Command::cargo_bin("crbot").expect("binary is built");
    // The caller's variables that would change what a command does (as in `support::cli`):
    // the commands run below must use their fresh home's SQLite journal and default limits.
    for var in [
        "CRBOT_HOME",
        "CRBOT_MODE",
        "BINANCE_TESTNET",
        "DATABASE_URL",
        "DEBUG",
        "MAX_DAILY_LOSS_PERCENT",
    ] {
        c.env_remove(var);
    }
    c
}

#[test]
fn help_lists_every_command_of_the_design() {
    let out = crbot().arg("--help").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for cmd in [
        "sim",
        "vault",
        "ping",
        "balance",
        "health",
        "doctor",
        "order",
        "orders",
        "positions",
        "pnl",
        "kill",
        "resume",
        "backup",
        "journal",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(cmd)),
            "--help lacks `{cmd}`:\n{text}"
        );
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    crbot().arg("frobnicate").assert().code(2);
}

#[test]
fn unknown_mode_is_a_usage_error_naming_the_allowed_modes() {
    crbot()
        .args(["--mode", "moon", "orders"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sim"));
}

#[test]
fn order_without_quantity_is_a_usage_error() {
    crbot().args(["order", "buy", "BTCUSDT"]).assert().code(2);
}

#[test]
fn order_side_must_be_buy_or_sell() {
    crbot().args(["order", "hold", "BTCUSDT", "1"]).assert().code(2);
}

#[test]
fn global_options_are_accepted_after_the_subcommand() {
    // Parsing must succeed (exit code is not 2), whatever the command then does.
    let out = crbot().args(["kill", "--help"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("--flatten") && text.contains("--json") && text.contains("--home"),
        "{text}"
    );
}

/// A command run with a fresh home (sim mode: the local exchange runs inside the command).
fn run_in_fresh_home(args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().expect("temp dir");
    let out = crbot()
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_negative_quantity_is_a_usage_error_that_says_it_must_be_positive() {
    crbot()
        .args(["order", "buy", "BTCUSDT", "-0.001"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("quantity must be positive"))
        .stderr(predicate::str::contains("unexpected argument").not());
}

#[test]
fn a_zero_quantity_and_a_negative_price_are_usage_errors() {
    crbot()
        .args(["order", "sell", "BTCUSDT", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must be positive, not zero"));
    crbot()
        .args(["order", "buy", "BTCUSDT", "1", "--limit", "-5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--limit").and(predicate::str::contains("must be positive")));
}

#[test]
fn json_prints_an_error_document_on_a_usage_error_of_clap_and_of_crbot() {
    for args in [
        vec!["--json", "frobnicate"],
        vec!["order", "buy", "BTCUSDT", "-1", "--json"],
        vec!["--json", "--mode", "moon", "orders"],
    ] {
        let out = crbot().args(&args).assert().code(2);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        let doc: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
        assert_eq!(doc["error"]["code"], "USAGE", "{doc}");
        assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
        assert!(
            doc["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{doc}"
        );
    }
}

#[test]
fn json_prints_an_error_document_on_a_failure() {
    let (code, out, err) = run_in_fresh_home(&["--json", "backup", "/nonexistent-folder/x/backup.db"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["error"]["code"], "FAILURE", "{doc}");
    assert_eq!(doc["error"]["exit_code"], 1, "{doc}");
}

#[test]
fn a_quantity_finer_than_the_step_size_names_the_lot_size_filter_and_its_numbers() {
    let qty = "0.001000000000000000000000000001";
    let (code, out, err) = run_in_fresh_home(&[
        "order",
        "buy",
        "BTCUSDT",
        qty,
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
        "--dry-run",
    ]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("LOT_SIZE") && err.contains("0.00001") && err.contains("30 decimals"),
        "{err}"
    );
    let (code, out, err) = run_in_fresh_home(&[
        "--json",
        "order",
        "buy",
        "BTCUSDT",
        "0.0010001",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
        "--dry-run",
    ]);
    assert_eq!(code, 2, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("LOT_SIZE") && message.contains("nearest below is 0.001"),
        "{doc}"
    );
}
