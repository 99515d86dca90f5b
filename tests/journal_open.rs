//! The journal's file handling: creation, migration, reopening, and the files it must refuse
//! without changing a byte.

use std::path::Path;

use crbot::domain::{Asset, ClientOrderId, Fill, Mode, Side, Symbol};
use crbot::journal::{APPLICATION_ID, Journal, JournalError, SCHEMA_VERSION};
use sha2::{Digest, Sha256};

fn digest(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("read file")).to_vec()
}

#[test]
fn creates_a_new_journal_with_schema_application_id_and_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/journal-sim.db");
    let j = Journal::open(&path, Mode::Sim).expect("open");
    assert!(j.integrity_check().expect("check"));
    drop(j);

    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let app: i32 = raw
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .expect("app id");
    let ver: i32 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    let mode: String = raw
        .query_row("SELECT value FROM meta WHERE key = 'mode'", [], |r| r.get(0))
        .expect("mode");
    let wal: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("wal");
    assert_eq!(
        (app, ver, mode.as_str(), wal.as_str()),
        (APPLICATION_ID, SCHEMA_VERSION, "sim", "wal")
    );
    for table in [
        "orders",
        "trades",
        "risk_events",
        "equity_curve",
        "trading_state",
        "events",
        "bot_metrics",
        "strategy_performance",
        "meta",
    ] {
        let n: i64 = raw
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(n, 1, "table {table} missing");
    }
}

#[test]
fn reopening_keeps_the_data_and_the_meta() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    {
        let j = Journal::open(&path, Mode::Testnet).expect("open");
        j.set_meta("watchlist", "BTCUSDT,ETHUSDT").expect("meta");
    }
    let j = Journal::open(&path, Mode::Testnet).expect("reopen");
    assert_eq!(
        j.get_meta("watchlist").expect("get").as_deref(),
        Some("BTCUSDT,ETHUSDT")
    );
    assert_eq!(j.get_meta("mode").expect("get").as_deref(), Some("testnet"));
}

#[test]
fn refuses_to_change_the_recorded_mode_through_meta() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::open(&dir.path().join("j.db"), Mode::Sim).expect("open");
    assert!(matches!(
        j.set_meta("mode", "live"),
        Err(JournalError::Invalid(_))
    ));
    assert_eq!(j.get_meta("mode").expect("get").as_deref(), Some("sim"));
}

#[test]
fn accepts_an_empty_file_as_a_new_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("write");
    let j = Journal::open(&path, Mode::Sim).expect("open");
    assert!(j.integrity_check().expect("check"));
}

#[test]
fn refuses_a_text_file_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(20)).expect("write");
    let before = digest(&path);
    let err = Journal::open(&path, Mode::Sim).expect_err("must refuse");
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
    assert!(err.to_string().contains("not a crbot journal"), "{err}");
    assert_eq!(digest(&path), before);
}

#[test]
fn refuses_a_short_binary_file_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short.db");
    std::fs::write(&path, b"SQLite format 3\0").expect("write");
    let before = digest(&path);
    assert!(matches!(
        Journal::open(&path, Mode::Sim),
        Err(JournalError::NotAJournal { .. })
    ));
    assert_eq!(digest(&path), before);
}

#[test]
fn refuses_another_applications_sqlite_database_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.db");
    {
        let raw = rusqlite::Connection::open(&path).expect("raw");
        raw.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos (name) VALUES ('cat');")
            .expect("create");
    }
    let before = digest(&path);
    let err = Journal::open(&path, Mode::Sim).expect_err("must refuse");
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
    assert_eq!(digest(&path), before);
}

#[test]
fn refuses_the_journal_of_another_mode_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal-live.db");
    {
        let j = Journal::open(&path, Mode::Live).expect("open live");
        j.set_meta("watchlist", "BTCUSDT").expect("meta");
    }
    let before = digest(&path);
    let err = Journal::open(&path, Mode::Sim).expect_err("must refuse");
    match &err {
        JournalError::WrongMode { found, wanted, .. } => {
            assert_eq!((found.as_str(), *wanted), ("live", Mode::Sim));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("mode `live`"), "{err}");
    assert_eq!(digest(&path), before);
    // And it still opens in its own mode.
    assert!(Journal::open(&path, Mode::Live).is_ok());
}

#[test]
fn refuses_a_journal_from_a_newer_schema_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    drop(Journal::open(&path, Mode::Sim).expect("open"));
    {
        let raw = rusqlite::Connection::open(&path).expect("raw");
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        raw.pragma_update(None, "journal_mode", "DELETE")
            .expect("checkpoint into the main file");
    }
    let before = digest(&path);
    let err = Journal::open(&path, Mode::Sim).expect_err("must refuse");
    assert!(
        matches!(err, JournalError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer crbot"), "{err}");
    assert_eq!(digest(&path), before);
}

#[test]
fn two_connections_to_one_journal_see_each_others_trading_state() {
    use crbot::journal::{TradingStateCode, TradingStateRecord};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let console = Journal::open(&path, Mode::Sim).expect("console");
    let before = console.latest_trading_state_id().expect("poll");
    assert_eq!(before, 0);

    let cli = Journal::open(&path, Mode::Sim).expect("cli");
    cli.record_trading_state(&TradingStateRecord {
        time_ms: 1_000,
        state: TradingStateCode::Halted,
        reason: "crbot kill".into(),
        trigger: "CLI_KILL".into(),
        actor: "cli".into(),
    })
    .expect("halt");

    let after = console.latest_trading_state_id().expect("poll");
    assert!(after > before);
    let latest = console.latest_trading_state().expect("read").expect("some");
    assert_eq!(latest.id, after);
    assert_eq!(latest.record.state, TradingStateCode::Halted);
    assert_eq!(latest.record.trigger, "CLI_KILL");
}

#[test]
fn refuses_another_modes_journal_while_it_is_open_and_being_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal-live.db");
    let live = Journal::open(&path, Mode::Live).expect("open live");
    live.set_meta("k", "v").expect("write into the WAL");
    let before = digest(&path);
    let err = Journal::open(&path, Mode::Paper).expect_err("must refuse");
    assert!(matches!(err, JournalError::WrongMode { .. }), "{err:?}");
    assert_eq!(digest(&path), before);
    assert_eq!(live.get_meta("k").expect("still usable").as_deref(), Some("v"));
}

#[test]
fn a_refused_file_gets_no_companion_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal-live.db");
    drop(Journal::open(&path, Mode::Live).expect("open live"));
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    assert!(Journal::open(&path, Mode::Sim).is_err());
    assert_eq!(listing(), before);
}

#[cfg(unix)]
#[test]
fn a_new_journal_and_its_backup_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let j = Journal::open(&path, Mode::Sim).expect("open");
    let backup = dir.path().join("b.db");
    j.backup_to(&backup).expect("backup");
    for p in [&path, &backup] {
        let mode = std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[test]
fn refusal_works_for_paths_with_spaces_and_percent_signs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("my journal %20 #1.db");
    drop(Journal::open(&path, Mode::Demo).expect("open demo"));
    let before = digest(&path);
    assert!(matches!(
        Journal::open(&path, Mode::Live),
        Err(JournalError::WrongMode { .. })
    ));
    assert_eq!(digest(&path), before);
    assert!(Journal::open(&path, Mode::Demo).is_ok());
}

fn fill(trade_id: u64, order_id: u64, side: Side) -> Fill {
    Fill {
        symbol: Symbol::new("BTCUSDT").expect("symbol"),
        trade_id,
        order_id,
        client_order_id: Some(ClientOrderId::new("cr-a").expect("cid")),
        side,
        price: "60000.01".parse().expect("price"),
        qty: "0.00012345".parse().expect("qty"),
        commission: "0.00000012".parse().expect("commission"),
        commission_asset: Asset::new("BNB").expect("asset"),
        time_ms: 1_700_000_000_000 + trade_id as i64,
        is_maker: false,
    }
}

#[test]
fn a_schema_4_journal_is_upgraded_keeping_its_fills_and_then_takes_both_sides_of_a_self_trade() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("journal.db");
    drop(Journal::open(&path, Mode::Sim).expect("created"));
    {
        // Back to schema 4: a trade was keyed by trade id alone.
        let raw = rusqlite::Connection::open(&path).expect("raw");
        raw.execute_batch("DROP INDEX orders_exchange_id; DROP TABLE trades; CREATE TABLE trades (         id               INTEGER PRIMARY KEY,         symbol           TEXT NOT NULL,         trade_id         INTEGER NOT NULL,         order_id         INTEGER NOT NULL,         client_order_id  TEXT,         side             TEXT NOT NULL,         price            TEXT NOT NULL,         qty              TEXT NOT NULL,         commission       TEXT NOT NULL,         commission_asset TEXT NOT NULL,         time_ms          INTEGER NOT NULL,         is_maker         INTEGER NOT NULL,         fee_price        TEXT,         UNIQUE(symbol, trade_id)     );").expect("old trades");
        raw.execute(
            "INSERT INTO trades (id, symbol, trade_id, order_id, client_order_id, side, price, qty, \
             commission, commission_asset, time_ms, is_maker, fee_price) \
             VALUES (7, 'BTCUSDT', 1, 1, 'cr-a', 'BUY', '60000.01', '0.00012345', '0.00000012', 'BNB', \
             1700000000001, 0, '600.5')",
            [],
        )
        .expect("old fill");
        raw.pragma_update(None, "user_version", 4).expect("version");
    }
    let j = Journal::open(&path, Mode::Sim).expect("upgraded");
    assert_eq!(j.fills().expect("fills"), vec![fill(1, 1, Side::Buy)]);
    assert_eq!(
        j.fills_priced().expect("priced")[0].1,
        Some("600.5".parse().expect("p"))
    );
    assert!(j.insert_fill(&fill(1, 2, Side::Sell)).expect("other side"));
    assert!(!j.insert_fill(&fill(1, 2, Side::Sell)).expect("again"));
    drop(j);
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let version: i32 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    let ids: Vec<i64> = raw
        .prepare("SELECT id FROM trades ORDER BY id")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("id"))
        .collect();
    assert_eq!(ids, [7, 8], "the copied row keeps its id; the next follows it");
    // The newest fills (the history) are read through the time index, not a sort of the table.
    let plan: String = raw
        .query_row(
            "EXPLAIN QUERY PLAN SELECT * FROM trades ORDER BY time_ms DESC, id DESC LIMIT 5",
            [],
            |r| r.get(3),
        )
        .expect("plan");
    assert!(plan.contains("trades_time"), "{plan}");
}
