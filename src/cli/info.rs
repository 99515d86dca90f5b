//! The read-only commands: `ping`, `health`, `balance`, `orders`, `positions`, `pnl`, and the
//! journal's `backup` and `journal export --csv`.
//!
//! Owns: what each prints (text, or one JSON document). Must not: send an order or change the
//! trading state (the shared preparation reconciles the journal with the exchange, which is
//! the same bookkeeping the console does at start-up).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome, now_ms};
use crate::cli::exit;
use crate::cli::trade::order_json;
use std::collections::BTreeMap;

use crate::domain::{Asset, Money, Symbol, display_fixed, display_price, plain};
use crate::engine::backup;
use crate::engine::core::DEFAULT_WATCHLIST;
use crate::portfolio::FeeTally;

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Opens the combined stream for one symbol and waits for one message.
async fn stream_reachable(ws_base: &str, symbol: &str, timeout: Duration) -> Result<Duration, String> {
    let url = format!(
        "{}/stream?streams={}@bookTicker",
        ws_base.trim_end_matches('/'),
        symbol.to_lowercase()
    );
    let started = Instant::now();
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

pub async fn ping(ctx: &Ctx) -> Outcome {
    let session = common::connect(ctx).await?;
    let rest = session.rest.clone();
    let endpoints = session.endpoints.clone();
    let latency = rest.ping().await;
    let clock = rest.sync_clock().await;
    let stream = stream_reachable(endpoints.ws.as_str(), "BTCUSDT", Duration::from_secs(8)).await;
    session.close(&ctx.config).await;

    let mut text = format!(
        "mode {}\nrest   {}\nstream {}\nws-api {}\n",
        ctx.config.mode, endpoints.rest, endpoints.ws, endpoints.ws_api
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
    ctx.print(
        &text,
        json!({
            "ok": ok,
            "mode": ctx.config.mode.to_string(),
            "endpoints": {"rest": endpoints.rest.as_str(), "ws": endpoints.ws.as_str(), "ws_api": endpoints.ws_api.as_str()},
            "rest_latency_ms": latency.as_ref().ok().map(|d| ms(*d) as u64),
            "rest_error": latency.as_ref().err().map(|e| e.to_string()),
            "clock_offset_ms": clock.as_ref().ok().map(|c| c.offset_ms),
            "clock_rtt_ms": clock.as_ref().ok().map(|c| c.rtt_ms),
            "stream_reachable": stream.is_ok(),
            "stream_first_message_ms": stream.as_ref().ok().map(|d| ms(*d) as u64),
            "stream_error": stream.as_ref().err(),
        }),
    );
    if let Err(e) = latency {
        return Err(Failure::new(format!("REST unreachable: {e}")));
    }
    if let Err(e) = clock {
        return Err(Failure::new(format!("clock sync failed: {e}")));
    }
    if let Err(e) = stream {
        return Err(Failure::new(format!("market stream unreachable: {e}")));
    }
    Ok(exit::OK)
}

fn watchlist() -> Vec<Symbol> {
    DEFAULT_WATCHLIST
        .iter()
        .filter_map(|s| Symbol::new(s).ok())
        .collect()
}

pub async fn health(ctx: &Ctx) -> Outcome {
    let mut ready = common::prepare_to_read(ctx, &watchlist()).await?;
    let now = now_ms();
    let core = &mut ready.core;
    let watch: Vec<Symbol> = if core.state.watchlist.is_empty() {
        watchlist()
    } else {
        core.state.watchlist.clone()
    };
    let missing: Vec<Symbol> = watch
        .iter()
        .filter(|s| !core.state.quotes.contains_key(*s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let set = missing.iter().cloned().collect();
        let rest = ready.session.rest.clone();
        common::fetch_quotes(core, &rest, &set, &mut ready.notes).await;
    }
    let stale: Vec<String> = watch
        .iter()
        .filter(|s| core.state.is_stale(s, now))
        .map(|s| s.to_string())
        .collect();
    let usage = ready.session.rest.usage();
    let integrity = core.journal.integrity_check();
    let open = core.state.open_orders().len();
    let journal_path = core.journal.path().display().to_string();
    let trading = core.state.trading.to_string();
    let offset = core.state.clock_offset_ms;
    let mut text = format!(
        "mode {} — connected to {}\n",
        ctx.config.mode, ready.session.endpoints.rest
    );
    text.push_str(&match offset {
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
    if let Some(from) = &ready.session.keys_from {
        // Which backend served the keys, never the keys.
        text.push_str(&format!("keys: from {from}\n"));
    }
    text.push_str(&format!("trading: {trading}\n"));
    text.push_str(&format!(
        "journal: {journal_path} (integrity {})\n",
        match &integrity {
            Ok(true) => "ok".to_string(),
            Ok(false) => "FAILED".to_string(),
            Err(e) => format!("not checked: {e}"),
        }
    ));
    text.push_str(&format!("open orders: {open}\n"));
    text.push_str(&format!(
        "stale symbols: {}\n",
        if stale.is_empty() {
            "none".to_string()
        } else {
            stale.join(", ")
        }
    ));
    let view = equity_view(&core.state);
    text.push_str(&view.text);
    for n in &ready.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let equity_ok = view.stderr.is_none();
    let ok = integrity.as_ref().is_ok_and(|v| *v) && usage.banned_until_ms.is_none() && equity_ok;
    ctx.print(
        &text,
        json!({
            "ok": ok,
            "mode": ctx.config.mode.to_string(),
            "connected": true,
            "rest": ready.session.endpoints.rest.as_str(),
            "clock_offset_ms": offset,
            "rate_limits": {
                "weight_used": usage.weight_used, "weight_limit": usage.weight_limit,
                "orders_10s": usage.orders_10s, "orders_10s_limit": usage.orders_10s_limit,
                "orders_1d": usage.orders_1d, "orders_1d_limit": usage.orders_1d_limit,
                "hold_until_ms": usage.hold_until_ms, "banned_until_ms": usage.banned_until_ms,
            },
            "trading_state": trading,
            "keys_from": ready.session.keys_from,
            "journal": {"path": journal_path, "integrity_ok": integrity.as_ref().ok().copied()},
            "open_orders": open,
            "stale_symbols": stale,
            "equity": serde_json::Value::Object(view.json.clone()),
            "notes": ready.notes,
        }),
    );
    ready.session.close(&ctx.config).await;
    if ok {
        Ok(exit::OK)
    } else if let Some(line) = view.stderr {
        Err(Failure::new(format!("unhealthy: {line}")))
    } else {
        Err(Failure::new(
            "unhealthy: journal integrity failed or the IP is banned",
        ))
    }
}

/// Seconds, for a mark's age in a sentence.
fn secs(ms: i64) -> String {
    format!("{} s", ms.max(0) / 1000)
}

/// What every command that prints equity says about it: the figure or why there is none,
/// the JSON fields, and (for the human form) the line for stderr when it is incomplete.
struct EquityView {
    text: String,
    json: serde_json::Map<String, serde_json::Value>,
    stderr: Option<String>,
}

fn equity_view(st: &crate::engine::state::EngineState) -> EquityView {
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
    let json = crate::api::docs::equity_fields(
        st.current_equity().as_ref(),
        &snap_status,
        report.map(|r| r.no_market.as_slice()).unwrap_or_default(),
    );
    EquityView { text, json, stderr }
}

/// Prints the stderr line of an incomplete equity (human form only: `--json` says it in a
/// field, and stdout must stay one document).
fn warn_incomplete(ctx: &Ctx, view: &EquityView) {
    if let Some(line) = &view.stderr
        && !ctx.json()
    {
        eprintln!("crbot: {line}");
    }
}

pub async fn balance(ctx: &Ctx) -> Outcome {
    let ready = common::prepare_to_read(ctx, &[]).await?;
    let st = &ready.core.state;
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
    for n in &ready.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let mut doc = view.json.clone();
    doc.insert("balances".into(), json!(rows));
    doc.insert("notes".into(), json!(ready.notes));
    ctx.print(&text, serde_json::Value::Object(doc));
    warn_incomplete(ctx, &view);
    ready.session.close(&ctx.config).await;
    Ok(exit::OK)
}

pub async fn orders(ctx: &Ctx) -> Outcome {
    let ready = common::prepare_to_read(ctx, &[]).await?;
    let open = ready.core.state.open_orders();
    let snap = ready.core.state.snapshot(now_ms());
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
    for n in &ready.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let list: Vec<serde_json::Value> = open.iter().map(order_json).collect();
    ctx.print(&text, json!({"orders": list, "notes": ready.notes}));
    ready.session.close(&ctx.config).await;
    Ok(exit::OK)
}

pub async fn positions(ctx: &Ctx) -> Outcome {
    let ready = common::prepare_to_read(ctx, &[]).await?;
    let snap = ready.core.state.snapshot(now_ms());
    let mut text = String::new();
    if snap.positions.is_empty() {
        text.push_str("no positions\n");
    } else {
        text.push_str(&format!(
            "{:<10} {:>16} {:>14} {:>14} {:>14} {:>9}\n",
            "symbol", "qty", "avg entry", "mark", "unrealized", "%"
        ));
    }
    for p in &snap.positions {
        text.push_str(&format!(
            "{:<10} {:>16} {:>14} {:>14} {:>14} {:>9}{}\n",
            p.symbol.as_str(),
            p.qty.to_string(),
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
    ctx.print(&text, crate::api::docs::positions(&snap));
    ready.session.close(&ctx.config).await;
    Ok(exit::OK)
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub async fn pnl(ctx: &Ctx) -> Outcome {
    let ready = common::prepare_to_read(ctx, &[]).await?;
    let now = now_ms();
    let st = &ready.core.state;
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
        let mut j = crate::api::docs::fee_json(p.fees());
        j["symbol"] = json!(p.symbol.as_str());
        fees_by_position.push(j);
    }
    let mut fees_by_day = Vec::new();
    for (day, tally) in st.positions.fees_by_day() {
        text.push_str(&format!("fees {day} (UTC): {}\n", fee_text(tally)));
        let mut j = crate::api::docs::fee_json(tally);
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
        "fees": {"by_position": fees_by_position, "by_day": fees_by_day, "total": crate::api::docs::fee_json(&fees_total)},
    });
    if let serde_json::Value::Object(m) = fields {
        doc.extend(m);
    }
    ctx.print(&text, serde_json::Value::Object(doc));
    ready.session.close(&ctx.config).await;
    match view.stderr {
        // Exit 1: a P&L was asked for and there is none; the document above says why.
        Some(line) => Err(Failure::new(line)),
        None => Ok(exit::OK),
    }
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

pub fn backup(ctx: &Ctx, path: &std::path::Path) -> Outcome {
    let journal = crate::cli::kill::open_existing(ctx)?;
    let outcome = backup::write(&journal, path, backup::Reason::Command, now_ms());
    // Recorded either way: `crbot doctor` finds backups by this event, wherever they went.
    // A failure's one line on stderr is its reason; not recording it is not worth a second.
    if let Err(e) = journal.record_event(&outcome.event(now_ms()))
        && outcome.result.is_ok()
    {
        eprintln!("crbot: warning: the backup is written but the journal could not record it: {e}");
    }
    let size = outcome
        .result
        .map_err(|e| Failure::new(format!("backup to {}: {e}", path.display())))?;
    ctx.print(
        &format!(
            "backup of {} written to {} ({size} bytes)",
            journal.path().display(),
            path.display()
        ),
        json!({"source": journal.path().display().to_string(), "path": path.display().to_string(), "bytes": size}),
    );
    Ok(exit::OK)
}

/// `crbot backup PATH` through the running engine (`POST /api/backup` on its socket): the
/// engine copies and journals it; printed as the command prints it alone.
pub async fn backup_through(
    ctx: &Ctx,
    engine: &crate::cli::remote::Remote,
    path: &std::path::Path,
) -> Outcome {
    let absolute =
        std::path::absolute(path).map_err(|e| Failure::new(format!("backup to {}: {e}", path.display())))?;
    let body = json!({"path": absolute});
    let wait = crate::api::orders::BACKUP_WAIT + Duration::from_secs(5);
    let (status, doc) = engine
        .call("POST", "/api/backup", Some(&body), wait)
        .await
        .map_err(Failure::new)?;
    if status != 200 {
        return Err(Failure::new(format!(
            "backup to {}: {}",
            path.display(),
            crate::cli::remote::error_line(status, &doc)
        )));
    }
    let source = doc["source"].as_str().unwrap_or_default().to_string();
    let size = doc["bytes"].as_u64().unwrap_or_default();
    ctx.print(
        &format!("backup of {source} written to {} ({size} bytes)", path.display()),
        json!({"source": source, "path": path.display().to_string(), "bytes": size}),
    );
    Ok(exit::OK)
}

pub fn export(ctx: &Ctx, dir: &std::path::Path) -> Outcome {
    let journal = crate::cli::kill::open_existing(ctx)?;
    std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let files = journal
        .export_csv(dir)
        .map_err(|e| Failure::new(format!("export to {}: {e}", dir.display())))?;
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    ctx.print(
        &format!("wrote:\n  {}", names.join("\n  ")),
        json!({"files": names}),
    );
    Ok(exit::OK)
}
