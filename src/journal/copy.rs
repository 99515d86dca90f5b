//! Copying a journal between stores: a PostgreSQL journal into a new SQLite journal of its mode
//! (`crbot backup` and `crbot journal export` of a PostgreSQL journal, so that backups have one
//! format whatever the store), and an SQLite journal into an empty PostgreSQL database
//! (`crbot journal migrate --to postgresql://…`), verified row by row.
//!
//! Owns: which tables and columns are copied (those of the SQLite schema this build writes, so
//! the copy is a journal this build opens) and reading them all from one snapshot. Must not:
//! write to the PostgreSQL journal.

use std::path::Path;

use rusqlite::Connection;

use rust_decimal::Decimal;

use super::postgres::{Access, PgStore, PgTarget};
use super::store::Store;
use super::value::{Row, Value};
use super::{Journal, JournalError, Result, now_ms};
use crate::domain::Mode;

/// What `journal migrate` copied, once the copy was read back and found identical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Each table and its number of rows, by name.
    pub tables: Vec<(String, usize)>,
    /// The sum of every fill's quantity and of `price × qty` (quote), as read back from the
    /// copy: the same as the source's, or the copy is refused.
    pub fills_qty: Decimal,
    pub fills_quote: Decimal,
}

impl Journal {
    /// Copies this SQLite journal into the empty PostgreSQL database at `target`, in one
    /// transaction, keeping every row and id; then reads the copy back in one snapshot and
    /// compares it with this journal row by row (counts and sums follow). A database that is
    /// not empty (a journal already, or other tables) is refused before anything is written.
    pub fn copy_to_postgres(&self, target: &PgTarget) -> Result<CopyReport> {
        let Store::Sqlite(conn) = &self.store else {
            return Err(JournalError::Invalid(
                "this journal is in PostgreSQL already; the copy reads an SQLite journal".into(),
            ));
        };
        let tables = tables(conn)?;
        let mut source = Vec::new();
        for ((table, columns), sql) in tables.iter().zip(select_all(&tables)) {
            source.push((table.clone(), columns.clone(), sqlite_rows(conn, &sql)?));
        }
        let pg = PgStore::open(target, self.mode, now_ms(), Access::Create)?;
        pg.copy_in(source.clone())?;
        let copied = pg.snapshot(select_all(&tables))?;
        let mut report = CopyReport {
            tables: Vec::new(),
            fills_qty: Decimal::ZERO,
            fills_quote: Decimal::ZERO,
        };
        for ((table, columns, rows), back) in source.iter().zip(&copied) {
            if rows != back {
                return Err(JournalError::Invalid(format!(
                    "the copy of `{table}` differs from the journal ({} rows written, {} read \
                     back): the PostgreSQL database holds an unverified copy; drop it before \
                     trying again",
                    rows.len(),
                    back.len()
                )));
            }
            report.tables.push((table.clone(), back.len()));
            if table == "trades" {
                let (qty, quote) = fill_sums(columns, back)?;
                report.fills_qty = qty;
                report.fills_quote = quote;
            }
        }
        Ok(report)
    }
}

/// For each table, the query reading all of it in insertion order.
fn select_all(tables: &[(String, Vec<String>)]) -> Vec<String> {
    tables
        .iter()
        .map(|(table, columns)| {
            let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            format!(
                "SELECT {} FROM \"{table}\" ORDER BY {}",
                list.join(", "),
                order_key(table, columns)
            )
        })
        .collect()
}

fn sqlite_rows(conn: &Connection, sql: &str) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(columns);
        for i in 0..columns {
            row.push(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(v) => Value::Int(v),
                rusqlite::types::ValueRef::Real(v) => Value::Text(v.to_string()),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(Row(row));
    }
    Ok(out)
}

/// Σ qty and Σ price × qty over the `trades` rows.
fn fill_sums(columns: &[String], rows: &[Row]) -> Result<(Decimal, Decimal)> {
    let at = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| JournalError::Invalid(format!("trades has no `{name}`")))
    };
    let (price_at, qty_at) = (at("price")?, at("qty")?);
    let (mut qty, mut quote) = (Decimal::ZERO, Decimal::ZERO);
    for row in rows {
        let p: Decimal = super::parse("fill price", &row.get::<String>(price_at)?)?;
        let q: Decimal = super::parse("fill qty", &row.get::<String>(qty_at)?)?;
        qty = qty.saturating_add(q);
        quote = quote.saturating_add(p.saturating_mul(q));
    }
    Ok((qty, quote))
}

/// Creates the SQLite journal of `mode` at `dest` (which must not exist) holding every row of
/// `pg` as of one moment: the tables are read in one `REPEATABLE READ` transaction, so a fill
/// written meanwhile is in the copy with its order, or neither is. Row ids are kept.
pub(super) fn postgres_to_sqlite(pg: &PgStore, mode: Mode, dest: &Path) -> Result<()> {
    // The schema, application id, version and mode come from opening a new journal.
    drop(Journal::open(dest, mode)?);
    let mut conn = Connection::open(dest)?;
    let tables = tables(&conn)?;
    let queries = select_all(&tables);
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
