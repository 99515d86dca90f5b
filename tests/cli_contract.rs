//! The command-line contract (README "Commands"): commands exist, usage errors exit 2, global
//! options are accepted before or after the subcommand.

use assert_cmd::Command;
use predicates::prelude::*;

fn crbot() -> Command {
    let mut c = Command::cargo_bin("crbot").expect("binary is built");
    c.env_remove("CRBOT_HOME")
        .env_remove("CRBOT_MODE")
        .env_remove("BINANCE_TESTNET");
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
