//! What the read commands print (`orders`, `positions`, `pnl`, `balance`), built from the
//! engine's state: by the command itself when no engine runs (after its own reconcile), or by
//! the account's engine, which answers the document through its reply path. Either way the
//! command prints the same text, `--json` document and exit code.
//!
//! Owns: each command's text and JSON document, and the equity and fee fields every document
//! that shows them shares (the control API's documents use them too). Must not: reach the
//! exchange or the journal (the state given is what is shown).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::{Asset, Money, Order, Symbol, display_fixed, display_price, plain};
use crate::engine::snapshot::{EquityStatus, Snapshot};
use crate::engine::state::EngineState;
use crate::portfolio::FeeTally;

pub use crate::engine::snapshot::ReportKind;

/// What a read command prints: its text, its `--json` document, a warning for stderr (text
/// form only), and the failure line when it exits 1 (after printing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub text: String,
    pub doc: Value,
    pub warning: Option<String>,
    pub failure: Option<String>,
}

impl Report {
    fn ok(text: String, doc: Value) -> Report {
        Report {
            text,
            doc,
            warning: None,
            failure: None,
        }
    }
}

/// The report of `kind` from `st` at `now`; `notes` are what the preparation could not do.
/// `None` for the reports that need more than the state ([`health`], [`ping`]).
pub fn build(kind: ReportKind, st: &EngineState, notes: &[String], now: i64) -> Option<Report> {
    Some(match kind {
        ReportKind::Orders => orders(st, notes, now),
        ReportKind::Positions => positions(st, now),
        ReportKind::Pnl => pnl(st, now),
        ReportKind::Balance => balance(st, notes),
        ReportKind::Health | ReportKind::Ping => return None,
    })
}

/// The fields every document that shows equity carries (`crbot balance`, `health` and `pnl
/// --json`, and the API's balance, P&L and equity documents): the figure or `null`, how
/// complete it is, what could not be priced and why, and the assets with no USDT market.
pub fn equity_fields(
    equity: Option<&Money>,
    status: &EquityStatus,
    no_market: &[Asset],
) -> Map<String, Value> {
    let name = match status {
        EquityStatus::Pending => "unknown",
        EquityStatus::Complete { held } if held.is_empty() => "complete",
        EquityStatus::Complete { .. } => "complete_held_prices",
        EquityStatus::Incomplete { .. } => "incomplete",
    };
    let unpriced: &[(Asset, Option<i64>)] = match status {
        EquityStatus::Incomplete { unpriced, .. } => unpriced,
        _ => &[],
    };
    let held: &[(Asset, i64)] = match status {
        EquityStatus::Complete { held } => held,
        _ => &[],
    };
    let mut m = Map::new();
    if let EquityStatus::Incomplete { partial, .. } = status {
        m.insert("partial_equity_usdt".into(), json!(plain(partial.amount())));
    }
    m.insert("equity_usdt".into(), json!(equity.map(|e| plain(e.amount()))));
    m.insert("equity_complete".into(), json!(name.starts_with("complete")));
    m.insert("equity_status".into(), json!(name));
    m.insert(
        "unpriced".into(),
        json!(unpriced.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>()),
    );
    m.insert(
        "unpriced_last_price_age_ms".into(),
        Value::Object(
            unpriced
                .iter()
                .map(|(a, age)| (a.to_string(), json!(age)))
                .collect(),
        ),
    );
    m.insert(
        "held_prices".into(),
        json!(
            held.iter()
                .map(|(a, age)| json!({"asset": a.as_str(), "age_ms": age}))
                .collect::<Vec<_>>()
        ),
    );
    m.insert(
        "no_market".into(),
        json!(no_market.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
    );
    m
}

/// A fee tally with exact decimals as strings, keyed by asset: what was paid in each asset,
/// its quote value, and what had no price at its fill time.
pub fn fee_json(t: &FeeTally) -> Value {
    let map = |m: &BTreeMap<Asset, Decimal>| {
        m.iter()
            .map(|(a, v)| (a.as_str().to_string(), json!(plain(*v))))
            .collect::<Map<_, _>>()
    };
    json!({"paid": map(&t.paid), "value": map(&t.value), "unpriced": map(&t.unpriced), "complete": t.complete()})
}

/// One open order, as the commands and the API list it.
pub fn order_json(o: &Order) -> Value {
    json!({
        "client_order_id": o.client_order_id.as_str(),
        "order_id": o.order_id,
        "order_list_id": o.order_list_id,
        "symbol": o.symbol.as_str(),
        "side": o.side.as_wire(),
        "type": o.order_type.as_wire(),
        "price": o.price.map(|p| p.to_string()),
        "stop_price": o.stop_price.map(|p| p.to_string()),
        "qty": o.qty.to_string(),
        "executed_qty": o.executed_qty.to_string(),
        "status": o.state.as_code(),
        "purpose": o.purpose.as_code(),
    })
}

fn orders(st: &EngineState, notes: &[String], now: i64) -> Report {
    let open = st.open_orders();
    let snap = st.snapshot(now);
    let tick_of = |s: &Symbol| snap.tick(s);
    let mut text = String::new();
    if open.is_empty() {
        text.push_str("no open orders\n");
    } else {
        text.push_str(&format!(
            "{:<36} {:<10} {:<4} {:<11} {:>14} {:>14} {:>14} {:>14} {:<16} {}\n",
            "client id", "symbol", "side", "type", "price", "stop", "qty", "executed", "status", "purpose"
        ));
    }
    for o in &open {
        text.push_str(&format!(
            "{:<36} {:<10} {:<4} {:<11} {:>14} {:>14} {:>14} {:>14} {:<16} {}\n",
            o.client_order_id.as_str(),
            o.symbol.as_str(),
            o.side.as_wire(),
            o.order_type.as_wire(),
            o.price
                .map(|p| display_price(p.value(), tick_of(&o.symbol)))
                .unwrap_or_else(|| "-".into()),
            o.stop_price
                .map(|p| display_price(p.value(), tick_of(&o.symbol)))
                .unwrap_or_else(|| "-".into()),
            o.qty.to_string(),
            o.executed_qty.to_string(),
            o.state.as_code(),
            o.purpose.as_code(),
        ));
    }
    for n in notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let list: Vec<Value> = open.iter().map(order_json).collect();
    Report::ok(text, json!({"orders": list, "notes": notes}))
}

/// `{"positions": [...]}`: prices rounded to the symbol's tick and percentages to 2 decimals,
/// as the text shows them.
pub fn positions_doc(snap: &Snapshot) -> Value {
    let rows: Vec<Value> = snap
        .positions
        .iter()
        .map(|p| {
            let tick = snap.tick(&p.symbol);
            json!({
                "symbol": p.symbol.as_str(), "qty": p.qty.to_string(),
                "avg_entry": p.avg_entry.map(|v| display_price(v.value(), tick)),
                "avg_fill": p.avg_fill.map(|v| display_price(v.value(), tick)),
                "mark": p.mark.map(|v| v.to_string()),
                "unrealized_pnl": p.unrealized.as_ref().map(|u| plain(u.amount())),
                "unrealized_pct": p.unrealized_pct.map(|v| display_fixed(v, 2)),
                "external": p.external,
                "dust": p.dust,
            })
        })
        .collect();
    json!({"positions": rows})
}

fn positions(st: &EngineState, now: i64) -> Report {
    let snap = st.snapshot(now);
    let mut text = String::new();
    if snap.positions.is_empty() {
        text.push_str("no positions\n");
    } else {
        // "avg fill" is what the screen calls Entry (fees left out); "avg entry" is the cost
        // basis per unit, fees included (what the P&L is measured from).
        text.push_str(&format!(
            "{:<10} {:>16} {:>14} {:>14} {:>14} {:>14} {:>9}\n",
            "symbol", "qty", "avg fill", "avg entry", "mark", "unrealized", "%"
        ));
    }
    for p in &snap.positions {
        text.push_str(&format!(
            "{:<10} {:>16} {:>14} {:>14} {:>14} {:>14} {:>9}{}\n",
            p.symbol.as_str(),
            p.qty.to_string(),
            p.avg_fill
                .map(|v| display_price(v.value(), snap.tick(&p.symbol)))
                .unwrap_or_else(|| "-".into()),
            p.avg_entry
                .map(|v| display_price(v.value(), snap.tick(&p.symbol)))
                .unwrap_or_else(|| "-".into()),
            p.mark
                .map(|v| display_price(v.value(), snap.tick(&p.symbol)))
                .unwrap_or_else(|| "-".into()),
            p.unrealized
                .as_ref()
                .map(|u| display_fixed(u.amount(), u.asset().display_dp()))
                .unwrap_or_else(|| "-".into()),
            p.unrealized_pct
                .map(|v| display_fixed(v, 2))
                .unwrap_or_else(|| "-".into()),
            if p.external {
                "  external"
            } else if p.dust {
                "  dust (too small to sell; does not block a new entry)"
            } else {
                ""
            },
        ));
    }
    Report::ok(text, positions_doc(&snap))
}

fn balance(st: &EngineState, notes: &[String]) -> Report {
    let mut text = format!(
        "{:<8} {:>20} {:>20} {:>14} {:>16}\n",
        "asset", "free", "locked", "mark USDT", "value USDT"
    );
    let report = st.equity_report.clone();
    // An asset's USDT price at its `<ASSET>USDT` tick (the display rounding rule).
    let usdt_tick = |a: &Asset| {
        Symbol::new(&format!("{a}USDT"))
            .ok()
            .and_then(|s| st.rules.get(&s))
            .and_then(|r| r.filters.price.as_ref())
            .map(|f| f.tick_size)
    };
    let mut rows = Vec::new();
    for b in st.balances.values() {
        let priced = report
            .as_ref()
            .and_then(|r| r.priced.iter().find(|p| p.asset == b.asset));
        let mark = priced.map(|p| p.mark);
        let value = priced.map(|p| p.value.amount());
        let no_market = report.as_ref().is_some_and(|r| r.no_market.contains(&b.asset));
        let mark_text = match (priced, no_market) {
            (Some(p), _) => {
                let shown = display_price(p.mark.value(), usdt_tick(&b.asset));
                match p.held_age_ms {
                    Some(age) => format!("{shown} (held {})", secs(age)),
                    None => shown,
                }
            }
            (None, true) => "no market".into(),
            (None, false) if b.total().is_zero() => "-".into(),
            (None, false) => "UNPRICED".into(),
        };
        text.push_str(&format!(
            "{:<8} {:>20} {:>20} {:>14} {:>16}\n",
            b.asset.as_str(),
            b.free.to_string(),
            b.locked.to_string(),
            mark_text,
            value.map(|v| display_fixed(v, 2)).unwrap_or_else(|| "-".into()),
        ));
        rows.push(json!({
            "asset": b.asset.as_str(), "free": b.free.to_string(), "locked": b.locked.to_string(),
            "mark_usdt": mark.map(|m| m.to_string()), "value_usdt": value.map(plain),
            "mark_age_ms": priced.and_then(|p| p.held_age_ms),
        }));
    }
    let view = equity_view(st);
    text.push_str(&view.text);
    for n in notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let mut doc = view.json.clone();
    doc.insert("balances".into(), json!(rows));
    doc.insert("notes".into(), json!(notes));
    Report {
        text,
        doc: Value::Object(doc),
        warning: view.stderr,
        failure: None,
    }
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn pnl(st: &EngineState, now: i64) -> Report {
    let l = st.snapshot(now).limits;
    let view = equity_view(st);
    // An incomplete equity gives no P&L at all: never a figure computed from a partial sum.
    let known = st.current_equity().is_some();
    let day_start = st.equity.day_start().map(|d| d.equity.amount());
    let hwm = st.equity.high_water_mark().map(|m| m.amount());
    let day_pnl = st.equity.day_pnl().filter(|_| known).map(|m| m.amount());
    let day_pnl_pct = st.equity.day_pnl_pct().filter(|_| known);
    let drawdown = st.equity.drawdown_pct().filter(|_| known);
    let opt = |v: Option<Decimal>| v.map(|d| display_fixed(d, 2)).unwrap_or_else(|| "unknown".into());
    let mut text = view.text.clone();
    text.push_str(&format!(
        "day-start equity: {} USDT (restated for capital flows)\n",
        opt(day_start)
    ));
    text.push_str(&format!(
        "today: {} USDT ({}%) — daily-loss limit -{}% (resets {})\n",
        opt(day_pnl),
        opt(day_pnl_pct),
        l.daily_loss_limit_pct.normalize(),
        utc(l.daily_reset_ms)
    ));
    text.push_str(&format!(
        "drawdown: {}% of limit {}% (high-water mark {} USDT)\n",
        opt(drawdown),
        l.drawdown_limit_pct.normalize(),
        opt(hwm)
    ));
    let flows = st.flows_today(now);
    let net: Decimal = flows.iter().filter_map(|f| f.value_usdt).sum();
    if flows.is_empty() {
        text.push_str("capital flows today: none\n");
    } else {
        text.push_str(&format!(
            "capital flows today (kept out of P&L and drawdown): net {} USDT\n",
            display_fixed(net, 2)
        ));
    }
    let mut flow_rows = Vec::new();
    for f in &flows {
        text.push_str(&format!(
            "  {} {} {} ({}, {})\n",
            utc(f.time_ms),
            f.delta.normalize(),
            f.asset,
            f.value_usdt
                .map(|v| format!("{} USDT", display_fixed(v, 2)))
                .unwrap_or_else(|| "value unknown".into()),
            f.source
        ));
        flow_rows.push(json!({
            "time_ms": f.time_ms, "asset": f.asset.as_str(), "delta": f.delta.normalize().to_string(),
            "value_usdt": f.value_usdt.map(plain), "source": f.source,
        }));
    }
    text.push_str(&format!(
        "entries today: {} / {}\n",
        l.trades_used, l.trades_limit
    ));
    text.push_str(&format!("trading: {}\n", st.trading));
    let mut realized = Vec::new();
    for p in st.positions.iter() {
        let r = p.realized_pnl();
        text.push_str(&format!(
            "realized {}: {} {}\n",
            p.symbol,
            display_fixed(r.amount(), r.asset().display_dp()),
            r.asset()
        ));
        realized.push(
            json!({"symbol": p.symbol.as_str(), "realized": plain(r.amount()), "asset": r.asset().as_str()}),
        );
    }
    let mut fees_by_position = Vec::new();
    for p in st.positions.iter() {
        text.push_str(&format!("fees {}: {}\n", p.symbol, fee_text(p.fees())));
        let mut j = fee_json(p.fees());
        j["symbol"] = json!(p.symbol.as_str());
        fees_by_position.push(j);
    }
    let mut fees_by_day = Vec::new();
    for (day, tally) in st.positions.fees_by_day() {
        text.push_str(&format!("fees {day} (UTC): {}\n", fee_text(tally)));
        let mut j = fee_json(tally);
        j["date"] = json!(day.to_string());
        fees_by_day.push(j);
    }
    let fees_total = st.positions.fees_total().unwrap_or_default();
    text.push_str(&format!("fees total: {}\n", fee_text(&fees_total)));
    let mut doc = view.json.clone();
    doc.remove("equity_usdt");
    let fields = json!({
        "equity": st.current_equity().map(|m| plain(m.amount())),
        "day_start_equity": day_start.map(plain),
        "day_pnl": day_pnl.map(plain),
        "day_pnl_pct": day_pnl_pct.map(plain),
        "daily_loss_limit_pct": l.daily_loss_limit_pct.to_string(),
        "daily_reset_ms": l.daily_reset_ms,
        "drawdown_pct": drawdown.map(plain),
        "drawdown_limit_pct": l.drawdown_limit_pct.to_string(),
        "high_water_mark": hwm.map(plain),
        "capital_flows": flow_rows,
        "capital_flows_net_usdt": plain(net),
        "trades_used": l.trades_used,
        "trades_limit": l.trades_limit,
        "trading_state": st.trading.to_string(),
        "realized": realized,
        "fees": {"by_position": fees_by_position, "by_day": fees_by_day, "total": fee_json(&fees_total)},
    });
    if let serde_json::Value::Object(m) = fields {
        doc.extend(m);
    }
    Report {
        text,
        doc: Value::Object(doc),
        warning: None,
        // Exit 1: a P&L was asked for and there is none; the document says why.
        failure: view.stderr,
    }
}

/// Seconds, for a mark's age in a sentence.
fn secs(ms: i64) -> String {
    format!("{} s", ms.max(0) / 1000)
}

/// What every command that prints equity says about it: the figure or why there is none,
/// the JSON fields, and (for the human form) the line for stderr when it is incomplete.
#[derive(Debug, Clone)]
pub struct EquityView {
    pub text: String,
    pub json: serde_json::Map<String, serde_json::Value>,
    pub stderr: Option<String>,
}

pub fn equity_view(st: &crate::engine::state::EngineState) -> EquityView {
    use crate::engine::snapshot::EquityStatus;
    let mut text = String::new();
    let mut stderr = None;
    let report = st.equity_report.as_ref();
    let no_market: Vec<&str> = report
        .map(|r| r.no_market.iter().map(|a| a.as_str()).collect())
        .unwrap_or_default();
    let equity = st.current_equity().map(|m| m.amount());
    let snap_status = match report {
        None => EquityStatus::Pending,
        Some(r) if r.is_complete() => EquityStatus::Complete {
            held: r.held().map(|(a, age)| (a.clone(), age)).collect(),
        },
        Some(r) => EquityStatus::Incomplete {
            unpriced: r.unpriced.clone(),
            partial: r.partial_total.clone(),
        },
    };
    let held = match &snap_status {
        EquityStatus::Complete { held } => held.clone(),
        _ => Vec::new(),
    };
    match (&snap_status, equity) {
        (EquityStatus::Incomplete { unpriced, partial }, _) => {
            let names: Vec<String> = unpriced
                .iter()
                .map(|(a, age)| match age {
                    Some(age) => format!("{a} (last price {} old)", secs(*age)),
                    None => format!("{a} (no price)"),
                })
                .collect();
            text.push_str(&format!(
                "equity: UNKNOWN — incomplete, unpriced: {} (the {} USDT that could be priced is not an equity)\n",
                names.join(", "),
                display_fixed(partial.amount(), 2)
            ));
            stderr = Some(format!(
                "equity incomplete: no usable USDT price for {}; equity, today's P&L and the drawdown are unknown and entries are refused",
                unpriced
                    .iter()
                    .map(|(a, _)| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        (_, Some(e)) => {
            text.push_str(&format!("equity: {} USDT\n", display_fixed(e, 2)));
            for (a, age) in &held {
                text.push_str(&format!(
                    "  {a} priced at its last known price, {} old (no fresh quote)\n",
                    secs(*age)
                ));
            }
        }
        (_, None) => text.push_str("equity: unknown\n"),
    }
    if !no_market.is_empty() {
        text.push_str(&format!(
            "no USDT market (listed, left out of equity): {}\n",
            no_market.join(", ")
        ));
    }
    let json = equity_fields(
        st.current_equity().as_ref(),
        &snap_status,
        report.map(|r| r.no_market.as_slice()).unwrap_or_default(),
    );
    EquityView { text, json, stderr }
}

/// `0.33 USDT (paid 0.10 USDT, 0.00100000 BTC, 0.00050000 BNB); unpriced 0.00030000 BNB`: the
/// quote value of the priced fees, every amount paid in its own asset, and what had no price
/// at its fill time (left out of the value, never priced later).
fn fee_text(t: &FeeTally) -> String {
    let money = |m: &BTreeMap<Asset, Decimal>| {
        m.iter()
            .map(|(a, v)| Money::new(*v, a.clone()).display())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let value = if t.value.is_empty() {
        "0".to_string()
    } else {
        money(&t.value)
    };
    let mut text = format!(
        "{value} (paid {})",
        if t.paid.is_empty() {
            "nothing".to_string()
        } else {
            money(&t.paid)
        }
    );
    if !t.complete() {
        text.push_str(&format!("; unpriced {}", money(&t.unpriced)));
    }
    text
}

/// What `crbot health` shows from the engine's state (built where the state is: by the command
/// after its reconcile, or by the engine); the exchange client's figures and the journal's
/// integrity are added by [`health`].
#[derive(Debug, Clone)]
pub struct HealthParts {
    pub mode: crate::domain::Mode,
    pub clock_offset_ms: Option<i64>,
    pub trading: String,
    pub journal_path: std::path::PathBuf,
    pub open_orders: usize,
    pub stale: Vec<String>,
    pub equity: EquityView,
    /// Which secrets backend served the keys (never the keys), when the mode has keys.
    pub keys_from: Option<String>,
}

/// The symbols `health` checks for stale quotes: the watchlist, else the default one.
pub fn health_watchlist(st: &EngineState) -> Vec<Symbol> {
    if st.watchlist.is_empty() {
        crate::engine::core::DEFAULT_WATCHLIST
            .iter()
            .filter_map(|s| Symbol::new(s).ok())
            .collect()
    } else {
        st.watchlist.clone()
    }
}

/// [`HealthParts`] of `st` at `now`.
pub fn health_parts(st: &EngineState, now: i64) -> HealthParts {
    HealthParts {
        mode: st.mode,
        clock_offset_ms: st.clock_offset_ms,
        trading: st.trading.to_string(),
        journal_path: std::path::PathBuf::new(),
        open_orders: st.open_orders().len(),
        stale: health_watchlist(st)
            .iter()
            .filter(|s| st.is_stale(s, now))
            .map(|s| s.to_string())
            .collect(),
        equity: equity_view(st),
        keys_from: None,
    }
}

/// `crbot health`: `rest` is the exchange's REST URL, `usage` the client's gauges,
/// `integrity` the journal's check (or why it was not made).
pub fn health(
    p: &HealthParts,
    rest: &str,
    usage: &crate::exchange::binance::limits::RateUsage,
    integrity: &Result<bool, String>,
    notes: &[String],
) -> Report {
    let journal_path = p.journal_path.display().to_string();
    let mut text = format!("mode {} — connected to {rest}\n", p.mode);
    text.push_str(&match p.clock_offset_ms {
        Some(o) => format!("clock offset: {o} ms\n"),
        None => "clock offset: unknown\n".into(),
    });
    text.push_str(&format!(
        "rate limits: weight {}/{} per minute, orders {}/{} per 10 s, {}/{} per day\n",
        usage.weight_used,
        usage.weight_limit,
        usage.orders_10s,
        usage.orders_10s_limit,
        usage.orders_1d,
        usage.orders_1d_limit
    ));
    if let Some(t) = usage.banned_until_ms {
        text.push_str(&format!("IP BANNED until {t} ms\n"));
    }
    if let Some(from) = &p.keys_from {
        // Which backend served the keys, never the keys.
        text.push_str(&format!("keys: from {from}\n"));
    }
    text.push_str(&format!("trading: {}\n", p.trading));
    text.push_str(&format!(
        "journal: {journal_path} (integrity {})\n",
        match integrity {
            Ok(true) => "ok".to_string(),
            Ok(false) => "FAILED".to_string(),
            Err(e) => format!("not checked: {e}"),
        }
    ));
    text.push_str(&format!("open orders: {}\n", p.open_orders));
    text.push_str(&format!(
        "stale symbols: {}\n",
        if p.stale.is_empty() {
            "none".to_string()
        } else {
            p.stale.join(", ")
        }
    ));
    text.push_str(&p.equity.text);
    for n in notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let equity_ok = p.equity.stderr.is_none();
    let ok = integrity.as_ref().is_ok_and(|v| *v) && usage.banned_until_ms.is_none() && equity_ok;
    let doc = json!({
        "ok": ok,
        "mode": p.mode.to_string(),
        "connected": true,
        "rest": rest,
        "clock_offset_ms": p.clock_offset_ms,
        "rate_limits": {
            "weight_used": usage.weight_used, "weight_limit": usage.weight_limit,
            "orders_10s": usage.orders_10s, "orders_10s_limit": usage.orders_10s_limit,
            "orders_1d": usage.orders_1d, "orders_1d_limit": usage.orders_1d_limit,
            "hold_until_ms": usage.hold_until_ms, "banned_until_ms": usage.banned_until_ms,
        },
        "keys_from": p.keys_from,
        "trading_state": p.trading,
        "journal": {"path": journal_path, "integrity_ok": integrity.as_ref().ok().copied()},
        "open_orders": p.open_orders,
        "stale_symbols": p.stale,
        "equity": Value::Object(p.equity.json.clone()),
        "notes": notes,
    });
    let failure = if ok {
        None
    } else if let Some(line) = &p.equity.stderr {
        Some(format!("unhealthy: {line}"))
    } else {
        Some("unhealthy: journal integrity failed or the IP is banned".to_string())
    };
    Report {
        text,
        doc,
        warning: None,
        failure,
    }
}

/// Opens the combined stream for one symbol and waits for one message.
pub async fn stream_reachable(
    ws_base: &str,
    symbol: &str,
    timeout: std::time::Duration,
) -> Result<std::time::Duration, String> {
    use futures_util::StreamExt;
    let url = format!(
        "{}/stream?streams={}@bookTicker",
        ws_base.trim_end_matches('/'),
        symbol.to_lowercase()
    );
    let started = std::time::Instant::now();
    let attempt = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| format!("cannot open the stream: {e}"))?;
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(tokio_tungstenite::tungstenite::Message::Text(_))
                | Ok(tokio_tungstenite::tungstenite::Message::Binary(_)) => {
                    let _ = ws.close(None).await;
                    return Ok(started.elapsed());
                }
                Ok(_) => continue,
                Err(e) => return Err(format!("stream error: {e}")),
            }
        }
        Err("the stream closed without a message".to_string())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no message within {}s", timeout.as_secs())))
}

/// `crbot ping` over `rest` (REST round trip, clock offset, the market stream's first
/// message): by the command's own client, or by the engine's.
pub async fn ping(mode: crate::domain::Mode, rest: &crate::exchange::binance::rest::BinanceRest) -> Report {
    let ms = |d: std::time::Duration| d.as_millis();
    let endpoints = rest.endpoints().clone();
    let latency = rest.ping().await;
    let clock = rest.sync_clock().await;
    let stream = stream_reachable(
        endpoints.ws.as_str(),
        "BTCUSDT",
        std::time::Duration::from_secs(8),
    )
    .await;
    let mut text = format!(
        "mode {mode}\nrest   {}\nstream {}\nws-api {}\n",
        endpoints.rest, endpoints.ws, endpoints.ws_api
    );
    match &latency {
        Ok(d) => text.push_str(&format!("REST round trip: {} ms\n", ms(*d))),
        Err(e) => text.push_str(&format!("REST: FAILED ({e})\n")),
    }
    match &clock {
        Ok(c) => text.push_str(&format!(
            "clock offset: {} ms (round trip {} ms)\n",
            c.offset_ms, c.rtt_ms
        )),
        Err(e) => text.push_str(&format!("clock: FAILED ({e})\n")),
    }
    match &stream {
        Ok(d) => text.push_str(&format!(
            "market stream: reachable (first message after {} ms)\n",
            ms(*d)
        )),
        Err(e) => text.push_str(&format!("market stream: UNREACHABLE ({e})\n")),
    }
    let ok = latency.is_ok() && clock.is_ok() && stream.is_ok();
    let doc = json!({
        "ok": ok,
        "mode": mode.to_string(),
        "endpoints": {"rest": endpoints.rest.as_str(), "ws": endpoints.ws.as_str(), "ws_api": endpoints.ws_api.as_str()},
        "rest_latency_ms": latency.as_ref().ok().map(|d| ms(*d) as u64),
        "rest_error": latency.as_ref().err().map(|e| e.to_string()),
        "clock_offset_ms": clock.as_ref().ok().map(|c| c.offset_ms),
        "clock_rtt_ms": clock.as_ref().ok().map(|c| c.rtt_ms),
        "stream_reachable": stream.is_ok(),
        "stream_first_message_ms": stream.as_ref().ok().map(|d| ms(*d) as u64),
        "stream_error": stream.as_ref().err(),
    });
    let failure = if let Err(e) = &latency {
        Some(format!("REST unreachable: {e}"))
    } else if let Err(e) = &clock {
        Some(format!("clock sync failed: {e}"))
    } else {
        stream
            .as_ref()
            .err()
            .map(|e| format!("market stream unreachable: {e}"))
    };
    Report {
        text,
        doc,
        warning: None,
        failure,
    }
}
