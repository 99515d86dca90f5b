//! Market streams and the WebSocket API of the local exchange, read with a plain
//! tokio-tungstenite client.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use std::time::Duration;

use client::{Client, now_ms, start, still_config, ws_sign};
use crbot::exchange::sim::SimConfig;
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn fast_config() -> SimConfig {
    SimConfig {
        step_interval: Duration::from_millis(40),
        ..SimConfig::default()
    }
}

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Next JSON text frame (pings are answered by tungstenite while reading).
async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads frames until one matches `pred`.
async fn wait_for(ws: &mut Ws, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let left = deadline - tokio::time::Instant::now();
        let v = next_json(ws, left).await?;
        if pred(&v) {
            return Some(v);
        }
    }
    None
}

#[tokio::test]
async fn combined_stream_wraps_payloads_in_the_envelope() {
    let h = start(fast_config()).await;
    let mut ws = connect(&format!(
        "{}/stream?streams=btcusdt@bookTicker/ethusdt@trade",
        h.ws_url()
    ))
    .await;
    let v = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["stream"] == "btcusdt@bookTicker"
    })
    .await
    .unwrap();
    assert_eq!(v["data"]["s"], "BTCUSDT");
    assert!(v["data"].get("e").is_none(), "bookTicker has no e field");
    let t = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["stream"] == "ethusdt@trade"
    })
    .await
    .unwrap();
    assert_eq!(t["data"]["e"], "trade");
    assert!(t["data"]["p"].is_string() && t["data"]["t"].is_u64());
    h.shutdown().await;
}

#[tokio::test]
async fn subscribe_list_and_unsubscribe_on_a_raw_connection() {
    let h = start(fast_config()).await;
    let mut ws = connect(&format!("{}/ws", h.ws_url())).await;
    let sub = json!({"method": "SUBSCRIBE", "params": ["solusdt@aggTrade", "solusdt@kline_1m", "!miniTicker@arr"], "id": 1});
    ws.send(Message::Text(sub.to_string().into())).await.unwrap();
    let r = wait_for(&mut ws, Duration::from_secs(5), |v| v.get("id").is_some())
        .await
        .unwrap();
    assert_eq!(r, json!({"result": null, "id": 1}));
    let agg = wait_for(&mut ws, Duration::from_secs(5), |v| v["e"] == "aggTrade")
        .await
        .unwrap();
    assert_eq!(agg["s"], "SOLUSDT");
    let k = wait_for(&mut ws, Duration::from_secs(5), |v| v["e"] == "kline")
        .await
        .unwrap();
    assert_eq!(k["k"]["i"], "1m");
    let arr = wait_for(&mut ws, Duration::from_secs(5), |v| v.is_array())
        .await
        .unwrap();
    assert_eq!(arr[0]["e"], "24hrMiniTicker");
    ws.send(Message::Text(
        json!({"method": "LIST_SUBSCRIPTIONS", "id": 3})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let l = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 3)
        .await
        .unwrap();
    assert_eq!(l["result"].as_array().unwrap().len(), 3);
    let un = json!({"method": "UNSUBSCRIBE", "params": ["solusdt@kline_1m"], "id": 4});
    ws.send(Message::Text(un.to_string().into())).await.unwrap();
    wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 4)
        .await
        .unwrap();
    ws.send(Message::Text(
        json!({"method": "LIST_SUBSCRIPTIONS", "id": 5})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let l = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 5)
        .await
        .unwrap();
    assert_eq!(l["result"], json!(["solusdt@aggTrade", "!miniTicker@arr"]));
    let bad = json!({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 6});
    ws.send(Message::Text(bad.to_string().into())).await.unwrap();
    let e = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 6)
        .await
        .unwrap();
    assert!(e["error"]["code"].is_i64());
    h.shutdown().await;
}

#[tokio::test]
async fn depth_diffs_are_continuous_and_follow_the_snapshot() {
    let h = start(fast_config()).await;
    let mut ws = connect(&format!("{}/ws/xrpusdt@depth", h.ws_url())).await;
    let first = wait_for(&mut ws, Duration::from_secs(5), |v| v["e"] == "depthUpdate")
        .await
        .unwrap();
    let c = Client::new(&h);
    let snap = c
        .public("/api/v3/depth", &[("symbol", "XRPUSDT"), ("limit", "1000")])
        .await
        .body;
    let last_id = snap["lastUpdateId"].as_u64().unwrap();
    assert!(last_id >= first["U"].as_u64().unwrap());
    let mut prev_u = first["u"].as_u64().unwrap();
    let mut straddled = false;
    for _ in 0..20 {
        let v = wait_for(&mut ws, Duration::from_secs(5), |v| v["e"] == "depthUpdate")
            .await
            .unwrap();
        let (u0, u1) = (v["U"].as_u64().unwrap(), v["u"].as_u64().unwrap());
        assert_eq!(u0, prev_u + 1, "gap in depth diffs");
        assert!(u1 >= u0);
        if u0 <= last_id + 1 && u1 > last_id {
            straddled = true;
        }
        prev_u = u1;
    }
    assert!(
        straddled || prev_u <= last_id,
        "the snapshot id falls inside one diff's [U;u]"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn partial_depth_streams_give_n_levels() {
    let h = start(fast_config()).await;
    let mut ws = connect(&format!("{}/ws/bnbusdt@depth5", h.ws_url())).await;
    let v = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v.get("lastUpdateId").is_some()
    })
    .await
    .unwrap();
    assert_eq!(v["bids"].as_array().unwrap().len(), 5);
    assert_eq!(v["asks"].as_array().unwrap().len(), 5);
    h.shutdown().await;
}

#[tokio::test]
async fn server_pings_and_closes_at_the_end_of_the_lifetime() {
    let config = SimConfig {
        ws_ping_interval: Duration::from_millis(100),
        ws_lifetime: Duration::from_millis(800),
        ..still_config()
    };
    let h = start(config).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", h.ws_url())).await;
    let mut pinged = false;
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pinged = true,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(pinged && closed);
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_server_shutdown_on_streams() {
    let h = start(still_config()).await;
    let mut ws = connect(&format!("{}/stream?streams=btcusdt@trade", h.ws_url())).await;
    // Make sure the connection is being served before shutting down.
    ws.send(Message::Text(
        json!({"method": "LIST_SUBSCRIPTIONS", "id": 1})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 1)
        .await
        .unwrap();
    let stop = tokio::spawn(h.shutdown());
    let v = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["stream"] == "!serverShutdown"
    })
    .await
    .unwrap();
    assert_eq!(v["data"]["e"], "serverShutdown");
    stop.await.unwrap();
}

// ------------------------------------------------------------------ WebSocket API

async fn api_call(ws: &mut Ws, id: &str, method: &str, params: Value) -> Value {
    let req = json!({"id": id, "method": method, "params": params});
    ws.send(Message::Text(req.to_string().into())).await.unwrap();
    wait_for(ws, Duration::from_secs(5), |v| v["id"] == id)
        .await
        .unwrap()
}

#[tokio::test]
async fn ws_api_user_data_events_follow_orders() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let (key, secret) = (h.api_key(), h.api_secret().expose().to_string());
    let mut ws = connect(&h.ws_api_url()).await;

    let st = api_call(&mut ws, "s1", "session.status", json!({})).await;
    assert_eq!(st["status"], 200);
    assert_eq!(st["result"]["userDataStream"], false);

    let mut bad = json!({"apiKey": key, "timestamp": now_ms()})
        .as_object()
        .cloned()
        .unwrap();
    bad.insert("signature".into(), json!("00"));
    let r = api_call(
        &mut ws,
        "bad",
        "userDataStream.subscribe.signature",
        Value::Object(bad),
    )
    .await;
    assert_eq!(r["error"]["code"], -1022);

    let mut p = json!({"apiKey": key, "timestamp": now_ms()})
        .as_object()
        .cloned()
        .unwrap();
    ws_sign(&secret, &mut p);
    let r = api_call(
        &mut ws,
        "sub",
        "userDataStream.subscribe.signature",
        Value::Object(p.clone()),
    )
    .await;
    assert_eq!(r["result"], json!({"subscriptionId": 0}), "{r}");
    assert!(r["rateLimits"].is_array());
    let again = api_call(
        &mut ws,
        "sub2",
        "userDataStream.subscribe.signature",
        Value::Object(p),
    )
    .await;
    assert_eq!(again["error"]["code"], -2035);

    // A market order over the WebSocket API: response, then NEW, TRADE and account events.
    let mut o = json!({"apiKey": key, "timestamp": now_ms(), "symbol": "BTCUSDT", "side": "BUY",
                       "type": "MARKET", "quantity": "0.01", "newClientOrderId": "ws-1"})
    .as_object()
    .cloned()
    .unwrap();
    ws_sign(&secret, &mut o);
    let r = api_call(&mut ws, "o1", "order.place", Value::Object(o)).await;
    assert_eq!(r["result"]["status"], "FILLED", "{r}");
    let new = wait_for(&mut ws, Duration::from_secs(5), |v| v["event"]["x"] == "NEW")
        .await
        .unwrap();
    assert_eq!(new["subscriptionId"], 0);
    assert_eq!(new["event"]["c"], "ws-1");
    assert_eq!(new["event"]["C"], "");
    let trade = wait_for(&mut ws, Duration::from_secs(5), |v| v["event"]["x"] == "TRADE")
        .await
        .unwrap();
    let e = &trade["event"];
    assert_eq!(e["N"], "BTC");
    assert!(e["t"].as_i64().unwrap() > 0 && e["l"].is_string() && e["L"].is_string() && e["z"].is_string());
    let pos = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["event"]["e"] == "outboundAccountPosition"
    })
    .await
    .unwrap();
    assert!(
        pos["event"]["B"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["a"] == "BTC")
    );

    // A REST limit order cancelled with a cancel id: c is the cancel's id, C the order's.
    let c = Client::new(&h);
    let lim = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "90000"),
            ("newClientOrderId", "rest-1"),
        ])
        .await;
    let mut x = json!({"apiKey": key, "timestamp": now_ms(), "symbol": "BTCUSDT",
                       "orderId": lim.body["orderId"], "newClientOrderId": "cancel-1"})
    .as_object()
    .cloned()
    .unwrap();
    ws_sign(&secret, &mut x);
    let r = api_call(&mut ws, "x1", "order.cancel", Value::Object(x)).await;
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
    let cx = wait_for(&mut ws, Duration::from_secs(5), |v| v["event"]["x"] == "CANCELED")
        .await
        .unwrap();
    assert_eq!(cx["event"]["c"], "cancel-1");
    assert_eq!(cx["event"]["C"], "rest-1");
    assert_eq!(cx["event"]["X"], "CANCELED");

    let mut q =
        json!({"apiKey": key, "timestamp": now_ms(), "symbol": "BTCUSDT", "origClientOrderId": "ws-1"})
            .as_object()
            .cloned()
            .unwrap();
    ws_sign(&secret, &mut q);
    let r = api_call(&mut ws, "q1", "order.status", Value::Object(q)).await;
    assert_eq!(r["result"]["status"], "FILLED");

    let r = api_call(&mut ws, "u1", "userDataStream.unsubscribe", json!({})).await;
    assert_eq!(r["status"], 200);
    let st = api_call(&mut ws, "s2", "session.status", json!({})).await;
    assert_eq!(st["result"]["userDataStream"], false);
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = SimConfig {
        ws_ping_interval: Duration::from_millis(100),
        ws_pong_timeout: Duration::from_millis(400),
        ..still_config()
    };
    let h = start(config).await;
    // A raw TCP client: it completes the handshake, then reads bytes without ever sending a pong.
    let addr = h.ws_url().trim_start_matches("ws://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /ws/btcusdt@trade HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true));
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 101"));
    // 0x89 = FIN + ping opcode: the server pinged before giving up.
    assert!(seen.contains(&0x89));
    h.shutdown().await;
}

#[tokio::test]
async fn ws_api_cancel_replace_answers_both_halves_and_trailing_reports_carry_d_and_big_d() {
    let h = start(still_config()).await;
    h.set_price("BTCUSDT", Decimal::from(100_000)).unwrap();
    let (key, secret) = (h.api_key(), h.api_secret().expose().to_string());
    let c = Client::new(&h);
    let placed = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.01"),
            ("price", "95000"),
        ])
        .await;
    let old = placed.body["orderId"].as_u64().unwrap();
    let mut ws = connect(&h.ws_api_url()).await;
    let signed = |v: Value| {
        let mut p = v.as_object().cloned().unwrap();
        p.insert("apiKey".into(), json!(key));
        p.insert("timestamp".into(), json!(now_ms()));
        ws_sign(&secret, &mut p);
        Value::Object(p)
    };
    let mut sub = json!({}).as_object().cloned().unwrap();
    sub.insert("apiKey".into(), json!(key));
    sub.insert("timestamp".into(), json!(now_ms()));
    ws_sign(&secret, &mut sub);
    let r = api_call(
        &mut ws,
        "sub",
        "userDataStream.subscribe.signature",
        Value::Object(sub),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");

    // Replace the limit buy by a trailing stop-loss buy (tracks from placement, 1 %).
    let r = api_call(
        &mut ws,
        "cr1",
        "order.cancelReplace",
        signed(
            json!({"symbol": "BTCUSDT", "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": old,
                      "side": "BUY", "type": "STOP_LOSS", "quantity": "0.01", "trailingDelta": 100}),
        ),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["result"]["cancelResult"], "SUCCESS");
    assert_eq!(r["result"]["cancelResponse"]["status"], "CANCELED");
    let new_id = r["result"]["newOrderResponse"]["orderId"].as_u64().unwrap();
    let report = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["event"]["e"] == "executionReport" && v["event"]["i"] == new_id
    })
    .await
    .unwrap();
    assert_eq!(report["event"]["d"], 100, "{report}");
    assert!(report["event"]["D"].as_i64().unwrap() > 0);

    // The same cancel again fails; ALLOW_FAILURE still places: 409 with -2021 and its data.
    let r = api_call(
        &mut ws,
        "cr2",
        "order.cancelReplace",
        signed(
            json!({"symbol": "BTCUSDT", "cancelReplaceMode": "ALLOW_FAILURE", "cancelOrderId": old,
                      "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
                      "price": "94000"}),
        ),
    )
    .await;
    assert_eq!(
        (&r["status"], &r["error"]["code"]),
        (&json!(409), &json!(-2021)),
        "{r}"
    );
    let d = &r["error"]["data"];
    assert_eq!(
        (&d["cancelResult"], &d["newOrderResult"]),
        (&json!("FAILURE"), &json!("SUCCESS"))
    );
    assert_eq!(
        d["cancelResponse"],
        json!({"code": -2011, "msg": "Unknown order sent."})
    );
    h.shutdown().await;
}
