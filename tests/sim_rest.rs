//! REST API of the local exchange: security checks, error codes, filters, JSON shapes.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use client::{Client, dec, encode, hmac_hex, now_ms, start, still_config};
use rust_decimal::Decimal;

#[tokio::test]
async fn ping_time_and_exchange_info_have_binance_shapes() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let r = c.public("/api/v3/ping", &[]).await;
    assert_eq!((r.status, r.body.clone()), (200, serde_json::json!({})));
    assert!(r.header("x-mbx-used-weight-1m").is_some());
    let t = c.public("/api/v3/time", &[]).await;
    assert!((t.body["serverTime"].as_i64().unwrap() - now_ms()).abs() < 5_000);
    let info = c.public("/api/v3/exchangeInfo", &[("symbol", "BTCUSDT")]).await;
    let s = &info.body["symbols"][0];
    assert_eq!(s["symbol"], "BTCUSDT");
    let names: Vec<&str> = s["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filterType"].as_str().unwrap())
        .collect();
    for f in [
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "NOTIONAL",
        "PERCENT_PRICE_BY_SIDE",
        "MAX_NUM_ORDERS",
    ] {
        assert!(names.contains(&f), "{f} missing");
    }
    assert_eq!(info.body["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT");
    let all = c.public("/api/v3/exchangeInfo", &[]).await;
    assert_eq!(all.body["symbols"].as_array().unwrap().len(), 6);
    let bad = c.public("/api/v3/exchangeInfo", &[("symbol", "NOPEUSDT")]).await;
    assert_eq!((bad.status, bad.code()), (400, -1121));
    h.shutdown().await;
}

#[tokio::test]
async fn market_data_endpoints_answer_strings_for_prices() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let k = c
        .public("/api/v3/klines", &[("symbol", "BTCUSDT"), ("interval", "1m")])
        .await;
    let rows = k.body.as_array().unwrap();
    assert_eq!(rows.len(), 500);
    assert!(rows[0][1].is_string() && rows[0][0].is_i64());
    let bad = c
        .public("/api/v3/klines", &[("symbol", "BTCUSDT"), ("interval", "7m")])
        .await;
    assert_eq!(bad.code(), -1120);
    let d = c
        .public("/api/v3/depth", &[("symbol", "ETHUSDT"), ("limit", "5")])
        .await;
    assert_eq!(d.body["bids"].as_array().unwrap().len(), 5);
    assert!(dec(&d.body["bids"][0][0]) < dec(&d.body["asks"][0][0]));
    let t = c.public("/api/v3/ticker/24hr", &[("symbol", "SOLUSDT")]).await;
    assert!(t.body["lastPrice"].is_string() && t.body["count"].is_u64());
    let p = c.public("/api/v3/ticker/price", &[]).await;
    assert_eq!(p.body.as_array().unwrap().len(), 6);
    let b = c
        .public(
            "/api/v3/ticker/bookTicker",
            &[("symbols", "[\"BTCUSDT\",\"XRPUSDT\"]")],
        )
        .await;
    assert_eq!(b.body.as_array().unwrap().len(), 2);
    let a = c.public("/api/v3/avgPrice", &[("symbol", "DOGEUSDT")]).await;
    assert_eq!(a.body["mins"], 5);
    h.shutdown().await;
}

#[tokio::test]
async fn signature_checks_follow_binance_rules() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let ok = c.signed("GET", "/api/v3/account", &[]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["balances"].as_array().map(|a| !a.is_empty()), Some(true));

    // Bad signature.
    let q = encode(&[("timestamp", &now_ms().to_string())]);
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={}", "0".repeat(64)),
            None,
            Some(&c.key),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, -1022));

    // Signature over the unencoded text of a parameter that needs encoding is rejected.
    let ts = now_ms().to_string();
    let raw = format!("symbol=BTCUSDT&newClientOrderId=a b&timestamp={ts}");
    let q = encode(&[
        ("symbol", "BTCUSDT"),
        ("newClientOrderId", "a b"),
        ("timestamp", &ts),
    ]);
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/openOrders?{q}&signature={}", hmac_hex(&c.secret, &raw)),
            None,
            Some(&c.key),
        )
        .await;
    assert_eq!(r.code(), -1022);

    // Uppercase hex is accepted.
    let q = encode(&[("timestamp", &now_ms().to_string())]);
    let sig = hmac_hex(&c.secret, &q).to_uppercase();
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={sig}"),
            None,
            Some(&c.key),
        )
        .await;
    assert_eq!(r.status, 200);

    // Query + body, signed as query immediately followed by body.
    let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC";
    let body = format!("quantity=0.001&price=50000&timestamp={}", now_ms());
    let sig = hmac_hex(&c.secret, &format!("{q}{body}"));
    let r = c
        .raw(
            "POST",
            &format!("/api/v3/order?{q}"),
            Some(format!("{body}&signature={sig}")),
            Some(&c.key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "NEW");

    // Missing / malformed / unknown key.
    let q = encode(&[("timestamp", &now_ms().to_string())]);
    let sig = hmac_hex(&c.secret, &q);
    let r = c
        .raw("GET", &format!("/api/v3/account?{q}&signature={sig}"), None, None)
        .await;
    assert_eq!((r.status, r.code()), (401, -2014));
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={sig}"),
            None,
            Some("short"),
        )
        .await;
    assert_eq!(r.code(), -2014);
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={sig}"),
            None,
            Some(&"A".repeat(64)),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, -2015));

    // Missing signature.
    let r = c
        .raw("GET", &format!("/api/v3/account?{q}"), None, Some(&c.key))
        .await;
    assert_eq!(r.code(), -1102);
    h.shutdown().await;
}

#[tokio::test]
async fn timestamps_outside_the_window_get_1021() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    for (ts, rw) in [(now_ms() - 10_000, "5000"), (now_ms() + 2_000, "5000")] {
        let q = encode(&[("recvWindow", rw), ("timestamp", &ts.to_string())]);
        let sig = hmac_hex(&c.secret, &q);
        let r = c
            .raw(
                "GET",
                &format!("/api/v3/account?{q}&signature={sig}"),
                None,
                Some(&c.key),
            )
            .await;
        assert_eq!((r.status, r.code()), (400, -1021), "{}", r.body);
    }
    let q = encode(&[
        ("recvWindow", "20000"),
        ("timestamp", &(now_ms() - 10_000).to_string()),
    ]);
    let sig = hmac_hex(&c.secret, &q);
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={sig}"),
            None,
            Some(&c.key),
        )
        .await;
    assert_eq!(r.status, 200);
    let q = encode(&[("recvWindow", "60001"), ("timestamp", &now_ms().to_string())]);
    let sig = hmac_hex(&c.secret, &q);
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={sig}"),
            None,
            Some(&c.key),
        )
        .await;
    assert_eq!(r.code(), -1131);
    h.shutdown().await;
}

/// Order parameters, the expected code and message (empty: any message).
type Case = (Vec<(&'static str, &'static str)>, i64, &'static str);

#[tokio::test]
async fn order_errors_have_binance_codes_and_messages() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let base = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<Case> = vec![
        (
            with(&[("quantity", "0.000001"), ("price", "90000")]),
            -1013,
            "Filter failure: LOT_SIZE",
        ),
        (
            with(&[("quantity", "0.00100"), ("price", "90000.000000001")]),
            -1111,
            "Parameter 'price' has too much precision.",
        ),
        (
            with(&[("quantity", "0.001"), ("price", "90000.005")]),
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            with(&[("quantity", "0.00001"), ("price", "90000")]),
            -1013,
            "Filter failure: NOTIONAL",
        ),
        (
            with(&[("quantity", "0.001"), ("price", "900000")]),
            -1013,
            "Filter failure: PERCENT_PRICE_BY_SIDE",
        ),
        (
            with(&[("quantity", "1"), ("price", "90000")]),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (
            with(&[("price", "90000")]),
            -1102,
            "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
        ),
        (
            with(&[
                ("quantity", "0.001"),
                ("price", "90000"),
                ("newClientOrderId", "bad id!"),
            ]),
            -1100,
            "",
        ),
        (
            with(&[
                ("quantity", "0.001"),
                ("price", "90000"),
                ("newClientOrderId", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            ]),
            -1100,
            "",
        ),
        (
            vec![
                ("symbol", "NOPE"),
                ("side", "BUY"),
                ("type", "MARKET"),
                ("quantity", "1"),
            ],
            -1121,
            "Invalid symbol.",
        ),
        (
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT_MAKER"),
                ("quantity", "0.001"),
                ("price", "200000"),
            ],
            -2010,
            "Order would immediately match and take.",
        ),
        (
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "STOP_LOSS"),
                ("quantity", "0.001"),
                ("stopPrice", "200000"),
            ],
            -2010,
            "Order would trigger immediately.",
        ),
    ];
    for (params, code, msg) in cases {
        let r = c.order(&params).await;
        assert_eq!(r.code(), code, "{params:?} -> {}", r.body);
        assert_eq!(r.status, 400);
        if !msg.is_empty() {
            assert_eq!(r.body["msg"], msg);
        }
    }
    // Duplicate client id among open orders.
    let p = with(&[
        ("quantity", "0.001"),
        ("price", "90000"),
        ("newClientOrderId", "dup-1"),
    ]);
    assert_eq!(c.order(&p).await.status, 200);
    let r = c.order(&p).await;
    assert_eq!(
        (r.code(), r.body["msg"].as_str()),
        (-2010, Some("Duplicate order sent."))
    );
    // Unknown orders.
    let r = c
        .signed(
            "GET",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", "999999")],
        )
        .await;
    assert_eq!(
        (r.code(), r.body["msg"].as_str()),
        (-2013, Some("Order does not exist."))
    );
    let r = c
        .signed(
            "DELETE",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", "999999")],
        )
        .await;
    assert_eq!(
        (r.code(), r.body["msg"].as_str()),
        (-2011, Some("Unknown order sent."))
    );
    let r = c.signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT")]).await;
    assert_eq!(r.code(), -1102);
    h.shutdown().await;
}

#[tokio::test]
async fn limit_order_query_cancel_round_trip() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "95000"),
            ("newClientOrderId", "my-order_1"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["clientOrderId"], "my-order_1");
    assert_eq!(r.body["status"], "NEW");
    assert!(r.body["fills"].as_array().unwrap().is_empty());
    assert!(r.header("x-mbx-order-count-10s").is_some() && r.header("x-mbx-order-count-1d").is_some());
    let id = r.body["orderId"].as_u64().unwrap().to_string();
    assert_eq!(c.balance("USDT").await, (Decimal::from(9050), Decimal::from(950)));
    let q = c
        .signed(
            "GET",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("origClientOrderId", "my-order_1")],
        )
        .await;
    assert_eq!(q.body["orderId"].as_u64().unwrap().to_string(), id);
    assert_eq!(q.body["isWorking"], true);
    let open = c
        .signed("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(open.body.as_array().unwrap().len(), 1);
    let x = c
        .signed(
            "DELETE",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("orderId", &id),
                ("newClientOrderId", "cxl-1"),
            ],
        )
        .await;
    assert_eq!(x.body["status"], "CANCELED");
    assert_eq!(x.body["origClientOrderId"], "my-order_1");
    assert_eq!(x.body["clientOrderId"], "cxl-1");
    assert_eq!(c.balance("USDT").await, (Decimal::from(10_000), Decimal::ZERO));
    let again = c
        .signed(
            "DELETE",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", &id)],
        )
        .await;
    assert_eq!(again.code(), -2011);
    let all = c
        .signed("GET", "/api/v3/allOrders", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(all.body[0]["status"], "CANCELED");
    let t = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.001"),
        ])
        .await;
    assert_eq!(t.status, 200);
    let test = c
        .signed(
            "POST",
            "/api/v3/order/test",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "MARKET"),
                ("quantity", "0.001"),
            ],
        )
        .await;
    assert_eq!((test.status, test.body.clone()), (200, serde_json::json!({})));
    h.shutdown().await;
}

#[tokio::test]
async fn account_side_endpoints_answer() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let r = c
        .signed("GET", "/api/v3/account/commission", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(r.body["standardCommission"]["taker"], "0.00100000");
    let r = c.signed("GET", "/api/v3/rateLimit/order", &[]).await;
    assert_eq!(r.body[0]["rateLimitType"], "ORDERS");
    let r = c.signed("GET", "/sapi/v1/account/apiRestrictions", &[]).await;
    assert_eq!(r.body["enableWithdrawals"], false);
    assert_eq!(r.body["enableSpotAndMarginTrading"], true);
    let r = c.signed("GET", "/api/v3/openOrderList", &[]).await;
    assert_eq!(r.body, serde_json::json!([]));
    h.shutdown().await;
}

#[tokio::test]
async fn unsupported_order_features_and_duplicate_parameters_are_rejected() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let c = Client::new(&h);
    let base = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01"),
        ("price", "90000"),
    ];
    let mut peg = base.to_vec();
    peg.push(("pegPriceType", "PRIMARY_PEG"));
    assert_eq!(c.order(&peg).await.code(), -2010);
    let mut stp = base.to_vec();
    stp.push(("selfTradePreventionMode", "DECREMENT"));
    assert_eq!(c.order(&stp).await.code(), -1130);
    let r = c
        .public("/api/v3/depth", &[("symbol", "BTCUSDT"), ("symbol", "ETHUSDT")])
        .await;
    assert_eq!((r.status, r.code()), (400, -1101));
    h.shutdown().await;
}

#[tokio::test]
async fn ed25519_keys_sign_rest_requests() {
    use base64::Engine as _;
    use ed25519_dalek::{Signer, SigningKey};
    let sk = SigningKey::from_bytes(&[9u8; 32]);
    let key = "E".repeat(64);
    let config = crbot::exchange::sim::SimConfig {
        keys: vec![crbot::exchange::sim::SimKey {
            api_key: key.clone(),
            auth: crbot::exchange::sim::SimAuth::Ed25519(sk.verifying_key().to_bytes()),
            enable_withdrawals: true,
            ip_restrict: true,
            enable_spot_trading: false,
        }],
        ..still_config()
    };
    let h = start(config).await;
    let c = Client::new(&h);
    let sign = |q: &str| {
        let sig = base64::engine::general_purpose::STANDARD.encode(sk.sign(q.as_bytes()).to_bytes());
        url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>()
    };
    let q = encode(&[("timestamp", &now_ms().to_string())]);
    let r = c
        .raw(
            "GET",
            &format!("/sapi/v1/account/apiRestrictions?{q}&signature={}", sign(&q)),
            None,
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["enableWithdrawals"], true);
    assert_eq!(r.body["ipRestrict"], true);
    assert_eq!(r.body["enableSpotAndMarginTrading"], false);
    let r = c
        .raw(
            "GET",
            &format!("/api/v3/account?{q}&signature={}", sign("timestamp=1")),
            None,
            Some(&key),
        )
        .await;
    assert_eq!(r.code(), -1022);
    // A key without the trading permission cannot place orders.
    let q = encode(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.001"),
        ("timestamp", &now_ms().to_string()),
    ]);
    let r = c
        .raw(
            "POST",
            &format!("/api/v3/order?{q}&signature={}", sign(&q)),
            None,
            Some(&key),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, -2015));
    h.shutdown().await;
}
