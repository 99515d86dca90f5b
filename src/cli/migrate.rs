//! `crbot journal migrate --to postgresql://…`: this mode's SQLite journal copied into an empty
//! PostgreSQL database, verified, before `DATABASE_URL` is switched to it.
//!
//! Owns: the command's checks (an SQLite source, no engine writing it, TLS in production) and
//! its report. Must not: change the source journal or any setting; the user points
//! `DATABASE_URL` at the copy once it is verified.

use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome};
use crate::cli::exit;
use crate::cli::remote;
use crate::config::Environment;
use crate::journal::{Journal, Location, PgTarget, PgTls};

pub async fn migrate(ctx: &Ctx, to: &str) -> Outcome {
    // A password in `--to` is visible to `ps`: PGPASSWORD (libpq's variable) can carry it.
    let target = PgTarget::parse(to)
        .map_err(|why| {
            Failure::usage(format!(
                "--to {why}: give postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=verify-full] \
                 (the password may come from PGPASSWORD instead)"
            ))
        })?
        .with_default_password(std::env::var("PGPASSWORD").ok().as_deref());
    if ctx.config.env == Environment::Production && target.tls() == PgTls::Off {
        return Err(Failure::usage(
            "--to is a plain PostgreSQL connection, which production refuses: add \
             sslmode=verify-full (and sslrootcert=FILE for a private CA)",
        ));
    }
    let Location::Sqlite(source) = ctx.config.journal_location() else {
        return Err(Failure::new(
            "DATABASE_URL already puts this journal in PostgreSQL; migrate copies an SQLite journal",
        ));
    };
    // The copy must not miss a write: no engine may be running on this journal meanwhile.
    let _lock = match common::route(ctx).await? {
        remote::Route::Alone(lock) => lock,
        remote::Route::Engine(_) => {
            return Err(Failure::new(
                "an engine is running on this journal: stop it (and any crbot serve) first, so \
                 that the copy misses nothing",
            ));
        }
    };
    let journal = Journal::open_read_only(&source, ctx.config.mode)
        .map_err(|e| common::journal_failure(&source, &e))?;
    let report = journal
        .copy_to_postgres(&target)
        .map_err(|e| Failure::new(format!("copy to {}: {e}", target.shown())))?;
    let rows: usize = report.tables.iter().map(|(_, n)| n).sum();
    let lines: Vec<String> = report.tables.iter().map(|(t, n)| format!("  {t}: {n}")).collect();
    ctx.print(
        &format!(
            "copied {} to {} and read it back identical ({rows} rows; fills: qty {}, quote {}):\n{}\n\
             set DATABASE_URL to it to use it; {} is left as it was",
            source.display(),
            target.shown(),
            report.fills_qty,
            report.fills_quote,
            lines.join("\n"),
            source.display()
        ),
        json!({
            "source": source.display().to_string(),
            "target": target.shown(),
            "rows": rows,
            "tables": report.tables.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect::<Vec<_>>(),
            "fills_qty": report.fills_qty.to_string(),
            "fills_quote": report.fills_quote.to_string(),
        }),
    );
    Ok(exit::OK)
}
