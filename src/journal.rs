//! The journal: crbot's durable record of orders, fills, risk decisions, trading-state changes,
//! the equity curve and events, in one SQLite file per mode.
//!
//! Owns: the SQLite connection, the schema and its migrations, and every write to the file.
//! Must not: decide anything (risk and the engine do), talk to the network, or open a file that
//! is not a crbot journal of the wanted mode (such a file is refused and left byte-for-byte
//! untouched).
//!
//! Durability: WAL with `synchronous=FULL`, each write in its own transaction, so an order or a
//! fill is on disk before the function that records it returns `Ok`; a `kill -9` at any moment
//! loses nothing that was acknowledged. The engine owns one `Journal`; `crbot kill` in another
//! shell opens its own and writes a halt, which the engine sees by polling
//! [`Journal::latest_trading_state_id`] (a cheap indexed read) every ~250 ms. On PostgreSQL
//! the halt's transaction also issues a `NOTIFY`, which the engine's listener ([`notify`])
//! hears as it commits, so the halt applies at once there; the poll stays as the fallback.

mod alerts;
mod copy;
mod error;
mod export;
pub mod lease;
pub mod notify;
mod postgres;
mod records;
pub mod retention;
mod schema;
mod store;
mod value;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rust_decimal::Decimal;

pub use alerts::AlertRecord;
pub use copy::CopyReport;
pub use error::JournalError;
pub use postgres::{PgTarget, PgTls};
pub use records::{
    BalanceCheckpoint, CapitalFlowRecord, EquityPoint, EventKind, EventRecord, KillTrigger,
    LimitChangeRecord, RiskEventRecord, Stored, TicketSource, TradingStateCode, TradingStateRecord,
};
pub use schema::{APPLICATION_ID, Inspection, SCHEMA_VERSION, inspect};
pub use store::StoreKind;

use store::Store;
use value::{Value, values};

use crate::domain::{
    Asset, ClientOrderId, Fill, LocalOrderState, Mode, Money, Notional, Order, OrderPurpose, OrderStatus,
    OrderType, Price, Qty, Side, Symbol, Ticket, plain,
};

pub type Result<T> = std::result::Result<T, JournalError>;

/// How long a write waits for another process's lock before failing with `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Meta keys that only the journal itself may write.
const RESERVED_META: &[&str] = &["mode", "created_ms"];

/// What changes on an order after it was first journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub state: LocalOrderState,
    /// `None` keeps the stored exchange order id.
    pub order_id: Option<u64>,
    /// `None` keeps the stored order list id.
    pub order_list_id: Option<i64>,
    pub executed_qty: Qty,
    pub cumulative_quote_qty: Notional,
    pub updated_ms: i64,
    /// The exchange's or the client's last error for this order; `None` clears it.
    pub last_error: Option<String>,
}

/// The journal of one mode. Synchronous; one per process (the engine's, or a CLI command's).
#[derive(Debug)]
pub struct Journal {
    store: Store,
    /// Where it was opened (a PostgreSQL journal's holds the URL, password included, for a
    /// second connection such as the engine's backup; never shown: `Debug` masks it).
    location: Location,
    /// The SQLite file; for PostgreSQL, the URL with its password masked (never opened as a
    /// file: see [`Journal::open`]).
    path: PathBuf,
    mode: Mode,
    /// The lease this engine leads under (PostgreSQL only): orders are journaled only while it
    /// is valid and its epoch is the current one ([`Journal::set_fence`]).
    fence: Option<lease::LeaseGuard>,
}

/// Where a mode's journal is: an SQLite file (the default) or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgTarget),
}

impl Location {
    /// What messages show: the path, or the URL with its password masked.
    pub fn shown(&self) -> PathBuf {
        match self {
            Location::Sqlite(p) => p.clone(),
            Location::Postgres(t) => PathBuf::from(t.shown()),
        }
    }
}

impl Journal {
    /// Opens the journal of `mode` at `path`, creating it (and its folder) or migrating it.
    ///
    /// Refuses, without writing a byte, a file that is not a crbot journal (including a file
    /// that is not SQLite at all), the journal of another mode, and one written by a newer
    /// schema version.
    ///
    /// A journal that cannot be written (file, folder or disk read-only) is refused with
    /// [`JournalError::ReadOnlyFile`], naming the path; commands that only read use
    /// [`Journal::open_read_only`] instead.
    pub fn open(path: &Path, mode: Mode) -> Result<Journal> {
        refuse_url_as_path(path)?;
        Journal::open_writable(path, mode).map_err(|e| match e {
            JournalError::ReadOnly(_)
            | JournalError::DiskFull
            | JournalError::Io(_)
            | JournalError::File { .. }
            | JournalError::Sqlite(_)
                if read_only_location(path) =>
            {
                JournalError::ReadOnlyFile {
                    path: path.to_path_buf(),
                    consequence: "nothing can be recorded in it; commands that only read (orders, \
                                  positions, pnl, backup, journal export, doctor) still work",
                }
            }
            other => other,
        })
    }

    fn open_writable(path: &Path, mode: Mode) -> Result<Journal> {
        let inspection = schema::inspect(path, mode)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::File {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        if inspection == Inspection::New {
            // Trading history is private: owner-only, set before the first write so that
            // SQLite gives the -wal and -shm files the same mode.
            restrict_permissions(path)?;
        }
        // SQLite quietly falls back to a read-only connection on a file it may not write; the
        // first write would then fail far from here with a vaguer message.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(JournalError::ReadOnly("opened read-only".into()));
        }
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let journal_mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Io(format!(
                "cannot use WAL on {} (got journal_mode={journal_mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn, path, mode, now_ms())?;
        Ok(Journal {
            store: Store::Sqlite(conn),
            location: Location::Sqlite(path.to_path_buf()),
            path: path.to_path_buf(),
            mode,
            fence: None,
        })
    }

    /// Like [`Journal::open`], but refuses to create a journal that does not exist yet: for
    /// commands that only read or copy one (`crbot backup`, `crbot journal export`).
    pub fn open_existing(path: &Path, mode: Mode) -> Result<Journal> {
        if !path.exists() {
            return Err(JournalError::Missing {
                path: path.to_path_buf(),
                mode,
            });
        }
        Journal::open(path, mode)
    }

    /// Opens an existing journal of `mode` for reading only: for commands that only read or
    /// copy it, so that they work on a journal that cannot be written (a read-only file,
    /// folder or disk). Nothing is created or migrated; a write through it fails with
    /// [`JournalError::ReadOnly`].
    pub fn open_read_only(path: &Path, mode: Mode) -> Result<Journal> {
        refuse_url_as_path(path)?;
        let missing = || JournalError::Missing {
            path: path.to_path_buf(),
            mode,
        };
        if !path.exists() {
            return Err(missing());
        }
        match schema::inspect(path, mode)? {
            Inspection::New => return Err(missing()),
            Inspection::Existing { version } if version < SCHEMA_VERSION => {
                return Err(JournalError::ReadOnlyFile {
                    path: path.to_path_buf(),
                    consequence: "it was written by an older crbot and must be upgraded, which \
                                  needs write access",
                });
            }
            Inspection::Existing { .. } => {}
        }
        let conn = schema::open_for_inspection(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(Journal {
            store: Store::Sqlite(conn),
            location: Location::Sqlite(path.to_path_buf()),
            path: path.to_path_buf(),
            mode,
            fence: None,
        })
    }

    /// Opens `path` for writing when that is possible, else read-only: for commands that only
    /// read. The flag says which (true: read-only).
    pub fn open_for_reading(path: &Path, mode: Mode) -> Result<(Journal, bool)> {
        match Journal::open(path, mode) {
            Ok(j) => Ok((j, false)),
            Err(JournalError::ReadOnlyFile { .. }) => Ok((Journal::open_read_only(path, mode)?, true)),
            Err(e) => Err(e),
        }
    }

    /// Opens the journal of `mode` at `location`: [`Journal::open`] for a file; for
    /// PostgreSQL, connects, creates or migrates it, and refuses a database of another mode,
    /// of another application or from a newer crbot without writing anything.
    pub fn open_at(location: &Location, mode: Mode) -> Result<Journal> {
        match location {
            Location::Sqlite(path) => Journal::open(path, mode),
            Location::Postgres(target) => Journal::open_postgres(target, mode, postgres::Access::Write),
        }
    }

    /// [`Journal::open_existing`] at `location`.
    pub fn open_existing_at(location: &Location, mode: Mode) -> Result<Journal> {
        match location {
            Location::Sqlite(path) => Journal::open_existing(path, mode),
            Location::Postgres(target) => {
                // A database with no journal yet is refused, not created.
                Journal::open_postgres(target, mode, postgres::Access::ReadOnly)?;
                Journal::open_postgres(target, mode, postgres::Access::Write)
            }
        }
    }

    /// [`Journal::open_read_only`] at `location`: for PostgreSQL, every statement runs in a
    /// read-only transaction.
    pub fn open_read_only_at(location: &Location, mode: Mode) -> Result<Journal> {
        match location {
            Location::Sqlite(path) => Journal::open_read_only(path, mode),
            Location::Postgres(target) => Journal::open_postgres(target, mode, postgres::Access::ReadOnly),
        }
    }

    /// [`Journal::open_for_reading`] at `location`.
    pub fn open_for_reading_at(location: &Location, mode: Mode) -> Result<(Journal, bool)> {
        match location {
            Location::Sqlite(path) => Journal::open_for_reading(path, mode),
            Location::Postgres(_) => Ok((Journal::open_at(location, mode)?, false)),
        }
    }

    fn open_postgres(target: &PgTarget, mode: Mode, access: postgres::Access) -> Result<Journal> {
        let store = postgres::PgStore::open(target, mode, now_ms(), access)?;
        Ok(Journal {
            store: Store::Postgres(store),
            location: Location::Postgres(target.clone()),
            path: PathBuf::from(target.shown()),
            mode,
            fence: None,
        })
    }

    /// Which store holds this journal.
    pub fn store_kind(&self) -> StoreKind {
        self.store.kind()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where this journal is, to open another connection to it (a backup off the loop).
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    // ----- orders -------------------------------------------------------------------------

    /// Fences this journal's order writes with the engine's lease (PostgreSQL only; SQLite
    /// ignores it): from now on [`Journal::insert_order`] refuses while the lease is not valid,
    /// and inserts the row only while `crbot_leadership`'s epoch is still the lease's.
    pub fn set_fence(&mut self, lease: lease::LeaseGuard) {
        if self.store.kind() == StoreKind::Postgres {
            self.fence = Some(lease);
        }
    }

    /// Records a new order (before it is sent). Durable when this returns `Ok`.
    pub fn insert_order(&self, order: &Order) -> Result<()> {
        if let Some(lease) = &self.fence {
            return self.insert_order_fenced(order, lease);
        }
        let inserted = self.store.insert_unique(
            "INSERT INTO orders (client_order_id, order_id, order_list_id, symbol, side, type, price, \
             stop_price, qty, executed_qty, cum_quote_qty, state, purpose, created_ms, updated_ms, \
             last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL)",
            order_values(order)?,
        )?;
        if !inserted {
            return Err(JournalError::DuplicateOrder(order.client_order_id.to_string()));
        }
        Ok(())
    }

    /// [`Journal::insert_order`] under a lease: one statement that inserts the row only while
    /// the epoch is this leader's (an old leader whose session ended finds it moved).
    fn insert_order_fenced(&self, order: &Order, lease: &lease::LeaseGuard) -> Result<()> {
        if !lease.valid() {
            return Err(JournalError::Database(lease::LOST_MESSAGE.into()));
        }
        let mut params = order_values(order)?;
        params.extend(values![self.mode.as_str(), lease.epoch()]);
        let inserted = self.store.execute(
            "INSERT INTO orders (client_order_id, order_id, order_list_id, symbol, side, type, price, \
             stop_price, qty, executed_qty, cum_quote_qty, state, purpose, created_ms, updated_ms, \
             last_error) SELECT ?1::TEXT, ?2::BIGINT, ?3::BIGINT, ?4::TEXT, ?5::TEXT, ?6::TEXT, \
             ?7::TEXT, ?8::TEXT, ?9::TEXT, ?10::TEXT, ?11::TEXT, ?12::TEXT, ?13::TEXT, ?14::BIGINT, \
             ?15::BIGINT, NULL WHERE EXISTS (SELECT 1 FROM crbot_leadership WHERE mode = ?16::TEXT \
             AND epoch = ?17::BIGINT) ON CONFLICT DO NOTHING",
            params,
        )?;
        if inserted == 1 {
            return Ok(());
        }
        if self.order(&order.client_order_id)?.is_some() {
            return Err(JournalError::DuplicateOrder(order.client_order_id.to_string()));
        }
        Err(JournalError::Database(format!(
            "{} (the leadership epoch moved past {})",
            lease::LOST_MESSAGE,
            lease.epoch()
        )))
    }

    /// Updates an order's state and progress. Durable when this returns `Ok`.
    pub fn update_order(&self, cid: &ClientOrderId, update: &OrderUpdate) -> Result<()> {
        let changed = self.store.execute(
            "UPDATE orders SET state = ?2, order_id = COALESCE(?3, order_id), \
             order_list_id = COALESCE(?4, order_list_id), executed_qty = ?5, cum_quote_qty = ?6, \
             updated_ms = ?7, last_error = ?8 WHERE client_order_id = ?1",
            values![
                cid.as_str(),
                update.state.as_code(),
                opt_u64(update.order_id)?,
                update.order_list_id,
                update.executed_qty.to_string(),
                update.cumulative_quote_qty.to_string(),
                update.updated_ms,
                update.last_error.as_deref(),
            ],
        )?;
        if changed == 0 {
            return Err(JournalError::UnknownOrder(cid.to_string()));
        }
        Ok(())
    }

    pub fn order(&self, cid: &ClientOrderId) -> Result<Option<Order>> {
        let sql = format!("{ORDER_SELECT} WHERE client_order_id = ?1");
        Ok(self.query_orders(&sql, values![cid.as_str()])?.into_iter().next())
    }

    /// The order the exchange knows as `order_id` on `symbol`, if crbot journaled it: a fill
    /// that carries no client order id (`myTrades`) is attributed by it when the order has
    /// left memory.
    pub fn order_by_exchange_id(&self, symbol: &Symbol, order_id: u64) -> Result<Option<Order>> {
        let sql = format!("{ORDER_SELECT} WHERE symbol = ?1 AND order_id = ?2");
        let id = to_i64(order_id, "order id")?;
        Ok(self
            .query_orders(&sql, values![symbol.as_str(), id])?
            .into_iter()
            .next())
    }

    /// The last error recorded for an order, if any.
    pub fn order_last_error(&self, cid: &ClientOrderId) -> Result<Option<String>> {
        let row = self.store.query_opt(
            "SELECT last_error FROM orders WHERE client_order_id = ?1",
            values![cid.as_str()],
        )?;
        Ok(row.map(|r| r.get::<Option<String>>(0)).transpose()?.flatten())
    }

    /// Orders that are not finished as far as crbot knows (pending, sending, unknown, or open on
    /// the exchange), oldest first: what a restart must reconcile.
    pub fn open_orders(&self) -> Result<Vec<Order>> {
        let terminal: Vec<String> = OrderStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| format!("'{}'", s.as_wire()))
            .chain(std::iter::once(format!(
                "'{}'",
                LocalOrderState::NotSent.as_code()
            )))
            .collect();
        let sql = format!(
            "{ORDER_SELECT} WHERE state NOT IN ({}) ORDER BY created_ms, rowid",
            terminal.join(",")
        );
        let orders = self.query_orders(&sql, vec![])?;
        Ok(orders.into_iter().filter(|o| o.state.is_open()).collect())
    }

    /// The newest `limit` orders, newest first.
    pub fn recent_orders(&self, limit: usize) -> Result<Vec<Order>> {
        let sql = format!("{ORDER_SELECT} ORDER BY created_ms DESC, rowid DESC LIMIT ?1");
        self.query_orders(&sql, values![limit_i64(limit)])
    }

    fn query_orders(&self, sql: &str, params: Vec<store::Value>) -> Result<Vec<Order>> {
        let rows = self.store.query(sql, params)?;
        rows.iter().map(|r| OrderRow::read(r)?.into_order()).collect()
    }

    // ----- fills --------------------------------------------------------------------------

    /// Records a fill. `Ok(false)` when this (symbol, trade id, order id) is already recorded: a
    /// fill reported twice (stream and REST) counts once. The two sides of a self-trade share a
    /// trade id and are two fills (one per order). Durable when this returns `Ok`.
    pub fn insert_fill(&self, fill: &Fill) -> Result<bool> {
        self.insert_fill_priced(fill, None)
    }

    /// [`Journal::insert_fill`] with the quote price of the commission asset at the fill's
    /// time (`None`: unknown, the fee stays unpriced).
    pub fn insert_fill_priced(&self, fill: &Fill, fee_price: Option<Price>) -> Result<bool> {
        let changed = self.store.execute(
            "INSERT INTO trades (symbol, trade_id, order_id, client_order_id, side, price, qty, \
             commission, commission_asset, time_ms, is_maker, fee_price) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT(symbol, trade_id, order_id) DO NOTHING",
            values![
                fill.symbol.as_str(),
                to_i64(fill.trade_id, "trade id")?,
                to_i64(fill.order_id, "order id")?,
                fill.client_order_id.as_ref().map(|c| c.as_str()),
                fill.side.as_wire(),
                fill.price.to_string(),
                fill.qty.to_string(),
                fill.commission.to_string(),
                fill.commission_asset.as_str(),
                fill.time_ms,
                fill.is_maker,
                fee_price.map(|p| p.to_string()),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Every fill, in time order.
    pub fn fills(&self) -> Result<Vec<Fill>> {
        self.query_fills(&format!("{FILL_SELECT} ORDER BY time_ms, id"), vec![])
    }

    /// The fills at or after `since_ms`, in time order (`GET /api/trades`).
    pub fn fills_since(&self, since_ms: i64) -> Result<Vec<Fill>> {
        self.query_fills(
            &format!("{FILL_SELECT} WHERE time_ms >= ?1 ORDER BY time_ms, id"),
            values![since_ms],
        )
    }

    /// The row id of the newest fill journaled (`None` on a journal without fills): where a
    /// replay of the fills journaled so far stops ([`Journal::fills_priced_page`]).
    pub fn last_fill_row(&self) -> Result<Option<i64>> {
        self.store.query_one("SELECT MAX(id) FROM trades", vec![])
    }

    /// One page of the fills journaled up to row `upto`, in time order, after the fill keyed
    /// `after` (the last of the page before; `None`: from the first), at most `limit`, each
    /// with the commission price journaled with it. Keyset pages on `(time_ms, id)`, the order
    /// of the `trades_time` index: each page is one indexed read however far into the journal
    /// it is, and the caller holds one page at a time, so replaying a journal of any length
    /// takes memory for a page, not for the journal.
    pub fn fills_priced_page(
        &self,
        upto: i64,
        after: Option<FillKey>,
        limit: usize,
    ) -> Result<Vec<PricedFill>> {
        let (time_ms, id) = after.map_or((i64::MIN, i64::MIN), |k| (k.time_ms, k.id));
        let rows = self.store.query(
            &fills_priced_page_sql(),
            values![upto, time_ms, id, limit_i64(limit)],
        )?;
        rows.iter().map(PricedFill::read).collect()
    }

    /// Every fill in time order, with the commission price journaled at its fill time (all
    /// at once: a start-up replays them page by page, [`Journal::fills_priced_page`]).
    pub fn fills_priced(&self) -> Result<Vec<(Fill, Option<Price>)>> {
        let rows = self.store.query(
            "SELECT symbol, trade_id, order_id, fee_price FROM trades WHERE fee_price IS NOT NULL",
            vec![],
        )?;
        let mut prices = std::collections::BTreeMap::new();
        for row in rows {
            let symbol: String = row.get(0)?;
            let trade_id: i64 = row.get(1)?;
            let order_id: i64 = row.get(2)?;
            let text: String = row.get(3)?;
            let price = Price::from_str(&text)
                .map_err(|e| JournalError::Invalid(format!("fee price of trade {trade_id}: {e}")))?;
            prices.insert((symbol, trade_id, order_id), price);
        }
        let mut out = Vec::new();
        for fill in self.fills()? {
            let key = (
                fill.symbol.as_str().to_string(),
                to_i64(fill.trade_id, "trade id")?,
                to_i64(fill.order_id, "order id")?,
            );
            let price = prices.get(&key).copied();
            out.push((fill, price));
        }
        Ok(out)
    }

    /// The newest `limit` fills, newest first (the screen's history).
    pub fn recent_fills(&self, limit: usize) -> Result<Vec<Fill>> {
        self.query_fills(
            &format!("{FILL_SELECT} ORDER BY time_ms DESC, id DESC LIMIT ?1"),
            values![limit_i64(limit)],
        )
    }

    /// The fills of one symbol, in time order.
    pub fn fills_for(&self, symbol: &Symbol) -> Result<Vec<Fill>> {
        self.query_fills(
            &format!("{FILL_SELECT} WHERE symbol = ?1 ORDER BY time_ms, id"),
            values![symbol.as_str()],
        )
    }

    /// The highest trade id recorded on `symbol` (where `myTrades?fromId=` resumes).
    pub fn last_trade_id(&self, symbol: &Symbol) -> Result<Option<u64>> {
        let max: Option<i64> = self.store.query_one(
            "SELECT MAX(trade_id) FROM trades WHERE symbol = ?1",
            values![symbol.as_str()],
        )?;
        max.map(|v| from_i64(v, "trade id")).transpose()
    }

    fn query_fills(&self, sql: &str, params: Vec<store::Value>) -> Result<Vec<Fill>> {
        let rows = self.store.query(sql, params)?;
        rows.iter().map(|r| FillRow::read(r)?.into_fill()).collect()
    }

    // ----- risk, trading state, limits ----------------------------------------------------

    /// Records one risk decision; returns its id.
    pub fn record_risk_event(&self, event: &RiskEventRecord) -> Result<i64> {
        let ticket = serde_json::to_string(&event.ticket)
            .map_err(|e| JournalError::Invalid(format!("ticket cannot be serialised: {e}")))?;
        self.store.insert_id(
            "INSERT INTO risk_events (time_ms, source, symbol, side, ticket, approved, codes, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            values![
                event.time_ms,
                event.source.as_code(),
                event.symbol().as_str(),
                event.side().as_wire(),
                ticket,
                event.approved,
                event.codes.join(","),
                &event.reason,
            ],
        )
    }

    /// The newest `limit` risk decisions, newest first.
    pub fn recent_risk_events(&self, limit: usize) -> Result<Vec<Stored<RiskEventRecord>>> {
        let rows = self.store.query(
            "SELECT id, time_ms, source, ticket, approved, codes, reason FROM risk_events \
             ORDER BY id DESC LIMIT ?1",
            values![limit_i64(limit)],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let (id, time_ms, source, ticket, approved, codes, reason): (
                i64,
                i64,
                String,
                String,
                bool,
                String,
                String,
            ) = (
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            );
            let source = TicketSource::from_code(&source)
                .ok_or_else(|| JournalError::Invalid(format!("risk event {id}: source `{source}`")))?;
            let ticket: Ticket = serde_json::from_str(&ticket)
                .map_err(|e| JournalError::Invalid(format!("risk event {id}: ticket: {e}")))?;
            let codes = codes
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            out.push(Stored {
                id,
                record: RiskEventRecord {
                    time_ms,
                    source,
                    ticket,
                    approved,
                    codes,
                    reason,
                },
            });
        }
        Ok(out)
    }

    /// Records a change of trading state (halt, reduce, re-arm); returns its id. Durable when
    /// this returns `Ok`: a halt is persisted before any request leaves.
    ///
    /// On PostgreSQL the same transaction issues `NOTIFY crbot_<mode>, '<id>'`
    /// ([`notify`]): an engine listening hears it as it commits, never before.
    pub fn record_trading_state(&self, rec: &TradingStateRecord) -> Result<i64> {
        self.store.insert_id_notify(
            "INSERT INTO trading_state (time_ms, kind, state, reason, trigger, actor) \
             VALUES (?1, 'STATE', ?2, ?3, ?4, ?5)",
            values![
                rec.time_ms,
                rec.state.as_code(),
                &rec.reason,
                &rec.trigger,
                &rec.actor
            ],
            &notify::channel(self.mode),
        )
    }

    /// The newest trading-state change, if any was ever recorded.
    pub fn latest_trading_state(&self) -> Result<Option<Stored<TradingStateRecord>>> {
        let Some(r) = self.store.query_opt(
            "SELECT id, time_ms, state, reason, trigger, actor FROM trading_state \
             WHERE kind = 'STATE' ORDER BY id DESC LIMIT 1",
            vec![],
        )?
        else {
            return Ok(None);
        };
        let id: i64 = r.get(0)?;
        let state: String = r.get(2)?;
        let state = TradingStateCode::from_code(&state)
            .ok_or_else(|| JournalError::Invalid(format!("trading state {id}: `{state}`")))?;
        Ok(Some(Stored {
            id,
            record: TradingStateRecord {
                time_ms: r.get(1)?,
                state,
                reason: r.get(3)?,
                trigger: r.get(4)?,
                actor: r.get(5)?,
            },
        }))
    }

    /// The id of the newest row of `trading_state` (state or limit change), 0 when empty.
    ///
    /// Cheap (a rowid lookup): the engine polls it every ~250 ms from its own connection and
    /// re-reads the state when it grows, which is how `crbot kill` in another shell reaches a
    /// running console within a second.
    pub fn latest_trading_state_id(&self) -> Result<i64> {
        self.store
            .query_one("SELECT COALESCE(MAX(id), 0) FROM trading_state", vec![])
    }

    /// Records a change of a risk limit; returns its id.
    pub fn record_limit_change(&self, rec: &LimitChangeRecord) -> Result<i64> {
        self.store.insert_id(
            "INSERT INTO trading_state (time_ms, kind, state, reason, trigger, actor, limit_name, \
             old_value, new_value, confirmed) VALUES (?1, 'LIMIT', NULL, ?2, 'LIMIT_CHANGE', ?3, ?4, ?5, ?6, ?7)",
            values![
                rec.time_ms,
                &rec.reason,
                &rec.actor,
                &rec.limit,
                &rec.old_value,
                &rec.new_value,
                rec.confirmed
            ],
        )
    }

    /// Every limit change, oldest first (a restart replays them over the configured limits).
    pub fn limit_changes(&self) -> Result<Vec<Stored<LimitChangeRecord>>> {
        let rows = self.store.query(
            "SELECT id, time_ms, limit_name, old_value, new_value, confirmed, actor, reason \
             FROM trading_state WHERE kind = 'LIMIT' ORDER BY id",
            vec![],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Stored {
                    id: r.get(0)?,
                    record: LimitChangeRecord {
                        time_ms: r.get(1)?,
                        limit: r.get::<Option<String>>(2)?.unwrap_or_default(),
                        old_value: r.get::<Option<String>>(3)?.unwrap_or_default(),
                        new_value: r.get::<Option<String>>(4)?.unwrap_or_default(),
                        confirmed: r.get::<Option<bool>>(5)?.unwrap_or(false),
                        actor: r.get(6)?,
                        reason: r.get(7)?,
                    },
                })
            })
            .collect()
    }

    // ----- equity, events, metrics, meta --------------------------------------------------

    pub fn record_equity(&self, time_ms: i64, equity: &Money) -> Result<()> {
        self.store.execute(
            "INSERT INTO equity_curve (time_ms, equity, asset) VALUES (?1, ?2, ?3)",
            values![time_ms, plain(equity.amount()), equity.asset().as_str()],
        )?;
        Ok(())
    }

    /// Equity samples at or after `since_ms`, in time order.
    pub fn equity_curve(&self, since_ms: i64) -> Result<Vec<EquityPoint>> {
        let rows = self.store.query(
            "SELECT time_ms, equity, asset FROM equity_curve WHERE time_ms >= ?1 ORDER BY time_ms, id",
            values![since_ms],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let (time_ms, amount, asset): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let amount = Decimal::from_str_exact(&amount)
                .map_err(|e| JournalError::Invalid(format!("equity `{amount}`: {e}")))?;
            let asset = parse::<Asset>("equity asset", &asset)?;
            out.push(EquityPoint {
                time_ms,
                equity: Money::new(amount, asset),
            });
        }
        Ok(out)
    }

    /// Records a generic event; returns its id.
    pub fn record_event(&self, event: &EventRecord) -> Result<i64> {
        self.store.insert_id(
            "INSERT INTO events (time_ms, kind, symbol, detail) VALUES (?1, ?2, ?3, ?4)",
            values![
                event.time_ms,
                &event.kind,
                event.symbol.as_ref().map(|s| s.as_str()),
                &event.detail
            ],
        )
    }

    /// The newest `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Stored<EventRecord>>> {
        let rows = self.store.query(
            "SELECT id, time_ms, kind, symbol, detail FROM events ORDER BY id DESC LIMIT ?1",
            values![limit_i64(limit)],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let symbol: Option<String> = r.get(3)?;
            let symbol = symbol.map(|s| parse::<Symbol>("event symbol", &s)).transpose()?;
            out.push(Stored {
                id: r.get(0)?,
                record: EventRecord {
                    time_ms: r.get(1)?,
                    kind: r.get(2)?,
                    symbol,
                    detail: r.get(4)?,
                },
            });
        }
        Ok(out)
    }

    /// Records one value of a named metric (the seed's `bot_metrics`).
    pub fn record_metric(&self, time_ms: i64, name: &str, value: &str) -> Result<()> {
        self.store.execute(
            "INSERT INTO bot_metrics (time_ms, name, value) VALUES (?1, ?2, ?3)",
            values![time_ms, name, value],
        )?;
        Ok(())
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>> {
        self.store
            .query_opt("SELECT value FROM meta WHERE key = ?1", values![key])?
            .map(|r| r.get(0))
            .transpose()
    }

    /// Sets a meta value (watchlist, ban-until, day-start equity, high-water mark, endpoint…).
    /// The journal's own keys (`mode`, `created_ms`) cannot be changed.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        if RESERVED_META.contains(&key) {
            return Err(JournalError::Invalid(format!(
                "meta key `{key}` belongs to the journal and cannot be changed"
            )));
        }
        // Restoring the engine re-saves values it just read; writing nothing when nothing
        // changes lets the commands that only read work on a read-only journal.
        if self.get_meta(key)?.as_deref() == Some(value) {
            return Ok(());
        }
        self.store.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            values![key, value],
        )?;
        Ok(())
    }

    // ----- maintenance --------------------------------------------------------------------

    /// Copies the journal to `dest` with SQLite's online backup, as one consistent snapshot even
    /// while another connection writes. Written to a temporary file beside `dest`, checked, then
    /// renamed into place; refuses to overwrite an existing `dest`.
    ///
    /// A PostgreSQL journal is copied the same way into a new SQLite journal of its mode, from
    /// one snapshot (`REPEATABLE READ`) transaction: backups have one format whatever the store.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(JournalError::File {
                path: dest.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists; choose a new name for the backup",
                ),
            });
        }
        let mut tmp_name = dest.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let copied = match &self.store {
            Store::Sqlite(conn) => backup_into(conn, &tmp),
            Store::Postgres(pg) => copy::postgres_to_sqlite(pg, self.mode, &tmp),
        };
        let result = copied.and_then(|()| {
            std::fs::rename(&tmp, dest).map_err(|source| JournalError::File {
                path: dest.to_path_buf(),
                source,
            })
        });
        if result.is_err() {
            // Best effort: a half-written temporary file is useless.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Writes orders.csv, trades.csv, risk_events.csv and equity_curve.csv into `dir`. For a
    /// PostgreSQL journal, from a snapshot copied into a temporary SQLite journal, so that both
    /// stores export through the same code.
    pub fn export_csv(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        match &self.store {
            Store::Sqlite(conn) => export::export(conn, dir),
            Store::Postgres(pg) => {
                let scratch = tempfile_dir()?;
                let copy = scratch.join("snapshot.db");
                copy::postgres_to_sqlite(pg, self.mode, &copy)?;
                let result = Journal::open_read_only(&copy, self.mode).and_then(|j| j.export_csv(dir));
                let _ = std::fs::remove_dir_all(&scratch);
                result
            }
        }
    }

    /// `PRAGMA integrity_check`: true when SQLite finds nothing wrong. For PostgreSQL (which
    /// checks its own pages) true when the server answers.
    pub fn integrity_check(&self) -> Result<bool> {
        match self.store.sqlite() {
            Some(conn) => {
                let first: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                Ok(first == "ok")
            }
            None => Ok(self.store.query_one::<i64>("SELECT 1", vec![])? == 1),
        }
    }
}

fn backup_into(conn: &Connection, tmp: &Path) -> Result<()> {
    let mut dst = Connection::open(tmp)?;
    restrict_permissions(tmp)?;
    {
        let backup = rusqlite::backup::Backup::new(conn, &mut dst)?;
        // All pages in one step: one read transaction, so a concurrent writer cannot make
        // the copy restart forever, and the copy is a single consistent snapshot.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                _ if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err(JournalError::Busy("the backup could not get a read lock".into())),
            }
        }
    }
    let ok: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(JournalError::Corrupt(format!(
            "backup copy failed its check: {ok}"
        )));
    }
    dst.close().map_err(|(_, e)| JournalError::from(e))?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|source| JournalError::File {
            path: tmp.to_path_buf(),
            source,
        })
}

/// A private scratch folder under the system's temporary folder (removed by the caller).
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("crbot-export-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir(&dir).map_err(|source| JournalError::File {
        path: dir.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
            JournalError::File {
                path: dir.clone(),
                source,
            }
        })?;
    }
    Ok(dir)
}

/// A file name for a backup taken at `time_ms`: `journal-<mode>-YYYYMMDDTHHMMSSZ.db`, sortable
/// by time (for the scheduled and halt-time backups).
pub fn backup_file_name(mode: Mode, time_ms: i64) -> String {
    let stamp = chrono::DateTime::from_timestamp_millis(time_ms)
        .map(|t| t.format("%Y%m%dT%H%M%S%.3fZ").to_string())
        .unwrap_or_else(|| time_ms.to_string());
    format!("journal-{mode}-{stamp}.db")
}

// ----- row conversion -------------------------------------------------------------------------

const ORDER_SELECT: &str = "SELECT client_order_id, order_id, order_list_id, symbol, side, type, price, \
     stop_price, qty, executed_qty, cum_quote_qty, state, purpose, created_ms, updated_ms FROM orders";

/// An `orders` row as SQLite gives it, before the domain types check it.
struct OrderRow {
    cid: String,
    order_id: Option<i64>,
    order_list_id: Option<i64>,
    symbol: String,
    side: String,
    order_type: String,
    price: Option<String>,
    stop_price: Option<String>,
    qty: String,
    executed_qty: String,
    cum_quote: String,
    state: String,
    purpose: String,
    created_ms: i64,
    updated_ms: i64,
}

impl OrderRow {
    fn read(r: &store::Row) -> Result<OrderRow> {
        Ok(OrderRow {
            cid: r.get(0)?,
            order_id: r.get(1)?,
            order_list_id: r.get(2)?,
            symbol: r.get(3)?,
            side: r.get(4)?,
            order_type: r.get(5)?,
            price: r.get(6)?,
            stop_price: r.get(7)?,
            qty: r.get(8)?,
            executed_qty: r.get(9)?,
            cum_quote: r.get(10)?,
            state: r.get(11)?,
            purpose: r.get(12)?,
            created_ms: r.get(13)?,
            updated_ms: r.get(14)?,
        })
    }

    fn into_order(self) -> Result<Order> {
        let state = LocalOrderState::from_code(&self.state)
            .ok_or_else(|| JournalError::Invalid(format!("order {}: state `{}`", self.cid, self.state)))?;
        let purpose = OrderPurpose::from_code(&self.purpose).ok_or_else(|| {
            JournalError::Invalid(format!("order {}: purpose `{}`", self.cid, self.purpose))
        })?;
        Ok(Order {
            client_order_id: ClientOrderId::new(&self.cid)
                .map_err(|e| JournalError::Invalid(format!("order: {e}")))?,
            order_id: self.order_id.map(|v| from_i64(v, "order id")).transpose()?,
            order_list_id: self.order_list_id,
            symbol: parse::<Symbol>("order symbol", &self.symbol)?,
            side: parse::<Side>("order side", &self.side)?,
            order_type: parse::<OrderType>("order type", &self.order_type)?,
            price: self
                .price
                .map(|p| parse::<Price>("order price", &p))
                .transpose()?,
            stop_price: self
                .stop_price
                .map(|p| parse::<Price>("order stop price", &p))
                .transpose()?,
            qty: parse::<Qty>("order qty", &self.qty)?,
            executed_qty: parse::<Qty>("order executed qty", &self.executed_qty)?,
            cumulative_quote_qty: parse::<Notional>("order cumulative quote qty", &self.cum_quote)?,
            state,
            purpose,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        })
    }
}

const FILL_SELECT: &str = "SELECT symbol, trade_id, order_id, client_order_id, side, price, qty, commission, \
     commission_asset, time_ms, is_maker FROM trades";

/// [`FILL_SELECT`] with the commission's price and the row's id (where the next page starts).
/// [`Journal::fills_priced_page`]'s statement: `?1` the last row, `?2`/`?3` the key to start
/// after, `?4` the page's size. The last column is the client order id of crbot's own order
/// the fill belongs to (by its client order id, else by its exchange order id: `myTrades`
/// reports none), read from the whole journal: the orders a restore keeps in memory are only
/// the newest, and a fill of an older one is crbot's all the same.
fn fills_priced_page_sql() -> String {
    "SELECT t.symbol, t.trade_id, t.order_id, t.client_order_id, t.side, t.price, t.qty, \
     t.commission, t.commission_asset, t.time_ms, t.is_maker, t.fee_price, t.id, \
     COALESCE((SELECT o.client_order_id FROM orders o WHERE o.client_order_id = t.client_order_id \
     AND o.purpose <> 'EXTERNAL'), (SELECT o.client_order_id FROM orders o WHERE o.symbol = t.symbol \
     AND o.order_id = t.order_id AND o.purpose <> 'EXTERNAL' LIMIT 1)) \
     FROM trades t WHERE t.id <= ?1 AND (t.time_ms, t.id) > (?2, ?3) ORDER BY t.time_ms, t.id LIMIT ?4"
        .to_string()
}

/// Where a fill is in the journal's time order: its time, then its row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FillKey {
    pub time_ms: i64,
    pub id: i64,
}

/// A journaled fill with the commission's price journaled with it, and its place in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedFill {
    pub fill: Fill,
    pub fee_price: Option<Price>,
    pub key: FillKey,
    /// The client order id of crbot's own order the fill belongs to, found in the journal
    /// (`None`: an order crbot did not place, or none journaled).
    pub own_order: Option<ClientOrderId>,
}

impl PricedFill {
    fn read(r: &store::Row) -> Result<PricedFill> {
        let fill = FillRow::read(r)?.into_fill()?;
        let fee_price = r
            .get::<Option<String>>(11)?
            .map(|text| parse::<Price>("fill fee price", &text))
            .transpose()?;
        let key = FillKey {
            time_ms: fill.time_ms,
            id: r.get(12)?,
        };
        let own_order = r
            .get::<Option<String>>(13)?
            .map(|c| {
                ClientOrderId::new(&c).map_err(|e| JournalError::Invalid(format!("fill's own order: {e}")))
            })
            .transpose()?;
        Ok(PricedFill {
            fill,
            fee_price,
            key,
            own_order,
        })
    }
}

struct FillRow {
    symbol: String,
    trade_id: i64,
    order_id: i64,
    cid: Option<String>,
    side: String,
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
    time_ms: i64,
    is_maker: bool,
}

impl FillRow {
    fn read(r: &store::Row) -> Result<FillRow> {
        Ok(FillRow {
            symbol: r.get(0)?,
            trade_id: r.get(1)?,
            order_id: r.get(2)?,
            cid: r.get(3)?,
            side: r.get(4)?,
            price: r.get(5)?,
            qty: r.get(6)?,
            commission: r.get(7)?,
            commission_asset: r.get(8)?,
            time_ms: r.get(9)?,
            is_maker: r.get(10)?,
        })
    }

    fn into_fill(self) -> Result<Fill> {
        Ok(Fill {
            symbol: parse::<Symbol>("fill symbol", &self.symbol)?,
            trade_id: from_i64(self.trade_id, "trade id")?,
            order_id: from_i64(self.order_id, "order id")?,
            client_order_id: self
                .cid
                .map(|c| ClientOrderId::new(&c).map_err(|e| JournalError::Invalid(format!("fill: {e}"))))
                .transpose()?,
            side: parse::<Side>("fill side", &self.side)?,
            price: parse::<Price>("fill price", &self.price)?,
            qty: parse::<Qty>("fill qty", &self.qty)?,
            commission: parse::<Qty>("fill commission", &self.commission)?,
            commission_asset: parse::<Asset>("fill commission asset", &self.commission_asset)?,
            time_ms: self.time_ms,
            is_maker: self.is_maker,
        })
    }
}

fn parse<T>(what: &str, text: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| JournalError::Invalid(format!("{what} `{text}`: {e}")))
}

/// Exchange ids are u64 on the wire but fit SQLite's signed 64-bit integers in practice; a
/// value that does not is refused rather than wrapped.
fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| JournalError::Invalid(format!("{what} {v} does not fit the journal")))
}

/// An order row's 15 values, in the column order of `INSERT INTO orders` (`?1`..`?15`).
fn order_values(order: &Order) -> Result<Vec<Value>> {
    Ok(values![
        order.client_order_id.as_str(),
        opt_u64(order.order_id)?,
        order.order_list_id,
        order.symbol.as_str(),
        order.side.as_wire(),
        order.order_type.as_wire(),
        order.price.map(|p| p.to_string()),
        order.stop_price.map(|p| p.to_string()),
        order.qty.to_string(),
        order.executed_qty.to_string(),
        order.cumulative_quote_qty.to_string(),
        order.state.as_code(),
        order.purpose.as_code(),
        order.created_ms,
        order.updated_ms,
    ])
}

fn opt_u64(v: Option<u64>) -> Result<Option<i64>> {
    v.map(|v| to_i64(v, "order id")).transpose()
}

fn from_i64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| JournalError::Invalid(format!("{what} {v} is negative")))
}

/// A PostgreSQL URL is never a file name: `Journal::open` on one would create an SQLite file
/// named like it. (`DATABASE_URL` reaches the journal as a [`Location`].)
fn refuse_url_as_path(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if text.starts_with("postgresql:") || text.starts_with("postgres:") {
        return Err(JournalError::Unsupported(
            "the journal is in PostgreSQL, which this operation cannot open as a file (file \
             backups of a PostgreSQL journal are not available in this version: use pg_dump)",
        ));
    }
    Ok(())
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Whether the journal at `path` cannot be written for a reason the user can fix (permissions
/// of the file or its folder, a read-only disk). Asked only after an open failed, to say what
/// is wrong instead of SQLite's "unable to open database file". Probing the folder creates and
/// removes one empty file, which is how SQLite itself would use it (for the `-wal`/`-shm`).
fn read_only_location(path: &Path) -> bool {
    let refused = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        )
    };
    if path.exists()
        && let Err(e) = std::fs::OpenOptions::new().write(true).open(path)
    {
        return refused(&e);
    }
    let Some(dir) = path.parent() else {
        return false;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let probe = dir.join(format!(".crbot-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            false
        }
        Err(e) => refused(&e),
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        JournalError::File {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderPurpose, OrderType};

    fn order(cid: &str) -> Order {
        Order {
            client_order_id: ClientOrderId::new(cid).expect("cid"),
            order_id: None,
            order_list_id: None,
            symbol: Symbol::new("BTCUSDT").expect("symbol"),
            side: Side::Sell,
            order_type: OrderType::Market,
            price: None,
            stop_price: None,
            qty: "1".parse().expect("qty"),
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Pending,
            purpose: OrderPurpose::Exit,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn a_page_of_the_replay_is_read_through_the_time_index_without_a_sort() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(&dir.path().join("j.db"), Mode::Sim).expect("open");
        let conn = j.store.sqlite().expect("sqlite");
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", fills_priced_page_sql()))
            .expect("plan");
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params![10, 5, 3, 100], |r| r.get(3))
            .expect("plan")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        let plan = plan.join("; ");
        assert!(plan.contains("trades_time"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "a page sorts nothing: {plan}");
    }

    #[test]
    fn a_journal_can_move_to_the_engine_thread() {
        fn is_send<T: Send>() {}
        is_send::<Journal>();
    }

    #[test]
    fn backup_names_sort_by_time_and_carry_the_mode() {
        assert_eq!(
            backup_file_name(Mode::Live, 1_764_331_200_000),
            "journal-live-20251128T120000.000Z.db"
        );
    }

    #[test]
    fn open_existing_refuses_to_create_a_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.db");
        let err = Journal::open_existing(&path, Mode::Sim).expect_err("missing");
        assert!(matches!(err, JournalError::Missing { .. }), "{err:?}");
        assert!(!path.exists());
    }

    #[test]
    fn the_connection_is_wal_with_synchronous_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(&dir.path().join("j.db"), Mode::Sim).expect("open");
        let conn = j.store.sqlite().expect("sqlite");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("pragma");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("pragma");
        assert_eq!((sync, mode.as_str()), (2, "wal"), "2 is FULL");
    }

    #[test]
    fn a_full_disk_is_reported_as_disk_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(&dir.path().join("j.db"), Mode::Sim).expect("open");
        let conn = j.store.sqlite().expect("sqlite");
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .expect("pages");
        // SQLite answers SQLITE_FULL once the file may not grow: the same path as a full disk.
        conn.pragma_update(None, "max_page_count", pages).expect("cap");
        let filler = "x".repeat(2000);
        let err = (0..1000)
            .find_map(|i| {
                let mut o = order(&format!("fill-{i}"));
                o.purpose = OrderPurpose::Exit;
                j.insert_order(&o)
                    .and_then(|()| j.set_meta(&format!("k{i}"), &filler))
                    .err()
            })
            .expect("the capped file fills up");
        assert!(matches!(err, JournalError::DiskFull), "{err:?}");
        assert!(err.is_storage_failure());
    }

    #[test]
    fn a_journal_that_cannot_be_written_reports_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(&dir.path().join("j.db"), Mode::Sim).expect("open");
        j.store
            .sqlite()
            .expect("sqlite")
            .pragma_update(None, "query_only", true)
            .expect("query_only");
        let err = j.insert_order(&order("ro")).expect_err("must fail");
        assert!(matches!(err, JournalError::ReadOnly(_)), "{err:?}");
    }
}
