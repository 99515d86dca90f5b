//! Hostile input against the local exchange: values that overflow decimal arithmetic, control
//! calls that would break the market, unauthenticated control calls, replayed timestamps,
//! oversized requests and stops that would trigger at once. Every case must end in Binance's
//! own error code, never in a panic, and the exchange must keep serving afterwards.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use std::time::Duration;

use client::{Client, Resp, now_ms, start, still_config, wait_until, ws_sign};
use crbot::exchange::sim::{SimConfig, SimHandle};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DECIMAL_MAX: &str = "79228162514264337593543950335";

async fn setup() -> (SimHandle, Client) {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    (h, c)
}

/// The exchange still answers a plain request (nothing above killed it).
async fn assert_alive(c: &Client) {
    let r = c.public("/api/v3/ticker/price", &[("symbol", "BTCUSDT")]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn err(r: &Resp) -> (u16, i64) {
    (r.status, r.code())
}

async fn ws_connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn ws_next(ws: &mut Ws, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline
            .checked_duration_since(tokio::time::Instant::now())
            .expect("no answer in time");
        match tokio::time::timeout(left, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// A signed WebSocket API call (parameters sorted, HMAC over `k=v&…`).
async fn ws_signed(ws: &mut Ws, c: &Client, id: &str, method: &str, params: Value) -> Value {
    let mut p = params.as_object().cloned().unwrap();
    p.insert("apiKey".into(), json!(c.key));
    ws_sign(&c.secret, &mut p);
    let req = json!({"id": id, "method": method, "params": p});
    ws.send(Message::Text(req.to_string().into())).await.unwrap();
    ws_next(ws, id).await
}

// ------------------------------------------------------------------ 1. overflow on input

#[tokio::test]
async fn market_orders_with_a_decimal_max_quote_amount_are_refused_not_a_panic() {
    let (h, c) = setup().await;
    // At this price `quote / bid / stepSize` no longer fits in a decimal.
    h.set_price("BTCUSDT", Decimal::from(50_000)).unwrap();
    for side in ["SELL", "BUY"] {
        let r = c
            .order(&[
                ("symbol", "BTCUSDT"),
                ("side", side),
                ("type", "MARKET"),
                ("quoteOrderQty", DECIMAL_MAX),
            ])
            .await;
        assert_eq!(err(&r), (400, -1100), "{side}: {:?}", r.body);
        // The largest value the parameter grammar allows is refused for its balance instead.
        let r = c
            .order(&[
                ("symbol", "BTCUSDT"),
                ("side", side),
                ("type", "MARKET"),
                ("quoteOrderQty", "99999999999999999999.99999999"),
            ])
            .await;
        assert_eq!(err(&r), (400, -2010), "{side}: {:?}", r.body);
    }
    assert_alive(&c).await;
    h.shutdown().await;
}

#[tokio::test]
async fn ws_order_test_with_a_decimal_max_quote_amount_is_refused_not_a_panic() {
    let (h, c) = setup().await;
    // At this price `quote / bid / stepSize` no longer fits in a decimal.
    h.set_price("BTCUSDT", Decimal::from(50_000)).unwrap();
    let mut ws = ws_connect(&h.ws_api_url()).await;
    for (i, (qty, code)) in [(DECIMAL_MAX, -1100), ("99999999999999999999.99999999", -2010)]
        .iter()
        .enumerate()
    {
        let r = ws_signed(
            &mut ws,
            &c,
            &format!("t{i}"),
            "order.test",
            json!({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                   "quoteOrderQty": qty, "timestamp": now_ms()}),
        )
        .await;
        assert_eq!(r["error"]["code"], *code, "{qty}: {r}");
    }
    let r = ws_signed(
        &mut ws,
        &c,
        "after",
        "openOrders.status",
        json!({"symbol": "BTCUSDT", "timestamp": now_ms()}),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    h.shutdown().await;
}

#[tokio::test]
async fn decimal_parameters_allow_at_most_20_integer_digits() {
    let (h, c) = setup().await;
    for bad in ["123456789012345678901", DECIMAL_MAX, "1.000000000000000000001"] {
        let r = c
            .order(&[
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.001"),
                ("price", bad),
            ])
            .await;
        assert_eq!(err(&r), (400, -1100), "{bad}: {:?}", r.body);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn control_price_refuses_bad_prices_and_the_market_keeps_moving() {
    let h = start(SimConfig {
        step_interval: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&h);
    for bad in ["0", "-5", DECIMAL_MAX, "100000.001", "97250000000"] {
        let r = c
            .control("price", &json!({"symbol": "BTCUSDT", "price": bad}))
            .await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(r.body["msg"].is_string(), "{bad}: {:?}", r.body);
    }
    let r = c
        .control("price", &json!({"symbol": "BTCUSDT", "price": "100000.01"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Every symbol still moves after the refused calls.
    let before = h.mids();
    let moved = wait_until(Duration::from_secs(10), || {
        let now = h.mids();
        let before = before.clone();
        async move { now.iter().zip(&before).all(|(a, b)| a.1 != b.1) }
    })
    .await;
    assert!(moved, "the market stopped: {:?}", h.mids());
    assert!(h.set_price("BTCUSDT", Decimal::MAX).is_err());
    assert!(h.set_price("BTCUSDT", Decimal::ZERO).is_err());
    h.shutdown().await;
}

#[tokio::test]
async fn control_balance_refuses_overflowing_and_overdrawing_deltas() {
    let (h, c) = setup().await;
    for bad in [DECIMAL_MAX, "-20000", "abc"] {
        let r = c
            .control("balance", &json!({"asset": "USDT", "delta": bad}))
            .await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
    }
    assert_eq!(c.balance("USDT").await.0, Decimal::from(10_000));
    assert_alive(&c).await;
    h.shutdown().await;
}

// ------------------------------------------------------------------ 2. control needs the key

#[tokio::test]
async fn control_endpoints_refuse_callers_without_the_exchange_api_key() {
    let (h, c) = setup().await;
    let calls = [
        ("faults", json!({"next_429": 1})),
        ("price", json!({"symbol": "BTCUSDT", "price": "90000"})),
        ("balance", json!({"asset": "USDT", "delta": "1"})),
    ];
    let wrong = "x".repeat(64);
    for (what, body) in &calls {
        for key in [None, Some(wrong.as_str()), Some("")] {
            let r = c.control_as(what, body, key).await;
            assert_eq!(
                (r.status, r.body.clone()),
                (
                    401,
                    json!({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
                ),
                "{what} with {key:?}"
            );
        }
    }
    // Nothing the refused calls asked for happened.
    assert_eq!(c.public("/api/v3/ping", &[]).await.status, 200);
    assert_eq!(c.balance("USDT").await.0, Decimal::from(10_000));
    for (what, body) in &calls {
        assert_eq!(c.control(what, body).await.status, 200, "{what}");
    }
    h.shutdown().await;
}

// ------------------------------------------------------------------ 3. faults merge

#[tokio::test]
async fn control_faults_changes_only_the_named_switches_and_resets_on_request() {
    let (h, c) = setup().await;
    assert_eq!(c.control("faults", &json!({"next_429": 1})).await.status, 200);
    let r = c.control("faults", &json!({"order_delay_ms": 5})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["next_429"].as_u64(), r.body["order_delay_ms"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(
        c.public("/api/v3/ping", &[]).await.status,
        429,
        "next_429 survived the merge"
    );

    let r = c.control("faults", &json!({"explode": 1, "next_429": 1})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["msg"].as_str().unwrap().contains("explode"),
        "{:?}",
        r.body
    );
    let r = c.control("faults", &json!({"order_503": "two"})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["msg"].as_str().unwrap().contains("order_503"),
        "{:?}",
        r.body
    );
    let r = c.control("faults", &json!([1, 2])).await;
    assert_eq!(r.status, 400);
    assert_eq!(h.faults().get().next_429, 0, "a refused call changes nothing");

    let r = c.control("faults", &json!({"reset": true})).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.faults().get(), crbot::exchange::sim::Faults::default());
    h.shutdown().await;
}

// ------------------------------------------------------------------ 4. replay

fn hostile_timestamps() -> Vec<String> {
    let now = now_ms();
    vec![
        i64::MIN.to_string(),
        i64::MAX.to_string(),
        "-1".into(),
        "0".into(),
        (now - 86_400_000).to_string(),
        (now + 600_000).to_string(),
        // Microseconds, ten minutes ahead and a day behind.
        ((now + 600_000) * 1000).to_string(),
        ((now - 86_400_000) * 1000).to_string(),
    ]
}

#[tokio::test]
async fn rest_refuses_signed_requests_with_hostile_timestamps() {
    let (h, c) = setup().await;
    for ts in hostile_timestamps() {
        let r = c.signed_at("GET", "/api/v3/openOrders", &[], &ts, None).await;
        assert_eq!(err(&r), (400, -1021), "timestamp {ts}: {:?}", r.body);
        let r = c
            .signed_at("GET", "/api/v3/openOrders", &[], &ts, Some("60000"))
            .await;
        assert_eq!(
            err(&r),
            (400, -1021),
            "timestamp {ts} in 60 s window: {:?}",
            r.body
        );
    }
    let now = now_ms().to_string();
    for (rw, code) in [
        ("0", -1131),
        ("-5", -1100),
        ("60001", -1131),
        ("9223372036854775807", -1131),
        ("5000.0001", -1111),
        ("abc", -1100),
    ] {
        let r = c
            .signed_at("GET", "/api/v3/openOrders", &[], &now, Some(rw))
            .await;
        assert_eq!(err(&r), (400, code), "recvWindow {rw}: {:?}", r.body);
    }
    let r = c
        .signed_at("GET", "/api/v3/openOrders", &[], &now, Some("5000.5"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let us = (now_ms() * 1000).to_string();
    let r = c.signed_at("GET", "/api/v3/openOrders", &[], &us, None).await;
    assert_eq!(r.status, 200, "microsecond timestamp: {:?}", r.body);
    h.shutdown().await;
}

#[tokio::test]
async fn ws_api_refuses_signed_requests_with_hostile_timestamps() {
    let (h, c) = setup().await;
    let mut ws = ws_connect(&h.ws_api_url()).await;
    for (i, ts) in hostile_timestamps().iter().enumerate() {
        let ts: i64 = ts.parse().unwrap();
        let r = ws_signed(
            &mut ws,
            &c,
            &format!("o{i}"),
            "openOrders.status",
            json!({"symbol": "BTCUSDT", "timestamp": ts}),
        )
        .await;
        assert_eq!(r["error"]["code"], -1021, "timestamp {ts}: {r}");
        let r = ws_signed(
            &mut ws,
            &c,
            &format!("u{i}"),
            "userDataStream.subscribe.signature",
            json!({"timestamp": ts, "recvWindow": 60000}),
        )
        .await;
        assert_eq!(r["error"]["code"], -1021, "timestamp {ts}: {r}");
    }
    h.shutdown().await;
}

// ------------------------------------------------------------------ 5. parameter bounds

#[tokio::test]
async fn too_many_or_duplicate_parameters_are_refused_before_anything_else() {
    let (h, c) = setup().await;
    // 60,000 keys, no signature: refused for their number, not after a quadratic scan.
    let body: String = (0..60_000).map(|i| format!("k{i}=1&")).collect();
    let r = c.raw("POST", "/api/v3/order", Some(body), Some(&c.key)).await;
    assert_eq!(err(&r), (400, -1101), "{:?}", r.body);
    let query: String = (0..200).map(|i| format!("k{i}=1")).collect::<Vec<_>>().join("&");
    let r = c.raw("GET", &format!("/api/v3/ping?{query}"), None, None).await;
    assert_eq!(err(&r), (400, -1101), "{:?}", r.body);
    let r = c
        .raw("GET", "/api/v3/depth?symbol=BTCUSDT&limit=5&limit=6", None, None)
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            400,
            json!({"code": -1101, "msg": "Duplicate values for a parameter detected."})
        )
    );
    // A 1 MB value is refused without being looked at.
    let big = format!("symbol={}", "A".repeat(1_000_000));
    let r = c.raw("POST", "/api/v3/order", Some(big), Some(&c.key)).await;
    assert!(r.status == 400 || r.status == 413, "{}", r.status);
    assert!(r.code() < 0, "{:?}", r.body);
    assert_alive(&c).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_oversized_requests_does_not_stop_the_market_or_other_clients() {
    let h = start(SimConfig {
        step_interval: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&h);
    let body: String = (0..60_000).map(|i| format!("k{i}=1&")).collect();
    let flood: Vec<_> = (0..12)
        .map(|_| {
            let (http, url, key, body) = (
                c.http.clone(),
                format!("{}/api/v3/order", c.base),
                c.key.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("X-MBX-APIKEY", key)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            })
        })
        .collect();
    let before = h.mids();
    let moved = wait_until(Duration::from_secs(10), || {
        let now = h.mids();
        let before = before.clone();
        async move { now.iter().zip(&before).all(|(a, b)| a.1 != b.1) }
    })
    .await;
    assert!(moved, "the market stopped during the flood");
    assert_alive(&c).await;
    for f in flood {
        assert_eq!(f.await.unwrap(), 400);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn ws_api_refuses_requests_with_too_many_parameters() {
    let (h, _c) = setup().await;
    let mut ws = ws_connect(&h.ws_api_url()).await;
    let mut params = serde_json::Map::new();
    for i in 0..60_000 {
        params.insert(format!("k{i}"), json!(1));
    }
    let req = json!({"id": "big", "method": "order.place", "params": params});
    ws.send(Message::Text(req.to_string().into())).await.unwrap();
    let r = ws_next(&mut ws, "big").await;
    assert_eq!(r["error"]["code"], -1101, "{r}");
    h.shutdown().await;
}

// ------------------------------------------------------------------ 6. stops that trigger at once

#[tokio::test]
async fn stops_already_crossed_by_the_last_price_are_refused() {
    let (h, c) = setup().await;
    // Last price 100000: a stop-loss buy below it, a stop-loss sell above it, a take-profit buy
    // above it and a take-profit sell below it would all trigger at once; so would any stop at it.
    let cases = [
        ("STOP_LOSS", "BUY", "99000"),
        ("STOP_LOSS", "SELL", "101000"),
        ("TAKE_PROFIT", "BUY", "101000"),
        ("TAKE_PROFIT", "SELL", "99000"),
        ("STOP_LOSS", "BUY", "100000"),
        ("TAKE_PROFIT", "SELL", "100000"),
    ];
    for (kind, side, stop) in cases {
        for limit in [false, true] {
            let t = if limit {
                format!("{kind}_LIMIT")
            } else {
                kind.to_string()
            };
            let mut p = vec![
                ("symbol", "BTCUSDT"),
                ("side", side),
                ("type", t.as_str()),
                ("quantity", "0.01"),
                ("stopPrice", stop),
            ];
            if limit {
                p.push(("price", stop));
                p.push(("timeInForce", "GTC"));
            }
            let r = c.order(&p).await;
            assert_eq!(
                (r.status, r.body.clone()),
                (
                    400,
                    json!({"code": -2010, "msg": "Order would trigger immediately."})
                ),
                "{t} {side} stop {stop}"
            );
        }
    }
    let open = c.signed("GET", "/api/v3/openOrders", &[]).await;
    assert_eq!(open.body, json!([]));
    assert_eq!(c.balance("USDT").await, (Decimal::from(10_000), Decimal::ZERO));
    h.shutdown().await;
}

#[tokio::test]
async fn oco_lists_whose_stop_leg_is_already_crossed_are_refused_whole() {
    let (h, c) = setup().await;
    h.deposit("BTC", Decimal::ONE).unwrap();
    let cases: [&[(&str, &str)]; 3] = [
        // Sell: a stop-loss above the last price triggers at once.
        &[
            ("side", "SELL"),
            ("aboveType", "STOP_LOSS_LIMIT"),
            ("aboveStopPrice", "101000"),
            ("abovePrice", "101000"),
            ("aboveTimeInForce", "GTC"),
            ("belowType", "LIMIT_MAKER"),
            ("belowPrice", "99000"),
        ],
        // Buy: a stop-loss below the last price triggers at once.
        &[
            ("side", "BUY"),
            ("aboveType", "LIMIT_MAKER"),
            ("abovePrice", "101000"),
            ("belowType", "STOP_LOSS"),
            ("belowStopPrice", "99000"),
        ],
        // Buy: a take-profit above the last price triggers at once.
        &[
            ("side", "BUY"),
            ("aboveType", "TAKE_PROFIT"),
            ("aboveStopPrice", "101000"),
            ("belowType", "LIMIT_MAKER"),
            ("belowPrice", "99000"),
        ],
    ];
    for legs in cases {
        let mut p = vec![("symbol", "BTCUSDT"), ("quantity", "0.01")];
        p.extend_from_slice(legs);
        let r = c.signed("POST", "/api/v3/orderList/oco", &p).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (
                400,
                json!({"code": -2010, "msg": "Order would trigger immediately."})
            ),
            "{legs:?}"
        );
    }
    let open = c.signed("GET", "/api/v3/openOrders", &[]).await;
    assert_eq!(open.body, json!([]));
    let lists = c.signed("GET", "/api/v3/openOrderList", &[]).await;
    assert_eq!(lists.body, json!([]));
    assert_eq!(c.balance("USDT").await, (Decimal::from(10_000), Decimal::ZERO));
    assert_eq!(c.balance("BTC").await, (Decimal::ONE, Decimal::ZERO));
    h.shutdown().await;
}

// ------------------------------------------------------------------ 7. other hostile input

#[tokio::test]
async fn hostile_values_in_ordinary_parameters_get_error_codes_not_panics() {
    let (h, c) = setup().await;
    let base = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
    ];
    for (qty, price, code) in [
        ("-1", "100000", -1100),
        ("NaN", "100000", -1100),
        ("inf", "100000", -1100),
        ("1e3", "100000", -1100),
        ("0", "100000", -1013),
        ("0.01", "0", -1013),
        ("0.01", "0.000000001", -1111),
        ("٣", "100000", -1100),
    ] {
        let mut p = base.to_vec();
        p.push(("quantity", qty));
        p.push(("price", price));
        let r = c.order(&p).await;
        assert_eq!(err(&r), (400, code), "qty {qty} price {price}: {:?}", r.body);
    }
    let r = c
        .order(&[
            ("symbol", ""),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "1"),
        ])
        .await;
    assert_eq!(err(&r), (400, -1102));
    let r = c
        .order(&[
            ("symbol", "БТЦUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "1"),
        ])
        .await;
    assert_eq!(err(&r), (400, -1121));
    let min = i64::MIN.to_string();
    let max = i64::MAX.to_string();
    for (path, params) in [
        (
            "/api/v3/depth",
            vec![("symbol", "BTCUSDT"), ("limit", max.as_str())],
        ),
        (
            "/api/v3/depth",
            vec![("symbol", "BTCUSDT"), ("limit", min.as_str())],
        ),
        (
            "/api/v3/klines",
            vec![
                ("symbol", "BTCUSDT"),
                ("interval", "1m"),
                ("startTime", min.as_str()),
                ("endTime", max.as_str()),
                ("limit", max.as_str()),
            ],
        ),
        (
            "/api/v3/klines",
            vec![
                ("symbol", "BTCUSDT"),
                ("interval", "1m"),
                ("startTime", max.as_str()),
            ],
        ),
    ] {
        let r = c.public(path, &params).await;
        assert_eq!(r.status, 200, "{path} {params:?}: {:?}", r.body);
    }
    let r = c
        .public(
            "/api/v3/depth",
            &[("symbol", "BTCUSDT"), ("limit", "99999999999999999999999")],
        )
        .await;
    assert_eq!(err(&r), (400, -1100));
    for params in [
        vec![
            ("symbol", "BTCUSDT"),
            ("startTime", min.as_str()),
            ("endTime", max.as_str()),
        ],
        vec![
            ("symbol", "BTCUSDT"),
            ("startTime", max.as_str()),
            ("endTime", min.as_str()),
        ],
    ] {
        let r = c.signed("GET", "/api/v3/myTrades", &params).await;
        assert_eq!(err(&r), (400, -1127), "{params:?}: {:?}", r.body);
        let r = c.signed("GET", "/api/v3/allOrders", &params).await;
        assert!(r.status == 200 || r.code() == -1127, "{params:?}: {:?}", r.body);
    }
    let r = c
        .signed(
            "GET",
            "/api/v3/allOrders",
            &[("symbol", "BTCUSDT"), ("orderId", min.as_str())],
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .signed(
            "GET",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", min.as_str())],
        )
        .await;
    assert_eq!(err(&r), (400, -2013));
    assert_alive(&c).await;
    h.shutdown().await;
}

#[tokio::test]
async fn thousands_of_ws_api_requests_on_one_connection_leave_the_exchange_serving() {
    let (h, c) = setup().await;
    let ws = ws_connect(&h.ws_api_url()).await;
    let n = 3_000;
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..n {
            let req = json!({"id": format!("p{i}"), "method": "ping"});
            if tx.send(Message::Text(req.to_string().into())).await.is_err() {
                break;
            }
        }
        tx
    });
    let mut answered = 0;
    while answered < n {
        match tokio::time::timeout(Duration::from_secs(20), rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert!(
                    v["status"] == 200 || v["status"] == 429 || v["status"] == 418,
                    "{v}"
                );
                answered += 1;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("after {answered} answers: {other:?}"),
        }
    }
    drop(writer.await);
    drop(rx);
    assert_alive(&c).await;
    h.shutdown().await;
}
