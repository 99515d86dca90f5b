//! Tests of the risk gate: a table per rule at, just below and just above each limit, the
//! trading states, fail-closed inputs, rounding, and property tests over ticket sequences.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rstest::rstest;

use super::*;
use crate::domain::{
    Filters, LotSize, NotionalFilter, PercentPriceBySide, PriceFilter, SymbolStatus, TicketKind,
};

/// Noon UTC on day 20000.
const NOW: i64 = 20_000 * DAY_MS + 43_200_000;

fn d(s: &str) -> Decimal {
    s.parse().expect("test literal")
}
fn q(s: &str) -> Qty {
    s.parse().expect("test literal")
}
fn p(s: &str) -> Price {
    s.parse().expect("test literal")
}
fn usdt(s: &str) -> Money {
    Money::new(d(s), Asset::usdt())
}
fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("test symbol")
}
fn asset(s: &str) -> Asset {
    Asset::new(s).expect("test asset")
}

fn rules_for(symbol: &str, base: &str, quote: &str) -> SymbolRules {
    SymbolRules {
        symbol: sym(symbol),
        status: SymbolStatus::Trading,
        base_asset: asset(base),
        quote_asset: asset(quote),
        order_types: vec![OrderType::Market, OrderType::Limit],
        oco_allowed: true,
        filters: Filters {
            price: Some(PriceFilter {
                min_price: d("0.01"),
                max_price: d("1000000"),
                tick_size: d("0.01"),
            }),
            lot_size: Some(LotSize {
                min_qty: d("0.0001"),
                max_qty: d("1000"),
                step_size: d("0.0001"),
            }),
            market_lot_size: Some(LotSize {
                min_qty: d("0.0001"),
                max_qty: d("100"),
                step_size: d("0.0001"),
            }),
            notional: Some(NotionalFilter {
                min_notional: d("5"),
                apply_min_to_market: true,
                max_notional: None,
                apply_max_to_market: false,
            }),
            percent_price_by_side: Some(PercentPriceBySide {
                bid_multiplier_up: d("5"),
                bid_multiplier_down: d("0.2"),
                ask_multiplier_up: d("5"),
                ask_multiplier_down: d("0.2"),
            }),
            max_num_orders: Some(200),
        },
    }
}

fn balance(a: &str, free: &str) -> (Asset, Balance) {
    (
        asset(a),
        Balance {
            asset: asset(a),
            free: q(free),
            locked: Qty::ZERO,
        },
    )
}

fn quote(bid: &str, ask: &str, time_ms: i64) -> Quote {
    Quote {
        bid: p(bid),
        ask: p(ask),
        time_ms,
    }
}

/// Equity 10000 USDT all in cash, flat, fresh BTCUSDT quote 99.99 / 100.
fn ctx() -> RiskContext {
    RiskContext {
        state: TradingState::Active,
        equity: Some(usdt("10000")),
        day_start_equity: Some(usdt("10000")),
        high_water_mark: Some(usdt("10000")),
        pnl_ok: true,
        entries: DailyCount {
            utc_day: utc_day(NOW),
            count: 0,
        },
        positions: BTreeMap::new(),
        held_by_open_sells: BTreeMap::new(),
        open_entry_orders: BTreeSet::new(),
        quotes: [(sym("BTCUSDT"), quote("99.99", "100", NOW - 100))].into(),
        rules: [(sym("BTCUSDT"), rules_for("BTCUSDT", "BTC", "USDT"))].into(),
        balances: [balance("USDT", "10000"), balance("BTC", "0")].into(),
        exit_confirmed: false,
        sell_external: false,
    }
}

/// A BTCUSDT buy limit with stop-loss 90 and take-profit 120.
fn entry(qty: &str, price: &str) -> Ticket {
    Ticket {
        symbol: sym("BTCUSDT"),
        side: Side::Buy,
        kind: TicketKind::Limit { price: p(price) },
        qty: q(qty),
        stop_loss: Some(p("90")),
        take_profit: Some(p("120")),
    }
}

fn exit(qty: &str, kind: TicketKind) -> Ticket {
    Ticket {
        symbol: sym("BTCUSDT"),
        side: Side::Sell,
        kind,
        qty: q(qty),
        stop_loss: None,
        take_profit: None,
    }
}

/// A context holding a crbot position of `qty` BTC (also in the balance).
fn holding(qty: &str) -> RiskContext {
    let mut c = ctx();
    c.positions.insert(sym("BTCUSDT"), q(qty));
    c.balances.insert(asset("BTC"), balance("BTC", qty).1);
    c
}

fn codes_with(limits: &Limits, c: &RiskContext, t: &Ticket, now: i64) -> Vec<&'static str> {
    match check(limits, c, t, now) {
        Ok(_) => vec![],
        Err(denials) => denials.iter().map(Denial::code).collect(),
    }
}

fn codes(c: &RiskContext, t: &Ticket) -> Vec<&'static str> {
    codes_with(&Limits::default(), c, t, NOW)
}

/// check() and report() must agree on every call the tests make.
fn assert_agrees(limits: &Limits, c: &RiskContext, t: &Ticket, now: i64) {
    let outcomes = report(limits, c, t, now);
    let rules: BTreeSet<&str> = outcomes.iter().map(|o| o.rule.name()).collect();
    assert_eq!(
        rules.len(),
        Rule::ALL.len(),
        "every rule is listed: {outcomes:#?}"
    );
    let failed = outcomes.iter().any(|o| !o.passed);
    let from_report: Vec<Denial> = outcomes.iter().filter_map(|o| o.denial.clone()).collect();
    match check(limits, c, t, now) {
        Ok(_) => assert!(!failed, "approved but the report failed: {outcomes:#?}"),
        Err(denials) => {
            assert!(failed);
            assert_eq!(denials, from_report);
        }
    }
}

// ---- rule 1: position size --------------------------------------------------------------

#[rstest]
#[case::below("4.9999", true)]
#[case::at("5", true)]
#[case::above("5.0001", false)]
fn position_size_limit_is_five_percent_of_equity(#[case] qty: &str, #[case] ok: bool) {
    let c = codes(&ctx(), &entry(qty, "100"));
    assert_eq!(c.is_empty(), ok, "{c:?}");
    assert_eq!(c.contains(&"POSITION_SIZE"), !ok);
    assert_agrees(&Limits::default(), &ctx(), &entry(qty, "100"), NOW);
}

#[test]
fn rejects_entry_when_notional_exceeds_position_limit_with_the_numbers() {
    let Err(denials) = check(&Limits::default(), &ctx(), &entry("6.125", "100"), NOW) else {
        panic!("must be refused");
    };
    assert_eq!(
        denials[0].to_string(),
        "POSITION_SIZE: notional 612.50 USDT is 6.13% of equity 10000.00 USDT; limit 5.00%"
    );
    assert_eq!(denials.len(), 1, "{denials:?}");
}

#[test]
fn market_buy_is_valued_at_the_ask() {
    let mut c = ctx();
    c.quotes.insert(sym("BTCUSDT"), quote("99", "125", NOW));
    let mut t = entry("4", "100");
    t.kind = TicketKind::Market;
    t.stop_loss = Some(p("100"));
    t.take_profit = Some(p("150"));
    // 4 × 125 = 500: at the limit. 4.0001 × 125 is over it.
    assert_eq!(codes(&c, &t), Vec::<&str>::new());
    t.qty = q("4.0001");
    assert_eq!(codes(&c, &t), vec!["POSITION_SIZE"]);
}

#[test]
fn a_non_usdt_quote_is_converted_and_fails_closed_without_a_rate() {
    let mut c = ctx();
    let mut eth_btc = rules_for("ETHBTC", "ETH", "BTC");
    eth_btc.filters.notional = None;
    c.rules.insert(sym("ETHBTC"), eth_btc);
    c.quotes.insert(sym("ETHBTC"), quote("0.0499", "0.05", NOW));
    c.balances.insert(asset("BTC"), balance("BTC", "1").1);
    let t = Ticket {
        symbol: sym("ETHBTC"),
        side: Side::Buy,
        kind: TicketKind::Limit { price: p("0.05") },
        qty: q("2"),
        stop_loss: Some(p("0.04")),
        take_profit: Some(p("0.07")),
    };
    // 0.1 BTC × mid 100 = 10 USDT: fine once BTCUSDT is known.
    assert_eq!(codes(&c, &t), Vec::<&str>::new());
    c.quotes.remove(&sym("BTCUSDT"));
    assert_eq!(codes(&c, &t), vec!["NO_QUOTE"]);
    assert_agrees(&Limits::default(), &c, &t, NOW);
}

// ---- rule 2: daily loss ------------------------------------------------------------------

#[rstest]
#[case::below("9500.01", true)]
#[case::at("9500", false)]
#[case::above("9499.99", false)]
fn daily_loss_at_five_percent_refuses_entries(#[case] equity: &str, #[case] ok: bool) {
    let mut c = ctx();
    c.equity = Some(usdt(equity));
    let t = entry("1", "100");
    let got = codes(&c, &t);
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"DAILY_LOSS"), !ok);
    assert_agrees(&Limits::default(), &c, &t, NOW);
}

#[test]
fn daily_loss_message_carries_the_numbers() {
    let mut c = ctx();
    c.equity = Some(usdt("9488"));
    let Err(denials) = check(&Limits::default(), &c, &entry("1", "100"), NOW) else {
        panic!("must be refused");
    };
    assert_eq!(
        denials[0].to_string(),
        "DAILY_LOSS: today's P&L -512.00 USDT is -5.12% of day-start equity 10000.00 USDT; \
         limit -5.00% (entries resume at 00:00 UTC)"
    );
}

// ---- rule 3: drawdown --------------------------------------------------------------------

#[rstest]
#[case::below("9000.01", true)]
#[case::at("9000", false)]
#[case::above("8999.99", false)]
fn drawdown_at_ten_percent_refuses_entries(#[case] equity: &str, #[case] ok: bool) {
    let mut c = ctx();
    c.equity = Some(usdt(equity));
    c.day_start_equity = Some(usdt(equity));
    let t = entry("1", "100");
    let got = codes(&c, &t);
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"DRAWDOWN"), !ok);
    assert_agrees(&Limits::default(), &c, &t, NOW);
}

// ---- rule 4: trades per day --------------------------------------------------------------

#[rstest]
#[case::below(9, true)]
#[case::at(10, false)]
#[case::above(11, false)]
fn the_eleventh_entry_of_a_utc_day_is_refused(#[case] sent: u32, #[case] ok: bool) {
    let mut c = ctx();
    c.entries.count = sent;
    let got = codes(&c, &entry("1", "100"));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"TRADES_PER_DAY"), !ok);
}

#[test]
fn yesterdays_entries_do_not_count_today() {
    let mut c = ctx();
    c.entries = DailyCount {
        utc_day: utc_day(NOW) - 1,
        count: 10,
    };
    assert_eq!(codes(&c, &entry("1", "100")), Vec::<&str>::new());
    let mut count = c.entries;
    count.record(NOW);
    assert_eq!(
        count,
        DailyCount {
            utc_day: utc_day(NOW),
            count: 1
        }
    );
}

#[test]
fn exits_do_not_use_up_the_daily_entries() {
    let mut c = holding("1");
    c.entries.count = 10;
    assert_eq!(codes(&c, &exit("1", TicketKind::Market)), Vec::<&str>::new());
}

// ---- rule 5: risk / reward ---------------------------------------------------------------

#[rstest]
#[case::below("109.99", false)]
#[case::at("110", true)]
#[case::above("110.01", true)]
fn reward_must_be_at_least_risk_times_the_minimum(#[case] tp: &str, #[case] ok: bool) {
    let mut t = entry("1", "100");
    t.take_profit = Some(p(tp));
    let got = codes(&ctx(), &t);
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"RISK_REWARD"), !ok);
    assert_agrees(&Limits::default(), &ctx(), &t, NOW);
}

#[rstest]
#[case::below("119.99", false)]
#[case::at("120", true)]
#[case::above("120.01", true)]
fn a_higher_minimum_risk_reward_is_honoured(#[case] tp: &str, #[case] ok: bool) {
    let limits = Limits {
        min_risk_reward: d("2"),
        ..Limits::default()
    };
    let mut t = entry("1", "100");
    t.take_profit = Some(p(tp));
    assert_eq!(codes_with(&limits, &ctx(), &t, NOW).is_empty(), ok);
}

#[test]
fn an_entry_without_stop_loss_or_take_profit_gets_both_codes() {
    let mut t = entry("1", "100");
    t.stop_loss = None;
    t.take_profit = None;
    assert_eq!(
        codes(&ctx(), &t),
        vec!["MISSING_STOP_LOSS", "MISSING_TAKE_PROFIT"]
    );
    t.stop_loss = Some(p("90"));
    assert_eq!(codes(&ctx(), &t), vec!["MISSING_TAKE_PROFIT"]);
    assert_agrees(&Limits::default(), &ctx(), &t, NOW);
}

#[test]
fn stop_loss_and_take_profit_must_be_on_the_right_sides() {
    let mut t = entry("1", "100");
    t.stop_loss = Some(p("100"));
    t.take_profit = Some(p("99"));
    assert_eq!(codes(&ctx(), &t), vec!["STOP_LOSS_SIDE", "TAKE_PROFIT_SIDE"]);
    t.stop_loss = Some(p("101"));
    t.take_profit = Some(p("120"));
    assert_eq!(codes(&ctx(), &t), vec!["STOP_LOSS_SIDE"]);
}

#[test]
fn a_sell_carrying_a_bracket_is_refused() {
    let mut t = exit("1", TicketKind::Market);
    t.stop_loss = Some(p("90"));
    assert_eq!(codes(&holding("1"), &t), vec!["BRACKET_ON_EXIT"]);
}

// ---- rule 6: duplicate positions ---------------------------------------------------------

#[rstest]
#[case::flat("0", false, true)]
#[case::dust_below_the_step("0.00001", false, true)]
#[case::dust_above_the_step_below_the_minimum_notional("0.0499", false, true)]
#[case::just_above_the_minimum_notional("0.0501", false, false)]
#[case::dust_with_an_open_entry_order("0.0499", true, false)]
#[case::open_position("0.5", false, false)]
#[case::open_entry_order("0", true, false)]
fn no_second_entry_on_a_symbol_with_a_position_or_entry_order(
    #[case] position: &str,
    #[case] open_order: bool,
    #[case] ok: bool,
) {
    let mut c = ctx();
    c.positions.insert(sym("BTCUSDT"), q(position));
    if open_order {
        c.open_entry_orders.insert(sym("BTCUSDT"));
    }
    let got = codes(&c, &entry("1", "100"));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"DUPLICATE_POSITION"), !ok);
}

#[test]
fn a_dust_position_is_reported_as_dust_not_as_a_duplicate() {
    // 0.0499 BTC at a mid of 99.995 is 4.99 USDT, under the 5 USDT minimum notional.
    let mut c = ctx();
    c.positions.insert(sym("BTCUSDT"), q("0.0499"));
    let line = report(&Limits::default(), &c, &entry("1", "100"), NOW)
        .into_iter()
        .find(|o| o.code == "DUPLICATE_POSITION")
        .expect("the rule is reported");
    assert!(line.passed, "{line:?}");
    assert!(line.detail.contains("dust"), "{}", line.detail);
}

// ---- exchange filters --------------------------------------------------------------------

#[test]
fn a_quantity_rounding_to_zero_is_a_filter_failure() {
    let got = codes(&ctx(), &entry("0.00009", "100"));
    assert!(
        got.iter().all(|c| *c == "FILTER" || *c == "POSITION_SIZE"),
        "{got:?}"
    );
    let Err(denials) = check(&Limits::default(), &ctx(), &entry("0.00009", "100"), NOW) else {
        panic!("must be refused");
    };
    assert!(
        denials.iter().any(|x| matches!(x, Denial::ZeroQuantity { .. })),
        "{denials:?}"
    );
}

#[rstest]
#[case::below_min_notional("0.0499", false)]
#[case::at_min_notional("0.05", true)]
#[case::above_min_notional("0.0501", true)]
fn the_rounded_order_must_meet_min_notional(#[case] qty: &str, #[case] ok: bool) {
    let got = codes(&ctx(), &entry(qty, "100"));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"FILTER"), !ok);
}

#[test]
fn a_symbol_not_trading_or_unknown_is_refused() {
    let mut c = ctx();
    if let Some(r) = c.rules.get_mut(&sym("BTCUSDT")) {
        r.status = SymbolStatus::Break;
    }
    assert_eq!(codes(&c, &entry("1", "100")), vec!["FILTER"]);
    c.rules.clear();
    let got = codes(&c, &entry("1", "100"));
    assert_eq!(got, vec!["UNKNOWN_SYMBOL"]);
    assert_agrees(&Limits::default(), &c, &entry("1", "100"), NOW);
}

#[test]
fn approved_order_carries_rounded_values() {
    let mut t = entry("1.23456", "100.005");
    t.stop_loss = Some(p("90.005"));
    t.take_profit = Some(p("120.009"));
    let approved = check(&Limits::default(), &ctx(), &t, NOW).expect("approved");
    assert_eq!(approved.qty, q("1.2345"));
    assert_eq!(approved.price, Some(p("100")), "a buy rounds down to the tick");
    assert_eq!(
        approved.stop_loss,
        Some(p("90.01")),
        "the stop rounds toward the entry"
    );
    assert_eq!(
        approved.take_profit,
        Some(p("120")),
        "the target rounds toward the entry"
    );
    assert_eq!(approved.time_in_force, Some(TimeInForce::Gtc));
    assert!(approved.is_entry);
    assert_eq!(approved.notional, Some("123.45".parse().expect("ok")));
    assert_eq!(approved.est_fee, Some(usdt("0.12345")));
    assert_eq!(approved.approved_at_ms(), NOW);
    let req = approved.to_request(ClientOrderId::new("cr-x").expect("ok"));
    assert_eq!((req.qty, req.price), (q("1.2345"), Some(p("100"))));
    let mut m = entry("0.12345", "1");
    m.kind = TicketKind::Market;
    let approved = check(&Limits::default(), &ctx(), &m, NOW).expect("approved");
    assert_eq!(
        (approved.qty, approved.price, approved.reference_price),
        (q("0.1234"), None, Some(p("100")))
    );
}

// ---- fat finger --------------------------------------------------------------------------

#[rstest]
#[case::high_inside("105", true)]
#[case::high_outside("105.01", false)]
#[case::low_inside("95", true)]
#[case::low_outside("94.99", false)]
fn buy_limit_must_be_within_five_percent_of_the_ask(#[case] price: &str, #[case] ok: bool) {
    let mut t = entry("1", price);
    t.stop_loss = Some(p("80"));
    t.take_profit = Some(p("150"));
    let got = codes(&ctx(), &t);
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"FAT_FINGER"), !ok);
}

#[rstest]
#[case::inside("95", true)]
#[case::outside("94.99", false)]
fn sell_limit_is_measured_from_the_bid(#[case] price: &str, #[case] ok: bool) {
    let t = exit("1", TicketKind::Limit { price: p(price) });
    let got = codes(&holding("1"), &t);
    assert_eq!(got.is_empty(), ok, "{got:?}");
}

// ---- balance -----------------------------------------------------------------------------

#[rstest]
#[case::short_by_a_cent("100.09", false)]
#[case::exact("100.1", true)]
#[case::more("100.11", true)]
fn a_buy_needs_notional_plus_fee_in_free_quote(#[case] free: &str, #[case] ok: bool) {
    let mut c = ctx();
    c.balances.insert(Asset::usdt(), balance("USDT", free).1);
    let got = codes(&c, &entry("1", "100"));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"INSUFFICIENT_BALANCE"), !ok);
}

#[rstest]
#[case::less("0.9999", false)]
#[case::exact("1", true)]
fn a_sell_needs_free_base(#[case] free: &str, #[case] ok: bool) {
    let mut c = holding("1");
    c.balances.insert(asset("BTC"), balance("BTC", free).1);
    let got = codes(&c, &exit("1", TicketKind::Market));
    assert_eq!(got.is_empty(), ok, "{got:?}");
}

// ---- no short / external holdings --------------------------------------------------------

#[rstest]
#[case::all_of_it("1", false, true)]
#[case::more_than_crbot_holds("1.0001", false, false)]
#[case::more_with_external_selected("1.0001", true, true)]
fn a_sell_may_not_exceed_crbots_position_unless_external_is_selected(
    #[case] qty: &str,
    #[case] external: bool,
    #[case] ok: bool,
) {
    let mut c = holding("1");
    c.balances.insert(asset("BTC"), balance("BTC", "2").1);
    c.sell_external = external;
    let got = codes(&c, &exit(qty, TicketKind::Market));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"NO_POSITION"), !ok);
}

#[rstest]
#[case::within_what_is_unheld("0.3", true)]
#[case::more_than_what_crbots_open_sells_leave("0.3001", false)]
fn a_sell_may_not_take_what_crbots_own_open_sells_already_hold(#[case] qty: &str, #[case] ok: bool) {
    // crbot holds 1, its resting sell holds 0.7; the balance also has the user's 2.
    let mut c = holding("1");
    c.held_by_open_sells.insert(sym("BTCUSDT"), q("0.7"));
    c.balances.insert(asset("BTC"), balance("BTC", "2.3").1);
    let got = codes(&c, &exit(qty, TicketKind::Market));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"NO_POSITION"), !ok);
}

// ---- fail closed: quotes and P&L ---------------------------------------------------------

#[rstest]
#[case::fresh(NOW - 5_000, true)]
#[case::just_stale(NOW - 5_001, false)]
#[case::from_the_future(NOW + 5_001, false)]
fn an_entry_needs_a_quote_at_most_five_seconds_old(#[case] time: i64, #[case] ok: bool) {
    let mut c = ctx();
    c.quotes.insert(sym("BTCUSDT"), quote("99.99", "100", time));
    let got = codes(&c, &entry("1", "100"));
    assert_eq!(got.is_empty(), ok, "{got:?}");
    assert_eq!(got.contains(&"STALE_QUOTE"), !ok);
    assert_agrees(&Limits::default(), &c, &entry("1", "100"), NOW);
}

#[test]
fn an_entry_without_a_usable_quote_fails_closed() {
    let mut c = ctx();
    c.quotes.clear();
    let mut t = entry("1", "100");
    assert_eq!(codes(&c, &t), vec!["NO_QUOTE"]);
    t.kind = TicketKind::Market;
    assert_eq!(codes(&c, &t), vec!["NO_QUOTE"]);
    assert_agrees(&Limits::default(), &c, &t, NOW);
    c.quotes.insert(sym("BTCUSDT"), quote("101", "100", NOW));
    assert!(codes(&c, &t).contains(&"NO_QUOTE"));
}

#[test]
fn an_exit_is_not_blocked_by_a_missing_quote() {
    let mut c = holding("1");
    c.quotes.clear();
    let approved = check(&Limits::default(), &c, &exit("1", TicketKind::Market), NOW).expect("approved");
    assert_eq!(approved.notional, None);
    assert!(!approved.is_entry);
    assert_agrees(
        &Limits::default(),
        &c,
        &exit("1", TicketKind::Limit { price: p("50") }),
        NOW,
    );
}

#[rstest]
#[case::computation_failed(|c: &mut RiskContext| c.pnl_ok = false)]
#[case::no_equity(|c: &mut RiskContext| c.equity = None)]
#[case::no_day_start(|c: &mut RiskContext| c.day_start_equity = None)]
#[case::no_hwm(|c: &mut RiskContext| c.high_water_mark = None)]
#[case::equity_not_usdt(|c: &mut RiskContext| c.equity = Some(Money::new(d("1"), Asset::new("BTC").expect("ok"))))]
fn unavailable_pnl_refuses_entries_but_not_exits(#[case] spoil: fn(&mut RiskContext)) {
    let mut c = holding("1");
    spoil(&mut c);
    let got = codes(&c, &entry("1", "100"));
    assert!(got.contains(&"PNL_UNAVAILABLE"), "{got:?}");
    assert_agrees(&Limits::default(), &c, &entry("1", "100"), NOW);
    assert_eq!(codes(&c, &exit("1", TicketKind::Market)), Vec::<&str>::new());
}

// ---- trading states ----------------------------------------------------------------------

fn reducing() -> TradingState {
    TradingState::Reducing {
        reason: "DAILY_LOSS: test".to_string(),
        trigger: Trigger::DailyLoss,
        since_ms: NOW,
        until_ms: Some(next_utc_midnight_ms(NOW)),
    }
}

fn halted() -> TradingState {
    TradingState::Halted {
        reason: "KILL: test".to_string(),
        since_ms: NOW,
    }
}

#[rstest]
#[case::active_entry(TradingState::Active, true, false, None)]
#[case::active_exit(TradingState::Active, false, false, None)]
#[case::reducing_entry(reducing(), true, false, Some("STATE_REDUCING"))]
#[case::reducing_exit(reducing(), false, false, None)]
#[case::halted_entry(halted(), true, false, Some("STATE_HALTED"))]
#[case::halted_entry_confirmed(halted(), true, true, Some("STATE_HALTED"))]
#[case::halted_exit_unconfirmed(halted(), false, false, Some("STATE_HALTED"))]
#[case::halted_exit_confirmed(halted(), false, true, None)]
#[case::startup_default(TradingState::default(), true, false, Some("STATE_HALTED"))]
fn each_state_allows_what_design_says(
    #[case] state: TradingState,
    #[case] is_entry: bool,
    #[case] confirmed: bool,
    #[case] denial: Option<&str>,
) {
    let mut c = holding("0.5");
    c.state = state;
    c.exit_confirmed = confirmed;
    // The entry is on another symbol so that rule 6 stays out of the way.
    c.rules
        .insert(sym("ETHUSDT"), rules_for("ETHUSDT", "ETH", "USDT"));
    c.quotes.insert(sym("ETHUSDT"), quote("99.99", "100", NOW));
    let t = if is_entry {
        Ticket {
            symbol: sym("ETHUSDT"),
            ..entry("1", "100")
        }
    } else {
        exit("0.5", TicketKind::Market)
    };
    let got = codes(&c, &t);
    assert_eq!(got, denial.into_iter().collect::<Vec<_>>());
}

#[test]
fn collects_every_violation_at_once() {
    let mut c = ctx();
    c.state = reducing();
    c.equity = Some(usdt("8000"));
    c.entries.count = 10;
    c.open_entry_orders.insert(sym("BTCUSDT"));
    c.balances.insert(Asset::usdt(), balance("USDT", "1").1);
    let mut t = entry("20", "120");
    t.take_profit = None;
    let got: BTreeSet<&str> = codes(&c, &t).into_iter().collect();
    let want: BTreeSet<&str> = [
        "STATE_REDUCING",
        "FAT_FINGER",
        "INSUFFICIENT_BALANCE",
        "POSITION_SIZE",
        "DAILY_LOSS",
        "DRAWDOWN",
        "TRADES_PER_DAY",
        "MISSING_TAKE_PROFIT",
        "DUPLICATE_POSITION",
    ]
    .into();
    assert_eq!(got, want);
    assert_agrees(&Limits::default(), &c, &t, NOW);
}

#[test]
fn usage_reports_each_limit_used_against_its_limit() {
    let mut c = ctx();
    c.equity = Some(usdt("9600"));
    c.entries.count = 8;
    let u = usage(&Limits::default(), &c, NOW);
    assert_eq!(u.daily_loss_used_pct, Some(d("4")));
    assert_eq!(u.drawdown_pct, Some(d("4")));
    assert_eq!((u.trades_used, u.trades_limit), (8, 10));
    assert_eq!(u.daily_reset_ms, next_utc_midnight_ms(NOW));
    assert_eq!(u.position_limit_value, Some(usdt("480")));
    let alerts: Vec<&str> = u.alerts(d("80")).iter().map(|a| a.code).collect();
    assert_eq!(alerts, vec!["DAILY_LOSS", "TRADES_PER_DAY"]);
    c.pnl_ok = false;
    assert_eq!(usage(&Limits::default(), &c, NOW).daily_loss_used_pct, None);
}

// ---- properties --------------------------------------------------------------------------

const SYMBOLS: [&str; 6] = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT"];

fn many_symbols_ctx(now: i64) -> RiskContext {
    let mut c = ctx();
    c.balances.insert(Asset::usdt(), balance("USDT", "1000000").1);
    for s in SYMBOLS {
        let base = &s[..3];
        c.rules.insert(sym(s), rules_for(s, base, "USDT"));
        c.quotes.insert(sym(s), quote("99.99", "100", now));
        c.balances.insert(asset(base), balance(base, "0").1);
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Apply every approval to the context (entry counted, position opened, quotes refreshed)
    /// and check that no sequence of approved tickets breaks trades-per-day or position size.
    #[test]
    fn approved_sequences_never_break_trades_per_day_or_position_size(
        max_trades in 0u32..6,
        size_pct in 1u32..8,
        steps in proptest::collection::vec((0usize..6, 1u32..1_000_000, 0i64..(8 * 3_600_000), any::<bool>()), 1..60),
    ) {
        let limits = Limits {
            max_trades_per_day: max_trades,
            max_position_size_pct: Decimal::from(size_pct),
            ..Limits::default()
        };
        let mut now = NOW;
        let mut c = many_symbols_ctx(now);
        let mut per_day: BTreeMap<i64, u32> = BTreeMap::new();
        for (i, qty_units, advance, close) in steps {
            now += advance;
            for qt in c.quotes.values_mut() {
                qt.time_ms = now;
            }
            let s = sym(SYMBOLS[i]);
            let held = c.positions.get(&s).copied().unwrap_or(Qty::ZERO);
            if close && !held.is_zero() {
                let t = Ticket { symbol: s.clone(), ..exit("1", TicketKind::Market) };
                let t = Ticket { qty: held, ..t };
                if check(&limits, &c, &t, now).is_ok() {
                    c.positions.remove(&s);
                    let base = asset(&SYMBOLS[i][..3]);
                    c.balances.insert(base.clone(), Balance { asset: base, free: Qty::ZERO, locked: Qty::ZERO });
                }
                continue;
            }
            let t = Ticket {
                symbol: s.clone(),
                qty: Qty::try_new(Decimal::new(i64::from(qty_units), 4)).expect("non-negative"),
                ..entry("1", "100")
            };
            assert_agrees(&limits, &c, &t, now);
            if let Ok(approved) = check(&limits, &c, &t, now) {
                let equity = c.equity.as_ref().map(|m| m.amount()).unwrap_or_default();
                let notional = approved.notional.map(|n| n.value()).unwrap_or(Decimal::MAX);
                prop_assert!(notional * Decimal::ONE_HUNDRED <= equity * limits.max_position_size_pct);
                let n = per_day.entry(utc_day(now)).or_insert(0);
                *n += 1;
                prop_assert!(*n <= max_trades, "{} entries on day {}", n, utc_day(now));
                c.entries.record(now);
                c.positions.insert(s.clone(), approved.qty);
                let base = asset(&SYMBOLS[i][..3]);
                c.balances.insert(base.clone(), Balance { asset: base, free: approved.qty, locked: Qty::ZERO });
            }
        }
    }

    /// Same ticket, same context, smaller quantity: never a denial the larger one did not get.
    /// Quantities stay above the exchange minimums (min quantity 0.0001, min notional 5 at
    /// prices ≥ 80), which by nature refuse only small orders.
    #[test]
    fn a_smaller_ticket_never_collects_more_denials(
        big_units in 700u32..2_000_000,
        shrink in 0u32..=100,
        is_buy in any::<bool>(),
        limit_cents in proptest::option::of(8_000u32..12_000),
        sl in proptest::option::of(70u32..130),
        tp in proptest::option::of(70u32..130),
        state in 0u8..3,
        confirmed in any::<bool>(),
        equity in 100u32..50_000,
        day_start in 100u32..50_000,
        position_units in 0u32..200_000,
        usdt_free in 0u32..20_000,
        base_free_units in 0u32..200_000,
        quote_age in 0i64..8_000,
        entries_sent in 0u32..12,
        open_order in any::<bool>(),
        sell_external in any::<bool>(),
    ) {
        let small_units = 700 + (big_units - 700) * shrink / 100;
        let mut c = ctx();
        c.state = match state { 0 => TradingState::Active, 1 => reducing(), _ => halted() };
        c.exit_confirmed = confirmed;
        c.equity = Some(Money::new(Decimal::from(equity), Asset::usdt()));
        c.day_start_equity = Some(Money::new(Decimal::from(day_start), Asset::usdt()));
        c.high_water_mark = Some(Money::new(Decimal::from(equity.max(day_start)), Asset::usdt()));
        c.positions.insert(sym("BTCUSDT"), Qty::try_new(Decimal::new(i64::from(position_units), 4)).expect("ok"));
        c.balances.insert(Asset::usdt(), Balance { asset: Asset::usdt(), free: Qty::from_str_units(usdt_free, 0), locked: Qty::ZERO });
        c.balances.insert(asset("BTC"), Balance { asset: asset("BTC"), free: Qty::from_str_units(base_free_units, 4), locked: Qty::ZERO });
        c.quotes.insert(sym("BTCUSDT"), quote("99.99", "100", NOW - quote_age));
        c.entries.count = entries_sent;
        if open_order {
            c.open_entry_orders.insert(sym("BTCUSDT"));
        }
        c.sell_external = sell_external;
        let kind = match limit_cents {
            Some(cents) => TicketKind::Limit { price: Price::try_new(Decimal::new(i64::from(cents), 2)).expect("ok") },
            None => TicketKind::Market,
        };
        let ticket = |units: u32| Ticket {
            symbol: sym("BTCUSDT"),
            side: if is_buy { Side::Buy } else { Side::Sell },
            kind,
            qty: Qty::from_str_units(units, 4),
            stop_loss: sl.map(|v| Price::try_new(Decimal::from(v)).expect("ok")),
            take_profit: tp.map(|v| Price::try_new(Decimal::from(v)).expect("ok")),
        };
        let limits = Limits::default();
        let big = codes_with(&limits, &c, &ticket(big_units), NOW);
        let small = codes_with(&limits, &c, &ticket(small_units), NOW);
        assert_agrees(&limits, &c, &ticket(small_units), NOW);
        let count = |v: &[&str], code: &str| v.iter().filter(|c| **c == code).count();
        for code in &small {
            prop_assert!(
                count(&small, code) <= count(&big, code),
                "smaller ticket got more {}: small {:?} big {:?}", code, small, big
            );
        }
        prop_assert!(small.len() <= big.len());
    }
}

/// Test-only constructor: `units × 10^-scale`.
trait FromUnits {
    fn from_str_units(units: u32, scale: u32) -> Self;
}

impl FromUnits for Qty {
    fn from_str_units(units: u32, scale: u32) -> Self {
        Qty::try_new(Decimal::new(i64::from(units), scale)).expect("non-negative")
    }
}

// ---- the rulebook: one function per rule, walked from RULES -----------------------------

/// The codes of the denials one rule's function raises on its own.
fn denials_of_rule_alone(rule: Rule, limits: &Limits, c: &RiskContext, t: &Ticket) -> Vec<&'static str> {
    let spec = RULES
        .iter()
        .find(|s| s.rule == rule)
        .unwrap_or_else(|| panic!("{rule:?} has no row in RULES"));
    (spec.check)(&Facts::new(limits, c, t, NOW))
        .into_iter()
        .filter_map(|finding| match finding {
            Finding::Fail(denial) => Some(denial.code()),
            _ => None,
        })
        .collect()
}

/// A ticket only `rule` refuses: its function alone raises `expected`, and so does `check`,
/// which reaches the function only through its row in RULES.
#[rstest]
#[case::state(Rule::State, &["STATE_REDUCING"])]
#[case::pnl(Rule::Pnl, &["PNL_UNAVAILABLE"])]
#[case::quote(Rule::Quote, &["STALE_QUOTE"])]
#[case::symbol(Rule::Symbol, &["UNKNOWN_SYMBOL"])]
#[case::filter(Rule::Filter, &["FILTER"])]
#[case::fat_finger(Rule::FatFinger, &["FAT_FINGER"])]
#[case::balance(Rule::Balance, &["INSUFFICIENT_BALANCE"])]
#[case::position(Rule::Position, &["NO_POSITION"])]
#[case::position_size(Rule::PositionSize, &["POSITION_SIZE"])]
#[case::daily_loss(Rule::DailyLoss, &["DAILY_LOSS"])]
#[case::drawdown(Rule::Drawdown, &["DRAWDOWN"])]
#[case::trades_per_day(Rule::TradesPerDay, &["TRADES_PER_DAY"])]
#[case::risk_reward(Rule::RiskReward, &["RISK_REWARD"])]
#[case::duplicate_position(Rule::DuplicatePosition, &["DUPLICATE_POSITION"])]
fn each_rule_refuses_its_case_alone_and_through_the_table(#[case] rule: Rule, #[case] expected: &[&str]) {
    let mut c = ctx();
    let mut t = entry("1", "100");
    match rule {
        Rule::State => c.state = reducing(),
        Rule::Pnl => c.pnl_ok = false,
        Rule::Quote => {
            c.quotes
                .insert(sym("BTCUSDT"), quote("99.99", "100", NOW - 10_000));
        }
        Rule::Symbol => {
            t.symbol = sym("XYZUSDT");
            c.quotes.insert(sym("XYZUSDT"), quote("99.99", "100", NOW));
        }
        Rule::Filter => t = entry("0.04", "100"),
        Rule::FatFinger => t = entry("1", "94"),
        Rule::Balance => {
            c.balances.insert(Asset::usdt(), balance("USDT", "50").1);
        }
        Rule::Position => {
            c.balances.insert(asset("BTC"), balance("BTC", "1").1);
            t = exit("1", TicketKind::Market);
        }
        Rule::PositionSize => t = entry("6", "100"),
        Rule::DailyLoss => c.equity = Some(usdt("9400")),
        Rule::Drawdown => {
            c.equity = Some(usdt("8900"));
            c.day_start_equity = Some(usdt("8900"));
        }
        Rule::TradesPerDay => c.entries.count = 10,
        Rule::RiskReward => t.take_profit = Some(p("105")),
        Rule::DuplicatePosition => {
            c.open_entry_orders.insert(sym("BTCUSDT"));
        }
    }
    let limits = Limits::default();
    assert_eq!(denials_of_rule_alone(rule, &limits, &c, &t), expected);
    assert_eq!(codes(&c, &t), expected, "check must refuse through the table");
    assert_agrees(&limits, &c, &t, NOW);
}

#[test]
fn the_report_lists_the_rules_in_the_order_of_the_table() {
    for (c, t) in [
        (ctx(), entry("1", "100")),
        (holding("1"), exit("1", TicketKind::Market)),
    ] {
        let mut order: Vec<Rule> = report(&Limits::default(), &c, &t, NOW)
            .iter()
            .map(|o| o.rule)
            .collect();
        order.dedup();
        assert_eq!(order, Rule::ALL.to_vec());
    }
    let codes: Vec<&str> = RULES.iter().map(|s| s.code).collect();
    let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(codes, names);
    assert!(RULES.iter().all(|s| !s.title.is_empty()));
}

/// The rulebook in the module's documentation is read by people; it must name the same rules as
/// the table the code walks, in the same order.
#[test]
fn the_module_doc_lists_the_rules_of_the_table() {
    let documented: Vec<&str> = include_str!("../risk.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! | "))
        .filter_map(|row| row.split(" |").next())
        .filter(|code| *code != "rule" && !code.starts_with("---"))
        .collect();
    let table: Vec<&str> = RULES.iter().map(|s| s.code).collect();
    assert_eq!(documented, table);
}

// --- The ways to a risk-approved request -------------------------------------------------

fn sell_request(qty: &str, side: Side) -> OrderRequest {
    OrderRequest {
        symbol: sym("BTCUSDT"),
        side,
        order_type: OrderType::Market,
        time_in_force: None,
        qty: q(qty),
        price: None,
        stop_price: None,
        client_order_id: ClientOrderId::new("cr-flat").expect("ok"),
    }
}

fn protective(qty: &str) -> OcoRequest {
    OcoRequest {
        symbol: sym("BTCUSDT"),
        qty: q(qty),
        take_profit: p("110"),
        stop_loss: p("95"),
        stop_limit: None,
        list_client_order_id: ClientOrderId::new("cr-l").expect("ok"),
        take_profit_client_order_id: ClientOrderId::new("cr-tp").expect("ok"),
        stop_loss_client_order_id: ClientOrderId::new("cr-sl").expect("ok"),
    }
}

#[test]
fn an_approved_ticket_becomes_its_request_with_the_same_approval_time() {
    let approved = check(&Limits::default(), &ctx(), &entry("1.2345", "100"), NOW).expect("approved");
    let values = approved.inner().clone();
    let request = approved.into_request(ClientOrderId::new("cr-x").expect("ok"));
    assert_eq!(request.approved_at_ms(), NOW);
    assert_eq!(
        *request.inner(),
        values.to_request(ClientOrderId::new("cr-x").expect("ok"))
    );
}

#[test]
fn a_reduction_up_to_the_held_quantity_is_approved() {
    let approved = approve_reduction(sell_request("0.5", Side::Sell), q("0.5"), NOW).expect("approved");
    assert_eq!(approved.qty, q("0.5"));
    assert_eq!(approved.approved_at_ms(), NOW);
    assert!(approve_reduction(sell_request("0.1", Side::Sell), q("0.5"), NOW).is_ok());
}

#[test]
fn a_reduction_refuses_a_buy() {
    let denial = approve_reduction(sell_request("0.1", Side::Buy), q("0.5"), NOW).expect_err("a buy");
    assert_eq!(denial.code(), "NOT_A_REDUCTION");
    assert_eq!(
        denial,
        Denial::NotAReduction {
            symbol: sym("BTCUSDT"),
            side: Side::Buy
        }
    );
}

#[test]
fn a_reduction_refuses_more_than_is_held() {
    let denial = approve_reduction(sell_request("0.51", Side::Sell), q("0.5"), NOW).expect_err("too much");
    assert_eq!(denial.code(), "NO_POSITION");
    assert_eq!(
        denial,
        Denial::NoPosition {
            symbol: sym("BTCUSDT"),
            qty: q("0.51"),
            position: q("0.5")
        }
    );
    let nothing_held = approve_reduction(sell_request("0.1", Side::Sell), Qty::ZERO, NOW);
    assert_eq!(nothing_held.map(|_| ()).map_err(|d| d.code()), Err("NO_POSITION"));
}

#[test]
fn protection_up_to_the_held_quantity_is_approved() {
    let approved = approve_protection(protective("0.5"), q("0.5"), NOW).expect("approved");
    assert_eq!(*approved.inner(), protective("0.5"));
    assert_eq!(approved.approved_at_ms(), NOW);
}

#[test]
fn protection_refuses_more_than_is_held() {
    let denial = approve_protection(protective("0.6"), q("0.5"), NOW).expect_err("too much");
    assert_eq!(
        denial,
        Denial::NoPosition {
            symbol: sym("BTCUSDT"),
            qty: q("0.6"),
            position: q("0.5")
        }
    );
}
