//! The journal's schema, its versioned migrations, and the read-only inspection that decides
//! whether a file may be opened at all.
//!
//! Owns: `APPLICATION_ID`, `SCHEMA_VERSION`, the migration list and [`inspect`]. Must not: write
//! to a file before [`inspect`] has accepted it; a refused file stays byte-for-byte as it was.
//!
//! Every decimal column is TEXT holding a plain decimal string (never REAL): SQLite's floats
//! would round prices and quantities.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::JournalError;
use crate::domain::Mode;

/// `PRAGMA application_id` of every crbot journal: "crbt" in ASCII.
pub const APPLICATION_ID: i32 = 0x6372_6274;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = 5;

/// Migration `i` (0-based) takes the schema from version `i` to `i + 1`. Append only: a
/// released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY NOT NULL,
        order_id        INTEGER,
        order_list_id   INTEGER,
        symbol          TEXT NOT NULL,
        side            TEXT NOT NULL,
        type            TEXT NOT NULL,
        price           TEXT,
        stop_price      TEXT,
        qty             TEXT NOT NULL,
        executed_qty    TEXT NOT NULL,
        cum_quote_qty   TEXT NOT NULL,
        state           TEXT NOT NULL,
        purpose         TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL,
        last_error      TEXT
    );
    CREATE INDEX orders_state ON orders(state);
    CREATE INDEX orders_created ON orders(created_ms);
    CREATE TABLE trades (
        id               INTEGER PRIMARY KEY,
        symbol           TEXT NOT NULL,
        trade_id         INTEGER NOT NULL,
        order_id         INTEGER NOT NULL,
        client_order_id  TEXT,
        side             TEXT NOT NULL,
        price            TEXT NOT NULL,
        qty              TEXT NOT NULL,
        commission       TEXT NOT NULL,
        commission_asset TEXT NOT NULL,
        time_ms          INTEGER NOT NULL,
        is_maker         INTEGER NOT NULL,
        UNIQUE(symbol, trade_id)
    );
    CREATE TABLE risk_events (
        id        INTEGER PRIMARY KEY,
        time_ms   INTEGER NOT NULL,
        source    TEXT NOT NULL CHECK (source IN ('tui', 'cli', 'engine')),
        symbol    TEXT NOT NULL,
        side      TEXT NOT NULL,
        ticket    TEXT NOT NULL,
        approved  INTEGER NOT NULL,
        codes     TEXT NOT NULL,
        reason    TEXT NOT NULL
    );
    CREATE TABLE equity_curve (
        id       INTEGER PRIMARY KEY,
        time_ms  INTEGER NOT NULL,
        equity   TEXT NOT NULL,
        asset    TEXT NOT NULL
    );
    CREATE INDEX equity_curve_time ON equity_curve(time_ms);
    CREATE TABLE trading_state (
        id         INTEGER PRIMARY KEY,
        time_ms    INTEGER NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('STATE', 'LIMIT')),
        state      TEXT CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
        reason     TEXT NOT NULL,
        trigger    TEXT NOT NULL,
        actor      TEXT NOT NULL,
        limit_name TEXT,
        old_value  TEXT,
        new_value  TEXT,
        confirmed  INTEGER
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        symbol  TEXT,
        detail  TEXT NOT NULL
    );
    CREATE TABLE bot_metrics (
        id      INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        name    TEXT NOT NULL,
        value   TEXT NOT NULL
    );
    CREATE TABLE strategy_performance (
        strategy    TEXT NOT NULL,
        period      TEXT NOT NULL,
        trades      INTEGER NOT NULL,
        wins        INTEGER NOT NULL,
        pnl         TEXT NOT NULL,
        asset       TEXT NOT NULL,
        updated_ms  INTEGER NOT NULL,
        PRIMARY KEY (strategy, period)
    );
    "#,
    // 2: the quote-asset price of each fill's commission asset at the fill's time (1 for the
    // quote asset, the fill price for the base asset, the market's mid for a third asset such
    // as BNB). NULL when no price was known then: that fee is reported unpriced, never valued
    // later at another price. Rows written before this column existed read as NULL too.
    r#"
    ALTER TABLE trades ADD COLUMN fee_price TEXT;
    "#,
    // 3: capital flows (deposits, withdrawals, transfers) kept out of P&L; the last known USDT
    // price of each asset (equity stays complete through a short price outage, and a one-shot
    // command has prices when the exchange refuses its requests); and, per equity sample, which
    // assets were priced from such a held price and how old it was.
    r#"
    CREATE TABLE capital_flows (
        id          INTEGER PRIMARY KEY,
        time_ms     INTEGER NOT NULL,
        asset       TEXT NOT NULL,
        delta       TEXT NOT NULL,
        value_usdt  TEXT,
        source      TEXT NOT NULL CHECK (source IN ('STREAM', 'RECONCILE'))
    );
    CREATE INDEX capital_flows_time ON capital_flows(time_ms);
    CREATE TABLE marks (
        asset    TEXT PRIMARY KEY NOT NULL,
        price    TEXT NOT NULL,
        time_ms  INTEGER NOT NULL
    );
    ALTER TABLE equity_curve ADD COLUMN held_marks TEXT NOT NULL DEFAULT '';
    "#,
    // 4: webhook alerts and how their delivery ended: sent, failed after every attempt, or
    // dropped from a full queue. `time_ms` is when the alert was raised, `done_ms` when its
    // outcome was known; `last_error` never holds the webhook's URL.
    r#"
    CREATE TABLE alerts (
        id          INTEGER PRIMARY KEY,
        time_ms     INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        severity    TEXT NOT NULL,
        message     TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('SENT', 'FAILED', 'DROPPED')),
        attempts    INTEGER NOT NULL,
        last_error  TEXT,
        done_ms     INTEGER NOT NULL
    );
    CREATE INDEX alerts_time ON alerts(time_ms);
    "#,
    // 5: a trade is one fill per *order*, not per trade id. When the account trades with itself
    // (an order of someone else on the account, with self-trade prevention NONE, meeting one of
    // crbot's), Binance reports one trade id with a fill on each side; keyed by trade id alone,
    // the second of the two was dropped as a duplicate, and if that was crbot's own its
    // position was never built. SQLite cannot change a table's constraint: the table is copied.
    // And an index on the time order every read of fills uses (the history's newest fills,
    // the replay at start-up): without it each read sorted the whole table. And orders by
    // their exchange id, by which a fill without a client order id finds its order.
    r#"
    CREATE TABLE trades_by_order (
        id               INTEGER PRIMARY KEY,
        symbol           TEXT NOT NULL,
        trade_id         INTEGER NOT NULL,
        order_id         INTEGER NOT NULL,
        client_order_id  TEXT,
        side             TEXT NOT NULL,
        price            TEXT NOT NULL,
        qty              TEXT NOT NULL,
        commission       TEXT NOT NULL,
        commission_asset TEXT NOT NULL,
        time_ms          INTEGER NOT NULL,
        is_maker         INTEGER NOT NULL,
        fee_price        TEXT,
        UNIQUE(symbol, trade_id, order_id)
    );
    INSERT INTO trades_by_order (id, symbol, trade_id, order_id, client_order_id, side, price, qty,
        commission, commission_asset, time_ms, is_maker, fee_price)
        SELECT id, symbol, trade_id, order_id, client_order_id, side, price, qty, commission,
        commission_asset, time_ms, is_maker, fee_price FROM trades;
    DROP TABLE trades;
    ALTER TABLE trades_by_order RENAME TO trades;
    CREATE INDEX trades_time ON trades(time_ms, id);
    CREATE INDEX orders_exchange_id ON orders(symbol, order_id);
    "#,
];

/// Index in [`MIGRATIONS`] of the copy of `trades` (migration 5), after which PostgreSQL's
/// sequence for the copied ids must move past them.
const TRADES_COPY: usize = 4;

/// [`MIGRATIONS`] as PostgreSQL runs them: the same tables and columns, with SQLite's integer
/// keys as `BIGSERIAL` and every integer as `BIGINT` (SQLite's integers are 64-bit), and an
/// insertion counter on `orders` named like SQLite's implicit `rowid` (the journal orders by
/// it). Derived, never edited by hand: one migration list for both stores.
pub fn postgres_migrations() -> Vec<String> {
    MIGRATIONS
        .iter()
        .enumerate()
        .map(|(i, sql)| {
            let sql = sql
                .replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
                .replace("INTEGER", "BIGINT");
            match i {
                0 => sql.replace(
                    "CREATE TABLE orders (",
                    "CREATE TABLE orders (\n        rowid           BIGSERIAL NOT NULL,",
                ),
                // Rows copied with their ids leave the new table's sequence at 1: the next
                // fill would collide with the first copied one.
                TRADES_COPY => {
                    sql + "SELECT setval(pg_get_serial_sequence('trades', 'id'), \
                       COALESCE((SELECT MAX(id) FROM trades), 0) + 1, false);\n"
                }
                _ => sql,
            }
        })
        .collect()
}

/// What [`inspect`] found at a path that may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspection {
    /// No file, an empty file, or an SQLite database with nothing in it: safe to initialise.
    New,
    /// A crbot journal of the wanted mode at this schema version (≤ `SCHEMA_VERSION`).
    Existing { version: i32 },
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Decides, without writing anything, whether `path` may be opened as the journal of `mode`.
///
/// The SQLite magic is checked with a plain file read so that a non-SQLite file never reaches
/// SQLite; an SQLite file is then read through a read-only connection (the header alone could
/// be stale while recent commits sit in the WAL).
pub fn inspect(path: &Path, mode: Mode) -> Result<Inspection, JournalError> {
    let file_err = |source| JournalError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Inspection::New),
        Err(e) => return Err(file_err(e)),
    };
    let len = file.metadata().map_err(file_err)?.len();
    if len == 0 {
        return Ok(Inspection::New);
    }
    let mut head = [0u8; 16];
    let not_a_journal = |why: &str| JournalError::NotAJournal {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if len < 100 || file.read_exact(&mut head).is_err() || &head != SQLITE_MAGIC {
        return Err(not_a_journal("not an SQLite database"));
    }
    drop(file);

    let conn = open_for_inspection(path)?;
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if app_id != APPLICATION_ID {
        let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app_id == 0 && version == 0 && objects == 0 {
            // An SQLite file with nothing in it (e.g. a crash right after creation, before
            // the first migration committed): initialising it loses nothing.
            return Ok(Inspection::New);
        }
        return Err(not_a_journal("an SQLite database of another application"));
    }
    if version > SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let found = stored_mode(&conn)?;
    match found {
        Some(m) if m == mode.as_str() => Ok(Inspection::Existing { version }),
        Some(m) => Err(JournalError::WrongMode {
            path: path.to_path_buf(),
            found: m,
            wanted: mode,
        }),
        None => Err(not_a_journal("it records no mode")),
    }
}

/// A read-only connection that creates nothing beside the file.
///
/// With no `-wal` file the main file holds every commit, so it is read as immutable: SQLite then
/// creates no `-wal`/`-shm` companions (a plain read-only open of a WAL database would). With a
/// `-wal` (a journal in use, or left by a crash) the WAL must be read too, so a normal read-only
/// connection is used; the main file is still never written.
pub(super) fn open_for_inspection(path: &Path) -> Result<Connection, JournalError> {
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if Path::new(&wal).exists() {
        return Ok(Connection::open_with_flags(path, flags)?);
    }
    let absolute = std::path::absolute(path).map_err(|source| JournalError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut uri = url::Url::from_file_path(&absolute).map_err(|()| JournalError::NotAJournal {
        path: path.to_path_buf(),
        why: "its path cannot be expressed as a file URI".to_string(),
    })?;
    uri.set_query(Some("mode=ro&immutable=1"));
    Ok(Connection::open_with_flags(
        uri.as_str(),
        flags | OpenFlags::SQLITE_OPEN_URI,
    )?)
}

fn stored_mode(conn: &Connection) -> Result<Option<String>, JournalError> {
    let has_meta: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if has_meta == 0 {
        return Ok(None);
    }
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = 'mode'", [], |r| r.get(0))
        .optional()?)
}

/// Brings an accepted file to `SCHEMA_VERSION` in one immediate transaction, re-checking what
/// [`inspect`] saw under the write lock (another process may have created it meanwhile).
pub fn migrate(conn: &mut Connection, path: &Path, mode: Mode, now_ms: i64) -> Result<(), JournalError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app_id: i32 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if app_id == APPLICATION_ID {
        let found = stored_mode(&tx)?;
        if found.as_deref() != Some(mode.as_str()) {
            return Err(JournalError::WrongMode {
                path: path.to_path_buf(),
                found: found.unwrap_or_default(),
                wanted: mode,
            });
        }
    } else if app_id != 0 || version != 0 {
        return Err(JournalError::NotAJournal {
            path: path.to_path_buf(),
            why: "an SQLite database of another application".to_string(),
        });
    }
    let start = usize::try_from(version).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i32 + 1)?;
    }
    if app_id == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('mode', ?1), ('created_ms', ?2)",
            rusqlite::params![mode.as_str(), now_ms.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_matches_the_migration_list() {
        assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    }

    #[test]
    fn postgresql_runs_the_same_migrations_with_64_bit_integers() {
        let pg = postgres_migrations();
        assert_eq!(pg.len(), MIGRATIONS.len());
        assert!(pg.iter().all(|m| !m.contains("INTEGER")));
        assert!(pg[0].contains("rowid           BIGSERIAL NOT NULL"));
        assert!(pg[0].contains("id               BIGSERIAL PRIMARY KEY"));
    }

    #[test]
    fn application_id_spells_crbt() {
        assert_eq!(&APPLICATION_ID.to_be_bytes(), b"crbt");
    }
}
