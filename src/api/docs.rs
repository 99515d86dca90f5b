//! The API's JSON documents, built from the engine's snapshot: the same field names as the
//! CLI's `--json` documents of the same commands (`positions`, `orders`, `pnl`, `balance`,
//! `ping`), decimals as strings.
//!
//! Owns: the shape of each read route's answer. Must not: read anything but the snapshot (no
//! journal, no exchange: a read route never waits on I/O), or show a figure the engine does not
//! know as if it did (an unknown equity is `null`, never a partial sum).

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::domain::plain;
use crate::engine::snapshot::{KillProgress, LimitName, Snapshot, StreamHealth, StreamStatus, TradingState};

/// `active`, `reducing` or `halted`.
pub fn state_name(t: &TradingState) -> &'static str {
    match t {
        TradingState::Active => "active",
        TradingState::Reducing { .. } => "reducing",
        TradingState::Halted { .. } => "halted",
    }
}

/// The trading state as the CLI prints it (`ACTIVE`, `REDUCING …: reason`, `HALTED: reason`).
pub fn state_text(t: &TradingState) -> String {
    match t {
        TradingState::Active => "ACTIVE".into(),
        TradingState::Reducing {
            reason,
            until_ms: Some(until),
            ..
        } => format!("REDUCING until {until} ms: {reason}"),
        TradingState::Reducing { reason, .. } => format!("REDUCING until re-armed: {reason}"),
        TradingState::Halted { reason, .. } => format!("HALTED: {reason}"),
    }
}

/// The trading state with its reason and times.
pub fn trading(t: &TradingState) -> Value {
    match t {
        TradingState::Active => json!({"state": "active"}),
        TradingState::Reducing {
            reason,
            since_ms,
            until_ms,
        } => json!({"state": "reducing", "reason": reason, "since_ms": since_ms, "until_ms": until_ms}),
        TradingState::Halted { reason, since_ms } => {
            json!({"state": "halted", "reason": reason, "since_ms": since_ms})
        }
    }
}

pub use crate::engine::reports::{equity_fields, fee_json, order_json as order};

fn snapshot_equity_fields(s: &Snapshot) -> Map<String, Value> {
    equity_fields(s.equity.as_ref(), &s.equity_status, &s.unpriced_assets)
}

pub fn orders(s: &Snapshot) -> Value {
    json!({"orders": s.orders.iter().map(order).collect::<Vec<_>>(), "notes": Vec::<String>::new()})
}

/// `{"positions": [...]}`, as `crbot positions --json` prints it.
pub fn positions(s: &Snapshot) -> Value {
    crate::engine::reports::positions_doc(s)
}

pub fn balance(s: &Snapshot) -> Value {
    let rows: Vec<Value> = s
        .books
        .balances
        .iter()
        .map(|b| {
            json!({
                "asset": b.asset.as_str(), "free": b.free.to_string(), "locked": b.locked.to_string(),
                "mark_usdt": b.mark.map(|m| m.to_string()),
                "value_usdt": b.value.as_ref().map(|v| plain(v.amount())),
                "mark_age_ms": b.mark_age_ms,
            })
        })
        .collect();
    let mut doc = snapshot_equity_fields(s);
    doc.insert("balances".into(), json!(rows));
    doc.insert("notes".into(), json!(Vec::<String>::new()));
    Value::Object(doc)
}

/// As `crbot pnl --json`.
pub fn pnl(s: &Snapshot) -> Value {
    let l = &s.limits;
    let b = &s.books;
    // An unknown equity gives no P&L at all: never a figure computed from a partial sum.
    let known = s.equity.is_some() && b.day_start_equity.is_some();
    let flows: Vec<Value> = b
        .capital_flows
        .iter()
        .map(|f| {
            json!({
                "time_ms": f.time_ms, "asset": f.asset.as_str(), "delta": f.delta.normalize().to_string(),
                "value_usdt": f.value_usdt.map(plain), "source": f.source,
            })
        })
        .collect();
    let net: Decimal = b.capital_flows.iter().filter_map(|f| f.value_usdt).sum();
    let by_position: Vec<Value> = b
        .fees_by_position
        .iter()
        .map(|(sym, t)| {
            let mut j = fee_json(t);
            j["symbol"] = json!(sym.as_str());
            j
        })
        .collect();
    let by_day: Vec<Value> = b
        .fees_by_day
        .iter()
        .map(|(day, t)| {
            let mut j = fee_json(t);
            j["date"] = json!(day.to_string());
            j
        })
        .collect();
    let mut doc = snapshot_equity_fields(s);
    doc.remove("equity_usdt");
    let fields = json!({
        "equity": s.equity.as_ref().map(|e| plain(e.amount())),
        "day_start_equity": b.day_start_equity.as_ref().map(|e| plain(e.amount())),
        "day_pnl": known.then(|| plain(l.day_pnl.amount())),
        "day_pnl_pct": known.then(|| plain(l.day_pnl_pct)),
        "daily_loss_limit_pct": l.daily_loss_limit_pct.to_string(),
        "daily_reset_ms": l.daily_reset_ms,
        "drawdown_pct": s.equity.as_ref().map(|_| plain(l.drawdown_pct)),
        "drawdown_limit_pct": l.drawdown_limit_pct.to_string(),
        "high_water_mark": b.high_water_mark.as_ref().map(|e| plain(e.amount())),
        "capital_flows": flows,
        "capital_flows_net_usdt": plain(net),
        "trades_used": l.trades_used,
        "trades_limit": l.trades_limit,
        "trading_state": state_text(&s.header.trading),
        "realized": b.realized.iter().map(|(sym, r)| {
            json!({"symbol": sym.as_str(), "realized": plain(r.amount()), "asset": r.asset().as_str()})
        }).collect::<Vec<_>>(),
        "fees": {"by_position": by_position, "by_day": by_day, "total": fee_json(&b.fees_total)},
    });
    if let Value::Object(m) = fields {
        doc.extend(m);
    }
    Value::Object(doc)
}

/// The trading state, every limit with its use, and the kill switch's progress.
pub fn risk(s: &Snapshot) -> Value {
    let l = &s.limits;
    let usage: Map<String, Value> = l
        .usage()
        .iter()
        .map(|(name, ratio)| (limit_key(*name).to_string(), json!(plain(*ratio))))
        .collect();
    json!({
        "trading": trading(&s.header.trading),
        "trading_state": state_text(&s.header.trading),
        "limits": {
            "daily_loss_limit_pct": l.daily_loss_limit_pct.to_string(),
            "day_pnl_pct": s.equity.as_ref().map(|_| plain(l.day_pnl_pct)),
            "daily_reset_ms": l.daily_reset_ms,
            "drawdown_limit_pct": l.drawdown_limit_pct.to_string(),
            "drawdown_pct": s.equity.as_ref().map(|_| plain(l.drawdown_pct)),
            "trades_used": l.trades_used,
            "trades_limit": l.trades_limit,
            "position_size_limit_pct": l.position_size_limit_pct.to_string(),
            "min_risk_reward": l.min_risk_reward.to_string(),
        },
        "usage": usage,
        "kill": s.kill.as_ref().map(kill),
        "warnings": s.header.warnings,
    })
}

/// The key of a limit in `usage` and in the metrics' labels.
pub fn limit_key(name: LimitName) -> &'static str {
    match name {
        LimitName::DailyLoss => "daily_loss",
        LimitName::Drawdown => "drawdown",
        LimitName::TradesPerDay => "trades_per_day",
        LimitName::PositionSize => "position_size",
        LimitName::MinRiskReward => "min_risk_reward",
    }
}

pub fn kill(k: &KillProgress) -> Value {
    json!({
        "stage": k.stage.label(),
        "done": k.done,
        "started_ms": k.started_ms,
        "symbols": k.lines.iter().map(|l| json!({"symbol": l.symbol.as_str(), "ok": l.ok, "outcome": l.outcome})).collect::<Vec<_>>(),
    })
}

pub fn equity(s: &Snapshot) -> Value {
    let points = |w: &[crate::engine::snapshot::EquityPoint]| {
        w.iter()
            .map(|p| json!({"time_ms": p.time_ms, "value": plain(p.value)}))
            .collect::<Vec<_>>()
    };
    let c = &s.equity_curves;
    let mut doc = snapshot_equity_fields(s);
    doc.insert(
        "curve".into(),
        json!({"session": points(&c.session), "day": points(&c.day), "week": points(&c.week), "all": points(&c.all)}),
    );
    Value::Object(doc)
}

fn stream(h: &StreamHealth) -> Value {
    let status = match h.status {
        StreamStatus::Connected => "connected".to_string(),
        StreamStatus::Connecting => "connecting".to_string(),
        StreamStatus::Reconnecting { attempt } => format!("reconnecting (attempt {attempt})"),
        StreamStatus::Down => "down".to_string(),
    };
    json!({"status": status, "latency_ms": h.latency_ms})
}

/// What the engine last measured of the exchange: clock offset, streams, request weight (the
/// engine's view; `crbot ping` measures afresh).
pub fn ping(s: &Snapshot) -> Value {
    let h = &s.header;
    let connected = h.market_stream.status == StreamStatus::Connected;
    json!({
        "ok": connected && h.user_stream.status == StreamStatus::Connected,
        "mode": s.mode.to_string(),
        "clock_offset_ms": h.clock_offset_ms,
        "stream_reachable": connected,
        "market_stream": stream(&h.market_stream),
        "user_stream": stream(&h.user_stream),
        "rate_limits": {
            "weight_used": h.rate_limits.weight_used, "weight_limit": h.rate_limits.weight_limit,
            "orders_10s": h.rate_limits.orders_10s, "orders_10s_limit": h.rate_limits.orders_10s_limit,
        },
    })
}

/// `ok`, `degraded` (a stream not connected, an incomplete equity, or trading reducing) or
/// `halted`.
pub fn health_status(s: &Snapshot) -> &'static str {
    let h = &s.header;
    if h.trading.is_halted() {
        return "halted";
    }
    let streams_up =
        h.market_stream.status == StreamStatus::Connected && h.user_stream.status == StreamStatus::Connected;
    let reducing = matches!(h.trading, TradingState::Reducing { .. });
    if streams_up && !s.equity_status.is_incomplete() && !reducing {
        "ok"
    } else {
        "degraded"
    }
}
