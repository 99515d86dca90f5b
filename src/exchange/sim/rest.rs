//! The REST API of the local exchange and the loopback-only control
//! endpoints (`/sim/control/*`).
//!
//! Owns: routing, parameter transport (query string and x-www-form-urlencoded body; the query
//! wins), weights, security checks in Binance's order, response headers and the JSON of every
//! endpoint. Must not: match orders itself (that is `engine`), or import `ws`: the order
//! operations and authentication it shares with the WebSocket API live in `ops`, and the
//! router that serves both is `sim`'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};

use super::engine::{self, ApiError, Params, order_json, trade_json};
use super::limits::Refusal;
use super::market::{self, kline_row, klines, s8};
use super::ops::{
    ListKind, MAX_PARAMS, authenticate, check_from_id_or_time_range, check_time_range, limit_param,
    op_all_lists, op_cancel, op_cancel_all, op_cancel_list, op_cancel_replace, op_list_status, op_new_order,
    op_open_lists, op_open_orders, op_place_list, op_prevented_matches, op_query_order, too_many_params,
    window,
};
use super::{Shared, SimKey, auth};

mod public;
mod wallet;

/// Security type of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sec {
    None,
    /// A valid API key in `X-MBX-APIKEY`, no signature.
    MarketData,
    UserData,
    Trade,
}

fn json_response(status: u16, body: &Value, headers: Vec<(String, String)>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    for (k, v) in headers {
        if let (Ok(name), Ok(val)) = (axum::http::HeaderName::try_from(k), HeaderValue::from_str(&v)) {
            h.insert(name, val);
        }
    }
    r
}

fn refusal_response(r: &Refusal, weight_header: (String, String)) -> Response {
    json_response(
        r.status,
        &json!({"code": r.code, "msg": r.msg}),
        vec![
            ("Retry-After".into(), r.retry_after_secs.to_string()),
            weight_header,
        ],
    )
}

/// Most bytes the query string and the body may hold together. Far above any real request;
/// it bounds the work done before the signature is checked.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Most bytes read from a body at all: enough to count the parameters of an oversized
/// request (and answer `-1101`), small enough that reading it costs nothing.
const MAX_BODY_READ: usize = 1024 * 1024;

/// Decodes `k=v&…` pairs (form encoding).
pub fn decode_pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Number of `k=v` pairs in a form-encoded string, without decoding it.
fn count_pairs(raw: &str) -> usize {
    raw.split('&').filter(|p| !p.is_empty()).count()
}

/// One pass over the names: a repeated name is a duplicate.
pub(crate) fn has_duplicates<'a>(names: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().any(|k| !seen.insert(k))
}

pub(crate) fn duplicate_params() -> ApiError {
    ApiError::bad(-1101, "Duplicate values for a parameter detected.")
}

fn too_large() -> Response {
    json_response(
        413,
        &json!({"code": -1000, "msg": format!(
            "Request too large: the query string and body together may hold at most {MAX_REQUEST_BYTES} bytes."
        )}),
        vec![],
    )
}

/// Reads and bounds the parameters of a REST request before any other work: the body is
/// read up to `MAX_BODY_READ`, the parameters are counted on the raw text, the size is
/// checked, and only then decoded (linear) and checked for duplicates (one hash-set pass).
async fn read_params(uri: &Uri, body: axum::body::Body) -> Result<(String, String, Params), Response> {
    let raw_query = uri.query().unwrap_or("");
    if raw_query.len() > MAX_BODY_READ {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_BODY_READ)
        .await
        .map_err(|_| too_large())?;
    let raw_body = String::from_utf8_lossy(&body);
    let count = count_pairs(raw_query) + count_pairs(&raw_body);
    if count > MAX_PARAMS {
        let e = too_many_params(count);
        return Err(json_response(400, &e.to_json(), vec![]));
    }
    if raw_query.len() + raw_body.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    let query_pairs = decode_pairs(raw_query);
    let body_pairs = decode_pairs(&raw_body);
    let dup = |pairs: &[(String, String)]| has_duplicates(pairs.iter().map(|(k, _)| k.as_str()));
    if dup(&query_pairs) || dup(&body_pairs) {
        return Err(json_response(400, &duplicate_params().to_json(), vec![]));
    }
    let mut pairs = query_pairs;
    pairs.extend(body_pairs);
    Ok((raw_query.to_string(), raw_body.into_owned(), Params(pairs)))
}

/// Weight of an endpoint for the given parameters.
fn endpoint(method: &Method, path: &str, p: &Params) -> Option<(u64, Sec)> {
    let has_symbol = p.get("symbol").is_some();
    let has_symbols = p.get("symbols").is_some();
    Some(match (method.as_str(), path) {
        ("GET", "/api/v3/ping") => (1, Sec::None),
        ("GET", "/api/v3/time") => (1, Sec::None),
        ("GET", "/api/v3/exchangeInfo") => (20, Sec::None),
        ("GET", "/api/v3/depth") => {
            let limit = p.get("limit").and_then(|l| l.parse::<u64>().ok()).unwrap_or(100);
            let w = match limit {
                0..=100 => 5,
                101..=500 => 25,
                501..=1000 => 50,
                _ => 250,
            };
            (w, Sec::None)
        }
        ("GET", "/api/v3/klines") | ("GET", "/api/v3/uiKlines") => (2, Sec::None),
        ("GET", "/api/v3/avgPrice") => (2, Sec::None),
        ("GET", "/api/v3/ticker/24hr") => (
            if has_symbol {
                2
            } else if has_symbols {
                40
            } else {
                80
            },
            Sec::None,
        ),
        ("GET", "/api/v3/ticker/price") | ("GET", "/api/v3/ticker/bookTicker") => {
            (if has_symbol { 2 } else { 4 }, Sec::None)
        }
        ("GET", "/api/v3/account") => (20, Sec::UserData),
        ("POST", "/api/v3/order") => (1, Sec::Trade),
        ("POST", "/api/v3/order/cancelReplace") => (1, Sec::Trade),
        ("POST", "/api/v3/order/test") => (
            if p.get("computeCommissionRates") == Some("true") {
                20
            } else {
                1
            },
            Sec::Trade,
        ),
        ("GET", "/api/v3/order") => (4, Sec::UserData),
        ("DELETE", "/api/v3/order") => (1, Sec::Trade),
        ("GET", "/api/v3/openOrders") => (if has_symbol { 6 } else { 80 }, Sec::UserData),
        ("DELETE", "/api/v3/openOrders") => (1, Sec::Trade),
        ("GET", "/api/v3/allOrders") => (20, Sec::UserData),
        ("GET", "/api/v3/myTrades") => (if p.get("orderId").is_some() { 5 } else { 20 }, Sec::UserData),
        ("POST", "/api/v3/orderList/oco")
        | ("POST", "/api/v3/orderList/oto")
        | ("POST", "/api/v3/orderList/otoco") => (1, Sec::Trade),
        ("DELETE", "/api/v3/orderList") => (1, Sec::Trade),
        ("GET", "/api/v3/orderList") => (4, Sec::UserData),
        ("GET", "/api/v3/allOrderList") => (20, Sec::UserData),
        ("GET", "/api/v3/openOrderList") => (6, Sec::UserData),
        ("GET", "/api/v3/account/commission") => (20, Sec::UserData),
        ("GET", "/api/v3/rateLimit/order") => (40, Sec::UserData),
        ("GET", "/sapi/v1/account/apiRestrictions") => (1, Sec::UserData),
        ("GET", "/api/v3/trades") | ("GET", "/api/v3/historicalTrades") => (25, Sec::None),
        ("GET", "/api/v3/aggTrades") => (4, Sec::None),
        ("GET", "/api/v3/ticker") | ("GET", "/api/v3/ticker/tradingDay") => {
            (public::ticker_weight(p), Sec::None)
        }
        ("GET", "/sapi/v1/asset/tradeFee") => (1, Sec::UserData),
        ("GET", "/sapi/v1/system/status") => (1, Sec::None),
        ("GET", "/sapi/v1/account/status") => (1, Sec::UserData),
        ("GET", "/sapi/v1/capital/config/getall") => (10, Sec::UserData),
        ("GET", "/sapi/v1/margin/allPairs") => (1, Sec::MarketData),
        ("GET", "/sapi/v1/margin/isolated/allPairs") => (10, Sec::UserData),
        ("GET", "/api/v3/myPreventedMatches") => {
            (if p.get("orderId").is_some() { 20 } else { 2 }, Sec::UserData)
        }
        _ => return None,
    })
}

/// What an endpoint returns: a body, or a body plus an override of the status (faults).
struct Answer {
    body: Result<Value, ApiError>,
    order_count: bool,
    delay: Option<Duration>,
    forced_503: bool,
}

impl Answer {
    fn plain(body: Result<Value, ApiError>) -> Self {
        Answer {
            body,
            order_count: false,
            delay: None,
            forced_503: false,
        }
    }
}

/// Every REST request that is not a control endpoint or a WebSocket upgrade.
pub(super) async fn rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let (raw_query, raw_body, p) = match read_params(&uri, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = shared.now();
    let path = uri.path().to_string();
    let Some((weight, sec)) = endpoint(&method, &path, &p) else {
        return json_response(404, &json!({"code": -1000, "msg": "Unknown endpoint."}), vec![]);
    };
    let weight_header = |s: &Shared| {
        let mut r = s.rate();
        let w = r.weight_json(now);
        ("X-MBX-USED-WEIGHT-1M".to_string(), w["count"].to_string())
    };
    let admitted = {
        let forced = shared.faults.take_429();
        shared.rate().admit(weight, now, forced)
    };
    if let Err(r) = admitted {
        return refusal_response(&r, weight_header(&shared));
    }
    let mut signer: Option<SimKey> = None;
    if sec == Sec::MarketData {
        let api_key = headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok());
        if let Err(e) = known_key(&shared, api_key) {
            return json_response(e.status, &e.to_json(), vec![weight_header(&shared)]);
        }
    } else if sec != Sec::None {
        let (payload, sig) = auth::rest_payload(&raw_query, &raw_body);
        let api_key = headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok());
        match authenticate(
            &shared,
            api_key,
            payload.as_bytes(),
            sig.as_deref(),
            &p,
            now,
            sec == Sec::Trade,
        ) {
            Ok(k) => signer = Some(k.clone()),
            Err(e) => return json_response(e.status, &e.to_json(), vec![weight_header(&shared)]),
        }
    }
    let answer = dispatch(&shared, &method, &path, &p, now, signer.as_ref());
    if let Some(d) = answer.delay {
        tokio::time::sleep(d).await;
    }
    let mut hdrs = vec![weight_header(&shared)];
    if answer.order_count {
        let mut r = shared.rate();
        let o = r.orders_json(now);
        hdrs.push(("X-MBX-ORDER-COUNT-10S".into(), o[0]["count"].to_string()));
        hdrs.push(("X-MBX-ORDER-COUNT-1D".into(), o[1]["count"].to_string()));
    }
    if answer.forced_503 {
        let e = ApiError::new(
            503,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        );
        return json_response(503, &e.to_json(), hdrs);
    }
    match answer.body {
        Ok(v) => {
            if sec == Sec::Trade && method != Method::GET && path != "/api/v3/order/test" {
                shared.rate().refund(weight);
                if let Some(h) = hdrs.first_mut() {
                    *h = weight_header(&shared);
                }
            }
            json_response(200, &v, hdrs)
        }
        Err(e) => {
            if let Some(r) = refusal_from(&e) {
                return refusal_response(&r, weight_header(&shared));
            }
            json_response(e.status, &e.to_json(), hdrs)
        }
    }
}

/// `MARKET_DATA` security: a key the exchange knows, no signature.
fn known_key(shared: &Shared, api_key: Option<&str>) -> Result<(), ApiError> {
    let key = api_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::new(401, -2014, "API-key format invalid."))?;
    if shared.keys.iter().any(|k| k.api_key == key) {
        Ok(())
    } else if auth::key_format_ok(key) {
        Err(ApiError::new(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ))
    } else {
        Err(ApiError::new(401, -2014, "API-key format invalid."))
    }
}

/// Order-rate refusals travel as `ApiError` with status 429; turn them back into a response
/// with `Retry-After`.
fn refusal_from(e: &ApiError) -> Option<Refusal> {
    if e.status == 429 && e.code == -1015 {
        Some(Refusal {
            status: 429,
            code: e.code,
            msg: e.msg.clone(),
            retry_after_secs: 10,
            retry_after_ms: 0,
        })
    } else {
        None
    }
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    path: &str,
    p: &Params,
    now: i64,
    signer: Option<&SimKey>,
) -> Answer {
    match (method.as_str(), path) {
        ("GET", "/api/v3/ping") => Answer::plain(Ok(json!({}))),
        ("GET", "/api/v3/time") => Answer::plain(Ok(json!({"serverTime": now}))),
        ("GET", "/api/v3/exchangeInfo") => Answer::plain(exchange_info(shared, p, now)),
        ("GET", "/api/v3/depth") => Answer::plain(depth(shared, p)),
        ("GET", "/api/v3/klines") | ("GET", "/api/v3/uiKlines") => Answer::plain(get_klines(shared, p)),
        ("GET", "/api/v3/avgPrice") => Answer::plain(avg_price(shared, p, now)),
        ("GET", "/api/v3/ticker/24hr") => Answer::plain(ticker_24hr(shared, p, now)),
        ("GET", "/api/v3/ticker/price") => Answer::plain(ticker_price(shared, p)),
        ("GET", "/api/v3/ticker/bookTicker") => Answer::plain(book_ticker(shared, p)),
        ("GET", "/api/v3/account") => Answer::plain(account(shared, p)),
        ("POST", "/api/v3/order") => {
            let faults = shared.faults.get();
            let body = op_new_order(shared, p, now, false);
            let placed = body.is_ok();
            Answer {
                body,
                order_count: true,
                delay: if placed {
                    faults.order_delay_ms.map(Duration::from_millis)
                } else {
                    None
                },
                forced_503: placed && shared.faults.take_503(),
            }
        }
        ("POST", "/api/v3/order/test") => Answer::plain(op_new_order(shared, p, now, true)),
        ("POST", "/api/v3/order/cancelReplace") => Answer {
            body: op_cancel_replace(shared, p, now),
            order_count: true,
            delay: None,
            forced_503: false,
        },
        ("GET", "/api/v3/order") => Answer::plain(op_query_order(shared, p)),
        ("DELETE", "/api/v3/order") => Answer::plain(op_cancel(shared, p, now)),
        ("GET", "/api/v3/openOrders") => Answer::plain(op_open_orders(shared, p)),
        ("DELETE", "/api/v3/openOrders") => Answer::plain(op_cancel_all(shared, p, now)),
        ("GET", "/api/v3/allOrders") => Answer::plain(all_orders(shared, p)),
        ("GET", "/api/v3/myTrades") => Answer::plain(my_trades(shared, p)),
        ("POST", "/api/v3/orderList/oco")
        | ("POST", "/api/v3/orderList/oto")
        | ("POST", "/api/v3/orderList/otoco") => {
            let kind = match path {
                "/api/v3/orderList/oco" => ListKind::Oco,
                "/api/v3/orderList/oto" => ListKind::Oto,
                _ => ListKind::Otoco,
            };
            Answer {
                body: op_place_list(shared, p, now, kind),
                order_count: true,
                delay: None,
                forced_503: false,
            }
        }
        ("DELETE", "/api/v3/orderList") => Answer::plain(op_cancel_list(shared, p, now)),
        ("GET", "/api/v3/orderList") => Answer::plain(op_list_status(shared, p)),
        ("GET", "/api/v3/allOrderList") => Answer::plain(op_all_lists(shared, p)),
        ("GET", "/api/v3/openOrderList") => Answer::plain(op_open_lists(shared)),
        ("GET", "/api/v3/account/commission") => Answer::plain(commission(shared, p)),
        ("GET", "/api/v3/rateLimit/order") => Answer::plain(Ok(shared.rate().orders_json(now))),
        ("GET", "/sapi/v1/account/apiRestrictions") => Answer::plain(Ok(api_restrictions(shared, signer))),
        ("GET", "/api/v3/trades") => Answer::plain(public::trades(shared, p)),
        ("GET", "/api/v3/historicalTrades") => Answer::plain(public::historical_trades(shared, p)),
        ("GET", "/api/v3/aggTrades") => Answer::plain(public::agg_trades(shared, p)),
        ("GET", "/api/v3/ticker") => Answer::plain(public::rolling_ticker(shared, p, now)),
        ("GET", "/api/v3/ticker/tradingDay") => Answer::plain(public::trading_day(shared, p, now)),
        ("GET", "/sapi/v1/asset/tradeFee") => Answer::plain(wallet::trade_fee(shared, p)),
        ("GET", "/sapi/v1/system/status") => Answer::plain(Ok(json!({"status": 0, "msg": "normal"}))),
        ("GET", "/sapi/v1/account/status") => Answer::plain(Ok(json!({"data": "Normal"}))),
        ("GET", "/sapi/v1/capital/config/getall") => Answer::plain(Ok(wallet::coins(shared))),
        // No margin account: no cross or isolated pairs to trade.
        ("GET", "/sapi/v1/margin/allPairs") | ("GET", "/sapi/v1/margin/isolated/allPairs") => {
            Answer::plain(Ok(json!([])))
        }
        ("GET", "/api/v3/myPreventedMatches") => Answer::plain(op_prevented_matches(shared, p)),
        _ => Answer::plain(Err(ApiError::new(404, -1000, "Unknown endpoint."))),
    }
}

// -------------------------------------------------------------------- order queries

fn all_orders(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    e.sym(symbol)?;
    let from_id = p.int("orderId")?;
    let start = p.int("startTime")?;
    let end = p.int("endTime")?;
    check_time_range(start, end)?;
    let limit = limit_param(p, 500, 1000)?;
    let rows: Vec<&engine::SimOrder> = e
        .account
        .orders
        .values()
        .filter(|o| o.symbol == symbol)
        .filter(|o| from_id.is_none_or(|id| o.order_id as i64 >= id))
        .filter(|o| start.is_none_or(|s| o.time >= s) && end.is_none_or(|x| o.time <= x))
        .collect();
    Ok(Value::Array(
        window(rows, from_id.is_some() || start.is_some(), limit)
            .into_iter()
            .map(order_json)
            .collect(),
    ))
}

fn my_trades(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    e.sym(symbol)?;
    let order_id = p.int("orderId")?;
    let from_id = p.int("fromId")?;
    let start = p.int("startTime")?;
    let end = p.int("endTime")?;
    check_from_id_or_time_range(from_id, start, end)?;
    let limit = limit_param(p, 500, 1000)?;
    let rows: Vec<&engine::MyTrade> = e
        .account
        .trades
        .iter()
        .filter(|t| t.symbol == symbol)
        .filter(|t| order_id.is_none_or(|id| t.order_id as i64 == id))
        .filter(|t| from_id.is_none_or(|id| t.id as i64 >= id))
        .filter(|t| start.is_none_or(|s| t.time >= s) && end.is_none_or(|x| t.time <= x))
        .collect();
    let from_start = from_id.is_some() || start.is_some();
    Ok(Value::Array(
        window(rows, from_start, limit)
            .into_iter()
            .map(trade_json)
            .collect(),
    ))
}

// -------------------------------------------------------------------- account

fn account(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let e = shared.engine();
    let omit = p.get("omitZeroBalances") == Some("true");
    let balances: Vec<Value> = e
        .account
        .balances
        .iter()
        .filter(|(_, b)| !(omit && b.free.is_zero() && b.locked.is_zero()))
        .map(|(a, b)| json!({"asset": a, "free": s8(b.free), "locked": s8(b.locked)}))
        .collect();
    let bp = (e.commission_rate * Decimal::from(10_000))
        .trunc()
        .to_i64()
        .unwrap_or(0);
    let r = s8(e.commission_rate);
    Ok(json!({
        "makerCommission": bp, "takerCommission": bp, "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": r, "taker": r, "buyer": s8(Decimal::ZERO), "seller": s8(Decimal::ZERO)},
        "canTrade": true, "canWithdraw": true, "canDeposit": true, "brokered": false,
        "requireSelfTradePrevention": false, "preventSor": false,
        "updateTime": e.account.update_time, "accountType": "SPOT", "balances": balances,
        "permissions": ["SPOT"], "uid": 100000001
    }))
}

fn commission(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    e.sym(symbol)?;
    let r = s8(e.commission_rate);
    let z = s8(Decimal::ZERO);
    Ok(json!({
        "symbol": symbol,
        "standardCommission": {"maker": r, "taker": r, "buyer": z, "seller": z},
        "specialCommission": {"maker": z, "taker": z, "buyer": z, "seller": z},
        "taxCommission": {"maker": z, "taker": z, "buyer": z, "seller": z},
        "discount": {"enabledForAccount": false, "enabledForSymbol": false, "discountAsset": "BNB", "discount": z}
    }))
}

/// The permissions of the key that signed the request.
fn api_restrictions(shared: &Shared, signer: Option<&SimKey>) -> Value {
    let (ip, trade, withdraw) = signer
        .map(|k| (k.ip_restrict, k.enable_spot_trading, k.enable_withdrawals))
        .unwrap_or((false, false, false));
    json!({
        "ipRestrict": ip, "createTime": shared.started_ms, "enableReading": true,
        "enableSpotAndMarginTrading": trade, "enableWithdrawals": withdraw,
        "enableInternalTransfer": false, "enableMargin": false, "enableFutures": false,
        "permitsUniversalTransfer": false, "enableVanillaOptions": false,
        "enablePortfolioMarginTrading": false, "enableFixApiTrade": false, "enableFixReadOnly": false
    })
}

// -------------------------------------------------------------------- market data

fn symbol_list(shared: &Shared, p: &Params) -> Result<Option<Vec<String>>, ApiError> {
    let e = shared.engine();
    if let Some(s) = p.get("symbol") {
        if e.market.get(s).is_none() {
            return Err(ApiError::bad_symbol());
        }
        return Ok(Some(vec![s.to_string()]));
    }
    if let Some(raw) = p.get("symbols") {
        let list: Vec<String> = serde_json::from_str(raw)
            .map_err(|_| ApiError::bad(-1100, "Illegal characters found in parameter 'symbols'."))?;
        for s in &list {
            if e.market.get(s).is_none() {
                return Err(ApiError::bad_symbol());
            }
        }
        return Ok(Some(list));
    }
    Ok(None)
}

fn exchange_info(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let wanted = symbol_list(shared, p)?;
    let rate_limits = shared.rate().exchange_info_json();
    let e = shared.engine();
    let symbols: Vec<Value> = e
        .market
        .symbols
        .iter()
        .filter(|m| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|s| s == m.spec.symbol))
        })
        .map(|m| symbol_info(&m.spec))
        .collect();
    Ok(
        json!({"timezone": "UTC", "serverTime": now, "rateLimits": rate_limits, "exchangeFilters": [], "symbols": symbols}),
    )
}

/// One `exchangeInfo` symbol with the filters the engine enforces.
pub fn symbol_info(s: &market::SymbolSpec) -> Value {
    json!({
        "symbol": s.symbol, "status": "TRADING", "baseAsset": s.base, "baseAssetPrecision": 8,
        "quoteAsset": s.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": engine::OrderType::ALL,
        "icebergAllowed": true, "ocoAllowed": true, "otoAllowed": true, "opoAllowed": false,
        "quoteOrderQtyMarketAllowed": true, "allowTrailingStop": true, "cancelReplaceAllowed": true,
        "amendAllowed": false, "pegInstructionsAllowed": false,
        "isSpotTradingAllowed": true, "isMarginTradingAllowed": false,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": s8(s.tick), "maxPrice": s8(s.start_price * Decimal::from(100)), "tickSize": s8(s.tick)},
            {"filterType": "LOT_SIZE", "minQty": s8(s.min_qty), "maxQty": s8(s.max_qty), "stepSize": s8(s.step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": s8(Decimal::ZERO), "maxQty": s8(s.market_max_qty), "stepSize": s8(Decimal::ZERO)},
            {"filterType": "NOTIONAL", "minNotional": s8(s.min_notional), "applyMinToMarket": true,
             "maxNotional": s8(s.max_notional), "applyMaxToMarket": false, "avgPriceMins": 5},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": market::PERCENT_UP, "bidMultiplierDown": market::PERCENT_DOWN,
             "askMultiplierUp": market::PERCENT_UP, "askMultiplierDown": market::PERCENT_DOWN, "avgPriceMins": 5},
            {"filterType": "ICEBERG_PARTS", "limit": engine::ICEBERG_PARTS},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": market::MAX_NUM_ORDERS},
            {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20},
            {"filterType": "TRAILING_DELTA",
             "minTrailingAboveDelta": engine::MIN_TRAILING_DELTA, "maxTrailingAboveDelta": engine::MAX_TRAILING_DELTA,
             "minTrailingBelowDelta": engine::MIN_TRAILING_DELTA, "maxTrailingBelowDelta": engine::MAX_TRAILING_DELTA}
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": engine::DEFAULT_STP_MODE,
        "allowedSelfTradePreventionModes": engine::ALLOWED_STP_MODES
    })
}

fn with_symbol<T>(
    shared: &Shared,
    p: &Params,
    f: impl FnOnce(&market::SymbolMarket) -> T,
) -> Result<T, ApiError> {
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    e.market.get(symbol).map(f).ok_or_else(ApiError::bad_symbol)
}

fn depth(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let limit = limit_param(p, 100, 5000)?;
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    let m = e.sym(symbol)?;
    // The book is the synthetic one plus the account's own resting orders (an iceberg shows
    // its visible part only).
    let (own_bids, own_asks) = e.own_levels(symbol);
    Ok(json!({
        "lastUpdateId": m.update_id,
        "bids": engine::depth_side(&m.bids, &own_bids, true, limit),
        "asks": engine::depth_side(&m.asks, &own_asks, false, limit)
    }))
}

fn get_klines(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let interval = p.req("interval")?.to_string();
    let start = p.int("startTime")?;
    let end = p.int("endTime")?;
    let limit = limit_param(p, 500, 1000)?;
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    let m = e.sym(symbol)?;
    let rows = klines(m, &interval).ok_or_else(|| ApiError::bad(-1120, "Invalid interval."))?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(s, _, _)| {
            start.is_none_or(|t| *s >= t.saturating_sub(t.rem_euclid(60_000))) && end.is_none_or(|t| *s <= t)
        })
        .collect();
    let rows = window(rows, start.is_some(), limit);
    Ok(Value::Array(
        rows.iter().map(|(s, en, c)| kline_row(*s, *en, c)).collect(),
    ))
}

fn avg_price(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    with_symbol(
        shared,
        p,
        |m| json!({"mins": 5, "price": s8(m.avg_price(5)), "closeTime": now}),
    )
}

fn ticker_json(m: &market::SymbolMarket, now: i64, mini: bool) -> Value {
    let st = m.stats_24h(now);
    if mini {
        return json!({
            "symbol": m.spec.symbol, "openPrice": s8(st.open), "highPrice": s8(st.high), "lowPrice": s8(st.low),
            "lastPrice": s8(st.last), "volume": s8(st.volume), "quoteVolume": s8(st.quote_volume),
            "openTime": st.open_time, "closeTime": now, "firstId": st.first_id, "lastId": st.last_id, "count": st.count
        });
    }
    let (b, a) = (m.best_bid(), m.best_ask());
    json!({
        "symbol": m.spec.symbol, "priceChange": s8(st.price_change()),
        "priceChangePercent": st.price_change_percent().to_string(),
        "weightedAvgPrice": s8(st.weighted_avg_price()), "prevClosePrice": s8(st.open), "lastPrice": s8(st.last),
        "lastQty": s8(m.last_qty), "bidPrice": s8(b.0), "bidQty": s8(b.1), "askPrice": s8(a.0), "askQty": s8(a.1),
        "openPrice": s8(st.open), "highPrice": s8(st.high), "lowPrice": s8(st.low), "volume": s8(st.volume),
        "quoteVolume": s8(st.quote_volume), "openTime": st.open_time, "closeTime": now,
        "firstId": st.first_id, "lastId": st.last_id, "count": st.count
    })
}

fn per_symbol(
    shared: &Shared,
    p: &Params,
    f: impl Fn(&market::SymbolMarket) -> Value,
) -> Result<Value, ApiError> {
    let wanted = symbol_list(shared, p)?;
    let e = shared.engine();
    if p.get("symbol").is_some() {
        return e
            .market
            .get(p.req("symbol")?)
            .map(f)
            .ok_or_else(ApiError::bad_symbol);
    }
    Ok(Value::Array(
        e.market
            .symbols
            .iter()
            .filter(|m| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.iter().any(|s| s == m.spec.symbol))
            })
            .map(f)
            .collect(),
    ))
}

fn ticker_24hr(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let mini = match p.get("type") {
        None | Some("FULL") => false,
        Some("MINI") => true,
        Some(_) => return Err(ApiError::bad(-1139, "Invalid ticker type.")),
    };
    per_symbol(shared, p, |m| ticker_json(m, now, mini))
}

fn ticker_price(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    per_symbol(
        shared,
        p,
        |m| json!({"symbol": m.spec.symbol, "price": s8(m.last_price)}),
    )
}

fn book_ticker(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    per_symbol(shared, p, |m| {
        let (b, a) = (m.best_bid(), m.best_ask());
        json!({"symbol": m.spec.symbol, "bidPrice": s8(b.0), "bidQty": s8(b.1), "askPrice": s8(a.0), "askQty": s8(a.1)})
    })
}

// -------------------------------------------------------------------- control endpoints

/// Checks a control request: from a loopback peer, carrying the exchange's own API key in
/// `X-MBX-APIKEY`. Loopback alone is not enough: every local user can reach a loopback port,
/// and these endpoints move prices and balances. The key is the one `crbot sim` prints and
/// keeps in its owner-only state file, so only its owner can present it.
fn control_guard(shared: &Shared, peer: &SocketAddr, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if !peer.ip().is_loopback() {
        return Err(Box::new(json_response(
            403,
            &json!({"code": -1002, "msg": "Control endpoints answer loopback only."}),
            vec![],
        )));
    }
    let sent = headers
        .get("x-mbx-apikey")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(sent, shared.default_key.0.as_bytes()) {
        let e = ApiError::new(401, -2015, "Invalid API-key, IP, or permissions for action.");
        return Err(Box::new(json_response(401, &e.to_json(), vec![])));
    }
    Ok(())
}

/// Compares without an early exit, so the time taken does not tell how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn control_error(code: i64, msg: impl Into<String>) -> Response {
    json_response(400, &json!({"code": code, "msg": msg.into()}), vec![])
}

/// Control bodies are small JSON objects; anything larger is refused unread.
const MAX_CONTROL_BYTES: usize = 4096;

/// `POST /sim/control/faults`: a JSON object naming the switches to change (the others keep
/// their value), or `{"reset": true}` to clear every switch first. Answers the switches now in
/// force. Unknown names and bad values are refused whole, naming them.
pub(super) async fn control_faults(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = control_guard(&shared, &peer, &headers) {
        return *r;
    }
    if body.len() > MAX_CONTROL_BYTES {
        return control_error(-1100, "bad faults: the body is too large");
    }
    let patch = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return control_error(-1100, "bad faults: expected a JSON object"),
        Err(e) => return control_error(-1100, format!("bad faults: {e}")),
    };
    match shared.faults.merge(&patch) {
        Ok(now) => json_response(200, &json!(now), vec![]),
        Err(e) => control_error(-1100, format!("bad faults: {e}")),
    }
}

/// `POST /sim/control/price {"symbol":"BTCUSDT","price":"90000"}`: moves the price now. The
/// price must pass the symbol's PRICE_FILTER (positive, at most maxPrice, on the tick).
pub(super) async fn control_price(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = control_guard(&shared, &peer, &headers) {
        return *r;
    }
    if body.len() > MAX_CONTROL_BYTES {
        return control_error(-1100, "bad request: the body is too large");
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        symbol: String,
        price: Decimal,
    }
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(-1100, format!("bad request: {e}")),
    };
    let now = shared.now();
    let mut e = shared.engine();
    let r = e.force_price(&req.symbol, req.price, now);
    shared.publish(&mut e);
    match r {
        Ok(()) => json_response(
            200,
            &json!({"symbol": req.symbol, "price": s8(req.price)}),
            vec![],
        ),
        Err(err) => json_response(err.status, &err.to_json(), vec![]),
    }
}

/// `POST /sim/control/balance {"asset":"USDT","delta":"100"}`: a deposit (or withdrawal);
/// refused when it would overdraw the free balance or exceed `engine::MAX_BALANCE`.
pub(super) async fn control_balance(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = control_guard(&shared, &peer, &headers) {
        return *r;
    }
    if body.len() > MAX_CONTROL_BYTES {
        return control_error(-1100, "bad request: the body is too large");
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        asset: String,
        delta: Decimal,
    }
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(-1100, format!("bad request: {e}")),
    };
    let now = shared.now();
    let mut e = shared.engine();
    let r = e.adjust_balance(&req.asset, req.delta, now);
    shared.publish(&mut e);
    if let Err(err) = r {
        return json_response(err.status, &err.to_json(), vec![]);
    }
    let b = e.balance(&req.asset);
    json_response(
        200,
        &json!({"asset": req.asset, "free": s8(b.free), "locked": s8(b.locked)}),
        vec![],
    )
}
