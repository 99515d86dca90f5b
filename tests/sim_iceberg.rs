//! Iceberg orders on the local exchange, after Binance's rest-api.md (`icebergQty`),
//! filters.md (`ICEBERG_PARTS`, `LOT_SIZE` on the visible part) and errors.md: only resting
//! limit-type orders with GTC, the visible part alone in the book, refilled from the hidden
//! rest as it trades, one trade per part.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use client::{Client, dec, start, still_config};
use crbot::exchange::sim::SimHandle;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn setup() -> (SimHandle, Client) {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", d("100000")).unwrap();
    h.deposit("BTC", d("1")).unwrap();
    let c = Client::new(&h);
    (h, c)
}

/// The quantity the book shows at `price` on `side` ("bids"/"asks").
async fn shown(c: &Client, side: &str, price: Decimal) -> Decimal {
    let book = c
        .public("/api/v3/depth", &[("symbol", "BTCUSDT"), ("limit", "5000")])
        .await
        .body;
    book[side]
        .as_array()
        .unwrap_or_else(|| panic!("{book}"))
        .iter()
        .find(|l| dec(&l[0]) == price)
        .map(|l| dec(&l[1]))
        .unwrap_or_default()
}

async fn best_ask(c: &Client) -> Decimal {
    let book = c.public("/api/v3/depth", &[("symbol", "BTCUSDT")]).await.body;
    dec(&book["asks"][0][0])
}

/// A GTC sell of 0.05 at the best ask that shows 0.02 at a time: the best ask, what the
/// synthetic book showed there before it, and the answer.
async fn iceberg_sell_at_ask(c: &Client) -> (Decimal, Decimal, Value) {
    let a = best_ask(c).await;
    let synthetic = shown(c, "asks", a).await;
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.05"),
            ("price", &a.to_string()),
            ("icebergQty", "0.02"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (a, synthetic, r.body)
}

#[tokio::test]
async fn exchange_info_allows_icebergs_and_lists_the_iceberg_parts_filter() {
    let (h, c) = setup().await;
    let info = c
        .public("/api/v3/exchangeInfo", &[("symbol", "BTCUSDT")])
        .await
        .body;
    let s = &info["symbols"][0];
    assert_eq!(s["icebergAllowed"], true);
    let f: Vec<&Value> = s["filters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["filterType"] == "ICEBERG_PARTS")
        .collect();
    assert_eq!(f, [&json!({"filterType": "ICEBERG_PARTS", "limit": 100})]);
    h.shutdown().await;
}

#[tokio::test]
async fn only_the_visible_part_is_in_the_book_and_it_refills_as_it_trades() {
    let (h, c) = setup().await;
    let (a, synthetic, r) = iceberg_sell_at_ask(&c).await;
    assert_eq!(r["icebergQty"], "0.02000000");
    let id = r["orderId"].to_string();
    assert_eq!(shown(&c, "asks", a).await, synthetic + d("0.02"));
    // The whole order is locked, not only the visible part.
    assert_eq!(c.balance("BTC").await.1, d("0.05"));

    // A buy of 0.03 meets the iceberg first (same price, the account's own order; self-trade
    // prevention NONE asked): one trade per part.
    let t = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "IOC"),
            ("quantity", "0.03"),
            ("price", &a.to_string()),
            ("selfTradePreventionMode", "NONE"),
        ])
        .await;
    assert_eq!(t.body["status"], "FILLED", "{}", t.body);
    let trades = c
        .signed(
            "GET",
            "/api/v3/myTrades",
            &[("symbol", "BTCUSDT"), ("orderId", &id)],
        )
        .await
        .body;
    let qtys: Vec<Decimal> = trades
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["qty"]))
        .collect();
    assert_eq!(qtys, [d("0.02"), d("0.01")]);
    let o = c
        .signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)])
        .await
        .body;
    assert_eq!(
        (&o["status"], &o["icebergQty"]),
        (&json!("PARTIALLY_FILLED"), &json!("0.02000000"))
    );
    // What is left of the current part is shown: 0.01 of it traded.
    assert_eq!(shown(&c, "asks", a).await, synthetic + d("0.01"));
    h.shutdown().await;
}

#[tokio::test]
async fn icebergs_outside_the_rules_are_refused() {
    let (h, c) = setup().await;
    let order = |tif: Option<&'static str>, kind: &'static str, qty: &'static str, part: &'static str| {
        let mut p = vec![
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", kind),
            ("quantity", qty),
            ("icebergQty", part),
        ];
        if kind != "MARKET" {
            p.push(("price", "90000"));
        }
        if let Some(t) = tif {
            p.push(("timeInForce", t));
        }
        p
    };
    for (p, code, msg) in [
        (
            order(Some("IOC"), "LIMIT", "0.05", "0.01"),
            -2010,
            "Unsupported order combination",
        ),
        (
            order(None, "MARKET", "0.05", "0.01"),
            -2010,
            "Unsupported order combination",
        ),
        (
            order(Some("GTC"), "LIMIT", "0.05", "0.05"),
            -2010,
            "IcebergQty exceeds QTY.",
        ),
        (
            order(Some("GTC"), "LIMIT", "0.05", "0.0001"),
            -1013,
            "Filter failure: ICEBERG_PARTS",
        ),
        (
            order(Some("GTC"), "LIMIT", "0.05", "0.000001"),
            -1013,
            "Filter failure: LOT_SIZE",
        ),
    ] {
        let r = c.order(&p).await;
        assert_eq!((r.code(), r.body["msg"].as_str().unwrap()), (code, msg), "{p:?}");
    }
    // LIMIT_MAKER takes no time in force and may be an iceberg.
    let mut maker = order(None, "LIMIT_MAKER", "0.05", "0.01");
    maker.push(("newOrderRespType", "RESULT"));
    let r = c.order(&maker).await;
    assert_eq!(
        (r.status, &r.body["icebergQty"]),
        (200, &json!("0.01000000")),
        "{}",
        r.body
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_oco_leg_may_be_an_iceberg_with_gtc_only() {
    let (h, c) = setup().await;
    let oco = |tif: &'static str| {
        vec![
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("quantity", "0.05"),
            ("aboveType", "LIMIT_MAKER"),
            ("abovePrice", "102000"),
            ("aboveIcebergQty", "0.01"),
            ("belowType", "STOP_LOSS_LIMIT"),
            ("belowStopPrice", "98000"),
            ("belowPrice", "97900"),
            ("belowTimeInForce", tif),
            ("belowIcebergQty", "0.01"),
        ]
    };
    let r = c.signed("POST", "/api/v3/orderList/oco", &oco("IOC")).await;
    assert_eq!(r.code(), -1160, "{}", r.body);
    let r = c.signed("POST", "/api/v3/orderList/oco", &oco("GTC")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let parts: Vec<&Value> = r.body["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["icebergQty"])
        .collect();
    assert_eq!(parts, [&json!("0.01000000"); 2]);
    assert_eq!(shown(&c, "asks", d("102000")).await, d("0.01"));
    h.shutdown().await;
}

#[tokio::test]
async fn the_partial_depth_stream_shows_the_visible_part_too() {
    use futures_util::StreamExt;
    let (h, c) = setup().await;
    let (a, synthetic, _) = iceberg_sell_at_ask(&c).await;
    let url = format!("{}/ws/btcusdt@depth5@100ms", h.ws_url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            break serde_json::from_str::<Value>(t.as_str()).unwrap();
        }
    };
    let top = &frame["asks"][0];
    assert_eq!(
        (dec(&top[0]), dec(&top[1])),
        (a, synthetic + d("0.02")),
        "{frame}"
    );
    h.shutdown().await;
}
