//! Self-trade prevention on the local exchange, after Binance's STP FAQ (faq/stp_faq.md) and
//! rest-api.md: the account's own resting order met by its own taker; the taker's
//! `selfTradePreventionMode` decides; `EXPIRED_IN_MATCH`, `TRADE_PREVENTION` reports,
//! `preventedMatchId`/`preventedQuantity` and `GET /api/v3/myPreventedMatches`.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;
#[path = "sim_support/user.rs"]
mod user;

use client::{Client, dec, start, still_config};
use crbot::exchange::sim::SimHandle;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use user::UserEvents;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn setup() -> (SimHandle, Client, Decimal) {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", d("100000")).unwrap();
    h.deposit("BTC", d("1")).unwrap();
    let c = Client::new(&h);
    let book = c.public("/api/v3/depth", &[("symbol", "BTCUSDT")]).await.body;
    let ask = dec(&book["asks"][0][0]);
    (h, c, ask)
}

/// A resting sell of 0.01 at `ask` (the best ask: the own order is first at its price).
async fn maker(c: &Client, ask: Decimal) -> String {
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", &ask.to_string()),
        ])
        .await;
    assert_eq!(r.body["status"], "NEW", "{}", r.body);
    r.body["orderId"].to_string()
}

async fn taker(c: &Client, ask: Decimal, mode: &str, tif: &str) -> Value {
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", tif),
            ("quantity", "0.01"),
            ("price", &ask.to_string()),
            ("selfTradePreventionMode", mode),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn get(c: &Client, id: &str) -> Value {
    c.signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", id)])
        .await
        .body
}

#[tokio::test]
async fn exchange_info_lists_the_allowed_modes_and_others_are_refused() {
    let (h, c, ask) = setup().await;
    let info = c
        .public("/api/v3/exchangeInfo", &[("symbol", "BTCUSDT")])
        .await
        .body;
    let s = &info["symbols"][0];
    assert_eq!(s["defaultSelfTradePreventionMode"], "EXPIRE_MAKER");
    assert_eq!(
        s["allowedSelfTradePreventionModes"],
        json!(["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"])
    );
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", &ask.to_string()),
            ("selfTradePreventionMode", "TRANSFER"),
        ])
        .await;
    assert_eq!(r.code(), -1130);
    h.shutdown().await;
}

#[tokio::test]
async fn expire_taker_expires_the_taker_and_records_the_prevented_match() {
    let (h, c, ask) = setup().await;
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    let m = maker(&c, ask).await;
    let t = taker(&c, ask, "EXPIRE_TAKER", "GTC").await;
    assert_eq!(
        (
            &t["status"],
            &t["selfTradePreventionMode"],
            &t["preventedMatchId"],
            &t["preventedQuantity"]
        ),
        (
            &json!("EXPIRED_IN_MATCH"),
            &json!("EXPIRE_TAKER"),
            &json!(1),
            &json!("0.01000000")
        ),
        "{t}"
    );
    assert_eq!(get(&c, &m).await["status"], "NEW");
    let ev = u.wait(|e| e["x"] == "TRADE_PREVENTION").await;
    assert_eq!(
        (&ev["X"], &ev["i"], &ev["v"]),
        (&json!("EXPIRED_IN_MATCH"), &t["orderId"], &json!(1))
    );
    let tid = t["orderId"].to_string();
    let pm = c
        .signed(
            "GET",
            "/api/v3/myPreventedMatches",
            &[("symbol", "BTCUSDT"), ("orderId", &tid)],
        )
        .await
        .body;
    assert_eq!(pm.as_array().unwrap().len(), 1, "{pm}");
    assert_eq!(
        (
            &pm[0]["takerOrderId"],
            &pm[0]["makerOrderId"],
            &pm[0]["selfTradePreventionMode"]
        ),
        (
            &t["orderId"],
            &json!(m.parse::<u64>().unwrap()),
            &json!("EXPIRE_TAKER")
        )
    );
    let by_id = c
        .signed(
            "GET",
            "/api/v3/myPreventedMatches",
            &[("symbol", "BTCUSDT"), ("preventedMatchId", "1")],
        )
        .await
        .body;
    assert_eq!(by_id, pm);
    // The WebSocket API answers the same.
    let ws = u
        .call(
            "pm",
            "myPreventedMatches",
            json!({"symbol": "BTCUSDT", "orderId": t["orderId"]}),
        )
        .await;
    assert_eq!(ws["result"], pm, "{ws}");
    // Nothing traded, and only the resting sell holds funds.
    assert_eq!(c.balance("USDT").await.1, Decimal::ZERO);
    assert_eq!(c.balance("BTC").await.1, d("0.01"));
    h.shutdown().await;
}

#[tokio::test]
async fn expire_maker_expires_the_resting_order_and_the_taker_goes_on() {
    let (h, c, ask) = setup().await;
    let m = maker(&c, ask).await;
    let t = taker(&c, ask, "EXPIRE_MAKER", "GTC").await;
    let mo = get(&c, &m).await;
    assert_eq!(
        (&mo["status"], &mo["preventedQuantity"]),
        (&json!("EXPIRED_IN_MATCH"), &json!("0.01000000")),
        "{mo}"
    );
    // The taker went on against the rest of the book.
    assert_eq!(t["status"], "FILLED", "{t}");
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);
    h.shutdown().await;
}

/// The maker `m` ended by the taker `t` under EXPIRE_MAKER: its status and quantities, its
/// `TRADE_PREVENTION` report, and the prevented match `myPreventedMatches` lists.
async fn assert_maker_expired(c: &Client, u: &mut UserEvents, m: &str, t: &Value, id: u64) {
    let mo = get(c, m).await;
    assert_eq!(
        (
            &mo["status"],
            &mo["executedQty"],
            &mo["preventedMatchId"],
            &mo["preventedQuantity"]
        ),
        (
            &json!("EXPIRED_IN_MATCH"),
            &json!("0.00000000"),
            &json!(id),
            &json!("0.01000000")
        ),
        "{mo}"
    );
    let mid: u64 = m.parse().unwrap();
    let ev = u
        .wait(|e| e["x"] == "TRADE_PREVENTION" && e["i"] == json!(mid))
        .await;
    assert_eq!(
        (&ev["X"], &ev["v"], &ev["A"], &ev["B"], &ev["U"]),
        (
            &json!("EXPIRED_IN_MATCH"),
            &json!(id),
            &json!("0.01000000"),
            &json!("0.01000000"),
            &t["orderId"]
        ),
        "{ev}"
    );
    let pm = c
        .signed(
            "GET",
            "/api/v3/myPreventedMatches",
            &[("symbol", "BTCUSDT"), ("preventedMatchId", &id.to_string())],
        )
        .await
        .body;
    assert_eq!(
        (
            &pm[0]["takerOrderId"],
            &pm[0]["makerOrderId"],
            &pm[0]["selfTradePreventionMode"],
            &pm[0]["makerPreventedQuantity"]
        ),
        (
            &t["orderId"],
            &json!(mid),
            &json!("EXPIRE_MAKER"),
            &json!("0.01000000")
        ),
        "{pm}"
    );
}

/// The account's trades are the taker's alone (the expired maker never traded), and nothing
/// is locked any more.
async fn assert_only_the_taker_traded(c: &Client, t: &Value) {
    let mine = c
        .signed("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT")])
        .await
        .body;
    let rows = mine.as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|x| x["orderId"] == t["orderId"]),
        "{mine}"
    );
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);
}

#[tokio::test]
async fn an_order_naming_no_mode_expires_the_accounts_crossing_order_and_trades_on() {
    let (h, c, ask) = setup().await;
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    let m = maker(&c, ask).await;
    // No selfTradePreventionMode: the symbol's default, EXPIRE_MAKER, applies as if named.
    let t = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", &ask.to_string()),
        ])
        .await
        .body;
    assert_eq!(
        (&t["selfTradePreventionMode"], &t["status"]),
        (&json!("EXPIRE_MAKER"), &json!("FILLED")),
        "{t}"
    );
    assert_maker_expired(&c, &mut u, &m, &t, 1).await;
    // The taker filled against the synthetic book at the same price.
    let fills = t["fills"].as_array().unwrap();
    assert!(fills.iter().all(|f| dec(&f["price"]) == ask), "{t}");
    assert_only_the_taker_traded(&c, &t).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_market_order_on_the_websocket_api_naming_no_mode_expires_the_accounts_order() {
    let (h, c, ask) = setup().await;
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    let m = maker(&c, ask).await;
    let r = u
        .call(
            "mkt",
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02"}),
        )
        .await;
    let t = &r["result"];
    assert_eq!(
        (&t["selfTradePreventionMode"], &t["status"], &t["executedQty"]),
        (&json!("EXPIRE_MAKER"), &json!("FILLED"), &json!("0.02000000")),
        "{r}"
    );
    assert_maker_expired(&c, &mut u, &m, t, 1).await;
    assert_only_the_taker_traded(&c, t).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_stop_naming_no_mode_that_triggers_expires_the_accounts_order_it_meets_first() {
    let (h, c, _) = setup().await;
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    // The synthetic best ask at 101 000 (the book is built from the price alone), then back.
    h.set_price("BTCUSDT", d("101000")).unwrap();
    let book = c.public("/api/v3/depth", &[("symbol", "BTCUSDT")]).await.body;
    let ask_then = dec(&book["asks"][0][0]);
    h.set_price("BTCUSDT", d("100000")).unwrap();
    // The account's sell rests where the ask will be: first at its price, before the book.
    let m = maker(&c, ask_then).await;
    let stop = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "STOP_LOSS"),
            ("quantity", "0.01"),
            ("stopPrice", "100500"),
            ("newOrderRespType", "RESULT"),
        ])
        .await
        .body;
    assert_eq!(stop["status"], "NEW", "{stop}");
    h.set_price("BTCUSDT", d("101000")).unwrap();
    let t = get(&c, &stop["orderId"].to_string()).await;
    assert_eq!(
        (&t["selfTradePreventionMode"], &t["status"]),
        (&json!("EXPIRE_MAKER"), &json!("FILLED")),
        "{t}"
    );
    assert_maker_expired(&c, &mut u, &m, &t, 1).await;
    assert_only_the_taker_traded(&c, &t).await;
    h.shutdown().await;
}

#[tokio::test]
async fn an_order_naming_none_trades_with_the_accounts_order() {
    let (h, c, ask) = setup().await;
    let m = maker(&c, ask).await;
    let t = taker(&c, ask, "NONE", "GTC").await;
    assert_eq!(t["status"], "FILLED", "{t}");
    let mo = get(&c, &m).await;
    assert_eq!(
        (&mo["status"], &mo["executedQty"]),
        (&json!("FILLED"), &json!("0.01000000")),
        "{mo}"
    );
    let pm = c
        .signed(
            "GET",
            "/api/v3/myPreventedMatches",
            &[("symbol", "BTCUSDT"), ("orderId", &m)],
        )
        .await
        .body;
    assert_eq!(pm, json!([]));
    // One trade, booked on both of the account's orders.
    let mine = c
        .signed("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT")])
        .await
        .body;
    let rows = mine.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{mine}");
    assert_eq!(rows[0]["id"], rows[1]["id"]);
    h.shutdown().await;
}

#[tokio::test]
async fn expire_both_expires_both_and_none_trades_with_itself() {
    let (h, c, ask) = setup().await;
    let m = maker(&c, ask).await;
    let t = taker(&c, ask, "EXPIRE_BOTH", "GTC").await;
    assert_eq!(t["status"], "EXPIRED_IN_MATCH");
    assert_eq!(get(&c, &m).await["status"], "EXPIRED_IN_MATCH");
    assert_eq!(
        (c.balance("BTC").await.1, c.balance("USDT").await.1),
        (Decimal::ZERO, Decimal::ZERO)
    );

    let m = maker(&c, ask).await;
    let t = taker(&c, ask, "NONE", "IOC").await;
    assert_eq!(t["status"], "FILLED");
    assert_eq!(get(&c, &m).await["status"], "FILLED");
    // One trade on the tape, a fill on each side of it in the account's trades.
    let mine = c
        .signed("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT")])
        .await
        .body;
    let rows = mine.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{mine}");
    assert_eq!(rows[0]["id"], rows[1]["id"]);
    assert_ne!(rows[0]["isBuyer"], rows[1]["isBuyer"]);
    assert_ne!(rows[0]["isMaker"], rows[1]["isMaker"]);
    let tape = c
        .public("/api/v3/trades", &[("symbol", "BTCUSDT"), ("limit", "5")])
        .await
        .body;
    let with_id = tape
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["id"] == rows[0]["id"])
        .count();
    assert_eq!(with_id, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_quote_order_qty_market_buy_meets_the_accounts_order_by_its_mode() {
    let (h, c, ask) = setup().await;
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    // Naming none: the resting sell expires, the amount buys from the book behind it.
    let m = maker(&c, ask).await;
    let amount = (ask * d("0.02")).round_dp(2).to_string();
    let quote_buy = |mode: Option<&'static str>| {
        let amount = amount.clone();
        let c = &c;
        async move {
            let mut p = vec![
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "MARKET"),
                ("quoteOrderQty", amount.as_str()),
            ];
            if let Some(mode) = mode {
                p.push(("selfTradePreventionMode", mode));
            }
            c.order(&p).await.body
        }
    };
    let t = quote_buy(None).await;
    assert_eq!(
        (&t["selfTradePreventionMode"], &t["status"]),
        (&json!("EXPIRE_MAKER"), &json!("FILLED")),
        "{t}"
    );
    assert_eq!(t["executedQty"], t["origQty"], "{t}");
    assert_maker_expired(&c, &mut u, &m, &t, 1).await;
    assert_only_the_taker_traded(&c, &t).await;

    // EXPIRE_TAKER: the buy stops at the account's sell, first in the book, having bought
    // nothing; what its amount would have bought there is its prevented quantity.
    h.set_price("BTCUSDT", d("100000")).unwrap();
    let book = c.public("/api/v3/depth", &[("symbol", "BTCUSDT")]).await.body;
    let ask = dec(&book["asks"][0][0]);
    let m = maker(&c, ask).await;
    let t = quote_buy(Some("EXPIRE_TAKER")).await;
    let expected =
        (dec(&json!(amount)) / ask).round_dp_with_strategy(5, rust_decimal::RoundingStrategy::ToZero);
    assert_eq!(
        (
            &t["status"],
            dec(&t["executedQty"]),
            dec(&t["origQty"]),
            dec(&t["preventedQuantity"])
        ),
        (&json!("EXPIRED_IN_MATCH"), Decimal::ZERO, expected, expected),
        "{t}"
    );
    assert_eq!(get(&c, &m).await["status"], "NEW");
    h.shutdown().await;
}

/// A protective sell OCO of 0.01 on the account's 1 BTC: a LIMIT_MAKER take-profit at `tp`
/// and a STOP_LOSS far below. Returns the list's id and its two orders' ids (take-profit,
/// stop-loss).
async fn protective_oco(c: &Client, tp: Decimal) -> (Value, String, String) {
    let stop = (tp - d("5000")).to_string();
    let r = c
        .signed(
            "POST",
            "/api/v3/orderList/oco",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("quantity", "0.01"),
                ("aboveType", "LIMIT_MAKER"),
                ("abovePrice", &tp.to_string()),
                ("belowType", "STOP_LOSS"),
                ("belowStopPrice", &stop),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id_of = |kind: &str| {
        r.body["orderReports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == kind)
            .map(|o| o["orderId"].to_string())
            .unwrap()
    };
    (
        r.body["orderListId"].clone(),
        id_of("LIMIT_MAKER"),
        id_of("STOP_LOSS"),
    )
}

/// The market rises to just under the take-profit `tp` and the account buys up to it (IOC,
/// 3 BTC under `mode`): the buy sweeps the few synthetic asks left below and then meets the
/// account's own take-profit.
async fn sweep_to(h: &SimHandle, c: &Client, tp: Decimal, mode: &str) -> Value {
    h.deposit("USDT", d("500000")).unwrap();
    h.set_price("BTCUSDT", tp - d("0.06")).unwrap();
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "IOC"),
            ("quantity", "3"),
            ("price", &tp.to_string()),
            ("selfTradePreventionMode", mode),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn list_status(c: &Client, list_id: &Value) -> Value {
    c.signed(
        "GET",
        "/api/v3/orderList",
        &[("orderListId", &list_id.to_string())],
    )
    .await
    .body
}

#[tokio::test]
async fn an_oco_leg_expired_in_match_takes_the_other_leg_and_the_list_with_it() {
    let (h, c, ask) = setup().await;
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    let tp_price = ask + d("1");
    let (list, tp, sl) = protective_oco(&c, tp_price).await;
    // Binance's default mode, EXPIRE_MAKER, expires the take-profit the buy meets.
    sweep_to(&h, &c, tp_price, "EXPIRE_MAKER").await;
    assert_eq!(get(&c, &tp).await["status"], "EXPIRED_IN_MATCH");
    // As when a leg is cancelled, the list does not go on with one leg: the stop-loss ends too.
    let slo = get(&c, &sl).await;
    assert_eq!(slo["status"], "EXPIRED", "{slo}");
    let l = list_status(&c, &list).await;
    assert_eq!(
        (&l["listStatusType"], &l["listOrderStatus"]),
        (&json!("ALL_DONE"), &json!("ALL_DONE")),
        "{l}"
    );
    let sl_id: u64 = sl.parse().unwrap();
    let ev = u
        .wait(|e| e["e"] == "executionReport" && e["i"] == json!(sl_id) && e["x"] != "NEW")
        .await;
    assert_eq!(
        (&ev["x"], &ev["X"]),
        (&json!("EXPIRED"), &json!("EXPIRED")),
        "{ev}"
    );
    let ev = u.wait(|e| e["e"] == "listStatus" && e["L"] == "ALL_DONE").await;
    assert_eq!(ev["g"], list, "{ev}");
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO, "nothing left locked");
    h.shutdown().await;
}

#[tokio::test]
async fn an_oco_stays_whole_when_the_taker_is_the_one_expired() {
    let (h, c, ask) = setup().await;
    let tp_price = ask + d("1");
    let (list, tp, sl) = protective_oco(&c, tp_price).await;
    let t = sweep_to(&h, &c, tp_price, "EXPIRE_TAKER").await;
    assert_eq!(t["status"], "EXPIRED_IN_MATCH", "{t}");
    assert_eq!(get(&c, &tp).await["status"], "NEW");
    assert_eq!(get(&c, &sl).await["status"], "NEW");
    let l = list_status(&c, &list).await;
    assert_eq!(l["listOrderStatus"], "EXECUTING", "{l}");
    assert_eq!(
        c.balance("BTC").await.1,
        d("0.01"),
        "the list's quantity stays locked"
    );
    h.shutdown().await;
}
