//! `crbot kill [--flatten]` and `crbot resume`.
//!
//! Owns: running the kill switch's one sequence (`engine::kill`) from a shell — the halt
//! before connecting (if the journal cannot record it, say so loudly and cancel anyway), the
//! sweep's progress on the terminal and in the journal, the outcome per symbol, then a
//! reconcile and a backup through the backup service; `--flatten` then sells crbot's
//! positions at market through the risk gate (exit confirmed). Must not: need a running
//! console or the market stream; re-arm anything (only `resume` does, explicitly).

use std::time::Duration;

use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome, Ready, now_ms};
use crate::cli::exit;
use crate::cli::remote::{self, Remote, Route};
use crate::domain::OrderPurpose;
use crate::engine::backup;
use crate::engine::core::{Core, Refusal};
use crate::engine::kill::{self, KillEvent};
use crate::engine::lock::EngineLock;
use crate::engine::snapshot::KillStage;
use crate::journal::{EventKind, Journal, KillTrigger};
use crate::risk::TradingState;

/// The code of the event a kill switch leaves in the journal, for `crbot doctor`'s
/// comparison of stored codes (new code matches on [`EventKind`] instead).
pub const KILL_EVENT: &str = EventKind::Kill.as_code();
/// The code of the event every backup leaves, so `doctor` finds backups written anywhere.
pub const BACKUP_EVENT: &str = EventKind::Backup.as_code();

/// `<data>/backups/journal-<mode>-<UTC time>.db`.
pub fn backup_path(ctx: &Ctx) -> std::path::PathBuf {
    backup::file_in(
        &backup::folder(&ctx.config.paths.data_dir),
        ctx.config.mode,
        now_ms(),
    )
}

/// One progress line on the terminal, as the sweep reports it.
fn print_progress(ev: &KillEvent) {
    match ev {
        KillEvent::Stage(s) => println!("kill: {}", s.label()),
        KillEvent::Line { symbol, ok, outcome } => {
            let mark = match ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "..",
            };
            println!("  {symbol:<12} {mark:<6} {outcome}");
        }
        KillEvent::Countdown { secs } if *secs > 0 => {
            println!("  rate limited: cancelling again in {secs}s")
        }
        KillEvent::Countdown { .. } => {}
        KillEvent::Done { ok, summary } => {
            println!("kill: {} — {summary}", if *ok { "DONE" } else { "INCOMPLETE" })
        }
    }
}

/// How long the kill switch gives a running engine to take the kill (its halt shows within one
/// engine step) before this command runs the sweep itself.
const KILL_ANSWER: Duration = Duration::from_secs(8);
/// How long the command follows the engine's sweep (and flatten) before it reports it as
/// unfinished.
const KILL_FOLLOW: Duration = Duration::from_secs(120);

pub async fn kill(ctx: &Ctx, flatten: bool) -> Outcome {
    // The kill switch never waits for another process. The account free: this command is the
    // engine for the sweep, holding the lock. Held by an engine that answers: the engine runs
    // the kill (its screen and API show it at once). Held but the engine does not answer (hung,
    // starting, or another command): the sweep runs from here anyway.
    let lock = EngineLock::try_acquire(&ctx.config.paths.data_dir, ctx.config.mode).ok();
    if lock.is_none() {
        match remote::engine_now(&ctx.config.paths.data_dir, ctx.config.mode).await {
            Some(engine) => match kill_through(ctx, &engine, flatten).await {
                Some(outcome) => return outcome,
                None => eprintln!(
                    "crbot: the engine did not take the kill within {} s; running the kill sweep from here",
                    KILL_ANSWER.as_secs()
                ),
            },
            None => eprintln!(
                "crbot: another crbot process holds the {} account and no engine answers; running the kill sweep from here",
                ctx.config.mode
            ),
        }
    }
    let outcome = kill_alone(ctx, flatten).await;
    drop(lock);
    outcome
}

/// The kill through the running engine: `POST /api/kill`, then its progress followed from the
/// engine's state until the sweep (and the flatten) is done. `None` when the engine did not
/// take it (the caller then sweeps itself).
async fn kill_through(ctx: &Ctx, engine: &Remote, flatten: bool) -> Option<Outcome> {
    let sent_ms = now_ms();
    let body = json!({"flatten": flatten});
    let (status, _) = engine
        .call("POST", "/api/kill", Some(&body), KILL_ANSWER)
        .await
        .ok()?;
    if status != 202 {
        return None;
    }
    let mut shown = 0usize;
    let mut stage = String::new();
    let deadline = std::time::Instant::now() + KILL_FOLLOW;
    let mut last = serde_json::Value::Null;
    let finished = loop {
        if let Ok((200, doc)) = engine
            .call("GET", "/api/risk", None, Duration::from_secs(5))
            .await
        {
            last = doc;
        }
        let kill = &last["kill"];
        let ours = kill["started_ms"].as_i64().is_some_and(|t| t >= sent_ms - 1000);
        if ours && !ctx.json() {
            if kill["stage"].as_str().is_some_and(|s| s != stage) {
                stage = kill["stage"].as_str().unwrap_or_default().to_string();
                println!("kill: {stage}");
            }
            let lines = kill["symbols"].as_array().cloned().unwrap_or_default();
            for l in lines.iter().skip(shown).filter(|l| !l["ok"].is_null()) {
                let mark = if l["ok"] == json!(true) { "ok" } else { "FAILED" };
                println!(
                    "  {:<12} {mark:<6} {}",
                    l["symbol"].as_str().unwrap_or_default(),
                    l["outcome"].as_str().unwrap_or_default()
                );
                shown += 1;
            }
        }
        let swept = ours && kill["done"] == json!(true);
        // The flatten's sells go once the sweep is done; they are over when the engine holds
        // none of crbot's positions any more (dust aside).
        let done = swept
            && (!flatten
                || (kill["stage"] == json!(KillStage::Flattening.label())
                    && engine_positions(engine).await.is_some_and(|n| n == 0)));
        if done {
            break true;
        }
        if std::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let kill = &last["kill"];
    let symbols = kill["symbols"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&str> = symbols
        .iter()
        .filter(|l| l["ok"] == json!(false))
        .filter_map(|l| l["symbol"].as_str())
        .collect();
    let ok = finished && failed.is_empty();
    let state = last["trading_state"].as_str().unwrap_or("HALTED").to_string();
    let summary = if !finished {
        format!(
            "the engine's kill had not finished after {} s",
            KILL_FOLLOW.as_secs()
        )
    } else if failed.is_empty() {
        kill["stage"].as_str().unwrap_or_default().to_string()
    } else {
        format!("failed on {}", failed.join(", "))
    };
    ctx.print(
        &format!(
            "trading state: {state}
kill run by the account's engine: {summary}
"
        ),
        json!({
            "ok": ok,
            "trading_state": state,
            "halt_recorded": true,
            "warnings": Vec::<String>::new(),
            "symbols": symbols,
            "cancelled": serde_json::Value::Null,
            "still_open": failed,
            "summary": summary,
            "backup": serde_json::Value::Null,
            "flatten": if flatten { json!({"ok": ok, "by": "engine"}) } else { serde_json::Value::Null },
            "engine": true,
        }),
    );
    Some(if ok {
        Ok(exit::OK)
    } else {
        Err(Failure::new(format!("kill incomplete: {summary}")))
    })
}

/// How many of crbot's own positions (not external, not dust) the engine shows.
async fn engine_positions(engine: &Remote) -> Option<usize> {
    let (status, doc) = engine
        .call("GET", "/api/positions", None, Duration::from_secs(5))
        .await
        .ok()?;
    (status == 200).then(|| {
        doc["positions"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|p| p["external"] != json!(true) && p["dust"] != json!(true))
                    .count()
            })
            .unwrap_or(0)
    })
}

/// The kill switch run by this command itself: halt in the journal, sweep, backup, flatten.
async fn kill_alone(ctx: &Ctx, flatten: bool) -> Outcome {
    let mut warnings: Vec<String> = Vec::new();
    // 1. The halt, durable before any request leaves (connecting may take a while).
    let mut core = match common::open_core(&ctx.config) {
        Ok(c) => Some(c),
        Err(e) => {
            warnings.push(format!(
                "WARNING: the journal cannot be opened ({}); the halt is NOT recorded; cancelling anyway",
                e.line
            ));
            None
        }
    };
    let halted = kill::halt(
        core.as_mut(),
        KillTrigger::Cli,
        "kill switch from the command line",
        now_ms(),
    );
    if let Some(e) = halted.halt_error() {
        warnings.push(format!(
            "WARNING: the journal could not record the halt ({e}); cancelling anyway"
        ));
    }
    for w in &warnings {
        eprintln!("crbot: {w}");
    }

    // 2. The sweep, its progress printed and journaled as it happens.
    let session = common::connect(ctx).await?;
    let mut running = halted.sweep(core.as_mut(), &session.rest, now_ms());
    while let Some(ev) = running.next().await {
        if !ctx.json() {
            print_progress(&ev);
        }
        if let Some(c) = core.as_mut() {
            kill::record(c, &ev, now_ms());
        }
    }
    let report = running.report().await;

    let mut ready = match core.take() {
        Some(core) => Some(Ready {
            session,
            core,
            notes: Vec::new(),
            lock: None,
            beside_engine: false,
        }),
        None => {
            session.close(&ctx.config).await;
            None
        }
    };
    let mut backup = None;
    if let Some(r) = ready.as_mut() {
        // Bring the journal's orders up to date with what the sweep cancelled.
        if let Err(e) = common::sync(r, &[]).await {
            r.notes
                .push(format!("after the sweep, reconcile failed: {}", e.line));
        }
        // 3. An online backup once stage one is over.
        let now = now_ms();
        let outcome = backup::spawn(
            r.core.journal.location().clone(),
            ctx.config.mode,
            backup_path(ctx),
            backup::Reason::AfterKill,
            now,
        )
        .await;
        r.core
            .record_event(outcome.kind(), None, &outcome.detail(), now_ms());
        backup = Some(outcome.result.map(|_| outcome.path));
    }

    // 4. Stage two when asked.
    let mut flatten_json = serde_json::Value::Null;
    let mut flatten_ok = true;
    if flatten {
        match ready.as_mut() {
            Some(r) => {
                let (ok, text, j) = flatten_all(r).await;
                flatten_ok = ok;
                flatten_json = j;
                if !ctx.json() {
                    println!("{text}");
                }
            }
            None => {
                flatten_ok = false;
                warnings.push("flatten skipped: without the journal crbot cannot tell its positions".into());
            }
        }
    }

    let state = ready
        .as_ref()
        .map(|r| r.core.state.trading.to_string())
        .unwrap_or_else(|| "HALTED (not recorded)".into());
    let mut text = String::new();
    text.push_str(&format!("trading state: {state}\n"));
    match &backup {
        Some(Ok(p)) => text.push_str(&format!("journal backup: {}\n", p.display())),
        Some(Err(e)) => text.push_str(&format!("journal backup FAILED: {e}\n")),
        None => {}
    }
    if let Some(r) = &ready {
        for n in &r.notes {
            text.push_str(&format!("note: {n}\n"));
        }
    }
    let lines: Vec<serde_json::Value> = report
        .lines
        .iter()
        .map(|l| json!({"symbol": l.symbol.as_str(), "ok": l.ok, "outcome": l.outcome}))
        .collect();
    ctx.print(
        &text,
        json!({
            "ok": report.ok && flatten_ok,
            "trading_state": state,
            "halt_recorded": warnings.is_empty(),
            "warnings": warnings,
            "symbols": lines,
            "cancelled": report.cancelled,
            "still_open": report.still_open.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "summary": report.summary,
            "backup": backup.as_ref().map(|b| match b { Ok(p) => json!({"path": p.display().to_string()}), Err(e) => json!({"error": e}) }),
            "flatten": flatten_json,
        }),
    );
    if let Some(r) = ready {
        r.session.close(&ctx.config).await;
    }
    if !report.ok {
        return Err(Failure::new(format!("kill incomplete: {}", report.summary)));
    }
    if !flatten_ok {
        return Err(Failure::new(
            "kill: orders cancelled, but flatten did not complete",
        ));
    }
    Ok(exit::OK)
}

/// Stage two: a MARKET sell of each of crbot's positions (all of it), through the risk gate
/// with the exit confirmed; dust reported per asset.
async fn flatten_all(ready: &mut Ready) -> (bool, String, serde_json::Value) {
    let plan = kill::flatten_plan(&ready.core.state, 100, None);
    let mut ok = true;
    let mut text = String::from("flatten:\n");
    let mut sells = Vec::new();
    if plan.tickets.is_empty() && plan.dust.is_empty() {
        text.push_str("  no crbot positions to sell\n");
    }
    for t in &plan.tickets {
        let mut log = Vec::new();
        let result = match ready.core.decide(t, OrderPurpose::Flatten, true, now_ms()) {
            Ok(p) => ready.oneshot().send_prepared(&p.request, &mut log).await,
            Err(Refusal::Risk(d)) => Err(format!(
                "refused: {}",
                d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
            )),
            Err(e @ Refusal::Storage(_)) => Err(e.to_string()),
        };
        let line = match &result {
            Ok(()) => format!("  {} SELL {}: {}", t.symbol, t.qty, log.join("; ")),
            Err(e) => format!("  {} SELL {}: FAILED {e}", t.symbol, t.qty),
        };
        ok &= result.is_ok();
        text.push_str(&line);
        text.push('\n');
        sells.push(json!({"symbol": t.symbol.as_str(), "qty": t.qty.to_string(), "ok": result.is_ok(), "detail": result.err().unwrap_or_else(|| log.join("; "))}));
    }
    let mut dust = Vec::new();
    for d in &plan.dust {
        text.push_str(&format!(
            "  dust {} {} ({}): {}\n",
            d.qty, d.asset, d.symbol, d.reason
        ));
        dust.push(json!({"symbol": d.symbol.as_str(), "asset": d.asset.as_str(), "qty": d.qty.to_string(), "reason": d.reason}));
    }
    (ok, text, json!({"ok": ok, "sells": sells, "dust": dust}))
}

/// `crbot resume`: re-arms, journaled. In modes with keys the vault passphrase is required
/// first (keys from the environment in development stand in for it, as everywhere).
pub async fn resume(ctx: &Ctx) -> Outcome {
    let route = common::route(ctx).await?;
    let config = &ctx.config;
    if config.mode.needs_keys() && config.env_keys.is_none() {
        let path = crate::vault::vault_path(Some(&config.paths.config_dir));
        let mut source: Box<dyn crate::vault::PassphraseSource> = if ctx.global.passphrase_stdin {
            Box::new(crate::vault::LinesSource::new(std::io::stdin().lock()))
        } else {
            Box::new(crate::vault::TerminalPrompt)
        };
        crate::vault::unlock_interactive(&path, config.mode, source.as_mut(), &std::thread::sleep)
            .map_err(|e| Failure::new(format!("re-arm needs the vault passphrase: {e}")))?;
    }
    let _lock = match route {
        Route::Engine(engine) => return resume_through(ctx, &engine).await,
        Route::Alone(lock) => lock,
    };
    let mut core: Core = common::open_core(config)?;
    if core.state.trading == TradingState::Active {
        ctx.print(
            "trading is already active; nothing to re-arm",
            json!({"rearmed": false, "trading_state": "ACTIVE", "message": "already active"}),
        );
        return Ok(exit::OK);
    }
    let before = core.state.trading.to_string();
    core.rearm("cli", now_ms()).map_err(Failure::new)?;
    let after = core.state.trading.to_string();
    ctx.print(
        &format!("re-armed: {before} → {after}"),
        json!({"rearmed": true, "previous": before, "trading_state": after}),
    );
    Ok(exit::OK)
}

/// `crbot resume` through the running engine (the passphrase, in a mode with keys, was checked
/// here first, as when the command runs alone).
async fn resume_through(ctx: &Ctx, engine: &Remote) -> Outcome {
    let wait = Duration::from_secs(20);
    let (_, before) = engine
        .call("GET", "/api/risk", None, wait)
        .await
        .map_err(Failure::new)?;
    let before = before["trading_state"].as_str().unwrap_or_default().to_string();
    if before == "ACTIVE" {
        ctx.print(
            "trading is already active; nothing to re-arm",
            json!({"rearmed": false, "trading_state": "ACTIVE", "message": "already active"}),
        );
        return Ok(exit::OK);
    }
    let body = json!({"confirm": "RESUME"});
    let (status, doc) = engine
        .call("POST", "/api/resume", Some(&body), wait)
        .await
        .map_err(Failure::new)?;
    let after = doc["trading_state"].as_str().unwrap_or_default().to_string();
    if status != 200 || after != "ACTIVE" {
        return Err(Failure::new(format!(
            "the engine did not re-arm (still {after}); see its log"
        )));
    }
    ctx.print(
        &format!("re-armed: {before} → {after}"),
        json!({"rearmed": true, "previous": before, "trading_state": after}),
    );
    Ok(exit::OK)
}

/// Opens this mode's journal only if it exists (backup and export never create one); a
/// journal that cannot be written is opened read-only (both only read it).
pub fn open_existing(ctx: &Ctx) -> Result<Journal, Failure> {
    let path = ctx.config.journal_path();
    let location = ctx.config.journal_location();
    if let crate::journal::Location::Postgres(_) = location {
        // Never created here: a database with no journal is refused.
        return Journal::open_read_only_at(&location, ctx.config.mode)
            .map_err(|e| common::journal_failure(&path, &e));
    }
    if !path.exists() {
        return Err(Failure::new(format!("no journal at {}", path.display())));
    }
    Journal::open_for_reading(&path, ctx.config.mode)
        .map(|(journal, _read_only)| journal)
        .map_err(|e| common::journal_failure(&path, &e))
}
