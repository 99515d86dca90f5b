//! The local exchange's public trade and window endpoints (`trades`, `historicalTrades`,
//! `aggTrades`, `ticker`, `ticker/tradingDay`) and the account endpoints trading tools read
//! at start-up (`tradeFee`, `capital/config/getall`, margin pairs, `myPreventedMatches`).
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;

use client::{Client, dec, now_ms, start, still_config};
use rust_decimal::Decimal;
use serde_json::Value;

fn ids(v: &Value, field: &str) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_tape_holds_the_history_and_the_accounts_own_fills() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let recent = c
        .public("/api/v3/trades", &[("symbol", "BTCUSDT"), ("limit", "5")])
        .await;
    assert_eq!(recent.status, 200);
    let before = ids(&recent.body, "id");
    assert_eq!(before.len(), 5);
    assert!(before.windows(2).all(|w| w[1] == w[0] + 1), "{before:?}");
    let r = c
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.01"),
            ("newOrderRespType", "FULL"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fill_ids: Vec<u64> = ids(&r.body["fills"], "tradeId");
    let after = c
        .public("/api/v3/trades", &[("symbol", "BTCUSDT"), ("limit", "1000")])
        .await;
    let rows = after.body.as_array().unwrap();
    assert_eq!(rows.len(), 1000);
    let last = rows.last().unwrap();
    assert_eq!(last["id"].as_u64(), fill_ids.last().copied());
    // The taker bought: the buyer was not the maker.
    assert_eq!(last["isBuyerMaker"], false);
    assert_eq!(dec(&last["quoteQty"]), dec(&last["price"]) * dec(&last["qty"]));
    assert_eq!(last["isBestMatch"], true);
    // Its aggregate carries the trade's id, as the @aggTrade stream does.
    let aggs = c
        .public("/api/v3/aggTrades", &[("symbol", "BTCUSDT"), ("limit", "1")])
        .await;
    let a = &aggs.body[0];
    assert_eq!(
        (a["a"].as_u64(), a["f"].as_u64(), a["l"].as_u64()),
        (last["id"].as_u64(), last["id"].as_u64(), last["id"].as_u64())
    );
    // The rows agree with the 24 h ticker's last trade id.
    let t = c.public("/api/v3/ticker/24hr", &[("symbol", "BTCUSDT")]).await;
    assert_eq!(t.body["lastId"], last["id"]);
    // historicalTrades pages forward from an id.
    let first = before[0];
    let from = first.to_string();
    let hist = c
        .public(
            "/api/v3/historicalTrades",
            &[("symbol", "BTCUSDT"), ("fromId", &from), ("limit", "3")],
        )
        .await;
    assert_eq!(ids(&hist.body, "id"), vec![first, first + 1, first + 2]);
    let bad = c.public("/api/v3/trades", &[("symbol", "NOPEUSDT")]).await;
    assert_eq!((bad.status, bad.code()), (400, -1121));
    let missing = c.public("/api/v3/historicalTrades", &[]).await;
    assert_eq!((missing.status, missing.code()), (400, -1102));
    h.shutdown().await;
}

#[tokio::test]
async fn agg_trades_page_by_id_and_time_and_cover_every_trade() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let aggs = c
        .public("/api/v3/aggTrades", &[("symbol", "ETHUSDT"), ("limit", "20")])
        .await;
    let rows = aggs.body.as_array().unwrap().clone();
    assert_eq!(rows.len(), 20);
    for w in rows.windows(2) {
        assert_eq!(w[1]["a"].as_u64().unwrap(), w[0]["a"].as_u64().unwrap() + 1);
        // Consecutive aggregates cover consecutive trade ids.
        assert_eq!(w[1]["f"].as_u64().unwrap(), w[0]["l"].as_u64().unwrap() + 1);
        assert!(w[1]["T"].as_i64().unwrap() >= w[0]["T"].as_i64().unwrap());
    }
    let mid = &rows[10];
    let from = mid["a"].to_string();
    let by_id = c
        .public(
            "/api/v3/aggTrades",
            &[("symbol", "ETHUSDT"), ("fromId", &from), ("limit", "2")],
        )
        .await;
    assert_eq!(by_id.body[0], *mid);
    assert_eq!(by_id.body.as_array().unwrap().len(), 2);
    let t = mid["T"].to_string();
    let by_time = c
        .public(
            "/api/v3/aggTrades",
            &[("symbol", "ETHUSDT"), ("startTime", &t), ("endTime", &t)],
        )
        .await;
    assert!(
        by_time
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["T"] == mid["T"])
    );
    assert!(by_time.body.as_array().unwrap().contains(mid));
    let bad = c
        .public(
            "/api/v3/aggTrades",
            &[("symbol", "ETHUSDT"), ("startTime", "soon")],
        )
        .await;
    assert_eq!(bad.code(), -1100);
    h.shutdown().await;
}

#[tokio::test]
async fn rolling_and_trading_day_tickers_follow_the_documented_windows() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let t = c
        .public("/api/v3/ticker", &[("symbol", "SOLUSDT"), ("windowSize", "1h")])
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.header("x-mbx-used-weight-1m").as_deref(), Some("4"));
    let open = t.body["openTime"].as_i64().unwrap();
    let close = t.body["closeTime"].as_i64().unwrap();
    assert_eq!(open % 60_000, 0);
    assert!(close - open >= 3_600_000 && close - open < 3_660_000);
    assert!(t.body["priceChangePercent"].is_string() && t.body["count"].as_u64().unwrap() > 0);
    // A 1 h window holds fewer trades than a 1 d one, and ends on the same last trade.
    let d = c.public("/api/v3/ticker", &[("symbol", "SOLUSDT")]).await;
    assert!(d.body["count"].as_u64().unwrap() > t.body["count"].as_u64().unwrap());
    assert_eq!(d.body["lastId"], t.body["lastId"]);
    let list = c
        .public(
            "/api/v3/ticker",
            &[("symbols", "[\"BTCUSDT\",\"ETHUSDT\"]"), ("type", "MINI")],
        )
        .await;
    let rows = list.body.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].get("priceChange").is_none() && rows[0]["lastPrice"].is_string());
    for (params, code) in [
        (vec![("symbol", "SOLUSDT"), ("windowSize", "24h")], -1100),
        (vec![("symbol", "SOLUSDT"), ("type", "HALF")], -1139),
        (vec![], -1102),
        (vec![("symbol", "SOLUSDT"), ("symbols", "[\"BTCUSDT\"]")], -1128),
        (vec![("symbols", "[\"BTCUSDT\",\"BTCUSDT\"]")], -1151),
        (vec![("symbol", "SOLUSDT"), ("symbolStatus", "HALT")], -1220),
    ] {
        let r = c.public("/api/v3/ticker", &params).await;
        assert_eq!((r.status, r.code()), (400, code), "{params:?}: {}", r.body);
    }
    let day = c
        .public(
            "/api/v3/ticker/tradingDay",
            &[("symbol", "BTCUSDT"), ("timeZone", "-5:00")],
        )
        .await;
    assert_eq!(day.status, 200, "{}", day.body);
    let open = day.body["openTime"].as_i64().unwrap();
    assert_eq!((open - 5 * 3_600_000).rem_euclid(86_400_000), 0);
    assert_eq!(day.body["closeTime"].as_i64().unwrap(), open + 86_400_000 - 1);
    assert!(open <= now_ms() && now_ms() < open + 86_400_000);
    let bad = c
        .public(
            "/api/v3/ticker/tradingDay",
            &[("symbol", "BTCUSDT"), ("timeZone", "15")],
        )
        .await;
    assert_eq!(bad.code(), -1100);
    h.shutdown().await;
}

#[tokio::test]
async fn account_endpoints_of_trading_tools_answer_like_binance() {
    let h = start(still_config()).await;
    let c = Client::new(&h);
    let fee = c
        .signed("GET", "/sapi/v1/asset/tradeFee", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(fee.status, 200, "{}", fee.body);
    assert_eq!(fee.body[0]["symbol"], "BTCUSDT");
    assert_eq!(dec(&fee.body[0]["takerCommission"]), Decimal::new(1, 3));
    let all = c.signed("GET", "/sapi/v1/asset/tradeFee", &[]).await;
    assert_eq!(all.body.as_array().unwrap().len(), 6);
    let unsigned = c.public("/sapi/v1/asset/tradeFee", &[]).await;
    assert_eq!((unsigned.status, unsigned.code()), (401, -2014));
    let coins = c.signed("GET", "/sapi/v1/capital/config/getall", &[]).await;
    let names: Vec<&str> = coins
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["coin"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["BNB", "BTC", "DOGE", "ETH", "SOL", "USDT", "XRP"]);
    let (usdt_free, _) = c.balance("USDT").await;
    let usdt = coins
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["coin"] == "USDT")
        .unwrap();
    assert_eq!(dec(&usdt["free"]), usdt_free);
    // Market data with a key: an account with no margin has no pairs.
    let key = c.key.clone();
    let pairs = c.raw("GET", "/sapi/v1/margin/allPairs", None, Some(&key)).await;
    assert_eq!((pairs.status, pairs.body.clone()), (200, serde_json::json!([])));
    let nokey = c.raw("GET", "/sapi/v1/margin/allPairs", None, None).await;
    assert_eq!((nokey.status, nokey.code()), (401, -2014));
    let pm = c
        .signed(
            "GET",
            "/api/v3/myPreventedMatches",
            &[("symbol", "BTCUSDT"), ("orderId", "1")],
        )
        .await;
    assert_eq!((pm.status, pm.body.clone()), (200, serde_json::json!([])));
    let combo = c
        .signed(
            "GET",
            "/api/v3/myPreventedMatches",
            &[("symbol", "BTCUSDT"), ("preventedMatchId", "1"), ("orderId", "1")],
        )
        .await;
    assert_eq!(combo.code(), -1128);
    let neither = c
        .signed("GET", "/api/v3/myPreventedMatches", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(neither.code(), -1102);
    let status = c.public("/sapi/v1/system/status", &[]).await;
    assert_eq!(status.body, serde_json::json!({"status": 0, "msg": "normal"}));
    let acct = c.signed("GET", "/sapi/v1/account/status", &[]).await;
    assert_eq!(acct.body, serde_json::json!({"data": "Normal"}));
    // What is not built answers Binance's error JSON.
    let unknown = c.signed("GET", "/sapi/v1/margin/account", &[]).await;
    assert_eq!((unknown.status, unknown.code()), (404, -1000));
    h.shutdown().await;
}
