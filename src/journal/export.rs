//! CSV export of the journal (`crbot journal export --csv DIR`).
//!
//! Owns: RFC 4180 quoting and the column lists of each exported file. Must not: write anything
//! into the journal; it reads through the caller's connection.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::JournalError;

/// Quotes a field when it holds a comma, a quote or a line break (RFC 4180).
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// The files written and the query behind each (columns are the header, in order).
const FILES: &[(&str, &str)] = &[
    (
        "orders.csv",
        "SELECT client_order_id, order_id, order_list_id, symbol, side, type, price, stop_price, qty, \
         executed_qty, cum_quote_qty, state, purpose, created_ms, updated_ms, last_error \
         FROM orders ORDER BY created_ms, rowid",
    ),
    (
        "trades.csv",
        "SELECT symbol, trade_id, order_id, client_order_id, side, price, qty, commission, \
         commission_asset, time_ms, is_maker FROM trades ORDER BY time_ms, id",
    ),
    (
        "risk_events.csv",
        "SELECT time_ms, source, symbol, side, ticket, approved, codes, reason \
         FROM risk_events ORDER BY id",
    ),
    (
        "equity_curve.csv",
        "SELECT time_ms, equity, asset FROM equity_curve ORDER BY time_ms, id",
    ),
];

/// Writes every file of [`FILES`] into `dir` (created if missing); returns the paths written.
pub fn export(conn: &Connection, dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| JournalError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, sql) in FILES {
        let path = dir.join(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
        let mut stmt = conn.prepare(sql)?;
        let header: Vec<String> = stmt.column_names().map(quote).collect();
        writeln!(out, "{}", header.join(",")).map_err(io(&path))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mut fields = Vec::with_capacity(columns);
            for i in 0..columns {
                fields.push(quote(&field_text(row.get_ref(i)?)));
            }
            writeln!(out, "{}", fields.join(",")).map_err(io(&path))?;
        }
        out.flush().map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Decimals are stored as TEXT, so they come out exactly as recorded.
fn field_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_fields_that_need_it() {
        assert_eq!(quote("BTCUSDT"), "BTCUSDT");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }
}
