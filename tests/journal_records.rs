//! What the journal stores comes back exactly: orders, fills, risk decisions, states, limits,
//! equity, events — on both stores, SQLite and PostgreSQL, by the same test functions (the
//! `both_stores!` list at the end runs each on each); plus SQLite's backup and CSV export.

mod pg_support;

use crbot::domain::{
    Asset, ClientOrderId, Fill, LocalOrderState, Mode, Money, Notional, Order, OrderPurpose, OrderStatus,
    OrderType, Qty, Side, Symbol, Ticket, TicketKind,
};
use crbot::journal::{
    AlertRecord, BalanceCheckpoint, CapitalFlowRecord, EventRecord, Journal, JournalError, LimitChangeRecord,
    Location, OrderUpdate, PgTarget, RiskEventRecord, TicketSource, TradingStateCode, TradingStateRecord,
};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn wait_until(cond: impl Fn() -> bool, timeout: Duration) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "condition not met within {timeout:?}");
        std::thread::yield_now();
    }
}

/// A fresh journal location on one store, kept alive (folder or database) while a test runs.
enum StoreUnderTest {
    Sqlite(tempfile::TempDir),
    Postgres(pg_support::PgDatabase),
}

impl StoreUnderTest {
    fn sqlite() -> Self {
        StoreUnderTest::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    fn postgres() -> Self {
        StoreUnderTest::Postgres(pg_support::PgDatabase::new())
    }

    fn location(&self) -> Location {
        match self {
            StoreUnderTest::Sqlite(dir) => Location::Sqlite(dir.path().join("j.db")),
            StoreUnderTest::Postgres(db) => Location::Postgres(PgTarget::parse(&db.url()).expect("url")),
        }
    }

    fn open(&self) -> Journal {
        Journal::open_at(&self.location(), Mode::Sim).expect("open")
    }
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

fn order(cid: &str, created_ms: i64) -> Order {
    Order {
        client_order_id: ClientOrderId::new(cid).expect("cid"),
        order_id: None,
        order_list_id: None,
        symbol: sym("BTCUSDT"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some("60000.01".parse().expect("price")),
        stop_price: None,
        qty: "0.00012345".parse().expect("qty"),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Pending,
        purpose: OrderPurpose::Entry,
        created_ms,
        updated_ms: created_ms,
    }
}

fn fill(symbol: &str, trade_id: u64, price: &str, qty: &str) -> Fill {
    Fill {
        symbol: sym(symbol),
        trade_id,
        order_id: 77,
        client_order_id: Some(ClientOrderId::new("cr-a").expect("cid")),
        side: Side::Buy,
        price: price.parse().expect("price"),
        qty: qty.parse().expect("qty"),
        commission: "0.00000012".parse().expect("commission"),
        commission_asset: Asset::new("BNB").expect("asset"),
        time_ms: 1_700_000_000_000 + trade_id as i64,
        is_maker: trade_id.is_multiple_of(2),
    }
}

fn ticket() -> Ticket {
    Ticket {
        symbol: sym("ETHUSDT"),
        side: Side::Buy,
        kind: TicketKind::Limit {
            price: "3000.5".parse().expect("price"),
        },
        qty: "0.2".parse().expect("qty"),
        stop_loss: Some("2900".parse().expect("sl")),
        take_profit: Some("3300".parse().expect("tp")),
    }
}

fn an_order_round_trips_exactly_and_updates_keep_the_exchange_id(store: &StoreUnderTest) {
    let j = store.open();
    let mut o = order("cr-a", 10);
    o.stop_price = Some("59000.123456789".parse().expect("stop"));
    o.order_list_id = Some(-1);
    j.insert_order(&o).expect("insert");
    assert_eq!(j.order(&o.client_order_id).expect("read"), Some(o.clone()));

    let upd = OrderUpdate {
        state: LocalOrderState::Exchange(OrderStatus::PartiallyFilled),
        order_id: Some(123_456_789_012),
        order_list_id: None,
        executed_qty: "0.0001".parse().expect("qty"),
        cumulative_quote_qty: "6.000001".parse().expect("notional"),
        updated_ms: 20,
        last_error: None,
    };
    j.update_order(&o.client_order_id, &upd).expect("update");
    let later = OrderUpdate {
        state: LocalOrderState::Exchange(OrderStatus::Filled),
        order_id: None,
        ..upd.clone()
    };
    j.update_order(&o.client_order_id, &later).expect("update 2");
    let got = j.order(&o.client_order_id).expect("read").expect("some");
    assert_eq!(got.order_id, Some(123_456_789_012), "None keeps the stored id");
    assert_eq!(got.order_list_id, Some(-1));
    assert_eq!(got.executed_qty.to_string(), "0.0001");
    assert_eq!(got.cumulative_quote_qty.to_string(), "6.000001");
    assert_eq!(got.state, LocalOrderState::Exchange(OrderStatus::Filled));
    assert_eq!(got.updated_ms, 20);
}

fn a_second_order_with_the_same_client_id_is_refused(store: &StoreUnderTest) {
    let j = store.open();
    j.insert_order(&order("cr-a", 1)).expect("insert");
    assert!(matches!(
        j.insert_order(&order("cr-a", 2)),
        Err(JournalError::DuplicateOrder(id)) if id == "cr-a"
    ));
}

fn updating_an_unknown_order_is_an_error(store: &StoreUnderTest) {
    let j = store.open();
    let upd = OrderUpdate {
        state: LocalOrderState::Unknown,
        order_id: None,
        order_list_id: None,
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        updated_ms: 1,
        last_error: Some("timeout".into()),
    };
    let cid = ClientOrderId::new("nope").expect("cid");
    assert!(matches!(
        j.update_order(&cid, &upd),
        Err(JournalError::UnknownOrder(_))
    ));
}

fn last_error_is_stored_with_the_order(store: &StoreUnderTest) {
    let j = store.open();
    let o = order("cr-a", 1);
    j.insert_order(&o).expect("insert");
    assert_eq!(j.order_last_error(&o.client_order_id).expect("read"), None);
    let upd = OrderUpdate {
        state: LocalOrderState::Unknown,
        order_id: None,
        order_list_id: None,
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        updated_ms: 2,
        last_error: Some("HTTP 503, outcome unknown".into()),
    };
    j.update_order(&o.client_order_id, &upd).expect("update");
    assert_eq!(
        j.order_last_error(&o.client_order_id).expect("read").as_deref(),
        Some("HTTP 503, outcome unknown")
    );
}

fn open_orders_are_the_locally_unfinished_ones_oldest_first(store: &StoreUnderTest) {
    let j = store.open();
    let states = [
        ("o1", LocalOrderState::Pending),
        ("o2", LocalOrderState::Exchange(OrderStatus::Filled)),
        ("o3", LocalOrderState::Unknown),
        ("o4", LocalOrderState::NotSent),
        ("o5", LocalOrderState::Exchange(OrderStatus::New)),
        ("o6", LocalOrderState::Exchange(OrderStatus::Canceled)),
        ("o7", LocalOrderState::Sending),
        ("o8", LocalOrderState::Exchange(OrderStatus::ExpiredInMatch)),
    ];
    for (i, (cid, state)) in states.iter().enumerate() {
        let mut o = order(cid, i as i64);
        o.state = *state;
        j.insert_order(&o).expect("insert");
    }
    let open: Vec<String> = j
        .open_orders()
        .expect("open")
        .into_iter()
        .map(|o| o.client_order_id.to_string())
        .collect();
    assert_eq!(open, ["o1", "o3", "o5", "o7"]);
    let recent: Vec<String> = j
        .recent_orders(3)
        .expect("recent")
        .into_iter()
        .map(|o| o.client_order_id.to_string())
        .collect();
    assert_eq!(recent, ["o8", "o7", "o6"]);
}

fn a_duplicate_fill_is_ignored_and_reported_as_such(store: &StoreUnderTest) {
    let j = store.open();
    let f = fill("BTCUSDT", 5, "60000", "0.001");
    assert!(j.insert_fill(&f).expect("first"));
    assert!(!j.insert_fill(&f).expect("second"));
    // The same trade id on another symbol is another trade.
    assert!(
        j.insert_fill(&fill("ETHUSDT", 5, "3000", "0.1"))
            .expect("other symbol")
    );
    assert_eq!(j.fills().expect("fills").len(), 2);
    assert_eq!(j.fills_for(&sym("BTCUSDT")).expect("fills"), vec![f]);
}

fn both_sides_of_a_self_trade_are_two_fills(store: &StoreUnderTest) {
    let j = store.open();
    // The account traded with itself: one trade id, a buyer's and a seller's order.
    let buy = fill("BTCUSDT", 9, "60000", "0.001");
    let mut sell = buy.clone();
    sell.order_id = buy.order_id + 1;
    sell.side = Side::Sell;
    sell.client_order_id = None;
    assert!(j.insert_fill(&buy).expect("buyer"));
    assert!(
        j.insert_fill(&sell).expect("seller"),
        "the seller's side was dropped"
    );
    assert!(
        !j.insert_fill(&sell).expect("again"),
        "a side reported twice counts once"
    );
    let mut fills = j.fills_for(&sym("BTCUSDT")).expect("fills");
    fills.sort_by_key(|f| f.order_id);
    assert_eq!(fills, vec![buy, sell]);
}

fn fills_since_a_time_are_those_at_or_after_it_in_time_order(store: &StoreUnderTest) {
    let j = store.open();
    let at = |id: u64, time_ms: i64| {
        let mut f = fill("BTCUSDT", id, "60000", "0.001");
        f.time_ms = time_ms;
        j.insert_fill(&f).expect("insert");
    };
    at(1, 3_000);
    at(2, 1_000);
    at(3, 2_000);
    let ids = |since| -> Vec<u64> {
        j.fills_since(since)
            .expect("fills")
            .iter()
            .map(|f| f.trade_id)
            .collect()
    };
    assert_eq!(ids(2_000), [3, 1]);
    assert_eq!(ids(0), [2, 3, 1]);
    assert!(ids(3_001).is_empty());
}

fn decimals_round_trip_exactly_through_the_journal(store: &StoreUnderTest) {
    let j = store.open();
    let cases = [
        ("0.00000001", "12345678.87654321"),
        ("79228162514264.337593543950335", "0.1"),
        ("1", "0.000000000000000000000000001"),
        ("0.30000000000000004", "3.3333333333333333333333333333"),
    ];
    for (i, (price, qty)) in cases.iter().enumerate() {
        let f = fill("BTCUSDT", i as u64 + 1, price, qty);
        j.insert_fill(&f).expect("insert");
    }
    let got = j.fills().expect("fills");
    for ((price, qty), f) in cases.iter().zip(&got) {
        assert_eq!(f.price.to_string(), *price);
        assert_eq!(f.qty.to_string(), *qty);
        assert_eq!(f.commission.to_string(), "0.00000012");
    }
    let eq = Money::new(
        "-1234.567890123456789".parse::<Decimal>().expect("dec"),
        Asset::usdt(),
    );
    j.record_equity(5, &eq).expect("equity");
    assert_eq!(j.equity_curve(0).expect("curve")[0].equity, eq);
}

#[test]
fn stored_decimals_are_text_never_real() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let j = Journal::open(&path, Mode::Sim).expect("open");
    j.insert_order(&order("cr-a", 1)).expect("order");
    j.insert_fill(&fill("BTCUSDT", 1, "0.1", "0.2")).expect("fill");
    j.record_equity(1, &Money::new(Decimal::new(1, 1), Asset::usdt()))
        .expect("equity");
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let types: (String, String, String, String) = raw
        .query_row(
            "SELECT typeof(o.price), typeof(o.qty), typeof(t.price), typeof(e.equity) \
             FROM orders o, trades t, equity_curve e",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("typeof");
    assert_eq!(
        types,
        ("text".into(), "text".into(), "text".into(), "text".into())
    );
}

fn last_trade_id_is_the_highest_per_symbol(store: &StoreUnderTest) {
    let j = store.open();
    assert_eq!(j.last_trade_id(&sym("BTCUSDT")).expect("none"), None);
    for id in [7, 3, 11] {
        j.insert_fill(&fill("BTCUSDT", id, "1", "1")).expect("fill");
    }
    j.insert_fill(&fill("ETHUSDT", 99, "1", "1")).expect("fill");
    assert_eq!(j.last_trade_id(&sym("BTCUSDT")).expect("max"), Some(11));
}

fn risk_decisions_are_recorded_with_codes_and_reasons(store: &StoreUnderTest) {
    let j = store.open();
    let denied = RiskEventRecord {
        time_ms: 42,
        source: TicketSource::Cli,
        ticket: ticket(),
        approved: false,
        codes: vec!["POSITION_SIZE".into(), "TRADES_PER_DAY".into()],
        reason: "POSITION_SIZE: notional 612.50 USDT is 6.13% of equity 10000.00 USDT; limit 5.00%".into(),
    };
    let approved = RiskEventRecord {
        time_ms: 43,
        source: TicketSource::Tui,
        approved: true,
        codes: vec![],
        reason: "approved".into(),
        ..denied.clone()
    };
    j.record_risk_event(&denied).expect("denied");
    j.record_risk_event(&approved).expect("approved");
    let got = j.recent_risk_events(10).expect("read");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].record, approved);
    assert_eq!(got[1].record, denied);
}

fn latest_trading_state_is_the_newest_and_limit_changes_do_not_replace_it(store: &StoreUnderTest) {
    let j = store.open();
    assert!(j.latest_trading_state().expect("read").is_none());
    let halt = TradingStateRecord {
        time_ms: 1,
        state: TradingStateCode::Halted,
        reason: "kill key".into(),
        trigger: "KILL_KEY".into(),
        actor: "tui".into(),
    };
    let id = j.record_trading_state(&halt).expect("halt");
    let change = LimitChangeRecord {
        time_ms: 2,
        limit: "MAX_DAILY_LOSS_PERCENT".into(),
        old_value: "5".into(),
        new_value: "7.5".into(),
        confirmed: true,
        actor: "tui".into(),
        reason: "loosened after typed confirmation".into(),
    };
    let change_id = j.record_limit_change(&change).expect("limit");
    assert!(change_id > id);
    assert_eq!(j.latest_trading_state_id().expect("poll"), change_id);
    let latest = j.latest_trading_state().expect("read").expect("some");
    assert_eq!((latest.id, latest.record), (id, halt));
    assert_eq!(j.limit_changes().expect("limits")[0].record, change);
}

fn events_come_back_newest_first(store: &StoreUnderTest) {
    let j = store.open();
    for (i, kind) in ["KILL_CANCEL", "RECONNECT", "ERROR"].iter().enumerate() {
        j.record_event(&EventRecord {
            time_ms: i as i64,
            kind: kind.to_string(),
            symbol: (i == 0).then(|| sym("BTCUSDT")),
            detail: format!("detail {i}"),
        })
        .expect("event");
    }
    let got = j.recent_events(2).expect("events");
    let kinds: Vec<&str> = got.iter().map(|e| e.record.kind.as_str()).collect();
    assert_eq!(kinds, ["ERROR", "RECONNECT"]);
    assert_eq!(
        j.recent_events(5).expect("events")[2].record.symbol,
        Some(sym("BTCUSDT"))
    );
}

fn equity_curve_returns_samples_since_a_time_in_order(store: &StoreUnderTest) {
    let j = store.open();
    for t in [30, 10, 20] {
        j.record_equity(t, &Money::new(Decimal::new(t, 0), Asset::usdt()))
            .expect("equity");
    }
    let times: Vec<i64> = j
        .equity_curve(15)
        .expect("curve")
        .iter()
        .map(|p| p.time_ms)
        .collect();
    assert_eq!(times, [20, 30]);
}

#[test]
fn backup_while_another_connection_writes_is_a_valid_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let j = Journal::open(&path, Mode::Sim).expect("open");
    for i in 0..50 {
        j.insert_order(&order(&format!("pre-{i}"), i)).expect("order");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let writer = {
        let (path, stop, count) = (path.clone(), stop.clone(), count.clone());
        std::thread::spawn(move || {
            let w = Journal::open(&path, Mode::Sim).expect("writer open");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                w.insert_fill(&fill("BTCUSDT", n + 1, "1.5", "2")).expect("fill");
                n += 1;
                count.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    // Back up only once the writer is busy, so the copies are taken mid-stream.
    wait_until(|| count.load(Ordering::Relaxed) >= 20, Duration::from_secs(30));
    let backups: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("backup-{i}.db")))
        .collect();
    for b in &backups {
        j.backup_to(b).expect("backup");
    }
    let at_last_backup = count.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert!(written >= at_last_backup);
    for b in &backups {
        let copy = Journal::open(b, Mode::Sim).expect("a backup is a journal of the same mode");
        assert!(copy.integrity_check().expect("check"));
        assert_eq!(copy.recent_orders(100).expect("orders").len(), 50);
        // Every fill in the copy is a complete, parseable record.
        let fills = copy.fills().expect("fills").len() as u64;
        assert!(
            (20..=written).contains(&fills),
            "{fills} fills in a copy, {written} written"
        );
    }
    assert!(
        matches!(j.backup_to(&backups[0]), Err(JournalError::File { .. })),
        "an existing file is never overwritten"
    );
}

fn export_writes_the_csv_files_with_headers_and_quoting(store: &StoreUnderTest) {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = store.open();
    j.insert_order(&order("cr-a", 1)).expect("order");
    let upd = OrderUpdate {
        state: LocalOrderState::Exchange(OrderStatus::Rejected),
        order_id: Some(9),
        order_list_id: None,
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        updated_ms: 2,
        last_error: Some("-2010 \"Account has insufficient balance\", retry later".into()),
    };
    j.update_order(&ClientOrderId::new("cr-a").expect("cid"), &upd)
        .expect("update");
    j.insert_fill(&fill("BTCUSDT", 1, "60000.5", "0.001"))
        .expect("fill");
    j.record_risk_event(&RiskEventRecord {
        time_ms: 3,
        source: TicketSource::Tui,
        ticket: ticket(),
        approved: false,
        codes: vec!["RISK_REWARD".into()],
        reason: "RISK_REWARD: reward/risk 0.5 < 1".into(),
    })
    .expect("risk");
    j.record_equity(4, &Money::new(Decimal::new(1000050, 2), Asset::usdt()))
        .expect("equity");

    let out = dir.path().join("export");
    let files = j.export_csv(&out).expect("export");
    // orders, risk events, equity curve, trades, positions, daily fees, capital flows.
    assert_eq!(files.len(), 7);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect("read csv");

    let orders = read("orders.csv");
    let mut lines = orders.lines();
    assert_eq!(
        lines.next(),
        Some(
            "client_order_id,order_id,order_list_id,symbol,side,type,price,stop_price,qty,executed_qty,\
             cum_quote_qty,state,purpose,created_ms,updated_ms,last_error"
        )
    );
    assert_eq!(
        lines.next(),
        Some(
            "cr-a,9,,BTCUSDT,BUY,LIMIT,60000.01,,0.00012345,0,0,REJECTED,ENTRY,1,2,\
             \"-2010 \"\"Account has insufficient balance\"\", retry later\""
        )
    );
    let trades = read("trades.csv");
    assert!(trades.starts_with("symbol,trade_id,order_id,client_order_id,side,price,qty,commission,"));
    assert!(
        trades.contains("BTCUSDT,1,77,cr-a,BUY,60000.5,0.001,0.00000012,BNB,1700000000001,0"),
        "{trades}"
    );
    let risk = read("risk_events.csv");
    assert!(risk.starts_with("time_ms,source,symbol,side,ticket,approved,codes,reason\n"));
    assert!(
        risk.contains("3,tui,ETHUSDT,BUY,\"{\"\"symbol\"\":\"\"ETHUSDT\"\""),
        "{risk}"
    );
    assert_eq!(
        read("equity_curve.csv"),
        "time_ms,equity,asset,held_marks\n4,10000.5,USDT,\n"
    );
}

fn flows_marks_checkpoints_alerts_and_meta_round_trip(store: &StoreUnderTest) {
    let j = store.open();
    let usdt = Asset::usdt();
    let btc = Asset::new("BTC").expect("asset");
    let flow = CapitalFlowRecord {
        time_ms: 10,
        asset: btc.clone(),
        delta: "-0.000000015".parse().expect("dec"),
        value_usdt: None,
        source: "STREAM".into(),
    };
    let row = j.record_capital_flow(&flow).expect("flow");
    assert_eq!(j.capital_flows(0).expect("flows")[0].record, flow);
    assert_eq!(j.last_flow_row().expect("row"), row);
    assert!(j.capital_flows_after_row(row).expect("after").is_empty());
    j.record_marks(&[(btc.clone(), "60000.5".parse().expect("p"), 20)])
        .expect("mark");
    j.record_marks(&[(btc.clone(), "1".parse().expect("p"), 19)])
        .expect("an older mark");
    assert_eq!(j.marks().expect("marks")[0].1.to_string(), "60000.5");
    let checkpoint = BalanceCheckpoint {
        exchange_time_ms: 30,
        flow_row: row,
        totals: [(usdt.clone(), Decimal::new(123_456, 3))].into_iter().collect(),
    };
    j.set_balance_checkpoint(&checkpoint).expect("checkpoint");
    assert_eq!(j.balance_checkpoint().expect("read"), Some(checkpoint));
    assert!(matches!(
        j.set_meta("mode", "live"),
        Err(JournalError::Invalid(_))
    ));
    j.record_equity_sample(40, &Money::new(Decimal::new(-5, 1), usdt), &[(btc, 7)])
        .expect("sample");
    assert_eq!(j.equity_curve(0).expect("curve")[0].time_ms, 40);
    let alert = AlertRecord {
        time_ms: 1,
        kind: "HALTED".into(),
        severity: "critical".into(),
        message: "halted".into(),
        status: "FAILED".into(),
        attempts: 5,
        last_error: Some("HTTP 500".into()),
        done_ms: 2,
    };
    j.record_alert(&alert).expect("alert");
    assert_eq!(j.recent_alerts(5).expect("alerts")[0].record, alert);
    j.record_metric(1, "latency_ms", "12.5").expect("metric");
}

/// Runs each listed test function once per store, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&super::StoreUnderTest::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(&super::StoreUnderTest::postgres());
            })*
        }
    };
}

both_stores!(
    an_order_round_trips_exactly_and_updates_keep_the_exchange_id,
    a_second_order_with_the_same_client_id_is_refused,
    updating_an_unknown_order_is_an_error,
    last_error_is_stored_with_the_order,
    open_orders_are_the_locally_unfinished_ones_oldest_first,
    a_duplicate_fill_is_ignored_and_reported_as_such,
    both_sides_of_a_self_trade_are_two_fills,
    fills_since_a_time_are_those_at_or_after_it_in_time_order,
    decimals_round_trip_exactly_through_the_journal,
    last_trade_id_is_the_highest_per_symbol,
    risk_decisions_are_recorded_with_codes_and_reasons,
    latest_trading_state_is_the_newest_and_limit_changes_do_not_replace_it,
    events_come_back_newest_first,
    equity_curve_returns_samples_since_a_time_in_order,
    flows_marks_checkpoints_alerts_and_meta_round_trip,
    export_writes_the_csv_files_with_headers_and_quoting,
);
