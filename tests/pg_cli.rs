//! The commands with `DATABASE_URL=postgresql://…`: the built `crbot` against a local exchange
//! and the test's throw-away PostgreSQL. A market order and its protective OCO are journaled in
//! PostgreSQL (and nowhere else), the read commands show them from there, and
//! `crbot journal migrate --to` copies an SQLite journal into an empty database, verified,
//! refusing one that is not empty. The URL's password is never printed.
#![allow(clippy::unwrap_used)]

mod pg_support;
mod support {
    pub mod cli;
}

use std::time::Duration;

use crbot::domain::{
    ClientOrderId, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderType, Side, Symbol,
};
use crbot::exchange::sim::SimConfig;
use crbot::journal::{Journal, Location, PgTarget, TradingStateCode, TradingStateRecord};
use pg_support::PgDatabase;

fn still_market() -> support::cli::CliExchange {
    support::cli::CliExchange::start(SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    })
}

fn pg_journal(db: &PgDatabase) -> Journal {
    Journal::open_at(
        &Location::Postgres(PgTarget::parse(&db.url()).unwrap()),
        Mode::Sim,
    )
    .unwrap()
}

#[test]
fn an_order_is_journaled_in_postgresql_and_the_read_commands_show_it_from_there() {
    let db = PgDatabase::new();
    let mut ex = still_market();
    ex.env.push(("DATABASE_URL", db.url()));
    let (code, out, err) = ex.run(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--stop-loss",
        "90000",
        "--take-profit",
        "110000",
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("FILLED"), "{out}");
    for text in [&out, &err] {
        assert!(!text.contains(db.cluster.password()), "{text}");
    }
    assert!(
        !ex.home().join("journal-sim.db").exists(),
        "nothing was journaled in an SQLite file"
    );

    let j = pg_journal(&db);
    let orders = j.recent_orders(10).unwrap();
    let purposes: Vec<OrderPurpose> = orders.iter().map(|o| o.purpose).collect();
    assert!(purposes.contains(&OrderPurpose::Entry), "{purposes:?}");
    assert!(purposes.contains(&OrderPurpose::StopLoss), "{purposes:?}");
    assert_eq!(j.fills().unwrap().len(), 1, "the entry's fill");
    assert!(!j.recent_risk_events(10).unwrap().is_empty());

    let shown = ex.json(&["orders"]);
    let text = shown.to_string();
    // `orders` lists the open ones: the protective legs journaled in PostgreSQL.
    let stop = orders
        .iter()
        .find(|o| o.purpose == OrderPurpose::StopLoss)
        .unwrap();
    assert!(text.contains(stop.client_order_id.as_str()), "{text}");
    let (code, out, err) = ex.run(&["positions"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("BTCUSDT"), "{out}");
}

fn order(cid: &str, created_ms: i64) -> Order {
    Order {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        order_id: Some(7),
        order_list_id: None,
        symbol: Symbol::new("BTCUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Market,
        price: None,
        stop_price: None,
        qty: "0.001".parse().unwrap(),
        executed_qty: "0.001".parse().unwrap(),
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Pending,
        purpose: OrderPurpose::Entry,
        created_ms,
        updated_ms: created_ms,
    }
}

#[test]
fn journal_migrate_copies_an_sqlite_journal_into_an_empty_database_and_refuses_a_full_one() {
    let ex = still_market();
    let sqlite = Journal::open(&ex.home().join("journal-sim.db"), Mode::Sim).unwrap();
    for i in 0..5 {
        sqlite.insert_order(&order(&format!("cr-{i}"), 100 - i)).unwrap();
    }
    let halt = TradingStateRecord {
        time_ms: 9,
        state: TradingStateCode::Halted,
        reason: "kill".into(),
        trigger: "CLI_KILL".into(),
        actor: "cli".into(),
    };
    let halt_id = sqlite.record_trading_state(&halt).unwrap();
    sqlite.set_meta("watchlist", "BTCUSDT").unwrap();
    let before = sqlite.recent_orders(10).unwrap();
    drop(sqlite);

    let db = PgDatabase::new();
    let out = ex.json(&["journal", "migrate", "--to", &db.url()]);
    let text = out.to_string();
    assert!(!text.contains(db.cluster.password()), "{text}");
    assert!(out["rows"].as_u64().unwrap() >= 8, "{text}");
    let tables = out["tables"].as_array().unwrap();
    let orders = tables.iter().find(|t| t["table"] == "orders").unwrap();
    assert_eq!(orders["rows"], 5);

    // The copy is the same journal: rows, order, ids, meta; new rows get new ids.
    let j = pg_journal(&db);
    assert_eq!(j.recent_orders(10).unwrap(), before);
    let latest = j.latest_trading_state().unwrap().unwrap();
    assert_eq!((latest.id, latest.record), (halt_id, halt.clone()));
    assert_eq!(j.get_meta("watchlist").unwrap().as_deref(), Some("BTCUSDT"));
    assert!(j.record_trading_state(&halt).unwrap() > halt_id);

    // A database that holds a journal already is refused, and left as it was.
    let (code, out, err) = ex.run(&["journal", "migrate", "--to", &db.url()]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("already holds a crbot journal"), "{err}");
    assert!(!err.contains(db.cluster.password()), "{err}");
    assert_eq!(db.psql("SELECT count(*) FROM trading_state"), "2");
}

#[test]
fn doctor_names_the_postgresql_store_and_its_connection_without_the_password() {
    let db = PgDatabase::new();
    let mut ex = still_market();
    ex.env.push(("DATABASE_URL", db.url()));
    let (_code, out, err) = ex.run(&["--json", "doctor"]);
    assert!(!out.contains(db.cluster.password()) && !err.contains(db.cluster.password()));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let text = v.to_string();
    assert!(text.contains("journal store"), "{text}");
    assert!(
        text.contains("PostgreSQL postgresql://crbot_test:***@127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("plain connection (allowed outside production)"),
        "{text}"
    );

    // A server that cannot be reached fails that item.
    let mut ex = still_market();
    let gone = db.url().replace(&format!(":{}/", db.cluster.port()), ":1/");
    ex.env.push(("DATABASE_URL", gone));
    let (code, out, _err) = ex.run(&["--json", "doctor"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot be opened"), "{out}");
}

/// A password in `--to` is visible to `ps`: without one in the URL, `PGPASSWORD` gives it, as
/// libpq does, and it is never printed.
#[test]
fn journal_migrate_takes_the_password_from_pgpassword_when_the_url_gives_none() {
    let ex = still_market();
    let sqlite = Journal::open(&ex.home().join("journal-sim.db"), Mode::Sim).unwrap();
    sqlite.insert_order(&order("cr-0", 100)).unwrap();
    drop(sqlite);
    let db = PgDatabase::new();
    let password = db.cluster.password().to_string();
    let bare = db.url().replace(&format!(":{password}@"), "@");
    assert!(!bare.contains(&password));
    let run = |pgpassword: Option<&str>| {
        let mut c = ex.crbot_in("sim");
        c.env_remove("PGPASSWORD");
        if let Some(p) = pgpassword {
            c.env("PGPASSWORD", p);
        }
        let out = c
            .args(["--json", "journal", "migrate", "--to", &bare])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(None);
    assert_ne!(code, Some(0), "no password, no login: {text}");
    let (code, text) = run(Some(&password));
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(&password), "{text}");
    assert_eq!(db.psql("SELECT count(*) FROM orders"), "1");
}
