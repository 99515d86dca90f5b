//! Matching engine and account of the local exchange, driven over REST with prices moved by
//! the control endpoint: each order type, partial fills, OCO legs, commissions, balances.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use client::{Client, dec, start, still_config};
use rust_decimal::Decimal;
use serde_json::Value;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn setup() -> (crbot::exchange::sim::SimHandle, Client) {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    (h, c)
}

async fn deposit(c: &Client, asset: &str, amount: &str) {
    let r = c
        .control("balance", &serde_json::json!({"asset": asset, "delta": amount}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn set_price(c: &Client, symbol: &str, price: &str) {
    let r = c
        .control("price", &serde_json::json!({"symbol": symbol, "price": price}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn order_status(c: &Client, id: &Value) -> Value {
    c.signed(
        "GET",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("orderId", &id.to_string())],
    )
    .await
    .body
}

#[tokio::test]
async fn market_buy_pays_commission_in_base_and_sell_in_quote() {
    let (h, c) = setup().await;
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.01"),
        ])
        .await;
    assert_eq!(r.body["status"], "FILLED", "{}", r.body);
    let fills = r.body["fills"].as_array().unwrap();
    let qty: Decimal = fills.iter().map(|f| dec(&f["qty"])).sum();
    let cost: Decimal = fills.iter().map(|f| dec(&f["qty"]) * dec(&f["price"])).sum();
    assert_eq!(qty, d("0.01"));
    assert_eq!(dec(&r.body["cummulativeQuoteQty"]), cost);
    assert!(fills.iter().all(|f| f["commissionAsset"] == "BTC"));
    assert_eq!(c.balance("BTC").await.0, d("0.00999"));
    assert_eq!(c.balance("USDT").await.0, Decimal::from(10_000) - cost);

    let s = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "MARKET"),
            ("quantity", "0.005"),
        ])
        .await;
    assert_eq!(s.body["status"], "FILLED");
    let got: Decimal = s.body["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| dec(&f["qty"]) * dec(&f["price"]))
        .sum();
    let fee: Decimal = s.body["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| dec(&f["commission"]))
        .sum();
    assert_eq!(fee, (got * d("0.001")).round_dp(8));
    assert_eq!(s.body["fills"][0]["commissionAsset"], "USDT");
    assert_eq!(c.balance("BTC").await.0, d("0.00499"));
    assert_eq!(
        c.balance("USDT").await.0,
        Decimal::from(10_000) - cost + got - fee
    );

    let trades = c
        .signed("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT")])
        .await
        .body;
    let ids: Vec<u64> = trades
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(trades[0]["isBuyer"], true);
    let by_order = c
        .signed(
            "GET",
            "/api/v3/myTrades",
            &[("symbol", "BTCUSDT"), ("orderId", &s.body["orderId"].to_string())],
        )
        .await
        .body;
    assert!(by_order.as_array().unwrap().iter().all(|t| t["isBuyer"] == false));
    let from = c
        .signed(
            "GET",
            "/api/v3/myTrades",
            &[("symbol", "BTCUSDT"), ("fromId", &ids[ids.len() - 1].to_string())],
        )
        .await;
    assert_eq!(from.body.as_array().unwrap().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn quote_order_qty_market_buy_spends_about_the_quote_amount() {
    let (h, c) = setup().await;
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quoteOrderQty", "500"),
        ])
        .await;
    assert_eq!(r.body["status"], "FILLED", "{}", r.body);
    let spent = dec(&r.body["cummulativeQuoteQty"]);
    assert!(spent <= d("500") && spent > d("498"), "{spent}");
    assert_eq!(dec(&r.body["origQuoteOrderQty"]), d("500"));
    h.shutdown().await;
}

#[tokio::test]
async fn resting_limit_buy_fills_as_maker_when_the_price_crosses_it() {
    let (h, c) = setup().await;
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "99000"),
        ])
        .await;
    assert_eq!(r.body["status"], "NEW");
    assert_eq!(c.balance("USDT").await, (d("9010"), d("990")));
    set_price(&c, "BTCUSDT", "98000").await;
    let o = order_status(&c, &r.body["orderId"]).await;
    assert_eq!(o["status"], "FILLED");
    assert_eq!(dec(&o["cummulativeQuoteQty"]), d("990"));
    assert_eq!(c.balance("USDT").await, (d("9010"), Decimal::ZERO));
    assert_eq!(c.balance("BTC").await.0, d("0.00999"));
    let t = c
        .signed("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT")])
        .await
        .body;
    assert_eq!(t[0]["isMaker"], true);
    assert_eq!(dec(&t[0]["price"]), d("99000"));
    h.shutdown().await;
}

#[tokio::test]
async fn ioc_and_fok_expire_what_cannot_fill_now() {
    let (h, c) = setup().await;
    let ioc = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "IOC"),
            ("quantity", "0.01"),
            ("price", "90000"),
        ])
        .await;
    assert_eq!(ioc.body["status"], "EXPIRED");
    assert_eq!(dec(&ioc.body["executedQty"]), Decimal::ZERO);
    let fok_ok = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "FOK"),
            ("quantity", "0.01"),
            ("price", "100100"),
        ])
        .await;
    assert_eq!(fok_ok.body["status"], "FILLED");
    deposit(&c, "USDT", "100000000").await;
    let fok_big = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "FOK"),
            ("quantity", "80"),
            ("price", "100100"),
        ])
        .await;
    assert_eq!(fok_big.body["status"], "EXPIRED");
    assert_eq!(dec(&fok_big.body["executedQty"]), Decimal::ZERO);
    assert_eq!(c.balance("USDT").await.1, Decimal::ZERO);
    h.shutdown().await;
}

#[tokio::test]
async fn market_order_larger_than_the_book_partially_fills_then_expires() {
    let (h, c) = setup().await;
    deposit(&c, "USDT", "100000000").await;
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "800"),
        ])
        .await;
    assert_eq!(r.body["status"], "EXPIRED", "{}", r.body);
    let done = dec(&r.body["executedQty"]);
    assert!(done > Decimal::ZERO && done < d("800"));
    assert!(r.body["fills"].as_array().unwrap().len() > 1);
    h.shutdown().await;
}

#[tokio::test]
async fn limit_maker_rests_and_stop_loss_triggers_on_the_move() {
    let (h, c) = setup().await;
    c.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.05"),
    ])
    .await;
    let btc = c.balance("BTC").await.0;
    assert_eq!(btc, d("0.04995"));
    let sl = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "STOP_LOSS"),
            ("quantity", "0.04"),
            ("stopPrice", "95000"),
        ])
        .await;
    assert!(sl.body["orderId"].is_u64(), "{}", sl.body);
    assert!(
        sl.body.get("status").is_none(),
        "ACK is the default for stop orders"
    );
    let o = order_status(&c, &sl.body["orderId"]).await;
    assert_eq!(
        (o["status"].as_str(), o["isWorking"].as_bool()),
        (Some("NEW"), Some(false))
    );
    assert_eq!(c.balance("BTC").await, (d("0.00995"), d("0.04")));
    set_price(&c, "BTCUSDT", "94000").await;
    let o = order_status(&c, &sl.body["orderId"]).await;
    assert_eq!(o["status"], "FILLED");
    assert_eq!(c.balance("BTC").await, (d("0.00995"), Decimal::ZERO));

    let lm = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "LIMIT_MAKER"),
            ("quantity", "0.005"),
            ("price", "96000"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(lm.body["status"], "NEW");
    set_price(&c, "BTCUSDT", "97000").await;
    assert_eq!(order_status(&c, &lm.body["orderId"]).await["status"], "FILLED");
    h.shutdown().await;
}

#[tokio::test]
async fn take_profit_limit_buy_becomes_a_limit_order_when_triggered() {
    let (h, c) = setup().await;
    let tp = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "TAKE_PROFIT_LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("stopPrice", "95000"),
            ("price", "94000"),
        ])
        .await;
    assert!(tp.body["orderId"].is_u64(), "{}", tp.body);
    assert_eq!(c.balance("USDT").await.1, d("940"));
    set_price(&c, "BTCUSDT", "94500").await;
    let o = order_status(&c, &tp.body["orderId"]).await;
    assert_eq!(
        (o["status"].as_str(), o["isWorking"].as_bool()),
        (Some("NEW"), Some(true))
    );
    set_price(&c, "BTCUSDT", "93000").await;
    assert_eq!(order_status(&c, &tp.body["orderId"]).await["status"], "FILLED");
    h.shutdown().await;
}

fn oco_params(qty: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("quantity", qty),
        ("aboveType", "LIMIT_MAKER"),
        ("abovePrice", "110000"),
        ("belowType", "STOP_LOSS_LIMIT"),
        ("belowStopPrice", "90000"),
        ("belowPrice", "89000"),
        ("belowTimeInForce", "GTC"),
        ("listClientOrderId", "oco-1"),
    ]
}

#[tokio::test]
async fn oco_legs_cancel_each_other() {
    let (h, c) = setup().await;
    c.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.05"),
    ])
    .await;
    let r = c
        .signed("POST", "/api/v3/orderList/oco", &oco_params("0.02"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["contingencyType"], "OCO");
    assert_eq!(r.body["listStatusType"], "EXEC_STARTED");
    assert_eq!(r.body["orderReports"].as_array().unwrap().len(), 2);
    assert_eq!(c.balance("BTC").await.1, d("0.02"));
    let open = c.signed("GET", "/api/v3/openOrderList", &[]).await;
    assert_eq!(open.body.as_array().unwrap().len(), 1);
    // Cancelling one leg cancels the list.
    let leg = r.body["orders"][0]["orderId"].to_string();
    let x = c
        .signed(
            "DELETE",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", &leg)],
        )
        .await;
    assert_eq!(x.body["status"], "CANCELED", "{}", x.body);
    for o in r.body["orders"].as_array().unwrap() {
        assert_eq!(order_status(&c, &o["orderId"]).await["status"], "CANCELED");
    }
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);

    // A fill of the limit-maker leg expires the stop leg.
    let mut p = oco_params("0.02");
    p.retain(|(k, _)| *k != "listClientOrderId");
    let r = c.signed("POST", "/api/v3/orderList/oco", &p).await;
    set_price(&c, "BTCUSDT", "111000").await;
    let stop = order_status(&c, &r.body["orders"][0]["orderId"]).await;
    let limit = order_status(&c, &r.body["orders"][1]["orderId"]).await;
    assert_eq!(limit["status"], "FILLED");
    assert_eq!(stop["status"], "EXPIRED");
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);
    let open = c.signed("GET", "/api/v3/openOrderList", &[]).await;
    assert_eq!(open.body, serde_json::json!([]));
    // Bad price relationship.
    let mut bad = oco_params("0.01");
    bad[4] = ("abovePrice", "100000");
    let r = c.signed("POST", "/api/v3/orderList/oco", &bad).await;
    assert_eq!(r.code(), -2010);
    h.shutdown().await;
}

#[tokio::test]
async fn cancel_all_returns_orders_and_order_lists() {
    let (h, c) = setup().await;
    c.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.05"),
    ])
    .await;
    c.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01"),
        ("price", "90000"),
    ])
    .await;
    c.signed("POST", "/api/v3/orderList/oco", &oco_params("0.02"))
        .await;
    let r = c
        .signed("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await;
    let items = r.body.as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.body);
    assert!(
        items
            .iter()
            .any(|i| i["orderListId"] == -1 && i["status"] == "CANCELED")
    );
    assert!(
        items
            .iter()
            .any(|i| i["contingencyType"] == "OCO" && i["orderReports"].as_array().unwrap().len() == 2)
    );
    let open = c.signed("GET", "/api/v3/openOrders", &[]).await;
    assert_eq!(open.body, serde_json::json!([]));
    assert_eq!(c.balance("USDT").await.1, Decimal::ZERO);
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);
    h.shutdown().await;
}

#[tokio::test]
async fn stop_loss_limit_and_take_profit_sells_trigger_on_the_last_price() {
    let (h, c) = setup().await;
    deposit(&c, "BTC", "0.02").await;
    let sl = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "STOP_LOSS_LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("stopPrice", "95000"),
            ("price", "94500"),
        ])
        .await;
    // Not MARKET or LIMIT: ACK by default.
    assert_eq!(sl.body.get("status"), None, "{}", sl.body);
    let tp = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "TAKE_PROFIT"),
            ("quantity", "0.01"),
            ("stopPrice", "105000"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(
        (tp.body["status"].as_str(), tp.body["workingTime"].as_i64()),
        (Some("NEW"), Some(-1)),
        "{}",
        tp.body
    );
    assert_eq!(c.balance("BTC").await, (Decimal::ZERO, d("0.02")));
    set_price(&c, "BTCUSDT", "95500").await;
    let o = order_status(&c, &sl.body["orderId"]).await;
    assert_eq!(
        (o["status"].as_str(), o["isWorking"].as_bool()),
        (Some("NEW"), Some(false))
    );
    set_price(&c, "BTCUSDT", "94900").await;
    let o = order_status(&c, &sl.body["orderId"]).await;
    assert_eq!(o["status"], "FILLED", "{o}");
    // A limit sell fills at its limit or better.
    assert!(dec(&o["cummulativeQuoteQty"]) >= d("945"), "{o}");
    set_price(&c, "BTCUSDT", "105000").await;
    assert_eq!(order_status(&c, &tp.body["orderId"]).await["status"], "FILLED");
    assert_eq!(c.balance("BTC").await, (Decimal::ZERO, Decimal::ZERO));
    h.shutdown().await;
}

#[tokio::test]
async fn quote_amounts_and_pegs_are_refused_where_binance_refuses_them() {
    let (h, c) = setup().await;
    let limit = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "90000"),
            ("quoteOrderQty", "900"),
        ])
        .await;
    assert_eq!((limit.status, limit.code()), (400, -1106), "{}", limit.body);
    let peg = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "90000"),
            ("pegPriceType", "PRIMARY_PEG"),
        ])
        .await;
    assert_eq!(
        peg.body,
        serde_json::json!({"code": -2010, "msg": "Pegged orders are not supported for this symbol."})
    );
    assert_eq!(c.balance("USDT").await.1, Decimal::ZERO);
    h.shutdown().await;
}
