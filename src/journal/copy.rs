//! Copying a PostgreSQL journal into a new SQLite journal of its mode: `crbot backup` and
//! `crbot journal export` of a PostgreSQL journal, so that backups have one format whatever
//! the store.
//!
//! Owns: which tables and columns are copied (those of the SQLite schema this build writes, so
//! the copy is a journal this build opens) and reading them all from one snapshot. Must not:
//! write to the PostgreSQL journal.

use std::path::Path;

use rusqlite::Connection;

use super::postgres::PgStore;
use super::{Journal, JournalError, Result};
use crate::domain::Mode;

/// Creates the SQLite journal of `mode` at `dest` (which must not exist) holding every row of
/// `pg` as of one moment: the tables are read in one `REPEATABLE READ` transaction, so a fill
/// written meanwhile is in the copy with its order, or neither is. Row ids are kept.
pub(super) fn postgres_to_sqlite(pg: &PgStore, mode: Mode, dest: &Path) -> Result<()> {
    // The schema, application id, version and mode come from opening a new journal.
    drop(Journal::open(dest, mode)?);
    let mut conn = Connection::open(dest)?;
    let tables = tables(&conn)?;
    let queries = tables
        .iter()
        .map(|(table, columns)| {
            let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            format!(
                "SELECT {} FROM \"{table}\" ORDER BY {}",
                list.join(", "),
                order_key(table, columns)
            )
        })
        .collect();
    let data = pg.snapshot(queries)?;
    let tx = conn.transaction()?;
    // The copy's `meta` is the original's (its mode, created time, checkpoints).
    tx.execute("DELETE FROM meta", [])?;
    for ((table, columns), rows) in tables.iter().zip(data) {
        let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut stmt = tx.prepare(&format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({})",
            list.join(", "),
            marks.join(", ")
        ))?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.0.iter()))?;
        }
    }
    let mode_ok: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'mode'", [], |r| r.get(0))
        .ok();
    if mode_ok.as_deref() != Some(mode.as_str()) {
        return Err(JournalError::Invalid(format!(
            "the PostgreSQL journal's mode is `{}`, not `{mode}`",
            mode_ok.unwrap_or_default()
        )));
    }
    tx.commit()?;
    // One self-contained file: no -wal beside it once closed.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(JournalError::Corrupt(format!("the copy failed its check: {ok}")));
    }
    conn.close().map_err(|(_, e)| JournalError::from(e))?;
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|source| JournalError::File {
            path: dest.to_path_buf(),
            source,
        })
}

/// The journal's tables and their columns, as this build's SQLite schema has them.
fn tables(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::new();
    for name in names {
        let columns: Vec<String> = conn
            .prepare(&format!("PRAGMA table_info(\"{name}\")"))?
            .query_map([], |r| r.get(1))?
            .collect::<std::result::Result<_, _>>()?;
        out.push((name, columns));
    }
    Ok(out)
}

/// Insertion order: `orders` by its counter, tables with an `id` by it, others by their key.
fn order_key(table: &str, columns: &[String]) -> String {
    if table == "orders" {
        "rowid".into()
    } else if columns.iter().any(|c| c == "id") {
        "id".into()
    } else {
        columns
            .iter()
            .take(2)
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
