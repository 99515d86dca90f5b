//! Protection covers crbot's whole position and only it, end to end: the built `crbot` binary
//! against a local exchange started in this test (a market that does not move by itself; the
//! test moves prices), as a user would run `crbot order` in a shell next to `crbot sim`.
//!
//! The audit's three repros: leftovers that block a symbol for good (dust), re-protection
//! sized from the free balance (the user's own BNB sold), and a stop the market has already
//! crossed when the protection is placed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod cli;
}

use std::time::Duration;

use crbot::domain::{Mode, OrderPurpose, OrderType};
use crbot::exchange::sim::SimConfig;
use crbot::journal::Journal;
use rust_decimal::Decimal;
use serde_json::Value;

/// The shared harness, with this file's extras.
struct Exchange(support::cli::CliExchange);

impl std::ops::Deref for Exchange {
    type Target = support::cli::CliExchange;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Exchange {
    /// A still market (prices move only when the test says) with the given commission rate.
    fn start(commission: &str) -> Exchange {
        let mut cli = support::cli::CliExchange::start(SimConfig {
            step_interval: Duration::from_secs(3600),
            commission_rate: dec(commission),
            ..SimConfig::default()
        });
        // One BNB (≈ 652 USDT) is more than 5 % of the sim's ≈ 10 300 USDT equity.
        cli.env.push(("MAX_POSITION_SIZE_PERCENT", "10".into()));
        Exchange(cli)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "crbot {args:?} failed:\n{out}\n{err}");
        format!("{out}\n{err}")
    }

    fn open_orders(&self) -> Vec<crbot::domain::broker::OrderReport> {
        self.rt.block_on(self.rest().open_orders(None)).unwrap()
    }

    /// Free + locked of an asset on the exchange.
    fn holding(&self, asset: &str) -> Decimal {
        let account = self.rt.block_on(self.rest().account()).unwrap();
        account
            .balances
            .iter()
            .filter(|b| b.asset.as_str() == asset)
            .map(|b| b.free.value() + b.locked.value())
            .sum()
    }

    fn set_price(&self, symbol: &str, price: &str) {
        self.handle.set_price(symbol, dec(price)).unwrap();
    }

    fn journal(&self) -> Journal {
        Journal::open(&self.home().join("journal-sim.db"), Mode::Sim).unwrap()
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn position<'a>(positions: &'a Value, symbol: &str) -> Option<&'a Value> {
    positions["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == symbol && p["external"] == false)
}

// Audit repro 1: a leftover above the lot step but below the minimum notional used to block
// every new entry on the symbol (DUPLICATE_POSITION) while it could not be sold (NOTIONAL).
#[test]
fn a_leftover_below_the_minimum_notional_is_dust_and_never_blocks_a_new_entry() {
    let ex = Exchange::start("0.00075");
    let entry = |qty: &'static str| {
        [
            "order",
            "buy",
            "BTCUSDT",
            qty,
            "--stop-loss",
            "96000",
            "--take-profit",
            "99000",
        ]
    };
    ex.ok(&entry("0.00835"));
    ex.ok(&["order", "sell", "BTCUSDT", "0.00834"]);
    ex.ok(&entry("0.00087"));
    // The protection covers the whole sellable position (the 0.00087 bought plus what the
    // first round left), not just the last fill net of its commission.
    let positions = ex.json(&["positions"]);
    let btc = position(&positions, "BTCUSDT").expect("a BTCUSDT position");
    let held: Decimal = btc["qty"].as_str().unwrap().parse().unwrap();
    let legs: Vec<_> = ex.open_orders();
    assert_eq!(legs.len(), 2, "{legs:?}");
    for leg in &legs {
        assert!(
            leg.orig_qty.value() <= held,
            "{leg:?} exceeds the position {held}"
        );
        assert!(
            held - leg.orig_qty.value() < dec("0.00001"),
            "{leg:?} leaves more than one lot step of {held} unprotected"
        );
    }

    // The take-profit fills: what is left is below the minimum notional.
    ex.set_price("BTCUSDT", "99500");
    ex.set_price("BTCUSDT", "97250");
    let positions = ex.json(&["positions"]);
    if let Some(btc) = position(&positions, "BTCUSDT") {
        assert_eq!(btc["dust"], true, "the leftover is shown as dust: {btc}");
    }
    let (code, out, err) = ex.run(&entry("0.0001"));
    assert_eq!(
        code, 0,
        "a dust leftover must not block a new entry:\n{out}\n{err}"
    );
    assert!(!out.contains("DUPLICATE_POSITION"), "{out}");
}

// Audit repro 2: re-protection after a resting sell was sized from the free balance, so the
// stop sold the user's own 0.5 BNB.
#[test]
fn protection_after_a_resting_sell_never_covers_the_users_own_holdings() {
    let ex = Exchange::start("0.00075");
    let users_bnb = ex.holding("BNB");
    assert_eq!(
        users_bnb,
        dec("0.5"),
        "the account starts with the user's 0.5 BNB"
    );
    ex.ok(&[
        "order",
        "buy",
        "BNBUSDT",
        "1",
        "--stop-loss",
        "640",
        "--take-profit",
        "670",
    ]);
    assert_eq!(ex.open_orders().len(), 2, "the entry is protected");
    // crbot's position is 0.99925 (1 less the commission); the sell rests above the market.
    let out = ex.ok(&["order", "sell", "BNBUSDT", "0.999", "--limit", "655"]);
    let open = ex.open_orders();
    let protective: Vec<_> = open
        .iter()
        .filter(|o| matches!(o.order_type, OrderType::StopLoss | OrderType::LimitMaker))
        .collect();
    assert!(
        protective.is_empty(),
        "what the resting sell leaves (0.00025) cannot be protected, so nothing is: {open:?}\n{out}"
    );
    // The sell fills, then the market falls through the old stop.
    ex.set_price("BNBUSDT", "656");
    ex.set_price("BNBUSDT", "639");
    let left = ex.holding("BNB");
    assert!(
        left >= users_bnb,
        "crbot sold the user's own BNB: {left} left of the user's {users_bnb}"
    );
    let positions = ex.json(&["positions"]);
    let external = positions["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "BNBUSDT" && p["external"] == true)
        .unwrap_or_else(|| panic!("the user's BNB is listed as external: {positions}"));
    assert_eq!(
        external["qty"].as_str().unwrap().parse::<Decimal>().unwrap(),
        dec("0.5")
    );
}

// Audit repro 2, the sibling: a sell smaller than the free balance (which includes the
// user's BNB) used to leave the OCO holding more than what remained of crbot's position.
#[test]
fn a_partial_sell_moves_the_protection_to_what_is_left_of_the_position() {
    let ex = Exchange::start("0.00075");
    ex.ok(&[
        "order",
        "buy",
        "BNBUSDT",
        "1",
        "--stop-loss",
        "640",
        "--take-profit",
        "670",
    ]);
    ex.ok(&["order", "sell", "BNBUSDT", "0.4"]);
    let open = ex.open_orders();
    assert_eq!(open.len(), 2, "the rest is protected again: {open:?}");
    for leg in &open {
        // 0.99925 − 0.4 = 0.59925, rounded down to the 0.001 step.
        assert_eq!(leg.orig_qty.value(), dec("0.599"), "{leg:?}");
    }
    ex.set_price("BNBUSDT", "639");
    assert!(ex.holding("BNB") >= dec("0.5"), "the stop sold the user's BNB");
}

// Audit repro 2, a third sibling: with crbot's own sell resting for nearly all of its
// position, a further sell could only be paid from the user's BNB. The risk gate refuses it.
#[test]
fn a_sell_beyond_what_crbots_resting_sells_leave_is_refused_and_the_users_coins_stay() {
    let ex = Exchange::start("0.00075");
    ex.ok(&[
        "order",
        "buy",
        "BNBUSDT",
        "1",
        "--stop-loss",
        "640",
        "--take-profit",
        "670",
    ]);
    ex.ok(&["order", "sell", "BNBUSDT", "0.999", "--limit", "655"]);
    let (code, out, err) = ex.run(&["order", "sell", "BNBUSDT", "0.4"]);
    assert_eq!(code, 3, "the sell must be refused:\n{out}\n{err}");
    assert!(out.contains("NO_POSITION"), "{out}");
    // The resting sell fills: what is left is the user's 0.5 and crbot's 0.00025.
    ex.set_price("BNBUSDT", "656");
    assert_eq!(ex.holding("BNB"), dec("0.50025"));
}

// Audit item 3: when the entry fills the market is already through the stop-loss, so the
// exchange refuses the protective OCO. The stop the trader asked for has been hit: crbot
// sells the position at market, journals it as the stop-loss's action, and says why.
#[test]
fn a_stop_already_crossed_when_protection_is_placed_exits_at_market_and_says_so() {
    let ex = Exchange::start("0.001");
    ex.ok(&[
        "order",
        "buy",
        "BTCUSDT",
        "0.001",
        "--limit",
        "96500",
        "--stop-loss",
        "96000",
        "--take-profit",
        "99000",
    ]);
    // The market falls through the limit and the stop while no crbot process runs. (The fill
    // at 96500 becomes the exchange's last price; the second move puts it back under the stop,
    // so the exchange refuses the OCO as Binance does when its stop would trigger at once.)
    ex.set_price("BTCUSDT", "95500");
    ex.set_price("BTCUSDT", "95400");
    let (code, out, err) = ex.run(&["orders"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("stop-loss") && err.contains("at market"),
        "the CLI says the stop was hit and what it did:\n{err}"
    );
    assert!(
        ex.holding("BTC") < dec("0.00001"),
        "the position is sold, not left unprotected"
    );
    assert!(ex.open_orders().is_empty());
    let journal = ex.journal();
    let orders = journal.recent_orders(20).unwrap();
    let exit = orders
        .iter()
        .find(|o| o.purpose == OrderPurpose::StopLoss && o.order_type == OrderType::Market)
        .unwrap_or_else(|| panic!("the market exit is journaled as the stop-loss: {orders:?}"));
    assert!(exit.executed_qty.value() > Decimal::ZERO, "{exit:?}");
    let events = journal.recent_events(20).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.record.kind == "PROTECTION_STOP_HIT" && e.record.detail.contains("96000")),
        "the reason is journaled: {events:?}"
    );
}

// ---- properties: any sequence of fills, resting sells and outside holdings ----------------

mod properties {
    use crbot::domain::{
        Asset, Balance, ClientOrderId, Fill, Filters, LocalOrderState, LotSize, Mode, Notional,
        NotionalFilter, Order, OrderPurpose, OrderStatus, OrderType, Price, PriceFilter, Qty, Quote, Side,
        Symbol, SymbolRules, SymbolStatus, Ticket, TicketKind,
    };
    use crbot::engine::state::EngineState;
    use crbot::exchange::binance::reconcile::{EntryFills, OcoPlan, protective_oco};
    use crbot::risk::{self, Limits, TradingState};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    const NOW: i64 = 1_700_000_000_000;

    fn btc() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    fn rules() -> SymbolRules {
        let lot = LotSize {
            min_qty: Decimal::new(1, 5),
            max_qty: Decimal::from(9000),
            step_size: Decimal::new(1, 5),
        };
        SymbolRules {
            symbol: btc(),
            status: SymbolStatus::Trading,
            base_asset: Asset::new("BTC").unwrap(),
            quote_asset: Asset::usdt(),
            order_types: vec![
                OrderType::Market,
                OrderType::Limit,
                OrderType::LimitMaker,
                OrderType::StopLoss,
            ],
            oco_allowed: true,
            filters: Filters {
                price: Some(PriceFilter {
                    min_price: Decimal::new(1, 2),
                    max_price: Decimal::from(1_000_000),
                    tick_size: Decimal::new(1, 2),
                }),
                lot_size: Some(lot.clone()),
                market_lot_size: Some(lot),
                notional: Some(NotionalFilter {
                    min_notional: Decimal::from(5),
                    apply_min_to_market: true,
                    max_notional: None,
                    apply_max_to_market: false,
                }),
                ..Filters::default()
            },
        }
    }

    /// 1e-8 BTC units.
    fn sats(n: u64) -> Qty {
        Qty::try_new(Decimal::new(n as i64, 8)).unwrap()
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// An entry fill: quantity and commission in BTC (both in 1e-8).
        Buy { qty: u64, fee: u64 },
        /// One of crbot's sells filled (may exceed the position: the excess was external).
        Sell { qty: u64 },
        /// One of crbot's sells rests on the exchange for part of what is unheld (per mille).
        RestingSell { per_mille: u64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u64..2_000_000, 0u64..2_000).prop_map(|(qty, fee)| Step::Buy { qty, fee }),
            (1u64..2_000_000).prop_map(|qty| Step::Sell { qty }),
            (0u64..=1000).prop_map(|per_mille| Step::RestingSell { per_mille }),
        ]
    }

    fn fill(trade_id: u64, side: Side, qty: Qty, fee: Qty, fee_asset: &str) -> Fill {
        Fill {
            symbol: btc(),
            trade_id,
            order_id: trade_id,
            client_order_id: Some(ClientOrderId::new(&format!("p-{trade_id}")).unwrap()),
            side,
            price: "97250".parse().unwrap(),
            qty,
            commission: fee,
            commission_asset: Asset::new(fee_asset).unwrap(),
            time_ms: NOW,
            is_maker: false,
        }
    }

    fn resting_sell(n: u64, qty: Qty) -> Order {
        Order {
            client_order_id: ClientOrderId::new(&format!("rest-{n}")).unwrap(),
            order_id: Some(n),
            order_list_id: None,
            symbol: btc(),
            side: Side::Sell,
            order_type: OrderType::Limit,
            price: Some("99000".parse().unwrap()),
            stop_price: None,
            qty,
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state: LocalOrderState::Exchange(OrderStatus::New),
            purpose: OrderPurpose::Exit,
            created_ms: NOW + n as i64,
            updated_ms: NOW,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn protection_covers_the_unheld_position_rounded_down_and_never_more(
            steps in proptest::collection::vec(step(), 1..12),
            external_sats in 0u64..100_000_000,
            mark in 20_000u32..200_000,
        ) {
            let mut st = EngineState::new(Mode::Sim, Limits::default(), TradingState::Active, NOW);
            st.rules.insert(btc(), rules());
            let mark = Price::try_new(Decimal::from(mark)).unwrap();
            st.on_quote(btc(), Quote { bid: mark, ask: mark, time_ms: NOW });
            let mut id = 0u64;
            for s in &steps {
                id += 1;
                match s {
                    Step::Buy { qty, fee } => {
                        let f = fill(id, Side::Buy, sats(*qty), sats((*fee).min(qty - 1)), "BTC");
                        st.apply_own_fill(&f).unwrap();
                    }
                    Step::Sell { qty } => {
                        st.apply_own_fill(&fill(id, Side::Sell, sats(*qty), Qty::ZERO, "USDT")).unwrap();
                    }
                    Step::RestingSell { per_mille } => {
                        let part = st.unheld_position(&btc()).value() * Decimal::from(*per_mille) / Decimal::from(1000);
                        let qty = rules().round_qty(OrderType::Limit, Qty::try_new(part).unwrap());
                        if !qty.is_zero() {
                            st.upsert_order(resting_sell(id, qty));
                        }
                    }
                }
            }
            let position = st.positions.qty(&btc());
            let held = st.held_by_own_sells(&btc());
            // The account holds crbot's position plus the user's own BTC; resting sells lock part.
            let external = sats(external_sats);
            let total = position.checked_add(external).unwrap();
            st.set_balances([Balance {
                asset: Asset::new("BTC").unwrap(),
                free: total.saturating_sub(held),
                locked: held,
            }], false);
            let unheld = st.unheld_position(&btc());
            let entry_fill = [fill(id + 1, Side::Buy, sats(1), Qty::ZERO, "USDT")];
            let plan = protective_oco(
                &EntryFills { symbol: &btc(), side: Side::Buy, status: OrderStatus::Filled, fills: &entry_fill, position: unheld },
                &rules(),
                Price::try_new(mark.value() * Decimal::new(9, 1)).unwrap(),
                Price::try_new(mark.value() * Decimal::new(12, 1)).unwrap(),
                ["l", "t", "s"].map(|c| ClientOrderId::new(c).unwrap()),
            );
            let rounded = rules().round_qty(OrderType::Limit, st.sellable(&btc()));
            match plan {
                OcoPlan::Place(o) => {
                    prop_assert!(o.qty <= position, "OCO {} > position {}", o.qty, position);
                    let committed = o.qty.checked_add(held).unwrap();
                    prop_assert!(committed <= position, "OCO {} + held {} sells beyond crbot's {}", o.qty, held, position);
                    prop_assert!(o.qty >= rounded, "OCO {} below the sellable position rounded down {}", o.qty, rounded);
                }
                OcoPlan::TooSmall { qty, .. } => {
                    prop_assert!(qty <= position);
                }
                other => prop_assert!(false, "unexpected plan {other:?}"),
            }
            // Rule 6: a dust position never makes a new entry a duplicate.
            if st.is_dust(&btc()) {
                let ticket = Ticket {
                    symbol: btc(),
                    side: Side::Buy,
                    kind: TicketKind::Limit { price: mark },
                    qty: "0.0001".parse().unwrap(),
                    stop_loss: Some(Price::try_new(mark.value() * Decimal::new(9, 1)).unwrap()),
                    take_profit: Some(Price::try_new(mark.value() * Decimal::new(12, 1)).unwrap()),
                };
                let lines = risk::report(&st.limits, &st.risk_context(false), &ticket, NOW);
                let dup = lines.iter().find(|l| l.rule == risk::Rule::DuplicatePosition).unwrap();
                prop_assert!(dup.passed, "dust {} blocked an entry: {}", position, dup.detail);
            }
        }
    }
}
