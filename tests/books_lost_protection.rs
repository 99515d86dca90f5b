//! Lost protection end to end (`Runtime::run` against the local exchange, no screen): crbot
//! buys with a stop-loss and a take-profit; a taker of the same account, sent straight to the
//! exchange's REST with `selfTradePreventionMode=EXPIRE_MAKER` (what Binance applies to a
//! taker that names no mode), crosses the resting take-profit, which the exchange expires
//! `EXPIRED_IN_MATCH`. crbot's snapshot then shows the position unprotected and the protection
//! it lost; the trader's re-protection (`Command::Reprotect`, what the screen's `y` and
//! `:protect` send) puts a new OCO on the exchange and NO STOP goes away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::{LocalOrderState, OrderPurpose, OrderStatus};
use crbot::engine::snapshot::{Command, Snapshot};
use engine_support::*;
use rust_decimal::Decimal;

const WAIT: Duration = Duration::from_secs(10);

fn working_legs(s: &Snapshot) -> usize {
    s.orders
        .iter()
        .filter(|o| {
            o.symbol.as_str() == BTC
                && o.purpose.is_protective()
                && o.state == LocalOrderState::Exchange(OrderStatus::New)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_profit_expired_by_self_trade_prevention_is_shown_lost_and_re_protected_on_request() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a protected BTC position", |s| {
        working_legs(s) == 2
    })
    .await;
    let tp = s
        .orders
        .iter()
        .find(|o| o.symbol.as_str() == BTC && o.purpose == OrderPurpose::TakeProfit)
        .unwrap()
        .clone();
    let sl = s
        .orders
        .iter()
        .find(|o| o.symbol.as_str() == BTC && o.purpose == OrderPurpose::StopLoss)
        .unwrap()
        .clone();
    let tp_price = tp.price.unwrap().value();

    // The market rises to just under the take-profit (a few synthetic asks left below it),
    // and the trader buys from another app on the same account: the buy sweeps those asks and
    // then meets crbot's own take-profit, which EXPIRE_MAKER expires instead of trading.
    ex.sim.deposit("USDT", dec("500000")).unwrap();
    ex.sim.set_price(BTC, tp_price - dec("0.06")).unwrap();
    let price = tp_price.to_string();
    let r = ex
        .raw
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", BTC),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "IOC"),
                ("quantity", "3"),
                ("price", &price),
                ("selfTradePreventionMode", "EXPIRE_MAKER"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "the trader's taker: {}", r.body);
    let tp_on_exchange = ex
        .raw
        .signed(
            "GET",
            "/api/v3/order",
            &[
                ("symbol", BTC),
                ("origClientOrderId", tp.client_order_id.as_str()),
            ],
        )
        .await;
    assert_eq!(
        tp_on_exchange.body["status"], "EXPIRED_IN_MATCH",
        "{}",
        tp_on_exchange.body
    );

    // The list does not go on with one leg gone: the exchange ends the stop-loss with it.
    let sl_on_exchange = ex
        .raw
        .signed(
            "GET",
            "/api/v3/order",
            &[
                ("symbol", BTC),
                ("origClientOrderId", sl.client_order_id.as_str()),
            ],
        )
        .await;
    assert_eq!(
        sl_on_exchange.body["status"], "EXPIRED",
        "{}",
        sl_on_exchange.body
    );

    let s = wait_snapshot(&mut c.snap, WAIT, "the protection shown lost", |s| {
        !s.lost_protection.is_empty()
    })
    .await;
    assert!(s.unprotected().iter().any(|x| x.as_str() == BTC), "NO STOP");
    let lost = s.lost_protection[0].clone();
    assert_eq!(lost.symbol.as_str(), BTC);
    assert_eq!(lost.leg, OrderPurpose::TakeProfit);
    assert_eq!(lost.status, OrderStatus::ExpiredInMatch);
    assert_eq!(lost.take_profit, tp.price.unwrap());
    assert_eq!(lost.stop_loss, sl.stop_price.unwrap());
    assert_eq!(lost.qty, Some(tp.qty), "the same quantity again");
    assert!(
        logged(&s, "protection lost") && logged(&s, "position unprotected"),
        "{:#?}",
        s.log.iter().map(|l| &l.text).collect::<Vec<_>>()
    );
    assert_eq!(working_legs(&s), 0, "nothing re-placed by itself");

    // The market is now at the old take-profit: the trader re-protects (`:protect BTCUSDT SL
    // TP`) at the lost stop-loss and a take-profit above where the market is now.
    let (_, ask_now) = ex.book(BTC).await;
    let ask_now = ask_now.value();
    wait_snapshot(&mut c.snap, WAIT, "crbot's quote at the new market", |s| {
        s.watchlist
            .iter()
            .any(|w| w.symbol.as_str() == BTC && w.ask.is_some_and(|a| a.value() > tp_price - dec("1")))
    })
    .await;
    let take_profit: crbot::domain::Price = (ask_now * dec("1.03")).round_dp(2).to_string().parse().unwrap();
    c.send(Command::Reprotect {
        symbol: lost.symbol.clone(),
        stop_loss: lost.stop_loss,
        take_profit,
    })
    .await;
    let s = wait_snapshot(&mut c.snap, WAIT, "a new OCO working, or a refusal", |s| {
        (working_legs(s) == 2 && s.lost_protection.is_empty())
            || logged(s, "REJECTED re-protection")
            || logged(s, "protective OCO rejected")
    })
    .await;
    assert_eq!(
        working_legs(&s),
        2,
        "{:#?}",
        s.log.iter().rev().take(12).map(|l| &l.text).collect::<Vec<_>>()
    );
    assert!(s.unprotected().is_empty(), "NO STOP goes away");
    let open: Vec<_> = ex
        .open_orders()
        .await
        .into_iter()
        .filter(|o| o["symbol"] == BTC)
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(
        open.iter().all(|o| o["orderListId"].as_i64().unwrap_or(-1) >= 0),
        "{open:?}"
    );
    let quantities: Vec<Decimal> = open
        .iter()
        .map(|o| o["origQty"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(quantities.iter().all(|q| *q == tp.qty.value()), "{quantities:?}");
    let decision = &c.journal().recent_risk_events(1).unwrap()[0].record;
    assert!(
        decision.approved && decision.reason.contains("re-protection"),
        "{decision:?}"
    );
    c.stop().await;
}
