//! Fee accounting through the journal-first path: each fill's commission is booked per asset,
//! per position and per UTC day with its quote value, a BNB commission is valued at the price
//! of its fill time (journaled with the fill, so a restart books the same number), and one with
//! no price at fill time stays unpriced instead of being valued at a later price.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fees_support;
#[path = "store_support/mod.rs"]
mod store_support;

use chrono::NaiveDate;
use fees_support::*;
use store_support::{Home, Store};

fn fees_are_booked_per_asset_per_position_and_per_day_with_their_quote_value(store: Store) {
    let home = Home::new(store);
    let core = script(&home.location());
    let pos = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(pos.realized_pnl().amount(), d("-0.33"));
    let fees = pos.fees();
    assert_eq!(fees.paid.get(&asset("USDT")), Some(&d("0.1")));
    assert_eq!(fees.paid.get(&asset("BTC")), Some(&d("0.001")));
    assert_eq!(fees.paid.get(&asset("BNB")), Some(&d("0.0005")));
    assert_eq!(fees.value.get(&asset("USDT")), Some(&d("0.33")));
    assert_eq!(fees.unpriced.get(&asset("BNB")), Some(&d("0.0003")));
    assert!(!fees.complete());

    let days = core.state.positions.fees_by_day();
    let day1 = days.get(&NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()).unwrap();
    let day2 = days.get(&NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()).unwrap();
    assert_eq!(day1.value.get(&asset("USDT")), Some(&d("0.33")));
    assert!(day1.complete());
    assert_eq!(day2.value.get(&asset("USDT")), None);
    assert_eq!(day2.unpriced.get(&asset("BNB")), Some(&d("0.0003")));
}

fn a_bnb_fee_keeps_the_price_of_its_fill_time_across_a_restart(store: Store) {
    let home = Home::new(store);
    let before = {
        let core = script(&home.location());
        core.state.positions.get(&sym("BTCUSDT")).unwrap().clone()
    };
    // At the restart BNB trades at 700: the fill journaled at 600 must still count 0.12.
    let journal = home.open(crbot::domain::Mode::Sim);
    let mut core = crbot::engine::core::Core::restore(
        journal,
        crbot::domain::Mode::Sim,
        Default::default(),
        crbot::journal::TicketSource::Tui,
        T0 + 2 * DAY_MS,
    )
    .unwrap();
    bnb_quote(&mut core, "700", T0 + 2 * DAY_MS);
    core.state
        .rules
        .insert(sym("BTCUSDT"), rules("BTCUSDT", "BTC", "USDT"));
    core.replay_fills();
    let after = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(after.realized_pnl().amount(), d("-0.33"));
    assert_eq!(after.fees().value.get(&asset("USDT")), Some(&d("0.33")));
    assert_eq!(after, &before);
}

fn a_bnb_fee_with_no_price_at_fill_time_stays_unpriced_when_a_price_arrives_later(store: Store) {
    let home = Home::new(store);
    let path = home.location();
    let journal = home.open(crbot::domain::Mode::Sim);
    journal
        .insert_order(&order(
            "cr-entry-1",
            11,
            None,
            crbot::domain::Side::Buy,
            crbot::domain::OrderPurpose::Entry,
            T0,
        ))
        .unwrap();
    drop(journal);
    let mut core = core_at(&path, T0);
    // A BNB quote a minute older than the fill is not the price at fill time.
    bnb_quote(&mut core, "600", T0 - 60_000);
    let f = fill(
        1,
        11,
        "cr-entry-1",
        crbot::domain::Side::Buy,
        "1",
        "100",
        "0.0005",
        "BNB",
        T0,
    );
    assert!(core.on_fill(&f, T0));
    let pos = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(pos.cost_basis().amount(), d("100"));
    assert_eq!(pos.fees().unpriced.get(&asset("BNB")), Some(&d("0.0005")));
    assert!(!pos.pnl_complete());
    drop(core);

    let mut core = core_at(&path, T0 + 10_000);
    bnb_quote(&mut core, "650", T0 + 10_000);
    core.replay_fills();
    let pos = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(
        pos.cost_basis().amount(),
        d("100"),
        "never valued at the later price"
    );
    assert!(!pos.pnl_complete());
}

fn entry_journaled(home: &Home) {
    let journal = home.open(crbot::domain::Mode::Sim);
    journal
        .insert_order(&order(
            "cr-entry-1",
            11,
            None,
            crbot::domain::Side::Buy,
            crbot::domain::OrderPurpose::Entry,
            T0,
        ))
        .unwrap();
}

fn a_bnb_fee_learned_after_bnb_moved_keeps_the_mid_of_its_fill_time(store: Store) {
    let home = Home::new(store);
    entry_journaled(&home);
    let mut core = core_at(&home.location(), T0);
    bnb_quote(&mut core, "600", T0 - 1_000);
    // BNB moves half a second after the fill, before crbot hears of the fill (a resting order
    // found filled by a reconciliation): the fee is worth what BNB was worth at the fill.
    bnb_quote(&mut core, "650", T0 + 500);
    let f = fill(
        1,
        11,
        "cr-entry-1",
        crbot::domain::Side::Buy,
        "1",
        "100",
        "0.0005",
        "BNB",
        T0,
    );
    assert!(core.on_fill(&f, T0 + 600));
    let pos = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(pos.fees().value.get(&asset("USDT")), Some(&d("0.3")));
    assert_eq!(pos.cost_basis().amount(), d("100.3"));
    // And the journal keeps that price for a restart.
    let priced = core.journal.fills_priced().unwrap();
    assert_eq!(priced[0].1, Some("600".parse().unwrap()));
}

fn both_sides_of_a_self_trade_are_booked_when_the_other_side_arrives_first(store: Store) {
    let home = Home::new(store);
    entry_journaled(&home);
    let mut core = core_at(&home.location(), T0);
    // Someone else on the account sold into crbot's resting buy with self-trade prevention
    // NONE: one trade id, the seller's fill (not crbot's) heard first.
    let mut theirs = fill(
        1,
        12,
        "x",
        crbot::domain::Side::Sell,
        "1",
        "100",
        "0.1",
        "USDT",
        T0,
    );
    theirs.client_order_id = None;
    assert!(core.on_fill(&theirs, T0));
    let ours = fill(
        1,
        11,
        "cr-entry-1",
        crbot::domain::Side::Buy,
        "1",
        "100",
        "0.001",
        "BTC",
        T0,
    );
    assert!(core.on_fill(&ours, T0), "crbot's side of the trade was dropped");
    let pos = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(pos.qty().value(), d("0.999"));
    assert_eq!(core.journal.fills().unwrap().len(), 2);
    // Reported again (a resync), neither side counts twice.
    assert!(!core.on_fill(&ours, T0));
    assert!(!core.on_fill(&theirs, T0));
    drop(core);
    let mut core = core_at(&home.location(), T0 + 1_000);
    core.replay_fills();
    let pos = core.state.positions.get(&sym("BTCUSDT")).unwrap();
    assert_eq!(pos.qty().value(), d("0.999"), "after a restart");
}

fn a_fill_without_client_id_of_an_order_gone_from_memory_is_still_crbots(store: Store) {
    let home = Home::new(store);
    entry_journaled(&home);
    let mut core = core_at(&home.location(), T0);
    // A long run keeps only the newest finished orders in memory: this one has left it.
    let cid = crbot::domain::ClientOrderId::new("cr-entry-1").unwrap();
    assert!(core.state.orders.remove(&cid).is_some());
    // myTrades reports its fill late, with the exchange's order id only.
    let mut f = fill(
        1,
        11,
        "x",
        crbot::domain::Side::Buy,
        "1",
        "100",
        "0.1",
        "USDT",
        T0,
    );
    f.client_order_id = None;
    assert!(core.on_fill(&f, T0));
    let pos = core.state.positions.get(&sym("BTCUSDT"));
    assert_eq!(
        pos.map(|p| p.qty().value()),
        Some(d("1")),
        "booked as someone else's"
    );
    assert!(
        core.state.orders.contains_key(&cid),
        "the order is back in memory"
    );
}

fn screen_text(snap: &crbot::engine::snapshot::Snapshot) -> String {
    use crbot::ui::{App, UiConfig, view};
    let app = App::new(UiConfig::default(), snap);
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(220, 48)).unwrap();
    t.draw(|f| view(&app, snap, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            text.push_str(buf[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

/// A journal of 30 fills on two symbols (four to a millisecond, so pages split ties), one of
/// them an order placed by hand (not crbot's), one journaled without its client order id, some
/// with a BNB fee priced at fill time.
fn journal_of_two_symbols(home: &Home) {
    use crbot::domain::{OrderPurpose, Side};
    let journal = home.open(crbot::domain::Mode::Sim);
    for i in 0..30u64 {
        let symbol = if i % 2 == 0 { "BTCUSDT" } else { "ETHUSDT" };
        let side = if i % 3 == 2 { Side::Sell } else { Side::Buy };
        let purpose = match (i, side) {
            (7, _) => OrderPurpose::External,
            (_, Side::Buy) => OrderPurpose::Entry,
            (_, Side::Sell) => OrderPurpose::Flatten,
        };
        let at = T0 + (i as i64 / 4) * 1_000;
        let cid = format!("cr-{i}");
        let mut o = order(&cid, 100 + i, None, side, purpose, at);
        o.symbol = sym(symbol);
        journal.insert_order(&o).unwrap();
        let (fee, fee_asset, fee_price) = if i % 5 == 0 {
            ("0.0002", "BNB", Some("600".parse().unwrap()))
        } else {
            ("0.01", "USDT", None)
        };
        let price = (100 + i).to_string();
        let mut f = fill(i + 1, 100 + i, &cid, side, "0.1", &price, fee, fee_asset, at);
        f.symbol = sym(symbol);
        if i == 5 {
            f.client_order_id = None;
        }
        assert!(journal.insert_fill_priced(&f, fee_price).unwrap());
    }
}

/// The positions a restart rebuilds reading `page` fills at a time: with BTCUSDT's rules
/// first, then with ETHUSDT's as well (rules that arrive later).
fn positions_replayed(
    home: &Home,
    page: usize,
) -> (crbot::portfolio::Positions, crbot::portfolio::Positions) {
    let journal = home.open(crbot::domain::Mode::Sim);
    let mut core = crbot::engine::core::Core::restore(
        journal,
        crbot::domain::Mode::Sim,
        Default::default(),
        crbot::journal::TicketSource::Tui,
        T0 + DAY_MS,
    )
    .unwrap();
    core.state
        .rules
        .insert(sym("BTCUSDT"), rules("BTCUSDT", "BTC", "USDT"));
    core.replay_fills_in_pages(page);
    let first = core.state.positions.clone();
    core.state
        .rules
        .insert(sym("ETHUSDT"), rules("ETHUSDT", "ETH", "USDT"));
    core.replay_fills_in_pages(page);
    // Rules read again later (a refresh) book nothing twice.
    core.replay_fills_in_pages(page);
    assert!(
        core.state.storage_error.is_none(),
        "{:?}",
        core.state.storage_error
    );
    (first, core.state.positions.clone())
}

fn a_restart_replaying_the_fills_in_pages_books_what_one_page_books(store: Store) {
    let home = Home::new(store);
    journal_of_two_symbols(&home);
    let (btc_first, whole) = positions_replayed(&home, crbot::engine::core::REPLAY_PAGE);
    // What the one-page replay booked is the script's: 15 fills a symbol, every third a sell,
    // one of ETHUSDT's (#7) by hand and so not crbot's; #5, without its client order id, is.
    assert!(
        btc_first.get(&sym("ETHUSDT")).is_none(),
        "no rules, not booked yet"
    );
    let btc = whole.get(&sym("BTCUSDT")).unwrap();
    let eth = whole.get(&sym("ETHUSDT")).unwrap();
    assert_eq!(btc_first.get(&sym("BTCUSDT")), Some(btc));
    assert_eq!(btc.qty().value(), d("0.5"), "10 buys, 5 sells of 0.1");
    assert_eq!(eth.qty().value(), d("0.4"), "9 buys (#7 not crbot's), 5 sells");
    assert!(!btc.realized_pnl().amount().is_zero());
    assert!(!eth.realized_pnl().amount().is_zero());
    assert_eq!(
        btc.fees().paid.get(&asset("BNB")),
        Some(&d("0.0006")),
        "#0, #10, #20"
    );
    for page in [1, 2, 3, 7, 29] {
        let (first, all) = positions_replayed(&home, page);
        assert_eq!(first, btc_first, "BTCUSDT first, {page} fills a page");
        assert_eq!(all, whole, "both symbols, {page} fills a page");
    }
}

fn fills_journaled_after_the_restart_are_not_replayed_again(store: Store) {
    let home = Home::new(store);
    journal_of_two_symbols(&home);
    let journal = home.open(crbot::domain::Mode::Sim);
    let mut core = crbot::engine::core::Core::restore(
        journal,
        crbot::domain::Mode::Sim,
        Default::default(),
        crbot::journal::TicketSource::Tui,
        T0 + DAY_MS,
    )
    .unwrap();
    core.state
        .rules
        .insert(sym("BTCUSDT"), rules("BTCUSDT", "BTC", "USDT"));
    core.replay_fills_in_pages(4);
    // ETHUSDT's rules become known and a new fill of one of crbot's orders there (one the
    // restart read back) is booked as it comes, before the replay reaches ETHUSDT: it counts
    // once (the replay stops at the newest fill journaled at the restart, and the positions
    // ignore a trade booked twice).
    core.state
        .rules
        .insert(sym("ETHUSDT"), rules("ETHUSDT", "ETH", "USDT"));
    let mut late = fill(
        900,
        101,
        "cr-1",
        crbot::domain::Side::Buy,
        "1",
        "100",
        "0.1",
        "USDT",
        T0,
    );
    late.symbol = sym("ETHUSDT");
    assert!(core.on_fill(&late, T0 + DAY_MS));
    assert_eq!(
        core.state.positions.get(&sym("ETHUSDT")).unwrap().qty().value(),
        d("1")
    );
    core.replay_fills_in_pages(4);
    assert_eq!(
        core.state.positions.get(&sym("ETHUSDT")).unwrap().qty().value(),
        d("1.4"),
        "the new fill once, and the journal's 0.4"
    );
    assert_eq!(
        core.state.positions.get(&sym("BTCUSDT")).unwrap().qty().value(),
        d("0.5")
    );
}

#[test]
fn the_screen_shows_todays_fees_at_their_fill_time_value_and_says_what_is_unpriced() {
    let dir = tempfile::tempdir().unwrap();
    let core = script(&dir.path().join("j.sqlite"));
    let day1 = screen_text(&core.state.snapshot(T0 + 3_000));
    assert!(day1.contains("fees today 0.33 USDT"), "{day1}");
    let day_line = day1.lines().find(|l| l.contains("fees today")).unwrap();
    assert!(!day_line.contains("unpriced"), "{day_line}");
    // The log lines carry each fill's fee: in its asset, and its value at the fill.
    assert!(
        day1.contains("fill BTCUSDT SELL 1 @ 120, fee 0.00020000 BNB (0.12 USDT)"),
        "{day1}"
    );
    assert!(day1.contains("fee 0.00030000 BNB (unpriced)"), "{day1}");
    let day2 = screen_text(&core.state.snapshot(T0 + DAY_MS + 3_000));
    assert!(day2.contains("fees today 0 +0.00030000 BNB unpriced"), "{day2}");
}

/// A journal longer than the restore keeps in memory: crbot's entry (1 BTC bought), then 5 050
/// newer finished orders (written in one statement, as a long run would have left them).
#[test]
fn a_restart_books_the_fills_of_crbots_orders_older_than_those_kept_in_memory() {
    use crbot::domain::{OrderPurpose, Side};
    use crbot::engine::state::FINISHED_ORDERS_KEPT;
    let home = Home::new(Store::Sqlite);
    let journal = home.open(crbot::domain::Mode::Sim);
    journal
        .insert_order(&order("cr-old", 11, None, Side::Buy, OrderPurpose::Entry, T0))
        .unwrap();
    let f = fill(1, 11, "cr-old", Side::Buy, "1", "100", "0.1", "USDT", T0);
    assert!(journal.insert_fill(&f).unwrap());
    drop(journal);
    let newer = FINISHED_ORDERS_KEPT + 50;
    let db = rusqlite::Connection::open(home.file()).unwrap();
    let added = db
        .execute(
            "INSERT INTO orders (client_order_id, order_id, order_list_id, symbol, side, type, price, \
             stop_price, qty, executed_qty, cum_quote_qty, state, purpose, created_ms, updated_ms, \
             last_error) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             SELECT 'cr-new-' || i, 1000 + i, order_list_id, symbol, side, type, price, stop_price, \
             qty, executed_qty, cum_quote_qty, 'CANCELED', purpose, created_ms + i, updated_ms + i, \
             last_error FROM orders, n WHERE client_order_id = 'cr-old'",
            [newer as i64],
        )
        .unwrap();
    assert_eq!(added, newer);
    drop(db);

    let core = core_at(&home.location(), T0 + DAY_MS);
    let old = crbot::domain::ClientOrderId::new("cr-old").unwrap();
    assert!(
        !core.state.orders.contains_key(&old),
        "the entry is older than the orders a restore keeps"
    );
    let pos = core.state.positions.get(&sym("BTCUSDT"));
    assert_eq!(
        pos.map(|p| p.qty().value()),
        Some(d("1")),
        "crbot's own buy, booked as its position"
    );
}

both_stores!(
    sync: fees_are_booked_per_asset_per_position_and_per_day_with_their_quote_value,
    a_bnb_fee_keeps_the_price_of_its_fill_time_across_a_restart,
    a_bnb_fee_with_no_price_at_fill_time_stays_unpriced_when_a_price_arrives_later,
    a_bnb_fee_learned_after_bnb_moved_keeps_the_mid_of_its_fill_time,
    both_sides_of_a_self_trade_are_booked_when_the_other_side_arrives_first,
    a_fill_without_client_id_of_an_order_gone_from_memory_is_still_crbots,
    a_restart_replaying_the_fills_in_pages_books_what_one_page_books,
    fills_journaled_after_the_restart_are_not_replayed_again,
);
