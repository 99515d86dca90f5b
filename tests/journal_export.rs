//! `crbot journal export --csv`: the files an auditor reads, parsed back and checked against a
//! scripted book of fills with fees in the base asset, the quote asset and BNB (one BNB fee
//! priced at its fill time, one unpriced), and an order the exchange rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fees_support;

use std::collections::BTreeMap;
use std::path::Path;

use crbot::domain::broker::BrokerError;
use fees_support::*;

/// Parses RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks).
fn parse(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The rows of a file as maps from column name to field; the header is checked to be unique.
fn read(dir: &Path, name: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let rows = parse(&std::fs::read_to_string(dir.join(name)).unwrap());
    let header = rows[0].clone();
    let body = rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "{name}: {r:?}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect();
    (header, body)
}

#[test]
fn trades_csv_keeps_its_columns_and_appends_fee_value_running_position_cost_and_realized_pnl() {
    let dir = tempfile::tempdir().unwrap();
    let core = script(&dir.path().join("j.sqlite"));
    let out = dir.path().join("export");
    core.journal.export_csv(&out).unwrap();

    let (header, rows) = read(&out, "trades.csv");
    let original = [
        "symbol",
        "trade_id",
        "order_id",
        "client_order_id",
        "side",
        "price",
        "qty",
        "commission",
        "commission_asset",
        "time_ms",
        "is_maker",
    ];
    assert_eq!(
        &header[..original.len()],
        &original,
        "existing columns first, unchanged"
    );
    assert_eq!(
        &header[original.len()..],
        &[
            "quote_qty",
            "order_list_id",
            "purpose",
            "purpose_class",
            "quote_asset",
            "fee_price",
            "fee_value_quote",
            "fee_unpriced",
            "position_qty",
            "cost_basis",
            "realized_pnl",
            "realized_pnl_total",
        ]
    );
    let col = |c: &str| rows.iter().map(|r| r[c].as_str()).collect::<Vec<_>>();
    assert_eq!(col("trade_id"), ["1", "2", "3", "4"]);
    assert_eq!(col("commission_asset"), ["USDT", "BTC", "BNB", "BNB"]);
    assert_eq!(col("quote_qty"), ["100", "110.11", "120", "90"]);
    assert_eq!(col("order_list_id"), ["", "", "7", ""]);
    assert_eq!(col("purpose"), ["ENTRY", "ENTRY", "TAKE_PROFIT", "FLATTEN"]);
    assert_eq!(
        col("purpose_class"),
        ["entry", "entry", "protection", "kill_flatten"]
    );
    assert_eq!(col("fee_price"), ["1", "110", "600", ""]);
    assert_eq!(col("fee_value_quote"), ["0.1", "0.11", "0.12", ""]);
    assert_eq!(col("fee_unpriced"), ["", "", "", "0.0003"]);
    assert_eq!(col("position_qty"), ["1", "2", "1", "0"]);
    assert_eq!(col("cost_basis"), ["100.1", "210.21", "105.105", "0"]);
    assert_eq!(col("realized_pnl"), ["0", "0", "14.775", "-15.105"]);
    assert_eq!(col("realized_pnl_total"), ["0", "0", "14.775", "-0.33"]);
}

#[test]
fn positions_and_daily_fees_are_exported_as_of_the_last_fill() {
    let dir = tempfile::tempdir().unwrap();
    let core = script(&dir.path().join("j.sqlite"));
    let out = dir.path().join("export");
    core.journal.export_csv(&out).unwrap();

    let (_, pos) = read(&out, "positions.csv");
    assert_eq!(pos.len(), 1);
    let p = &pos[0];
    assert_eq!((p["symbol"].as_str(), p["qty"].as_str()), ("BTCUSDT", "0"));
    assert_eq!(p["realized_pnl"], "-0.33");
    assert_eq!(p["fees_value_quote"], "0.33");
    assert_eq!(p["fees_paid"], "0.0005 BNB; 0.001 BTC; 0.1 USDT");
    assert_eq!(p["fees_unpriced"], "0.0003 BNB");
    assert_eq!(p["pnl_complete"], "false");

    let (header, fees) = read(&out, "fees_daily.csv");
    assert_eq!(
        header,
        [
            "date_utc",
            "fee_asset",
            "paid",
            "value_quote",
            "quote_asset",
            "unpriced"
        ]
    );
    let rows: Vec<Vec<&str>> = fees
        .iter()
        .map(|r| header.iter().map(|h| r[h].as_str()).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["2026-03-02", "BNB", "0.0002", "0.12", "USDT", "0"],
            ["2026-03-02", "BTC", "0.001", "0.11", "USDT", "0"],
            ["2026-03-02", "USDT", "0.1", "0.1", "USDT", "0"],
            ["2026-03-03", "BNB", "0.0003", "0", "USDT", "0.0003"],
        ]
    );
}

#[test]
fn an_order_the_exchange_rejected_is_exported_as_rejected_with_its_code_not_as_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = script(&dir.path().join("j.sqlite"));
    let rejected = order(
        "cr-rej-1",
        0,
        None,
        crbot::domain::Side::Buy,
        crbot::domain::OrderPurpose::Entry,
        T0 + 5,
    );
    let never = order(
        "cr-never-1",
        0,
        None,
        crbot::domain::Side::Buy,
        crbot::domain::OrderPurpose::Entry,
        T0 + 6,
    );
    for o in [&rejected, &never] {
        let mut o = o.clone();
        o.order_id = None;
        o.state = crbot::domain::LocalOrderState::Sending;
        core.journal.insert_order(&o).unwrap();
        core.state.upsert_order(o);
    }
    let api = BrokerError::Api {
        http_status: 400,
        code: -2010,
        msg: "Account has insufficient balance for requested action.".into(),
    };
    core.mark_refused(&rejected.client_order_id, &api, T0 + 7);
    core.mark_refused(
        &never.client_order_id,
        &BrokerError::Connect("refused".into()),
        T0 + 7,
    );
    let out = dir.path().join("export");
    core.journal.export_csv(&out).unwrap();

    let (_, orders) = read(&out, "orders.csv");
    let by_cid = |cid: &str| {
        orders
            .iter()
            .find(|o| o["client_order_id"] == cid)
            .unwrap()
            .clone()
    };
    let r = by_cid("cr-rej-1");
    assert_eq!(r["state"], "REJECTED");
    assert!(r["last_error"].contains("-2010"), "{r:?}");
    assert!(r["last_error"].contains("insufficient balance"), "{r:?}");
    assert_eq!(by_cid("cr-never-1")["state"], "NOT_SENT");
}

#[test]
fn capital_flows_and_equity_sample_columns_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let core = script(&path);
    core.journal
        .record_equity(T0, &crbot::domain::Money::new(d("1000"), asset("USDT")))
        .unwrap();
    core.journal
        .record_capital_flow(&crbot::journal::CapitalFlowRecord {
            time_ms: 5,
            asset: asset("USDT"),
            delta: d("-250.5"),
            value_usdt: Some(d("-250.5")),
            source: "STREAM".into(),
        })
        .unwrap();
    let out = dir.path().join("export");
    let files = core.journal.export_csv(&out).unwrap();
    assert!(files.iter().any(|f| f.ends_with("capital_flows.csv")));
    let (header, flows) = read(&out, "capital_flows.csv");
    assert_eq!(
        header,
        ["id", "time_ms", "asset", "delta", "value_usdt", "source"]
    );
    assert_eq!(flows[0]["delta"], "-250.5");
    assert_eq!(flows[0]["source"], "STREAM");
    let (header, eq) = read(&out, "equity_curve.csv");
    assert_eq!(header, ["time_ms", "equity", "asset", "held_marks"]);
    assert_eq!(eq[0]["equity"], "1000");
}
