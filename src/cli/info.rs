//! The read-only commands: `ping`, `health`, `balance`, `orders`, `positions`, `pnl`, and the
//! journal's `backup` and `journal export --csv`.
//!
//! Owns: what each prints (text, or one JSON document). Must not: send an order or change the
//! trading state (the shared preparation reconciles the journal with the exchange, which is
//! the same bookkeeping the console does at start-up).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome, now_ms};
use crate::cli::exit;
use crate::cli::remote::{self, Remote, Route};

use crate::domain::Symbol;
use crate::engine::backup;
use crate::engine::core::DEFAULT_WATCHLIST;
use crate::engine::reports::{self, Report, ReportKind, equity_view};

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

pub async fn balance(ctx: &Ctx) -> Outcome {
    read_report(ctx, ReportKind::Balance).await
}

pub async fn orders(ctx: &Ctx) -> Outcome {
    read_report(ctx, ReportKind::Orders).await
}

pub async fn positions(ctx: &Ctx) -> Outcome {
    read_report(ctx, ReportKind::Positions).await
}

pub async fn pnl(ctx: &Ctx) -> Outcome {
    read_report(ctx, ReportKind::Pnl).await
}

/// A read command: through the account's engine when one runs (it builds the report from its
/// own state; this command opens neither the journal nor a connection), otherwise from this
/// command's own reconcile, holding the account's lock. Printed the same either way.
async fn read_report(ctx: &Ctx, kind: ReportKind) -> Outcome {
    let report = match common::route(ctx).await? {
        Route::Engine(engine) => report_through(&engine, kind).await?,
        Route::Alone(lock) => {
            let ready = common::prepare_routed(ctx, &[], lock).await?;
            let report = reports::build(kind, &ready.core.state, &ready.notes, now_ms());
            ready.session.close(&ctx.config).await;
            report
        }
    };
    ctx.print(&report.text, report.doc.clone());
    if let Some(line) = &report.warning
        && !ctx.json()
    {
        eprintln!("crbot: {line}");
    }
    match report.failure {
        Some(line) => Err(Failure::new(line)),
        None => Ok(exit::OK),
    }
}

/// `GET /api/report/{kind}` on the engine's socket; an engine still reconciling is asked
/// again, at most [`remote::ENGINE_WAIT`].
async fn report_through(engine: &Remote, kind: ReportKind) -> Result<Report, Failure> {
    let path = format!("/api/report/{}", kind.name());
    let deadline = Instant::now() + remote::ENGINE_WAIT;
    loop {
        let (status, doc) = engine
            .call("GET", &path, None, Duration::from_secs(20))
            .await
            .map_err(Failure::new)?;
        match status {
            200 => {
                return serde_json::from_value(doc)
                    .map_err(|e| Failure::new(format!("the engine's report is not readable: {e}")));
            }
            503 if doc["error"] == crate::api::orders::ENGINE_STARTING && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            _ => return Err(Failure::new(remote::error_line(status, &doc))),
        }
    }
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
