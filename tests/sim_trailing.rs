//! Trailing stops on the local exchange, after Binance's trailing-stop FAQ and filters.md:
//! `trailingDelta` (BIPS) on the four stop types, with and without `stopPrice`, the
//! `TRAILING_DELTA` filter, and the `trailingDelta`/`trailingTime` fields of the order.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use client::{Client, start, still_config};
use crbot::exchange::sim::SimHandle;
use rust_decimal::Decimal;
use serde_json::{Value, json};

async fn get_order(c: &Client, id: &str) -> Value {
    c.signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", id)])
        .await
        .body
}

fn px(h: &SimHandle, p: &str) {
    h.set_price("BTCUSDT", p.parse::<Decimal>().unwrap()).unwrap();
}

#[tokio::test]
async fn exchange_info_lists_the_trailing_delta_filter_and_orders_outside_it_are_refused() {
    let h = start(still_config()).await;
    px(&h, "40000");
    let c = Client::new(&h);
    let info = c.public("/api/v3/exchangeInfo", &[("symbol", "BTCUSDT")]).await;
    let s = &info.body["symbols"][0];
    assert_eq!(s["allowTrailingStop"], true);
    let f = s["filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filterType"] == "TRAILING_DELTA")
        .unwrap()
        .clone();
    assert_eq!(
        f,
        json!({"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
               "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000})
    );
    let stop = |kind: &'static str, side: &'static str, delta: &'static str| {
        vec![
            ("symbol", "BTCUSDT"),
            ("side", side),
            ("type", kind),
            ("quantity", "0.01"),
            ("trailingDelta", delta),
        ]
    };
    for (kind, side, delta) in [
        ("STOP_LOSS", "BUY", "9"),
        ("TAKE_PROFIT", "SELL", "2001"),
        ("STOP_LOSS", "SELL", "0"),
        ("TAKE_PROFIT", "BUY", "-5"),
    ] {
        let r = c.order(&stop(kind, side, delta)).await;
        assert_eq!(
            (r.status, r.code()),
            (400, -1013),
            "{kind} {side} {delta}: {}",
            r.body
        );
        assert_eq!(r.body["msg"], "Filter failure: TRAILING_DELTA");
    }
    let mut limit = stop("LIMIT", "BUY", "100");
    limit.extend([("timeInForce", "GTC"), ("price", "39000")]);
    let r = c.order(&limit).await;
    assert_eq!(r.code(), -1106, "{}", r.body);
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "STOP_LOSS"),
            ("quantity", "0.01"),
        ])
        .await;
    assert_eq!(r.code(), -1102, "{}", r.body);
    let r = c.order(&stop("STOP_LOSS", "BUY", "10")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // An OCO's trailing leg is not served: refused, never placed as a plain stop.
    h.deposit("BTC", Decimal::ONE).unwrap();
    let r = c
        .signed(
            "POST",
            "/api/v3/orderList/oco",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("quantity", "0.01"),
                ("aboveType", "LIMIT_MAKER"),
                ("abovePrice", "41000"),
                ("belowType", "STOP_LOSS"),
                ("belowStopPrice", "39000"),
                ("belowTrailingDelta", "100"),
            ],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, -2010), "{}", r.body);
    h.shutdown().await;
}

/// The FAQ's scenario E: a STOP_LOSS_LIMIT sell without a stop price tracks from placement.
#[tokio::test]
async fn a_trailing_sell_without_stop_price_triggers_a_delta_below_the_highest_price() {
    let h = start(still_config()).await;
    px(&h, "40000");
    h.deposit("BTC", Decimal::ONE).unwrap();
    let c = Client::new(&h);
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "STOP_LOSS_LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "39000"),
            ("trailingDelta", "700"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["trailingDelta"], 700);
    assert!(
        r.body["trailingTime"].as_i64().unwrap() > 0,
        "tracks from placement"
    );
    let id = r.body["orderId"].as_u64().unwrap().to_string();
    for p in ["42000", "39500", "45500", "42316"] {
        px(&h, p);
        let o = get_order(&c, &id).await;
        assert_eq!(
            (&o["status"], &o["isWorking"]),
            (&json!("NEW"), &json!(false)),
            "at {p}"
        );
    }
    assert_eq!(get_order(&c, &id).await["trailingDelta"], 700);
    // 45,500 × 0.93 = 42,315: the order triggers and sells at or above its limit.
    px(&h, "42315");
    let o = get_order(&c, &id).await;
    assert_eq!(o["status"], "FILLED", "{o}");
    h.shutdown().await;
}

/// The FAQ's scenario A: a STOP_LOSS_LIMIT buy starts tracking when its stop price is reached.
#[tokio::test]
async fn a_trailing_buy_with_stop_price_tracks_from_the_stop_and_triggers_a_delta_above_the_low() {
    let h = start(still_config()).await;
    px(&h, "40000");
    let c = Client::new(&h);
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "STOP_LOSS_LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "45000"),
            ("stopPrice", "44000"),
            ("trailingDelta", "500"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["orderId"].as_u64().unwrap().to_string();
    assert_eq!(get_order(&c, &id).await["trailingTime"], -1);
    // 7.5 % down before the stop is reached: ignored.
    px(&h, "37000");
    assert_eq!(get_order(&c, &id).await["trailingTime"], -1);
    px(&h, "44000");
    let o = get_order(&c, &id).await;
    assert!(o["trailingTime"].as_i64().unwrap() > 0, "tracking: {o}");
    for p in ["45000", "46000", "42000", "44099"] {
        px(&h, p);
        assert_eq!(get_order(&c, &id).await["status"], "NEW", "at {p}");
    }
    // 42,000 × 1.05 = 44,100.
    px(&h, "44100");
    let o = get_order(&c, &id).await;
    assert_eq!(o["status"], "FILLED", "{o}");
    assert_eq!(c.balance("USDT").await.1, Decimal::ZERO, "nothing stays locked");
    h.shutdown().await;
}

/// The FAQ's scenario D with a TAKE_PROFIT (market) sell, placed by cancelReplace.
#[tokio::test]
async fn a_trailing_take_profit_placed_by_cancel_replace_sells_at_market_when_it_triggers() {
    let h = start(still_config()).await;
    px(&h, "40000");
    h.deposit("BTC", Decimal::ONE).unwrap();
    let c = Client::new(&h);
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "50000"),
        ])
        .await;
    let old = r.body["orderId"].as_u64().unwrap().to_string();
    let r = c
        .signed(
            "POST",
            "/api/v3/order/cancelReplace",
            &[
                ("symbol", "BTCUSDT"),
                ("cancelReplaceMode", "STOP_ON_FAILURE"),
                ("cancelOrderId", &old),
                ("side", "SELL"),
                ("type", "TAKE_PROFIT"),
                ("quantity", "0.01"),
                ("stopPrice", "42000"),
                ("trailingDelta", "750"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["newOrderResponse"]["orderId"]
        .as_u64()
        .unwrap()
        .to_string();
    for p in ["41500", "39000", "42000", "45000", "44000", "46500", "43012.51"] {
        px(&h, p);
        assert_eq!(get_order(&c, &id).await["status"], "NEW", "at {p}");
    }
    // 46,500 × 0.925 = 43,012.5.
    px(&h, "43012.50");
    let o = get_order(&c, &id).await;
    assert_eq!(
        (&o["status"], &o["type"]),
        (&json!("FILLED"), &json!("TAKE_PROFIT")),
        "{o}"
    );
    assert_eq!(c.balance("BTC").await, (Decimal::new(99, 2), Decimal::ZERO));
    h.shutdown().await;
}
