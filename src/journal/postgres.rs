//! The journal in PostgreSQL: where `DATABASE_URL=postgresql://…` points, how to reach it
//! (TLS through rustls), and the client that runs the journal's statements there.
//!
//! Owns: parsing and redacting the URL ([`PgTarget`]), the connection pool, the schema's marker
//! table and migrations on PostgreSQL, and the mapping of PostgreSQL's errors. Must not: hold
//! the URL's password anywhere it could be shown (every message and `Debug` use the redacted
//! form), or answer the caller from inside its runtime.
//!
//! [`crate::journal::Journal`] is synchronous and is called from inside tokio tasks, so the
//! client runs on a runtime of its own (one thread, shared by every journal of the process);
//! each call is a task there and the caller blocks on a std channel for the answer (no
//! `blocking_recv`, no `block_on` on the caller's side, both of which panic inside a runtime).
//!
//! Connections come from a `deadpool-postgres` pool per address and access (read-only journals
//! get sessions with `default_transaction_read_only`), shared by every journal of the process
//! open on them and closed with the last of those: a reader (health's check, an export, a
//! backup's copy) takes a connection of its own instead of queueing behind the engine's writes,
//! and opening one costs no new connection. Each call runs on one connection, each write in
//! its own committed transaction before it returns, as before; a connection that failed or did
//! not answer within 10 s is dropped, never handed out again. The `LISTEN` connection
//! (`journal::notify`) is dedicated, never pooled.
//!
//! One database is the journal of one mode, as one SQLite file is: the `meta` table records the
//! mode, and a database of another mode, of another application or from a newer crbot is
//! refused before anything is written. Migrations run in one transaction under an advisory
//! lock, so two processes opening a new database at once create it once.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls};

use super::JournalError;
use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};
use super::value::{Result, Row, Value};
use crate::domain::Mode;
use crate::secret::SecretString;

/// How long connecting may take when the URL does not say (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one call waits for the server's answer before it fails (the journal is written from
/// the engine's loop: a silent server must not stop it for good).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Whether the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// `sslmode=disable`, `allow` or `prefer`, or none given: a plain connection.
    Off,
    /// `sslmode=require`, `verify-ca` or `verify-full`: TLS with the server's certificate
    /// verified (chain and host name) against the web's roots or `sslrootcert=FILE`. crbot
    /// never encrypts without verifying: `require` is as strict as `verify-full`.
    Verified,
}

/// A PostgreSQL journal's address, parsed from `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// The URL without crbot's TLS parameters, password included: never shown.
    url: SecretString,
    /// The URL with its password replaced: what messages show.
    shown: String,
    tls: PgTls,
    root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.shown)
            .field("tls", &self.tls)
            .field("root_cert", &self.root_cert)
            .finish()
    }
}

impl PgTarget {
    /// Parses `postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=FILE]`
    /// (or `postgres://…`). The error never holds the password.
    pub fn parse(text: &str) -> std::result::Result<PgTarget, String> {
        let mut url = url::Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
        if !matches!(url.scheme(), "postgresql" | "postgres") {
            return Err("is not a postgresql:// URL".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("names no host".into());
        }
        let mut tls = PgTls::Off;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => {
                    tls = match v.as_ref() {
                        "disable" | "allow" | "prefer" => PgTls::Off,
                        "require" | "verify-ca" | "verify-full" => PgTls::Verified,
                        other => {
                            return Err(format!(
                                "has sslmode={other}; use disable, require or verify-full"
                            ));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if root_cert.is_some() && tls == PgTls::Off {
            return Err("gives sslrootcert without sslmode=verify-full".into());
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let connect: tokio_postgres::Config = url
            .as_str()
            .parse()
            .map_err(|e| format!("cannot be used by the PostgreSQL client ({e})"))?;
        if connect.get_dbname().is_none() {
            return Err("names no database (…/DATABASE at its end)".into());
        }
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        Ok(PgTarget {
            url: SecretString::new(url.to_string()),
            shown: shown.to_string(),
            tls,
            root_cert,
        })
    }

    /// The password of a URL that gives none, as libpq takes it from `PGPASSWORD`: so that a
    /// password need not stand in a URL on a command line, where `ps` shows it. A URL's own
    /// password wins.
    pub fn with_default_password(mut self, password: Option<&str>) -> PgTarget {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return self;
        };
        let Ok(mut url) = url::Url::parse(self.url.expose()) else {
            return self;
        };
        if url.password().is_none() && url.set_password(Some(password)).is_ok() {
            self.url = SecretString::new(url.to_string());
            if let Ok(mut shown) = url::Url::parse(&self.shown) {
                let _ = shown.set_password(Some("***"));
                self.shown = shown.to_string();
            }
        }
        self
    }

    /// The URL with its password masked.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn tls(&self) -> PgTls {
        self.tls
    }
}

/// Whether a journal opened through [`PgStore::open`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Creates or migrates the journal; writes.
    Write,
    /// Refuses a missing or older journal; every write fails with `ReadOnly`.
    ReadOnly,
    /// Creates the journal in an empty database and refuses any other (`journal migrate`).
    Create,
}

enum Op {
    Execute(String, Vec<Value>),
    InsertUnique(String, Vec<Value>),
    Query(String, Vec<Value>),
    /// Queries run in one read-only snapshot transaction.
    Snapshot(Vec<String>),
    /// Rows inserted into tables (keeping their ids) in one transaction, then each table's id
    /// sequence moved past them; `meta` is replaced.
    CopyIn(Vec<(String, Vec<String>, Vec<Row>)>),
    /// An insert `… RETURNING id` and `pg_notify(channel, id)` in one statement (one
    /// transaction): the notice is delivered on commit only, so whoever hears it finds the row.
    InsertNotify(String, Vec<Value>),
}

enum Reply {
    Count(u64),
    Inserted(bool),
    Rows(Vec<Row>),
    Tables(Vec<Vec<Row>>),
    Done,
    Id(i64),
}

/// The client of one PostgreSQL journal: a handle on the pool of its address and access.
pub struct PgStore {
    pool: Arc<Pool>,
    shown: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.shown).finish()
    }
}

impl PgStore {
    /// Connects, checks that the database is the journal of `mode` (or empty: then it is
    /// created, with `Access::Write`) and brings it to [`SCHEMA_VERSION`].
    pub fn open(target: &PgTarget, mode: Mode, now_ms: i64, access: Access) -> Result<PgStore> {
        let pool = pool_for(target, access)?;
        let checked = Arc::clone(&pool);
        let target_ = target.clone();
        on_pool_runtime(async move {
            let mut client = checkout(&checked).await?;
            let prepared = prepare(&mut client, &target_, mode, now_ms, access).await;
            if prepared.is_err() {
                // Its transaction may be half done: never handed out again.
                drop(deadpool_postgres::Object::take(client));
            }
            prepared
        })?;
        Ok(PgStore {
            pool,
            shown: target.shown.clone(),
        })
    }

    /// Runs `op` on a connection of the pool, waiting here (a std channel: never a
    /// `block_on` on the caller's side, which may be a tokio task) for its answer.
    fn call(&self, op: Op) -> Result<Reply> {
        let pool = Arc::clone(&self.pool);
        on_pool_runtime(async move { run_pooled(&pool, op).await })
    }

    pub fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64> {
        match self.call(Op::Execute(to_postgres_placeholders(sql), params))? {
            Reply::Count(n) => Ok(n),
            _ => Err(JournalError::Invalid("unexpected reply to a statement".into())),
        }
    }

    pub fn insert_unique(&self, sql: &str, params: Vec<Value>) -> Result<bool> {
        match self.call(Op::InsertUnique(to_postgres_placeholders(sql), params))? {
            Reply::Inserted(b) => Ok(b),
            _ => Err(JournalError::Invalid("unexpected reply to an insert".into())),
        }
    }

    pub fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>> {
        match self.call(Op::Query(to_postgres_placeholders(sql), params))? {
            Reply::Rows(rows) => Ok(rows),
            _ => Err(JournalError::Invalid("unexpected reply to a query".into())),
        }
    }
}

impl PgStore {
    /// Runs an insert into a table with an `id` key and issues `NOTIFY channel, 'id'` in the
    /// same transaction; the new row's id. PostgreSQL delivers the notice on commit only, so it
    /// is never heard before the row is durable (see [`super::notify`]).
    pub fn insert_id_notify(&self, sql: &str, params: Vec<Value>, channel: &str) -> Result<i64> {
        // One statement, so one transaction and one round trip: the kill's halt is written
        // this way, before its first cancel.
        let mut params = params;
        params.push(Value::Text(channel.to_string()));
        let sql = format!(
            "WITH inserted AS ({} RETURNING id) SELECT id, pg_notify(${}, id::text) FROM inserted",
            to_postgres_placeholders(sql),
            params.len()
        );
        match self.call(Op::InsertNotify(sql, params))? {
            Reply::Id(id) => Ok(id),
            _ => Err(JournalError::Invalid("unexpected reply to an insert".into())),
        }
    }

    /// Runs `queries` (no parameters) in one `REPEATABLE READ READ ONLY` transaction: every
    /// result is of the same moment, whatever commits meanwhile. For copies and backups.
    pub fn snapshot(&self, queries: Vec<String>) -> Result<Vec<Vec<Row>>> {
        match self.call(Op::Snapshot(queries))? {
            Reply::Tables(t) => Ok(t),
            _ => Err(JournalError::Invalid("unexpected reply to a snapshot".into())),
        }
    }
}

impl PgStore {
    /// Inserts `tables` (name, columns, rows) in one transaction: all or nothing.
    pub fn copy_in(&self, tables: Vec<(String, Vec<String>, Vec<Row>)>) -> Result<()> {
        match self.call(Op::CopyIn(tables))? {
            Reply::Done => Ok(()),
            _ => Err(JournalError::Invalid("unexpected reply to a copy".into())),
        }
    }
}

fn gone() -> JournalError {
    JournalError::Database("the journal's PostgreSQL client stopped".into())
}

/// How many connections one pool (one address, one access) opens at most: the engine writes
/// on one at a time, and readers in the same process (health's check, an export, a backup's
/// copy) take others instead of queueing behind its writes.
const POOL_SIZE: usize = 4;

type Pool = deadpool_postgres::Pool;

/// The runtime every pool's connections live on: one thread of its own, which drives the
/// connections and the requests alike (a request and its connection's I/O never wait for
/// another thread to be scheduled, which on a busy machine costs more than the round trip),
/// so that a caller's thread (often a tokio task of another runtime) only ever waits on a std
/// channel. Requests on different connections still interleave: a reader waiting for its rows
/// does not hold up a write.
fn pool_runtime() -> Result<&'static tokio::runtime::Handle> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Handle, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("journal-postgres".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| JournalError::Database(format!("cannot start the journal's client runtime: {e}")))
}

/// Runs `work` on the pools' runtime and waits for its result on a std channel.
fn on_pool_runtime<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let (reply, answer) = mpsc::channel();
    pool_runtime()?.spawn(async move {
        let _ = reply.send(work.await);
    });
    answer.recv().map_err(|_| gone())?
}

/// The pool of `target` with `access`'s session settings, shared by every store of this
/// process open on them, and closed (its connections with it) when the last one is dropped.
fn pool_for(target: &PgTarget, access: Access) -> Result<Arc<Pool>> {
    type Pools = Vec<(PgTarget, bool, Weak<Pool>)>;
    static POOLS: Mutex<Pools> = Mutex::new(Vec::new());
    let read_only = access == Access::ReadOnly;
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    pools.retain(|(_, _, p)| p.strong_count() > 0);
    if let Some(pool) = pools
        .iter()
        .find(|(t, r, _)| t == target && *r == read_only)
        .and_then(|(_, _, p)| p.upgrade())
    {
        return Ok(pool);
    }
    let mut config = client_config(target)?;
    let tls = tls_for(target, &mut config)?;
    // Each statement is on the server's disk before it returns, whatever the server's default.
    let mut setup = String::from("SET synchronous_commit = on; SET TIME ZONE 'UTC';");
    if read_only {
        setup.push_str(" SET default_transaction_read_only = on;");
    }
    let manager = deadpool_postgres::Manager::from_connect(
        config,
        Connector { tls, setup },
        deadpool_postgres::ManagerConfig::default(),
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| JournalError::Database(format!("the journal's connection pool: {e}")))?;
    let pool = Arc::new(pool);
    pools.push((target.clone(), read_only, Arc::downgrade(&pool)));
    Ok(pool)
}

/// How the pool opens a connection: plain, or TLS with the certificate verified, then the
/// session's settings.
struct Connector {
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    setup: String,
}

type Connected = std::result::Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>;

impl deadpool_postgres::Connect for Connector {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Connected> + Send + '_>> {
        let config = config.clone();
        Box::pin(async move {
            let (client, task) = connect_driven(&config, self.tls.as_ref(), None).await?;
            client.batch_execute(&self.setup).await?;
            Ok((client, task))
        })
    }
}

/// A connection of the pool (a new one when none is free and the pool is not full; a closed
/// one is never handed out), within [`ANSWER_WITHIN`].
async fn checkout(pool: &Pool) -> Result<deadpool_postgres::Object> {
    match tokio::time::timeout(ANSWER_WITHIN, pool.get()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(deadpool_postgres::PoolError::Backend(e))) => Err(e.into()),
        Ok(Err(e)) => Err(JournalError::Database(format!(
            "the journal's connection pool: {e}"
        ))),
        Err(_) => Err(no_answer()),
    }
}

fn no_answer() -> JournalError {
    JournalError::Database(format!(
        "the PostgreSQL server did not answer within {} s: the write's outcome is unknown; \
         nothing more is recorded until it answers again",
        ANSWER_WITHIN.as_secs()
    ))
}

/// One request on a pooled connection. A connection that failed or did not answer is
/// dropped rather than returned to the pool (it may be dead, or inside a transaction); the
/// next request opens a new one.
async fn run_pooled(pool: &Pool, op: Op) -> Result<Reply> {
    let client = checkout(pool).await?;
    match tokio::time::timeout(ANSWER_WITHIN, run(&client, op)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => {
            drop(deadpool_postgres::Object::take(client));
            Err(e)
        }
        Err(_) => {
            drop(deadpool_postgres::Object::take(client));
            Err(no_answer())
        }
    }
}

async fn run(client: &Client, op: Op) -> Result<Reply> {
    match op {
        Op::Execute(sql, params) => Ok(Reply::Count(client.execute(&sql, &refs(&params)).await?)),
        Op::InsertUnique(sql, params) => match client.execute(&sql, &refs(&params)).await {
            Ok(_) => Ok(Reply::Inserted(true)),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Reply::Inserted(false)),
            Err(e) => Err(e.into()),
        },
        Op::Query(sql, params) => {
            let rows = client.query(&sql, &refs(&params)).await?;
            rows.iter()
                .map(read_row)
                .collect::<Result<Vec<_>>>()
                .map(Reply::Rows)
        }
        Op::CopyIn(tables) => {
            client.batch_execute("BEGIN").await?;
            match copy_in(client, &tables).await {
                Ok(()) => {
                    client.batch_execute("COMMIT").await?;
                    Ok(Reply::Done)
                }
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    Err(e)
                }
            }
        }
        Op::InsertNotify(sql, params) => {
            let row = client.query_one(&sql, &refs(&params)).await?;
            Ok(Reply::Id(row.try_get(0)?))
        }
        Op::Snapshot(queries) => {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let result = snapshot(client, &queries).await;
            // Read-only: ending it either way loses nothing.
            client.batch_execute("ROLLBACK").await?;
            result.map(Reply::Tables)
        }
    }
}

async fn copy_in(client: &Client, tables: &[(String, Vec<String>, Vec<Row>)]) -> Result<()> {
    client.execute("DELETE FROM meta", &[]).await?;
    for (table, columns, rows) in tables {
        let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let stmt = client
            .prepare(&format!(
                "INSERT INTO \"{table}\" ({}) VALUES ({})",
                list.join(", "),
                marks.join(", ")
            ))
            .await?;
        for row in rows {
            client.execute(&stmt, &refs(&row.0)).await?;
        }
        if columns.iter().any(|c| c == "id") {
            client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                         GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM \"{table}\""
                    ),
                    &[],
                )
                .await?;
        }
    }
    Ok(())
}

async fn snapshot(client: &Client, queries: &[String]) -> Result<Vec<Vec<Row>>> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let rows = client.query(q.as_str(), &[]).await?;
        out.push(rows.iter().map(read_row).collect::<Result<Vec<_>>>()?);
    }
    Ok(out)
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(i64::from(v)))
        } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(ty) {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else {
            return Err(JournalError::Invalid(format!(
                "column `{}` has the PostgreSQL type {ty}, which the journal does not use",
                col.name()
            )));
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            Value::Int(i) => i.to_string().as_str().to_sql(ty, out),
            Value::Text(t) => t.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `?N` placeholders (SQLite's) as `$N` (PostgreSQL's). The journal's SQL has no `?` in a
/// string literal.
pub fn to_postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The client's settings from the URL, with crbot's connect timeout when it gives none.
fn client_config(target: &PgTarget) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = target
        .url
        .expose()
        .parse()
        .map_err(|e| JournalError::Database(format!("DATABASE_URL cannot be used: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// Opens a connection for `LISTEN` (same TLS rules as every other), whose notices' payloads
/// are sent on `notices` as they arrive. When the connection ends (lost, or the client
/// dropped) `notices` is dropped: its receiver sees the channel closed.
pub(super) async fn connect_listening(
    target: &PgTarget,
    notices: tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<Client> {
    let mut config = client_config(target)?;
    // This connection mostly waits: TCP keepalives find a dead peer in about a minute.
    config.keepalives_idle(Duration::from_secs(30));
    let tls = tls_for(target, &mut config)?;
    let (client, _) = connect_driven(&config, tls.as_ref(), Some(notices)).await?;
    Ok(client)
}

/// A connection of its own (the engine's lease, `journal::lease`), with `tune` applied to the
/// client's settings (keepalives, application name) before it connects; none of the journal's
/// session settings, the same TLS rules as every other connection.
pub(super) async fn connect_dedicated(
    target: &PgTarget,
    tune: impl FnOnce(&mut tokio_postgres::Config),
) -> Result<Client> {
    let mut config = client_config(target)?;
    tune(&mut config);
    let tls = tls_for(target, &mut config)?;
    let (client, _) = connect_driven(&config, tls.as_ref(), None).await?;
    Ok(client)
}

/// `config`'s SSL mode set to `target`'s TLS rule (plain, or TLS with the certificate
/// verified), and the connector that verifies when it is TLS: every connection's one rule.
fn tls_for(
    target: &PgTarget,
    config: &mut tokio_postgres::Config,
) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>> {
    Ok(match target.tls {
        PgTls::Off => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            None
        }
        PgTls::Verified => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target)?))
        }
    })
}

/// Connects with `config` (over `tls` when given; see [`tls_for`]) and drives the connection
/// on a task of its own, handing each notification's payload to `notices` when given.
async fn connect_driven(
    config: &tokio_postgres::Config,
    tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
    notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Connected {
    Ok(match tls {
        None => {
            let (client, conn) = config.connect(NoTls).await?;
            (client, tokio::spawn(drive(conn, notices)))
        }
        Some(tls) => {
            let (client, conn) = config.connect(tls.clone()).await?;
            (client, tokio::spawn(drive(conn, notices)))
        }
    })
}

/// Drives a connection until it ends, forwarding its notifications when asked.
async fn drive<S, T>(
    conn: tokio_postgres::Connection<S, T>,
    notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match notices {
        Some(notices) => forward_notices(conn, notices).await,
        None => drop(conn.await),
    }
}

/// Drives a connection and hands on each notification's payload until it ends.
async fn forward_notices<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    notices: tokio::sync::mpsc::UnboundedSender<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                if notices.send(n.payload().to_string()).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn tls_config(target: &PgTarget) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &target.root_cert {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| {
                JournalError::Database(format!("sslrootcert {}: {e}", path.display()))
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"holds no certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| JournalError::Database(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Checks that the database is the journal of `mode` and brings it to [`SCHEMA_VERSION`], in
/// one transaction under an advisory lock; nothing is written when it is refused.
async fn prepare(
    client: &mut Client,
    target: &PgTarget,
    mode: Mode,
    now_ms: i64,
    access: Access,
) -> Result<()> {
    let path = PathBuf::from(&target.shown);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&i64::from(APPLICATION_ID)])
        .await?;
    let has_marker: bool = tx
        .query_one("SELECT to_regclass('crbot_journal') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if has_marker && access == Access::Create {
        return Err(JournalError::Invalid(format!(
            "{} already holds a crbot journal: the copy goes into an empty database only",
            target.shown
        )));
    }
    let version = if has_marker {
        let row = tx
            .query_one("SELECT application_id, version FROM crbot_journal", &[])
            .await?;
        let (app, version): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if app != i64::from(APPLICATION_ID) {
            return Err(JournalError::NotAJournal {
                path,
                why: "its crbot_journal table belongs to another application".into(),
            });
        }
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        if version > SCHEMA_VERSION {
            return Err(JournalError::NewerSchema {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let found: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'mode'", &[])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if found.as_deref() != Some(mode.as_str()) {
            return Err(JournalError::WrongMode {
                path,
                found: found.unwrap_or_default(),
                wanted: mode,
            });
        }
        version
    } else {
        let tables: i64 = tx
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_name <> 'crbot_leadership'",
                &[],
            )
            .await?
            .try_get(0)?;
        if tables > 0 {
            return Err(JournalError::NotAJournal {
                path,
                why: "a PostgreSQL database holding tables of another application".into(),
            });
        }
        0
    };
    if access == Access::ReadOnly {
        return match version {
            0 => Err(JournalError::Missing { path, mode }),
            v if v < SCHEMA_VERSION => Err(JournalError::ReadOnlyFile {
                path,
                consequence: "it was written by an older crbot and must be upgraded, which needs \
                              write access",
            }),
            _ => Ok(()),
        };
    }
    let start = usize::try_from(version).unwrap_or(0);
    for sql in schema::postgres_migrations().iter().skip(start) {
        tx.batch_execute(sql).await?;
    }
    if version == 0 {
        tx.batch_execute(
            "CREATE TABLE crbot_journal (application_id BIGINT NOT NULL, version BIGINT NOT NULL)",
        )
        .await?;
        tx.execute(
            "INSERT INTO crbot_journal (application_id, version) VALUES ($1, $2)",
            &[&i64::from(APPLICATION_ID), &i64::from(SCHEMA_VERSION)],
        )
        .await?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('mode', $1), ('created_ms', $2)",
            &[&mode.as_str(), &now_ms.to_string()],
        )
        .await?;
    } else if version < SCHEMA_VERSION {
        tx.execute(
            "UPDATE crbot_journal SET version = $1",
            &[&i64::from(SCHEMA_VERSION)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The one mapping from PostgreSQL's errors to the journal's. Messages name the condition
/// (server gone, login refused, TLS required) and never the URL.
impl From<tokio_postgres::Error> for JournalError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let msg = db.message();
            return if *code == SqlState::DISK_FULL {
                JournalError::DiskFull
            } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
                JournalError::ReadOnly(msg.to_string())
            } else if *code == SqlState::INVALID_PASSWORD {
                JournalError::Database(format!(
                    "PostgreSQL refused the login (wrong user or password in DATABASE_URL): {msg}"
                ))
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && (msg.contains("no encryption") || msg.contains("SSL off"))
            {
                JournalError::Database(format!(
                    "PostgreSQL requires TLS for this connection (add sslmode=verify-full to \
                     DATABASE_URL): {msg}"
                ))
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                JournalError::Database(format!("PostgreSQL refused the connection: {msg}"))
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                JournalError::Database(format!("the database in DATABASE_URL does not exist: {msg}"))
            } else if code.code().starts_with("08") || code.code().starts_with("57P") {
                JournalError::Database(format!("the PostgreSQL server is unavailable: {msg}"))
            } else {
                JournalError::Database(format!("PostgreSQL: {msg} ({})", code.code()))
            };
        }
        if e.is_closed() {
            return JournalError::Database(
                "the connection to the PostgreSQL server was lost: nothing more can be recorded \
                 until it is back"
                    .into(),
            );
        }
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") {
            return JournalError::Database(format!("TLS to the PostgreSQL server failed: {text}"));
        }
        JournalError::Database(format!("the PostgreSQL server cannot be reached: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_the_postgresql_way() {
        assert_eq!(
            to_postgres_placeholders("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10) LIMIT ?3"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $10) LIMIT $3"
        );
    }

    #[test]
    fn pgpassword_fills_a_url_without_a_password_and_never_shows() {
        let t = PgTarget::parse("postgresql://bot@db.example/crbot")
            .expect("parses")
            .with_default_password(Some("from-the-env"));
        assert_eq!(t.shown(), "postgresql://bot:***@db.example/crbot");
        assert!(t.url.expose().contains("bot:from-the-env@"));
        assert!(!format!("{t:?}").contains("from-the-env"));
        // The URL's own password wins; no variable, no change.
        let own = PgTarget::parse("postgresql://bot:own@db/crbot")
            .expect("parses")
            .with_default_password(Some("from-the-env"));
        assert!(own.url.expose().contains("bot:own@"));
        let none = PgTarget::parse("postgresql://bot@db/crbot")
            .expect("parses")
            .with_default_password(None);
        assert_eq!(none.shown(), "postgresql://bot@db/crbot");
    }

    #[test]
    fn the_url_is_shown_without_its_password_and_tls_is_read_from_sslmode() {
        let t = PgTarget::parse("postgresql://bot:s3cret-pw@db.example:5433/crbot?sslmode=verify-full")
            .expect("parses");
        assert_eq!(t.tls(), PgTls::Verified);
        assert!(!t.shown().contains("s3cret-pw"), "{}", t.shown());
        assert!(!format!("{t:?}").contains("s3cret-pw"));
        assert!(!t.url.expose().contains("sslmode"), "crbot's own parameter");
        let plain = PgTarget::parse("postgres://bot@db/crbot").expect("parses");
        assert_eq!(plain.tls(), PgTls::Off);
    }

    #[test]
    fn a_url_without_host_or_database_or_with_a_bad_sslmode_is_refused_without_its_password() {
        for bad in [
            "postgresql:///crbot",
            "postgresql://u:s3cret-pw@db",
            "postgresql://u:s3cret-pw@db/x?sslmode=sometimes",
            "postgresql://u:s3cret-pw@db/x?sslrootcert=/ca.pem",
        ] {
            let e = PgTarget::parse(bad).expect_err(bad);
            assert!(!e.contains("s3cret-pw"), "{e}");
        }
    }
}
