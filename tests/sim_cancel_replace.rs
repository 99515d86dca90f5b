//! `POST /api/v3/order/cancelReplace` on the local exchange, against Binance's rest-api.md:
//! both halves' results, the 409/400 answers with `data`, `-2021`/`-2022`, the checks made
//! before anything is cancelled, and the unfilled order count.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use client::{Client, now_ms, start, still_config, wait_until};
use crbot::exchange::sim::{RateLimits, SimConfig};
use rust_decimal::Decimal;
use serde_json::json;
use std::time::Duration;

const PATH: &str = "/api/v3/order/cancelReplace";

async fn limit_buy(c: &Client, qty: &str, price: &str, cid: &str) -> String {
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", qty),
            ("price", price),
            ("newClientOrderId", cid),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["orderId"].as_u64().unwrap().to_string()
}

async fn open_orders(c: &Client) -> Vec<serde_json::Value> {
    c.signed("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await
        .body
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_successful_cancel_replace_answers_both_orders_and_may_use_the_freed_balance() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    // 9,500 of the 10,000 USDT locked: the replacement (9,600) only fits once the first is gone.
    let id = limit_buy(&c, "0.1", "95000", "first").await;
    let r = c
        .signed(
            "POST",
            PATH,
            &[
                ("symbol", "BTCUSDT"),
                ("cancelReplaceMode", "STOP_ON_FAILURE"),
                ("cancelOrderId", &id),
                ("cancelNewClientOrderId", "cxl-r"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.1"),
                ("price", "96000"),
                ("newClientOrderId", "second"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["cancelResult"], &r.body["newOrderResult"]),
        (&json!("SUCCESS"), &json!("SUCCESS"))
    );
    let cancel = &r.body["cancelResponse"];
    assert_eq!(cancel["status"], "CANCELED");
    assert_eq!(cancel["orderId"].as_u64().unwrap().to_string(), id);
    assert_eq!(
        (&cancel["origClientOrderId"], &cancel["clientOrderId"]),
        (&json!("first"), &json!("cxl-r"))
    );
    let new = &r.body["newOrderResponse"];
    assert_eq!(
        (&new["clientOrderId"], &new["status"]),
        (&json!("second"), &json!("NEW"))
    );
    assert!(
        new["fills"].as_array().unwrap().is_empty(),
        "LIMIT answers FULL: {new}"
    );
    assert_eq!(r.header("x-mbx-order-count-1d"), Some("2".into()));
    assert_eq!(
        c.balance("USDT").await,
        (Decimal::from(400), Decimal::from(9_600))
    );
    let open = open_orders(&c).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["clientOrderId"], "second");
    // By client order id, with cancelRestrictions honoured like DELETE /api/v3/order.
    let r = c
        .signed(
            "POST",
            PATH,
            &[
                ("symbol", "BTCUSDT"),
                ("cancelReplaceMode", "STOP_ON_FAILURE"),
                ("cancelOrigClientOrderId", "second"),
                ("cancelRestrictions", "ONLY_PARTIALLY_FILLED"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.01"),
                ("price", "96000"),
            ],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, -2022), "{}", r.body);
    assert_eq!(r.body["data"]["cancelResponse"]["code"], -2011);
    assert_eq!(r.body["data"]["newOrderResult"], "NOT_ATTEMPTED");
    assert_eq!(open_orders(&c).await.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_failed_cancel_stops_or_goes_on_by_cancel_replace_mode() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let new_order = |mode: &'static str| {
        vec![
            ("symbol", "BTCUSDT"),
            ("cancelReplaceMode", mode),
            ("cancelOrderId", "777"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "95000"),
            ("newOrderRespType", "ACK"),
        ]
    };
    let r = c.signed("POST", PATH, &new_order("STOP_ON_FAILURE")).await;
    assert_eq!((r.status, r.code()), (400, -2022), "{}", r.body);
    assert_eq!(r.body["msg"], "Order cancel-replace failed.");
    assert_eq!(
        r.body["data"],
        json!({
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
            "newOrderResponse": null
        })
    );
    assert!(open_orders(&c).await.is_empty());
    // A new order that was not attempted still counts.
    assert_eq!(r.header("x-mbx-order-count-1d"), Some("1".into()));

    let r = c.signed("POST", PATH, &new_order("ALLOW_FAILURE")).await;
    assert_eq!((r.status, r.code()), (409, -2021), "{}", r.body);
    assert_eq!(r.body["msg"], "Order cancel-replace partially failed.");
    let d = &r.body["data"];
    assert_eq!(
        (&d["cancelResult"], &d["newOrderResult"]),
        (&json!("FAILURE"), &json!("SUCCESS"))
    );
    assert_eq!(d["cancelResponse"]["code"], -2011);
    let placed = &d["newOrderResponse"];
    assert!(
        placed["orderId"].is_u64() && placed.get("status").is_none(),
        "ACK: {placed}"
    );
    assert_eq!(open_orders(&c).await.len(), 1);
    assert_eq!(
        c.balance("USDT").await,
        (Decimal::from(9_050), Decimal::from(950))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_new_order_refused_at_placement_leaves_the_cancel_done_or_both_failed() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let id = limit_buy(&c, "0.01", "95000", "keep-me").await;
    // A LIMIT_MAKER buy above the ask would take: refused after the cancel succeeded.
    let maker = |cancel_id: &str, mode: &'static str| {
        vec![
            ("symbol", "BTCUSDT".to_string()),
            ("cancelReplaceMode", mode.to_string()),
            ("cancelOrderId", cancel_id.to_string()),
            ("side", "BUY".to_string()),
            ("type", "LIMIT_MAKER".to_string()),
            ("quantity", "0.01".to_string()),
            ("price", "101000".to_string()),
        ]
    };
    let p = maker(&id, "STOP_ON_FAILURE");
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = c.signed("POST", PATH, &p).await;
    assert_eq!((r.status, r.code()), (409, -2021), "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(
        (&d["cancelResult"], &d["newOrderResult"]),
        (&json!("SUCCESS"), &json!("FAILURE"))
    );
    assert_eq!(d["cancelResponse"]["status"], "CANCELED");
    assert_eq!(
        d["newOrderResponse"],
        json!({"code": -2010, "msg": "Order would immediately match and take."})
    );
    assert!(open_orders(&c).await.is_empty());
    assert_eq!(c.balance("USDT").await, (Decimal::from(10_000), Decimal::ZERO));
    // Both halves failing under ALLOW_FAILURE: -2022, HTTP 400.
    let p = maker(&id, "ALLOW_FAILURE");
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = c.signed("POST", PATH, &p).await;
    assert_eq!((r.status, r.code()), (400, -2022), "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(
        (&d["cancelResult"], &d["newOrderResult"]),
        (&json!("FAILURE"), &json!("FAILURE"))
    );
    assert_eq!(d["newOrderResponse"]["code"], -2010);
    h.shutdown().await;
}

#[tokio::test]
async fn parameters_and_filters_are_checked_before_anything_is_cancelled() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let id = limit_buy(&c, "0.01", "95000", "stays").await;
    let base = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let mut p = with(&[("cancelReplaceMode", "STOP_ON_FAILURE"), ("price", "95000.001")]);
    p.push(("cancelOrderId", &id));
    let r = c.signed("POST", PATH, &p).await;
    // A price off the tick: the PRICE_FILTER answer of a new order, with no `data`.
    assert_eq!((r.status, r.code()), (400, -1013), "{}", r.body);
    assert!(r.body.get("data").is_none());
    let mut p = with(&[("cancelReplaceMode", "SOMETIMES"), ("price", "95000")]);
    p.push(("cancelOrderId", &id));
    assert_eq!(c.signed("POST", PATH, &p).await.code(), -1100);
    let mut p = with(&[("price", "95000")]);
    p.push(("cancelOrderId", &id));
    assert_eq!(c.signed("POST", PATH, &p).await.code(), -1102);
    let p = with(&[("cancelReplaceMode", "ALLOW_FAILURE"), ("price", "95000")]);
    let r = c.signed("POST", PATH, &p).await;
    assert_eq!(r.code(), -1102);
    assert!(r.body["msg"].as_str().unwrap().contains("cancelOrderId"));
    let open = open_orders(&c).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["clientOrderId"], "stays");
    h.shutdown().await;
}

async fn over_the_count(mode: &'static str) -> client::Resp {
    let limits = RateLimits {
        weight_per_minute: 6000,
        orders_per_10s: 1000,
        orders_per_day: 1,
        ban_ms: 5_000,
    };
    let h = start(SimConfig {
        rate_limits: limits,
        ..still_config()
    })
    .await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let id = limit_buy(&c, "0.01", "95000", "counted").await;
    let mut p = vec![
        ("symbol", "BTCUSDT"),
        ("cancelReplaceMode", "STOP_ON_FAILURE"),
        ("orderRateLimitExceededMode", mode),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01"),
        ("price", "94000"),
    ];
    p.push(("cancelOrderId", &id));
    let r = c.signed("POST", PATH, &p).await;
    h.shutdown().await;
    r
}

#[tokio::test]
async fn past_the_unfilled_order_count_do_nothing_refuses_and_cancel_only_still_cancels() {
    let r = over_the_count("DO_NOTHING").await;
    assert_eq!((r.status, r.code()), (429, -1015), "{}", r.body);
    assert!(r.body.get("data").is_none());

    let r = over_the_count("CANCEL_ONLY").await;
    assert_eq!((r.status, r.code()), (429, -2021), "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(
        (&d["cancelResult"], &d["newOrderResult"]),
        (&json!("SUCCESS"), &json!("FAILURE"))
    );
    assert_eq!(d["cancelResponse"]["status"], "CANCELED");
    assert_eq!(d["newOrderResponse"]["code"], -1015);
}

#[tokio::test]
async fn a_successful_cancel_replace_costs_no_weight_and_a_failed_one_costs_one() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let id = limit_buy(&c, "0.01", "95000", "w1").await;
    // Inside one weight minute for the three requests below.
    assert!(
        wait_until(Duration::from_millis(60_500), || async {
            now_ms() % 60_000 < 50_000
        })
        .await
    );
    let weight = |r: &client::Resp| r.header("x-mbx-used-weight-1m").unwrap().parse::<u64>().unwrap();
    let before = weight(&c.public("/api/v3/ping", &[]).await);
    let replace = |cancel_id: &str| {
        vec![
            ("symbol", "BTCUSDT".to_string()),
            ("cancelReplaceMode", "STOP_ON_FAILURE".to_string()),
            ("cancelOrderId", cancel_id.to_string()),
            ("side", "BUY".to_string()),
            ("type", "LIMIT".to_string()),
            ("timeInForce", "GTC".to_string()),
            ("quantity", "0.01".to_string()),
            ("price", "94000".to_string()),
        ]
    };
    let p = replace(&id);
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = c.signed("POST", PATH, &p).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(weight(&ok), before);
    let failed = c.signed("POST", PATH, &p).await;
    assert_eq!(failed.code(), -2022, "{}", failed.body);
    assert_eq!(weight(&failed), before + 1);
    h.shutdown().await;
}
