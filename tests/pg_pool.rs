//! The PostgreSQL journal's connection pool: journals of one process open on one database share
//! a pool, so a reader is answered on a connection of its own while a write waits (here, on a
//! lock another session holds), and every write is still committed before it returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;

use std::time::{Duration, Instant};

use crbot::domain::Mode;
use crbot::journal::{Journal, Location, PgTarget};
use pg_support::PgDatabase;

fn location(db: &PgDatabase) -> Location {
    Location::Postgres(PgTarget::parse(&db.url()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_is_answered_while_a_write_of_the_same_process_waits() {
    let db = PgDatabase::new();
    let loc = location(&db);
    let writer = Journal::open_at(&loc, Mode::Sim).unwrap();
    writer.set_meta("watchlist", "BTCUSDT").unwrap();

    // Another session holds a lock that makes writes to `meta` wait (reads still go through).
    let (blocker, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    blocker
        .batch_execute("BEGIN; LOCK TABLE meta IN EXCLUSIVE MODE")
        .await
        .unwrap();

    let write = std::thread::spawn(move || {
        let r = writer.set_meta("watchlist", "ETHUSDT");
        (writer, r)
    });
    // The write is waiting on the lock (seen by the server), not done.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE '%meta%'",
        );
        if waiting == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "the write never waited on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A reader of the same process, on the same database: answered meanwhile.
    let reader = Journal::open_read_only_at(&loc, Mode::Sim).unwrap();
    assert_eq!(reader.get_meta("watchlist").unwrap().as_deref(), Some("BTCUSDT"));
    let other = Journal::open_at(&loc, Mode::Sim).unwrap();
    assert_eq!(other.latest_trading_state_id().unwrap(), 0);
    assert!(!write.is_finished(), "the write still waits on the lock");

    blocker.batch_execute("COMMIT").await.unwrap();
    let (writer, r) = write.join().unwrap();
    r.unwrap();
    // Returned means committed: another connection sees it.
    assert_eq!(reader.get_meta("watchlist").unwrap().as_deref(), Some("ETHUSDT"));
    assert_eq!(
        db.psql("SELECT value FROM meta WHERE key = 'watchlist'"),
        "ETHUSDT"
    );
    drop(writer);
}

#[test]
fn the_pool_s_connections_close_when_the_last_journal_on_them_is_dropped() {
    let db = PgDatabase::new();
    let loc = location(&db);
    let connections = || {
        db.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ))
    };
    let a = Journal::open_at(&loc, Mode::Sim).unwrap();
    let b = Journal::open_at(&loc, Mode::Sim).unwrap();
    a.set_meta("k", "1").unwrap();
    b.set_meta("k", "2").unwrap();
    // One after the other, the two journals use one connection of the shared pool.
    assert_eq!(connections(), "1");
    drop(a);
    assert_eq!(connections(), "1", "still b's");
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(20);
    while connections() != "0" {
        assert!(Instant::now() < deadline, "the pool's connection was not closed");
        std::thread::sleep(Duration::from_millis(20));
    }
}
