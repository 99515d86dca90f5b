//! `GET /metrics`: the engine's figures in the Prometheus text format (version 0.0.4).
//!
//! Owns: metric names, help lines and labels. Must not: turn money into floats (values are
//! written from the exact decimals, which the format reads as numbers), or invent a value the
//! engine does not know: an unknown equity or P&L is left out, not written as 0.

use std::fmt::Write as _;

use crate::domain::plain;
use crate::engine::snapshot::{Snapshot, StreamStatus};

use super::docs::{limit_key, state_name};

/// The content type Prometheus scrapes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its `# HELP`/`# TYPE` lines and samples (`labels` without braces).
fn family(out: &mut String, name: &str, help: &str, samples: &[(String, String)]) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

fn one(value: impl ToString) -> Vec<(String, String)> {
    vec![(String::new(), value.to_string())]
}

/// The exposition of `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let h = &s.header;
    let l = &s.limits;
    if let Some(e) = &s.equity {
        family(
            &mut out,
            "crbot_equity_usdt",
            "Account equity in USDT.",
            &one(plain(e.amount())),
        );
        if s.books.day_start_equity.is_some() {
            family(
                &mut out,
                "crbot_day_pnl_usdt",
                "Today's P&L in USDT (UTC day).",
                &one(plain(l.day_pnl.amount())),
            );
            family(
                &mut out,
                "crbot_day_pnl_percent",
                "Today's P&L in percent of the day-start equity.",
                &one(plain(l.day_pnl_pct)),
            );
        }
        family(
            &mut out,
            "crbot_drawdown_percent",
            "Drawdown below the high-water mark, in percent.",
            &one(plain(l.drawdown_pct)),
        );
    }
    let usage: Vec<(String, String)> = l
        .usage()
        .iter()
        .map(|(name, ratio)| (format!("limit=\"{}\"", limit_key(*name)), plain(*ratio)))
        .collect();
    family(
        &mut out,
        "crbot_limit_used_ratio",
        "Share of each risk limit used (1 = at the limit).",
        &usage,
    );
    family(
        &mut out,
        "crbot_trades_used",
        "Entry tickets sent today.",
        &one(l.trades_used),
    );
    family(
        &mut out,
        "crbot_trades_limit",
        "Entry tickets allowed per UTC day.",
        &one(l.trades_limit),
    );
    let current = state_name(&h.trading);
    let states: Vec<(String, String)> = ["active", "reducing", "halted"]
        .iter()
        .map(|st| (format!("state=\"{st}\""), u8::from(*st == current).to_string()))
        .collect();
    family(
        &mut out,
        "crbot_trading_state",
        "1 for the current trading state.",
        &states,
    );
    family(
        &mut out,
        "crbot_open_orders",
        "Open orders, protective legs included.",
        &one(s.orders.len()),
    );
    family(
        &mut out,
        "crbot_rate_limit_weight_used",
        "Request weight used in the exchange's current minute.",
        &one(h.rate_limits.weight_used),
    );
    family(
        &mut out,
        "crbot_rate_limit_weight_limit",
        "Request weight allowed per minute.",
        &one(h.rate_limits.weight_limit),
    );
    let streams = [("market", &h.market_stream), ("user", &h.user_stream)];
    let up: Vec<(String, String)> = streams
        .iter()
        .map(|(n, st)| {
            (
                format!("stream=\"{n}\""),
                u8::from(st.status == StreamStatus::Connected).to_string(),
            )
        })
        .collect();
    family(
        &mut out,
        "crbot_stream_connected",
        "1 when the stream is connected.",
        &up,
    );
    let latency: Vec<(String, String)> = streams
        .iter()
        .filter_map(|(n, st)| {
            st.latency_ms
                .map(|ms| (format!("stream=\"{n}\""), ms.to_string()))
        })
        .collect();
    if !latency.is_empty() {
        family(
            &mut out,
            "crbot_stream_latency_ms",
            "Last measured event latency.",
            &latency,
        );
    }
    if let Some(offset) = h.clock_offset_ms {
        family(
            &mut out,
            "crbot_clock_offset_ms",
            "Exchange clock minus local clock.",
            &one(offset),
        );
    }
    out
}
