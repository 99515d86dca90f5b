//! The journal in PostgreSQL: what only this store needs proved (the record tests shared with
//! SQLite are in `tests/journal_records.rs`). One database is one mode's journal, refused
//! untouched across modes, applications and newer versions as an SQLite file is; the same
//! tables and columns; durable and visible to another connection when a write returns; usable
//! from inside tokio tasks; clear errors that never show the password.

mod pg_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crbot::domain::{
    Asset, ClientOrderId, Fill, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderType, Qty, Side,
    Symbol,
};
use crbot::journal::{
    Journal, JournalError, Location, PgTarget, SCHEMA_VERSION, StoreKind, TradingStateCode,
    TradingStateRecord,
};
use pg_support::{PgCluster, PgDatabase};

fn location(db: &PgDatabase) -> Location {
    Location::Postgres(PgTarget::parse(&db.url()).expect("url"))
}

fn order(cid: &str) -> Order {
    Order {
        client_order_id: ClientOrderId::new(cid).expect("cid"),
        order_id: None,
        order_list_id: None,
        symbol: Symbol::new("BTCUSDT").expect("symbol"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some("60000.01".parse().expect("price")),
        stop_price: None,
        qty: "0.00012345".parse().expect("qty"),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Pending,
        purpose: OrderPurpose::Entry,
        created_ms: 1,
        updated_ms: 1,
    }
}

fn halt(time_ms: i64) -> TradingStateRecord {
    TradingStateRecord {
        time_ms,
        state: TradingStateCode::Halted,
        reason: "kill".into(),
        trigger: "CLI_KILL".into(),
        actor: "cli".into(),
    }
}

#[test]
fn an_empty_database_becomes_the_journal_of_its_mode_and_another_mode_is_refused_untouched() {
    let db = PgDatabase::new();
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("created");
    assert_eq!(j.store_kind(), StoreKind::Postgres);
    j.insert_order(&order("cr-a")).expect("order");
    drop(j);
    let before = db.psql("SELECT count(*) FROM orders");
    let err = Journal::open_at(&location(&db), Mode::Live).expect_err("another mode");
    assert!(
        matches!(&err, JournalError::WrongMode { found, wanted: Mode::Live, .. } if found == "sim"),
        "{err:?}"
    );
    assert_eq!(db.psql("SELECT count(*) FROM orders"), before);
    assert_eq!(db.psql("SELECT value FROM meta WHERE key = 'mode'"), "sim");
    // Reopened in its own mode, what was recorded is there.
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("reopen");
    assert_eq!(j.recent_orders(10).expect("orders").len(), 1);
}

#[test]
fn a_database_of_another_application_is_refused_and_left_as_it_was() {
    let db = PgDatabase::new();
    db.psql("CREATE TABLE customers (id BIGINT)");
    let err = Journal::open_at(&location(&db), Mode::Sim).expect_err("not a journal");
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
    assert_eq!(
        db.psql(
            "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "customers"
    );
}

#[test]
fn a_journal_from_a_newer_crbot_is_refused_untouched() {
    let db = PgDatabase::new();
    drop(Journal::open_at(&location(&db), Mode::Sim).expect("created"));
    let newer = SCHEMA_VERSION + 1;
    db.psql(&format!("UPDATE crbot_journal SET version = {newer}"));
    let err = Journal::open_at(&location(&db), Mode::Sim).expect_err("newer");
    assert!(
        matches!(err, JournalError::NewerSchema { found, .. } if found == newer),
        "{err:?}"
    );
    assert_eq!(db.psql("SELECT version FROM crbot_journal"), newer.to_string());
}

#[test]
fn two_processes_creating_one_journal_at_once_create_it_once() {
    let db = PgDatabase::new();
    let loc = location(&db);
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let loc = loc.clone();
            std::thread::spawn(move || Journal::open_at(&loc, Mode::Sim).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join().expect("thread").expect("each opens the one journal");
    }
    assert_eq!(db.psql("SELECT count(*) FROM meta WHERE key = 'mode'"), "1");
    assert_eq!(db.psql("SELECT count(*) FROM crbot_journal"), "1");
}

/// Column names per table, in order, from SQLite's `PRAGMA table_info`.
fn sqlite_columns() -> Vec<(String, Vec<String>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    drop(Journal::open(&path, Mode::Sim).expect("sqlite"));
    let conn = rusqlite::Connection::open(&path).expect("raw");
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    tables.retain(|t| !t.starts_with("sqlite_"));
    tables
        .into_iter()
        .map(|t| {
            let cols: Vec<String> = conn
                .prepare(&format!("PRAGMA table_info(\"{t}\")"))
                .expect("prepare")
                .query_map([], |r| r.get(1))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("columns");
            (t, cols)
        })
        .collect()
}

#[test]
fn postgresql_has_the_same_tables_and_columns_and_keeps_decimals_as_text() {
    let db = PgDatabase::new();
    drop(Journal::open_at(&location(&db), Mode::Sim).expect("created"));
    for (table, columns) in sqlite_columns() {
        let pg = db.psql(&format!(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = '{table}' AND column_name <> 'rowid'"
        ));
        assert_eq!(pg, columns.join(","), "table {table}");
    }
    // Prices, quantities and money are exact text, never a float or a rounded NUMERIC.
    let types = db.psql(
        "SELECT string_agg(DISTINCT data_type, ',') FROM information_schema.columns WHERE table_schema = 'public' \
         AND (table_name, column_name) IN (('orders', 'price'), ('orders', 'qty'), ('trades', 'price'), \
         ('trades', 'commission'), ('equity_curve', 'equity'), ('capital_flows', 'delta'))",
    );
    assert_eq!(types, "text");
}

#[test]
fn a_write_is_committed_and_seen_by_another_connection_when_it_returns() {
    let db = PgDatabase::new();
    let engine = Journal::open_at(&location(&db), Mode::Sim).expect("engine's");
    let shell = Journal::open_at(&location(&db), Mode::Sim).expect("crbot kill's");
    assert_eq!(engine.latest_trading_state_id().expect("poll"), 0);
    let id = shell.record_trading_state(&halt(5)).expect("halt");
    // No transaction is left open: the engine's next poll sees the halt.
    assert_eq!(engine.latest_trading_state_id().expect("poll"), id);
    assert_eq!(
        engine.latest_trading_state().expect("read").expect("some").record,
        halt(5)
    );
    assert_eq!(db.psql("SELECT count(*) FROM trading_state"), "1");
}

#[test]
fn read_only_refuses_a_missing_journal_and_every_write() {
    let db = PgDatabase::new();
    let err = Journal::open_read_only_at(&location(&db), Mode::Sim).expect_err("nothing yet");
    assert!(matches!(err, JournalError::Missing { .. }), "{err:?}");
    assert_eq!(
        db.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"),
        "0",
        "a read-only open creates nothing"
    );
    Journal::open_at(&location(&db), Mode::Sim)
        .expect("created")
        .insert_order(&order("cr-a"))
        .expect("order");
    let ro = Journal::open_read_only_at(&location(&db), Mode::Sim).expect("read-only");
    assert_eq!(ro.recent_orders(5).expect("read").len(), 1);
    let err = ro.insert_order(&order("cr-b")).expect_err("no write");
    assert!(matches!(err, JournalError::ReadOnly(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_called_from_inside_tokio_tasks_without_panicking() {
    let db = PgDatabase::new();
    let loc = location(&db);
    // The engine calls the synchronous journal from its tasks, on both kinds of runtime.
    let n = tokio::spawn(async move {
        let j = Journal::open_at(&loc, Mode::Sim).expect("opened in a task");
        for i in 0..20 {
            j.insert_order(&order(&format!("cr-{i}"))).expect("order");
        }
        j.recent_orders(100).expect("orders").len()
    })
    .await
    .expect("task");
    assert_eq!(n, 20);
    let loc = location(&db);
    let on_current = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let j = Journal::open_at(&loc, Mode::Sim).expect("opened");
            j.record_trading_state(&halt(1)).expect("halt")
        })
    })
    .join()
    .expect("current-thread runtime");
    assert!(on_current > 0);
}

#[test]
fn a_wrong_password_is_refused_clearly_and_never_shown() {
    let db = PgDatabase::new();
    let password = db.cluster.password().to_string();
    let url = db.url().replace(&password, "wrong-pw-123");
    let target = PgTarget::parse(&url).expect("url");
    let err = Journal::open_at(&Location::Postgres(target), Mode::Sim).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("refused the login"), "{text}");
    assert!(
        !text.contains("wrong-pw-123") && !text.contains(&password),
        "{text}"
    );
    assert!(err.is_storage_failure());
}

#[test]
fn a_missing_database_and_tls_asked_of_a_server_without_it_say_so() {
    let db = PgDatabase::new();
    let url = db.url().replace(&format!("/{}", db.name), "/no_such_db");
    let err = Journal::open_at(
        &Location::Postgres(PgTarget::parse(&url).expect("url")),
        Mode::Sim,
    )
    .expect_err("missing");
    assert!(err.to_string().contains("does not exist"), "{err}");
    // TLS asked of a server that has none: refused, not silently plain.
    let url = format!("{}?sslmode=require", db.url());
    let err = Journal::open_at(
        &Location::Postgres(PgTarget::parse(&url).expect("url")),
        Mode::Sim,
    )
    .expect_err("no TLS on the test server");
    let text = err.to_string();
    assert!(text.contains("PostgreSQL"), "{text}");
    assert!(!text.contains(db.cluster.password()), "{text}");
}

#[test]
fn a_server_that_goes_away_is_a_storage_failure_and_the_journal_reconnects_when_it_is_back() {
    // A cluster of its own: stopping it must not disturb the other tests.
    let cluster = Arc::new(PgCluster::start());
    let db = cluster.database();
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("journal");
    j.insert_order(&order("cr-a")).expect("order");
    cluster.kill_server();
    let err = j.insert_order(&order("cr-b")).expect_err("server gone");
    assert!(err.is_storage_failure(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("PostgreSQL"), "{text}");
    assert!(!text.contains(cluster.password()), "{text}");
    // Reads fail the same way, without a panic.
    assert!(j.recent_orders(1).is_err());
    // Once the server is back, the next call reconnects; what was committed survived.
    cluster.restart_server();
    j.insert_order(&order("cr-c")).expect("reconnected");
    let ids: Vec<String> = j
        .recent_orders(10)
        .expect("orders")
        .into_iter()
        .map(|o| o.client_order_id.to_string())
        .collect();
    assert!(
        ids.contains(&"cr-a".to_string()) && ids.contains(&"cr-c".to_string()),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"cr-b".to_string()),
        "the failed write is not there: {ids:?}"
    );
}

/// A certificate for 127.0.0.1 and its key, in PEM.
fn certificate() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

#[test]
fn tls_verifies_the_server_certificate_and_a_tls_only_server_refuses_plain() {
    let (cert, key) = certificate();
    let cluster = Arc::new(PgCluster::start_tls(&cert, &key, true));
    let db = cluster.database();
    let ca = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca.path(), &cert).expect("write ca");

    // Verified against the certificate given as sslrootcert: the journal opens and works.
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url(),
        ca.path().display()
    );
    let target = PgTarget::parse(&url).expect("url");
    let j = Journal::open_at(&Location::Postgres(target), Mode::Sim).expect("TLS journal");
    j.insert_order(&order("cr-tls")).expect("order over TLS");
    // The journal's connection (not this psql's) is encrypted.
    let encrypted = db.psql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE s.ssl AND a.datname = current_database() AND a.pid <> pg_backend_pid()",
    );
    assert_eq!(encrypted, "1");

    // `require` is as strict as verify-full: the web's roots do not know this certificate.
    let url = format!("{}?sslmode=require", db.url());
    let err = Journal::open_at(
        &Location::Postgres(PgTarget::parse(&url).expect("url")),
        Mode::Sim,
    )
    .expect_err("an unknown certificate is refused");
    let text = err.to_string();
    assert!(text.contains("TLS") || text.contains("certificate"), "{text}");
    assert!(!text.contains(cluster.password()), "{text}");

    // A plain connection to a server that requires TLS says what to do.
    let err = Journal::open_at(
        &Location::Postgres(PgTarget::parse(&db.url()).expect("url")),
        Mode::Sim,
    )
    .expect_err("plain refused");
    let text = err.to_string();
    assert!(
        text.contains("requires TLS") && text.contains("sslmode=verify-full"),
        "{text}"
    );
    assert!(!text.contains(cluster.password()), "{text}");
}

fn fill_of(cid: &str, trade_id: u64) -> Fill {
    Fill {
        symbol: Symbol::new("BTCUSDT").expect("symbol"),
        trade_id,
        order_id: trade_id,
        client_order_id: Some(ClientOrderId::new(cid).expect("cid")),
        side: Side::Buy,
        price: "60000.01".parse().expect("price"),
        qty: "0.00012345".parse().expect("qty"),
        commission: "0.00000012".parse().expect("commission"),
        commission_asset: Asset::new("BNB").expect("asset"),
        time_ms: 1_700_000_000_000 + trade_id as i64,
        is_maker: trade_id.is_multiple_of(2),
    }
}

#[test]
fn a_backup_of_a_postgresql_journal_is_an_sqlite_journal_of_its_mode_taken_from_one_snapshot() {
    let db = PgDatabase::new();
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("journal");
    j.insert_order(&order("cr-a")).expect("order");
    j.insert_fill_priced(&fill_of("cr-a", 1), Some("600.5".parse().expect("p")))
        .expect("fill");
    j.record_trading_state(&halt(3)).expect("halt");
    j.set_meta("watchlist", "BTCUSDT,ETHUSDT").expect("meta");

    // Another connection writes an order, then its fill, over and over while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let pairs = Arc::new(AtomicU64::new(0));
    let writer = {
        let (loc, stop, pairs) = (location(&db), stop.clone(), pairs.clone());
        std::thread::spawn(move || {
            let w = Journal::open_at(&loc, Mode::Sim).expect("writer");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 5_000 {
                let cid = format!("w-{n}");
                w.insert_order(&order(&cid)).expect("order");
                w.insert_fill(&fill_of(&cid, 1_000 + n)).expect("fill");
                n += 1;
                pairs.store(n, Ordering::Relaxed);
            }
        })
    };
    while pairs.load(Ordering::Relaxed) < 20 {
        std::thread::yield_now();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("backup.db");
    j.backup_to(&dest).expect("backup");
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(
        !dir.path().join("backup.db-wal").exists(),
        "one self-contained file"
    );

    let copy = Journal::open_existing(&dest, Mode::Sim).expect("a journal of the same mode");
    assert_eq!(copy.store_kind(), StoreKind::Sqlite);
    assert!(copy.integrity_check().expect("check"));
    let orders = copy.recent_orders(100_000).expect("orders");
    let fills = copy.fills().expect("fills");
    let w_orders = orders
        .iter()
        .filter(|o| o.client_order_id.as_str().starts_with("w-"))
        .count();
    let w_fills = fills.iter().filter(|f| f.trade_id >= 1_000).count();
    // One moment: each fill's order is there, and at most the last order is still without its fill.
    assert!(w_orders >= 20, "{w_orders}");
    assert!(w_orders - w_fills <= 1, "{w_orders} orders, {w_fills} fills");
    assert_eq!(
        copy.fills_priced().expect("priced")[0]
            .1
            .map(|p| p.to_string())
            .as_deref(),
        Some("600.5")
    );
    assert_eq!(
        copy.latest_trading_state().expect("state").expect("some").record,
        halt(3)
    );
    assert_eq!(
        copy.get_meta("watchlist").expect("meta").as_deref(),
        Some("BTCUSDT,ETHUSDT")
    );
    assert_eq!(
        copy.get_meta("created_ms").expect("meta"),
        Some(db.psql("SELECT value FROM meta WHERE key = 'created_ms'")),
        "the original's meta, not the copy's own"
    );
    assert!(
        matches!(j.backup_to(&dest), Err(JournalError::File { .. })),
        "an existing file is never overwritten"
    );

    // The CSV export goes through the same snapshot.
    let out = dir.path().join("csv");
    let written = j.export_csv(&out).expect("export");
    assert!(written.iter().any(|p| p.ends_with("orders.csv")));
    let orders_csv = std::fs::read_to_string(out.join("orders.csv")).expect("orders.csv");
    assert!(orders_csv.lines().count() > w_orders + 1, "header + every order");
}

#[tokio::test]
async fn the_engine_backs_up_a_postgresql_journal_off_its_loop_from_a_connection_of_its_own() {
    let db = PgDatabase::new();
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("engine's journal");
    j.insert_order(&order("cr-a")).expect("order");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = crbot::engine::backup::file_in(dir.path(), Mode::Sim, 1_764_331_200_000);
    // What the engine's backup effect carries: the journal's location, password included.
    let outcome = crbot::engine::backup::spawn(
        j.location().clone(),
        Mode::Sim,
        dest.clone(),
        crbot::engine::backup::Reason::Scheduled,
        1_764_331_200_000,
    )
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let copy = Journal::open_existing(&dest, Mode::Sim).expect("an SQLite journal");
    assert_eq!(copy.recent_orders(5).expect("orders").len(), 1);
    assert!(!format!("{:?}", j.location()).contains(db.cluster.password()));
}

#[test]
fn a_server_that_stops_answering_fails_the_call_instead_of_hanging_the_engine() {
    let db = PgDatabase::new();
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("journal");
    j.insert_order(&order("cr-a")).expect("order");
    // The journal's server process, frozen: no reset, no answer (a network cut looks alike).
    let pid: i32 = db
        .psql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ))
        .parse()
        .expect("one backend");
    // SAFETY: signals to a process of the test's own server.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let err = j.insert_order(&order("cr-b")).expect_err("no answer");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(err.to_string().contains("did not answer"), "{err}");
    assert!(err.is_storage_failure());
    // The next call opens a new connection and works.
    j.insert_order(&order("cr-c")).expect("reconnected");
}

/// A journal written before a trade was keyed by order too (schema 4): one fill per trade id.
const TRADES_BY_TRADE_ID: &str = "DROP INDEX orders_exchange_id; DROP TABLE trades; CREATE TABLE trades (         id               BIGSERIAL PRIMARY KEY,         symbol           TEXT NOT NULL,         trade_id         BIGINT NOT NULL,         order_id         BIGINT NOT NULL,         client_order_id  TEXT,         side             TEXT NOT NULL,         price            TEXT NOT NULL,         qty              TEXT NOT NULL,         commission       TEXT NOT NULL,         commission_asset TEXT NOT NULL,         time_ms          BIGINT NOT NULL,         is_maker         BIGINT NOT NULL,         fee_price        TEXT,         UNIQUE(symbol, trade_id)     )";

#[test]
fn a_schema_4_journal_is_upgraded_keeping_its_fills_and_then_takes_both_sides_of_a_self_trade() {
    let db = PgDatabase::new();
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("created");
    drop(j);
    db.psql(TRADES_BY_TRADE_ID);
    db.psql("UPDATE crbot_journal SET version = 4");
    let first = fill_of("cr-a", 1);
    // Two fills recorded under schema 4, with their ids (the copy must keep them).
    db.psql(
        "INSERT INTO trades (symbol, trade_id, order_id, client_order_id, side, price, qty, commission, \
         commission_asset, time_ms, is_maker, fee_price) VALUES \
         ('BTCUSDT', 1, 1, 'cr-a', 'BUY', '60000.01', '0.00012345', '0.00000012', 'BNB', 1700000000001, 0, '600.5'), \
         ('BTCUSDT', 2, 2, 'cr-a', 'BUY', '60000.01', '0.00012345', '0.00000012', 'BNB', 1700000000002, 0, NULL)",
    );
    let j = Journal::open_at(&location(&db), Mode::Sim).expect("upgraded");
    assert_eq!(
        db.psql("SELECT version FROM crbot_journal"),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(j.fills().expect("fills")[0], first);
    assert_eq!(
        db.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM trades"),
        "1,2"
    );
    let priced = j.fills_priced().expect("priced");
    assert_eq!(priced[0].1, Some("600.5".parse().expect("p")));
    // The other side of trade 2, and a new fill: the copied ids are not handed out again.
    let mut other_side = fill_of("cr-b", 2);
    other_side.order_id = 3;
    other_side.side = Side::Sell;
    assert!(j.insert_fill(&other_side).expect("other side"));
    assert!(j.insert_fill(&fill_of("cr-c", 4)).expect("a new fill"));
    assert_eq!(db.psql("SELECT count(*) FROM trades"), "4");
}
