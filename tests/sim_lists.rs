//! OTO and OTOCO order lists on the local exchange, after Binance's rest-api.md ("New order
//! list - OTO", "New order list - OTOCO"), user-data-stream.md and web-socket-api.md: the
//! pending order(s) wait `PENDING_NEW` until the working order fully fills, then work (an
//! OTOCO's as an OCO pair); cancelling the list cancels all; the list endpoints show them.
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

fn px(h: &SimHandle, p: &str) {
    h.set_price("BTCUSDT", p.parse::<Decimal>().unwrap()).unwrap();
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn order(c: &Client, id: &Value) -> Value {
    let id = id.to_string();
    c.signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)])
        .await
        .body
}

const OTO: &[(&str, &str)] = &[
    ("symbol", "BTCUSDT"),
    ("listClientOrderId", "oto-1"),
    ("workingType", "LIMIT"),
    ("workingSide", "BUY"),
    ("workingPrice", "99000"),
    ("workingQuantity", "0.01"),
    ("workingTimeInForce", "GTC"),
    ("workingClientOrderId", "oto-w"),
    ("pendingType", "LIMIT_MAKER"),
    ("pendingSide", "SELL"),
    ("pendingPrice", "102000"),
    ("pendingQuantity", "0.009"),
    ("pendingClientOrderId", "oto-p"),
];

#[tokio::test]
async fn an_oto_places_its_pending_order_when_the_working_order_fills() {
    let h = start(still_config()).await;
    px(&h, "100000");
    let c = Client::new(&h);
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;

    let r = c.signed("POST", "/api/v3/orderList/oto", OTO).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("X-MBX-ORDER-COUNT-10S").as_deref(), Some("2"));
    let b = &r.body;
    assert_eq!(
        (
            &b["contingencyType"],
            &b["listStatusType"],
            &b["listOrderStatus"],
            &b["listClientOrderId"]
        ),
        (
            &json!("OTO"),
            &json!("EXEC_STARTED"),
            &json!("EXECUTING"),
            &json!("oto-1")
        )
    );
    let reports = b["orderReports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (&reports[0]["status"], &reports[0]["type"]),
        (&json!("NEW"), &json!("LIMIT"))
    );
    assert_eq!(
        (
            &reports[1]["status"],
            &reports[1]["type"],
            &reports[1]["workingTime"]
        ),
        (&json!("PENDING_NEW"), &json!("LIMIT_MAKER"), &json!(-1))
    );
    let (working, pending) = (reports[0]["orderId"].clone(), reports[1]["orderId"].clone());
    // Only the working order holds funds; the pending sell needs BTC the account has not got.
    assert_eq!(c.balance("USDT").await, (d("9010"), d("990")));
    let ev = u.wait(|e| e["e"] == "executionReport" && e["c"] == "oto-p").await;
    assert_eq!(
        (&ev["x"], &ev["X"], &ev["g"]),
        (&json!("NEW"), &json!("PENDING_NEW"), &b["orderListId"])
    );
    let ls = u.wait(|e| e["e"] == "listStatus").await;
    assert_eq!(
        (&ls["c"], &ls["C"], &ls["l"]),
        (&json!("OTO"), &json!("oto-1"), &json!("EXEC_STARTED"))
    );
    let open = c
        .signed("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await
        .body;
    assert_eq!(open.as_array().unwrap().len(), 2);
    let lists = c.signed("GET", "/api/v3/openOrderList", &[]).await.body;
    assert_eq!(lists[0]["contingencyType"], "OTO");
    let by_client = c
        .signed("GET", "/api/v3/orderList", &[("origClientOrderId", "oto-1")])
        .await;
    assert_eq!(
        by_client.body["orderListId"], b["orderListId"],
        "{}",
        by_client.body
    );

    // The market falls through the working order: it fills, the pending order goes live.
    px(&h, "98000");
    assert_eq!(order(&c, &working).await["status"], "FILLED");
    let p = order(&c, &pending).await;
    assert_eq!(
        (&p["status"], &p["isWorking"]),
        (&json!("NEW"), &json!(true)),
        "{p}"
    );
    assert_eq!(c.balance("BTC").await, (d("0.00099"), d("0.009")));
    let live = u
        .wait(|e| e["e"] == "executionReport" && e["c"] == "oto-p" && e["X"] == "NEW")
        .await;
    assert_eq!(live["x"], "NEW");

    // Then rises through the pending sell: the list is done.
    px(&h, "103000");
    assert_eq!(order(&c, &pending).await["status"], "FILLED");
    let all = c.signed("GET", "/api/v3/allOrderList", &[]).await.body;
    assert_eq!(all[0]["listOrderStatus"], "ALL_DONE", "{all}");
    assert_eq!(
        c.signed("GET", "/api/v3/openOrderList", &[]).await.body,
        json!([])
    );
    let done = u.wait(|e| e["e"] == "listStatus" && e["L"] == "ALL_DONE").await;
    assert_eq!(done["c"], "OTO");
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);
    h.shutdown().await;
}

fn otoco(list_id: &str) -> Vec<(&'static str, String)> {
    let s = |x: &str| x.to_string();
    vec![
        ("symbol", s("BTCUSDT")),
        ("listClientOrderId", s(list_id)),
        ("workingType", s("LIMIT")),
        ("workingSide", s("BUY")),
        ("workingPrice", s("99000")),
        ("workingQuantity", s("0.01")),
        ("workingTimeInForce", s("GTC")),
        ("pendingSide", s("SELL")),
        ("pendingQuantity", s("0.009")),
        ("pendingAboveType", s("LIMIT_MAKER")),
        ("pendingAbovePrice", s("102000")),
        ("pendingBelowType", s("STOP_LOSS")),
        ("pendingBelowStopPrice", s("97000")),
    ]
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, x)| (*k, x.as_str())).collect()
}

#[tokio::test]
async fn an_otoco_places_an_oco_pair_that_ends_as_an_oco_and_cancelling_it_cancels_all() {
    let h = start(still_config()).await;
    px(&h, "100000");
    let c = Client::new(&h);
    let r = c
        .signed("POST", "/api/v3/orderList/otoco", &pairs(&otoco("otoco-1")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("X-MBX-ORDER-COUNT-10S").as_deref(), Some("3"));
    let reports = r.body["orderReports"].as_array().unwrap().clone();
    assert_eq!(reports.len(), 3);
    assert_eq!(r.body["contingencyType"], "OTO");
    assert!(reports[1..].iter().all(|o| o["status"] == "PENDING_NEW"));
    let (above, below) = (reports[1]["orderId"].clone(), reports[2]["orderId"].clone());

    px(&h, "98000");
    assert_eq!(order(&c, &above).await["status"], "NEW");
    let stop = order(&c, &below).await;
    assert_eq!(
        (&stop["status"], &stop["isWorking"]),
        (&json!("NEW"), &json!(false))
    );
    // One lock for the pair, as an OCO's.
    assert_eq!(c.balance("BTC").await.1, d("0.009"));
    // The stop triggers: it sells, and the limit maker above expires.
    px(&h, "96000");
    assert_eq!(order(&c, &below).await["status"], "FILLED");
    let a = order(&c, &above).await;
    assert_eq!(
        (&a["status"], &a["expiryReason"]),
        (&json!("EXPIRED"), &json!("OCO_TRIGGER"))
    );
    let list = c
        .signed(
            "GET",
            "/api/v3/orderList",
            &[("orderListId", &r.body["orderListId"].to_string())],
        )
        .await
        .body;
    assert_eq!(list["listOrderStatus"], "ALL_DONE");
    assert_eq!(c.balance("BTC").await.1, Decimal::ZERO);

    // A second list, cancelled before anything fills: all three orders end, the lock is back.
    px(&h, "100000");
    let usdt = c.balance("USDT").await;
    let r = c
        .signed("POST", "/api/v3/orderList/otoco", &pairs(&otoco("otoco-2")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.balance("USDT").await.1, usdt.1 + d("990"));
    let x = c
        .signed(
            "DELETE",
            "/api/v3/orderList",
            &[("symbol", "BTCUSDT"), ("listClientOrderId", "otoco-2")],
        )
        .await;
    assert_eq!(x.status, 200, "{}", x.body);
    let statuses: Vec<&Value> = x.body["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["status"])
        .collect();
    assert_eq!(statuses, [&json!("CANCELED"); 3]);
    assert_eq!(c.balance("USDT").await, usdt);
    h.shutdown().await;
}

#[tokio::test]
async fn a_working_order_that_expires_takes_its_pending_order_with_it() {
    let h = start(still_config()).await;
    px(&h, "100000");
    let c = Client::new(&h);
    let mut p = OTO.to_vec();
    p.retain(|(k, _)| *k != "workingTimeInForce" && *k != "listClientOrderId");
    p.push(("workingTimeInForce", "IOC"));
    let r = c.signed("POST", "/api/v3/orderList/oto", &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reports = r.body["orderReports"].as_array().unwrap();
    assert_eq!(reports[0]["status"], "EXPIRED");
    let pending = order(&c, &reports[1]["orderId"]).await;
    assert_eq!(
        (&pending["status"], &pending["expiryReason"]),
        (&json!("EXPIRED"), &json!("OTO_PHASE_ONE_EXPIRED"))
    );
    assert_eq!(c.balance("USDT").await, (d("10000"), Decimal::ZERO));
    h.shutdown().await;
}

#[tokio::test]
async fn malformed_lists_are_refused_whole_naming_the_legs_parameter() {
    let h = start(still_config()).await;
    px(&h, "100000");
    let c = Client::new(&h);
    let with = |k: &'static str, v: &'static str| {
        let mut p: Vec<(&str, &str)> = OTO.iter().filter(|(x, _)| *x != k).copied().collect();
        if !v.is_empty() {
            p.push((k, v));
        }
        p
    };
    for (p, code, msg) in [
        (
            with("workingType", "MARKET"),
            -2010,
            "Unsupported order combination",
        ),
        (
            with("pendingQuantity", ""),
            -1102,
            "Mandatory parameter 'pendingQuantity' was not sent, was empty/null, or malformed.",
        ),
        (
            with("pendingPrice", "102000.001"),
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            with("workingTimeInForce", ""),
            -1102,
            "Mandatory parameter 'workingTimeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            with("pendingClientOrderId", "oto-w"),
            -2010,
            "Duplicate order sent.",
        ),
    ] {
        let r = c.signed("POST", "/api/v3/orderList/oto", &p).await;
        assert_eq!(
            (r.code(), r.body["msg"].as_str().unwrap_or("")),
            (code, msg),
            "{p:?}"
        );
    }
    // A list client id in use by a list still executing.
    let first = c.signed("POST", "/api/v3/orderList/oto", OTO).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let mut again: Vec<(&str, &str)> = OTO
        .iter()
        .filter(|(k, _)| !k.ends_with("ClientOrderId") || *k == "listClientOrderId")
        .copied()
        .collect();
    let r = c.signed("POST", "/api/v3/orderList/oto", &again).await;
    assert_eq!(
        (r.code(), r.body["msg"].as_str()),
        (-2010, Some("Duplicate order sent."))
    );
    let id = first.body["orderListId"].to_string();
    c.signed(
        "DELETE",
        "/api/v3/orderList",
        &[("symbol", "BTCUSDT"), ("orderListId", &id)],
    )
    .await;
    // Once that list is done the id may be used again.
    again.retain(|(k, _)| *k != "listClientOrderId");
    again.push(("listClientOrderId", "oto-1"));
    let r = c.signed("POST", "/api/v3/orderList/oto", &again).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["orderListId"].to_string();
    c.signed(
        "DELETE",
        "/api/v3/orderList",
        &[("symbol", "BTCUSDT"), ("orderListId", &id)],
    )
    .await;

    let mut bad = otoco("x");
    bad.retain(|(k, _)| *k != "pendingBelowType");
    bad.push(("pendingBelowType", "LIMIT_MAKER".into()));
    bad.push(("pendingBelowPrice", "98000".into()));
    let r = c.signed("POST", "/api/v3/orderList/otoco", &pairs(&bad)).await;
    assert_eq!(r.code(), -1158, "{}", r.body);
    assert_eq!(c.balance("USDT").await, (d("10000"), Decimal::ZERO));
    // The two lists cancelled above, nothing from the refused requests.
    let all = c.signed("GET", "/api/v3/allOrderList", &[]).await.body;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    h.shutdown().await;
}

#[tokio::test]
async fn the_websocket_api_places_queries_and_cancels_lists() {
    let h = start(still_config()).await;
    px(&h, "100000");
    let c = Client::new(&h);
    let mut u = UserEvents::subscribe(&h.ws_api_url(), &c.key, &c.secret).await;
    let params: serde_json::Map<String, Value> = OTO.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let r = u.call("oto", "orderList.place.oto", Value::Object(params)).await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["result"]["contingencyType"], "OTO");
    let id = r["result"]["orderListId"].clone();
    let s = u.call("st", "orderList.status", json!({"orderListId": id})).await;
    assert_eq!(s["result"]["listClientOrderId"], "oto-1", "{s}");
    let open = u.call("open", "openOrderLists.status", json!({})).await;
    assert_eq!(open["result"].as_array().unwrap().len(), 1);
    let x = u
        .call(
            "cx",
            "orderList.cancel",
            json!({"symbol": "BTCUSDT", "orderListId": id}),
        )
        .await;
    assert_eq!(x["result"]["listOrderStatus"], "ALL_DONE", "{x}");
    let all = u.call("all", "allOrderLists", json!({})).await;
    assert_eq!(all["result"][0]["orderListId"], id);
    assert_eq!(dec(&json!("0")), Decimal::ZERO);
    h.shutdown().await;
}
