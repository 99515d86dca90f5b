//! The read-only commands: `ping`, `health`, `balance`, `orders`, `positions`, `pnl`, and the
//! journal's `backup` and `journal export --csv`.
//!
//! Owns: what each prints (text, or one JSON document). Must not: send an order or change the
//! trading state (the shared preparation reconciles the journal with the exchange, which is
//! the same bookkeeping the console does at start-up), or write the journal while another
//! engine leads the account (on PostgreSQL, from another machine: they read only and say so).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome, now_ms};
use crate::cli::exit;
use crate::cli::remote::{self, Remote, Route};

use crate::domain::Symbol;
use crate::engine::backup;
use crate::engine::core::DEFAULT_WATCHLIST;
use crate::engine::reports::{self, Report, ReportKind};

pub async fn ping(ctx: &Ctx) -> Outcome {
    let report = match remote::engine_now(&ctx.config.paths.data_dir, ctx.config.mode).await {
        // The engine's own connection is what trades: ask it.
        Some(engine) => report_through(&engine, ReportKind::Ping).await?,
        None => {
            let session = common::connect(ctx).await?;
            let report = reports::ping(ctx.config.mode, &session.rest).await;
            session.close(&ctx.config).await;
            report
        }
    };
    print_report(ctx, report)
}

pub async fn health(ctx: &Ctx) -> Outcome {
    let report = match common::route(ctx).await? {
        Route::Engine(engine) => report_through(&engine, ReportKind::Health).await?,
        Route::Alone(lock) => {
            let defaults: Vec<Symbol> = DEFAULT_WATCHLIST
                .iter()
                .filter_map(|s| Symbol::new(s).ok())
                .collect();
            let routed = common::prepare_routed(ctx, &defaults, lock).await?;
            say_elsewhere(routed.elsewhere.as_deref());
            let (mut ready, _lease) = (routed.ready, routed.lease);
            let watch = reports::health_watchlist(&ready.core.state);
            let core = &mut ready.core;
            let missing: std::collections::BTreeSet<Symbol> = watch
                .iter()
                .filter(|s| !core.state.quotes.contains_key(*s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                let rest = ready.session.rest.clone();
                common::fetch_quotes(core, &rest, &missing, &mut ready.notes).await;
            }
            let mut parts = reports::health_parts(&ready.core.state, now_ms());
            parts.journal_path = ready.core.journal.path().to_path_buf();
            parts.keys_from = ready.session.keys_from.clone();
            let integrity = ready.core.journal.integrity_check().map_err(|e| e.to_string());
            let rest = ready.session.endpoints.rest.to_string();
            let usage = ready.session.rest.usage();
            let report = reports::health(&parts, &rest, &usage, &integrity, &ready.notes);
            ready.session.close(&ctx.config).await;
            report
        }
    };
    print_report(ctx, report)
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
            let routed = common::prepare_routed(ctx, &[], lock).await?;
            say_elsewhere(routed.elsewhere.as_deref());
            let (ready, _lease) = (routed.ready, routed.lease);
            let report = reports::build(kind, &ready.core.state, &ready.notes, now_ms());
            ready.session.close(&ctx.config).await;
            report.ok_or_else(|| Failure::new(format!("{} is not a report of the state", kind.name())))?
        }
    };
    print_report(ctx, report)
}

/// Beside an engine that leads on another machine: whose view the report is, on stderr (also
/// with `--json`, whose document stays the report's).
fn say_elsewhere(line: Option<&str>) {
    if let Some(line) = line {
        eprintln!("crbot: {line}");
    }
}

/// Prints a report (text or `--json`; a warning on stderr in the text form) and gives its exit.
fn print_report(ctx: &Ctx, report: Report) -> Outcome {
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

pub async fn export(ctx: &Ctx, dir: &std::path::Path) -> Outcome {
    // Through the running engine (it reads its own journal); with none, the account is this
    // command's while it reads.
    let files = match common::route(ctx).await? {
        Route::Engine(engine) => export_through(&engine, dir).await?,
        Route::Alone(_lock) => {
            let journal = crate::cli::kill::open_existing(ctx)?;
            std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
            journal
                .export_csv(dir)
                .map_err(|e| Failure::new(format!("export to {}: {e}", dir.display())))?
        }
    };
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    ctx.print(
        &format!("wrote:\n  {}", names.join("\n  ")),
        json!({"files": names}),
    );
    Ok(exit::OK)
}

/// `POST /api/export` on the engine's socket; the files it wrote, named under `dir` as the
/// caller gave it (the engine was given it absolute).
async fn export_through(engine: &Remote, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, Failure> {
    let absolute =
        std::path::absolute(dir).map_err(|e| Failure::new(format!("export to {}: {e}", dir.display())))?;
    let body = json!({"dir": absolute});
    let wait = crate::api::orders::BACKUP_WAIT + Duration::from_secs(5);
    let (status, doc) = engine
        .call("POST", "/api/export", Some(&body), wait)
        .await
        .map_err(Failure::new)?;
    if status != 200 {
        return Err(Failure::new(remote::error_line(status, &doc)));
    }
    Ok(doc["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| std::path::Path::new(f.as_str()?).file_name().map(|n| dir.join(n)))
                .collect()
        })
        .unwrap_or_default())
}
