//! Where the journal's rows live: an SQLite file or a PostgreSQL database, behind one small
//! interface of statements and rows.
//!
//! Owns: the values that go in and come out ([`Value`], [`Row`]), and running one statement on
//! either store. Must not: know what a table means; `journal.rs` and its modules write the SQL
//! (once, for both stores: `?N` placeholders, translated to `$N` for PostgreSQL) and turn rows
//! into domain values.
//!
//! Each statement commits on its own and is durable when it returns `Ok`: SQLite in WAL with
//! `synchronous=FULL`, PostgreSQL with `synchronous_commit=on`.

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::JournalError;
use super::postgres::PgStore;
pub use super::value::{FromValue, Result, Row, Value};

/// Which store a journal is in (for `crbot doctor` and messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// The store behind a [`super::Journal`].
#[derive(Debug)]
pub enum Store {
    Sqlite(Connection),
    Postgres(PgStore),
}

impl Store {
    pub fn kind(&self) -> StoreKind {
        match self {
            Store::Sqlite(_) => StoreKind::Sqlite,
            Store::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64> {
        match self {
            Store::Sqlite(conn) => Ok(conn.execute(sql, rusqlite::params_from_iter(params.iter()))? as u64),
            Store::Postgres(pg) => pg.execute(sql, params),
        }
    }

    /// Runs an insert that may break a unique constraint: `Ok(false)` when it did.
    pub fn insert_unique(&self, sql: &str, params: Vec<Value>) -> Result<bool> {
        match self {
            Store::Sqlite(conn) => match conn.execute(sql, rusqlite::params_from_iter(params.iter())) {
                Ok(_) => Ok(true),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            },
            Store::Postgres(pg) => pg.insert_unique(sql, params),
        }
    }

    /// Runs an insert into a table with an `id` key; the new row's id.
    pub fn insert_id(&self, sql: &str, params: Vec<Value>) -> Result<i64> {
        match self {
            Store::Sqlite(conn) => {
                conn.execute(sql, rusqlite::params_from_iter(params.iter()))?;
                Ok(conn.last_insert_rowid())
            }
            Store::Postgres(pg) => {
                let rows = pg.query(&format!("{sql} RETURNING id"), params)?;
                rows.first()
                    .ok_or_else(|| JournalError::Invalid("an insert returned no id".into()))?
                    .get(0)
            }
        }
    }

    /// [`Store::insert_id`], and on PostgreSQL `NOTIFY channel, 'id'` in the same transaction
    /// (delivered on commit). SQLite has no notices: its readers poll.
    pub fn insert_id_notify(&self, sql: &str, params: Vec<Value>, channel: &str) -> Result<i64> {
        match self {
            Store::Sqlite(_) => self.insert_id(sql, params),
            Store::Postgres(pg) => pg.insert_id_notify(sql, params, channel),
        }
    }

    /// Runs a query; every row it returns.
    pub fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>> {
        match self {
            Store::Sqlite(conn) => {
                let mut stmt = conn.prepare(sql)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Vec::with_capacity(columns);
                    for i in 0..columns {
                        row.push(sqlite_value(r.get_ref(i)?));
                    }
                    out.push(Row(row));
                }
                Ok(out)
            }
            Store::Postgres(pg) => pg.query(sql, params),
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: Vec<Value>) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row of a query that always returns one (`MAX`, `COUNT`).
    pub fn query_one<T: FromValue>(&self, sql: &str, params: Vec<Value>) -> Result<T> {
        self.query_opt(sql, params)?
            .ok_or_else(|| JournalError::Invalid(format!("no row from `{sql}`")))?
            .get(0)
    }

    /// The SQLite connection, for what only SQLite does (online backup, `PRAGMA`s).
    pub fn sqlite(&self) -> Option<&Connection> {
        match self {
            Store::Sqlite(conn) => Some(conn),
            Store::Postgres(_) => None,
        }
    }
}

fn sqlite_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        // The journal writes no REAL; a value written by hand reads as its text.
        ValueRef::Real(r) => Value::Text(r.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_of_another_type_is_invalid_data() {
        let row = Row(vec![Value::Text("x".into()), Value::Null, Value::Int(1)]);
        assert!(matches!(row.get::<i64>(0), Err(JournalError::Invalid(_))));
        assert_eq!(row.get::<Option<String>>(1).ok(), Some(None));
        assert_eq!(row.get::<bool>(2).ok(), Some(true));
        assert!(row.get::<i64>(9).is_err(), "a missing column is NULL, not an i64");
    }
}
