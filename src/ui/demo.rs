//! A stand-in engine for developing the screen without the real one: it publishes
//! [`Snapshot::demo`] with moving prices and answers commands in the simplest plausible way.
//!
//! Owns: nothing the product relies on. Must not: be used for trading; no order leaves here.
//! The lead can call [`run_demo`] from a hidden subcommand while the engine is being built.

use std::time::{SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};

use super::{RunStats, UiConfig, run_terminal};
use crate::domain::{ClientOrderId, Mode, Price};
use crate::engine::snapshot::{
    Command, KillLine, KillProgress, KillStage, LimitChangePending, LogKind, LogLevel, LogLine, Snapshot,
    TicketOutcome, TicketResult, TradingState, WatchRow,
};

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log(s: &mut Snapshot, level: LogLevel, kind: LogKind, text: String) {
    let seq = s.log.last().map_or(1, |l| l.seq + 1);
    s.log.push(LogLine {
        seq,
        time_ms: s.now_ms,
        level,
        kind,
        text,
    });
    if s.log.len() > 200 {
        s.log.remove(0);
    }
}

/// Applies one command to the fake state.
pub fn apply(s: &mut Snapshot, cmd: Command) {
    match cmd {
        Command::PreviewTicket(draft) => {
            let mut p = Snapshot::demo(s.now_ms).ticket_preview;
            if let Some(p) = &mut p {
                p.approved = !draft.amount.trim().is_empty();
                if !p.approved {
                    p.field_errors = vec![(crate::engine::snapshot::TicketField::Amount, "empty".into())];
                }
                p.draft = draft;
            }
            s.ticket_preview = p;
        }
        Command::SubmitTicket(draft) => {
            let id = ClientOrderId::generate(s.now_ms, 7);
            log(
                s,
                LogLevel::Info,
                LogKind::Fill,
                format!("FILL (demo) {} {} {}", draft.side, draft.amount, draft.symbol),
            );
            s.ticket_result = Some(TicketResult {
                draft,
                outcome: TicketOutcome::Accepted {
                    client_order_id: id,
                    detail: "NEW".into(),
                },
            });
        }
        Command::CancelOrder(id) => {
            s.orders.retain(|o| o.client_order_id != id);
            log(s, LogLevel::Info, LogKind::Order, format!("cancelled {id}"));
        }
        Command::ClosePosition { symbol, percent } => {
            log(
                s,
                LogLevel::Info,
                LogKind::Order,
                format!("close {percent}% of {symbol} (demo)"),
            );
        }
        Command::Kill => {
            s.header.trading = TradingState::Halted {
                reason: "kill switch (key)".into(),
                since_ms: s.now_ms,
            };
            let lines = s
                .orders
                .iter()
                .map(|o| KillLine {
                    symbol: o.symbol.clone(),
                    ok: Some(true),
                    outcome: "cancelled".into(),
                })
                .collect();
            s.orders.clear();
            s.kill = Some(KillProgress {
                started_ms: s.now_ms,
                stage: KillStage::Cancelled,
                lines,
                done: true,
            });
            log(
                s,
                LogLevel::Error,
                LogKind::Kill,
                "KILL: halted, all orders cancelled".into(),
            );
        }
        Command::Flatten { percent } => {
            if let Some(k) = &mut s.kill {
                k.stage = KillStage::Flattened;
            }
            log(
                s,
                LogLevel::Warn,
                LogKind::Kill,
                format!("flattened {percent}% (demo)"),
            );
        }
        Command::Rearm { .. } => {
            s.header.trading = TradingState::Active;
            s.kill = None;
            log(s, LogLevel::Info, LogKind::System, "re-armed".into());
        }
        Command::AddSymbol(symbol) => {
            if !s.watchlist.iter().any(|w| w.symbol == symbol) {
                s.watchlist.push(WatchRow {
                    symbol,
                    last: None,
                    bid: None,
                    ask: None,
                    change_24h_pct: None,
                    stale: true,
                });
            }
        }
        Command::RemoveSymbol(symbol) => s.watchlist.retain(|w| w.symbol != symbol),
        Command::SelectSymbol(symbol) => s.selected_symbol = Some(symbol),
        Command::ProposeLimit { name, value } => {
            let from = s.limits.value_of(name);
            if value > from {
                let phrase = format!("LOOSEN {} {}", name.env_name(), crate::domain::plain(value));
                s.limit_change_pending = Some(LimitChangePending {
                    name,
                    from,
                    to: value,
                    phrase,
                });
            } else {
                log(
                    s,
                    LogLevel::Info,
                    LogKind::Limit,
                    format!("{} tightened to {value}", name.env_name()),
                );
            }
        }
        Command::ConfirmLimit { .. } | Command::CancelLimitChange => s.limit_change_pending = None,
        Command::Quit => {}
    }
}

/// Moves prices a little, deterministically from the tick number.
fn tick(s: &mut Snapshot, n: i64) {
    s.now_ms = wall_ms();
    for (i, w) in s.watchlist.iter_mut().enumerate() {
        if let Some(last) = w.last {
            let bp = ((n * 37 + i as i64 * 11) % 21) - 10;
            let next = last.value() * (Decimal::ONE + Decimal::new(bp, 4) / Decimal::from(10));
            if let Ok(p) = Price::try_new(next.round_dp(2)) {
                w.last = Some(p);
                w.bid = Some(p);
                w.ask = Some(p);
            }
        }
    }
}

/// Runs the real screen on the fake engine until the trader quits.
pub async fn run_demo(mode: Mode, config: UiConfig) -> anyhow::Result<RunStats> {
    let mut snap = Snapshot::demo(wall_ms());
    snap.mode = mode;
    let (snap_tx, snap_rx) = watch::channel(snap.clone());
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
    let engine = tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(500));
        let mut n = 0i64;
        loop {
            tokio::select! {
                _ = interval.tick() => { n += 1; tick(&mut snap, n); }
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Quit) | None => break,
                    Some(cmd) => { snap.now_ms = wall_ms(); apply(&mut snap, cmd); }
                },
            }
            if snap_tx.send(snap.clone()).is_err() {
                break;
            }
        }
    });
    let result = run_terminal(snap_rx, cmd_tx, config).await;
    engine.abort();
    result
}
