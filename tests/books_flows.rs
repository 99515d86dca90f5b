//! Deposits and withdrawals are not P&L: the built `crbot` binary against a local exchange
//! started here (a market that does not move by itself), with money moved in and out of the
//! account while no crbot process runs, as a user's deposit would arrive.
#![allow(clippy::unwrap_used)]

mod support {
    pub mod cli;
}

use std::time::Duration;

use crbot::exchange::sim::SimConfig;
use rust_decimal::Decimal;
use serde_json::Value;

/// The shared harness, with this file's extra.
struct Exchange(support::cli::CliExchange);

impl std::ops::Deref for Exchange {
    type Target = support::cli::CliExchange;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

impl Exchange {
    fn start() -> Exchange {
        Exchange(support::cli::CliExchange::start(SimConfig {
            step_interval: Duration::from_secs(3600),
            starting_balances: vec![("USDT".into(), d("10000"))],
            ..SimConfig::default()
        }))
    }

    fn pnl(&self) -> Value {
        let (code, out, err) = self.run(&["--json", "pnl"]);
        assert_eq!(code, 0, "pnl failed: {err}\n{out}");
        serde_json::from_str(&out).unwrap()
    }
}

fn num(v: &Value) -> Decimal {
    d(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")))
}

#[test]
fn a_deposit_and_a_withdrawal_are_shown_as_flows_and_kept_out_of_pnl_and_drawdown() {
    let ex = Exchange::start();
    // A small loss today: a market buy pays the spread and the fee.
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.004",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let before = ex.pnl();
    let loss = num(&before["day_pnl"]);
    let drawdown = num(&before["drawdown_pct"]);
    assert!(loss < Decimal::ZERO, "{before}");
    assert!(drawdown > Decimal::ZERO, "{before}");

    // 250 USDT deposited while no crbot process runs.
    ex.handle.deposit("USDT", d("250")).unwrap();
    let (code, text, err) = ex.run(&["pnl"]);
    assert_eq!(code, 0, "{err}\n{text}");
    let after = ex.pnl();
    // Equity shows the deposit; today's P&L and the drawdown do not.
    assert!(
        num(&after["equity"]) - num(&before["equity"]) > d("249.9"),
        "{after}"
    );
    let pnl_after = num(&after["day_pnl"]);
    assert!(pnl_after < Decimal::ZERO, "the deposit became profit: {after}");
    assert!((pnl_after - loss).abs() < d("0.05"), "{before}\n{after}");
    assert!((num(&after["day_pnl_pct"]) - num(&before["day_pnl_pct"])).abs() < d("0.0001"));
    assert!(
        (num(&after["drawdown_pct"]) - drawdown).abs() < d("0.0001"),
        "the drawdown was reset: {after}"
    );
    assert_eq!(before["capital_flows"], serde_json::json!([]), "{before}");
    assert!(err.contains("capital flow detected: 250 USDT"), "{err}");
    assert!(text.contains("capital flows today"), "{text}");
    let flows = after["capital_flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "{after}");
    assert_eq!(flows[0]["asset"], "USDT");
    assert_eq!(num(&flows[0]["delta"]), d("250"));
    assert_eq!(num(&flows[0]["value_usdt"]), d("250"));
    assert_eq!(flows[0]["source"], "RECONCILE");

    // The same 250 withdrawn: P&L as it was, two flows netting zero.
    ex.handle.deposit("USDT", d("-250")).unwrap();
    let end = ex.pnl();
    assert!(
        (num(&end["day_pnl"]) - loss).abs() < d("0.0001"),
        "{before}\n{end}"
    );
    assert!(
        (num(&end["drawdown_pct"]) - drawdown).abs() < d("0.0001"),
        "{end}"
    );
    assert_eq!(end["capital_flows"].as_array().unwrap().len(), 2, "{end}");
    assert_eq!(num(&end["capital_flows_net_usdt"]), Decimal::ZERO, "{end}");

    // Nothing happened since: no flow is invented.
    let again = ex.pnl();
    assert_eq!(again["capital_flows"].as_array().unwrap().len(), 2, "{again}");
}
