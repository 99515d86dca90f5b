//! The operations the REST API and the WebSocket API both serve: request bounds, the
//! authentication of a signed request, and the order operations (place, test, query, cancel,
//! cancel all, open orders, order lists) with their order-rate count and event publishing, and
//! the paging rules of the history queries (`limit`, `fromId`, a time range).
//!
//! Owns: what those operations do once a transport has decoded the parameters. Must not: know
//! a transport (HTTP headers, WebSocket envelopes, response codes are `rest`'s and `ws`'s), or
//! match orders itself (that is `engine`). Both transports import this module and neither
//! imports the other, so one fix reaches both.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::engine::{ApiError, Params, order_json, prevented_json};
use super::market::s8;
use super::{Shared, SimKey, auth};

/// Most parameters one request may carry (REST or WebSocket API). The largest request the
/// exchange serves, an OCO list with every optional leg parameter, has about 35.
pub const MAX_PARAMS: usize = 64;

/// The `-1101` answer to a request with more than `MAX_PARAMS` parameters.
pub(crate) fn too_many_params(received: usize) -> ApiError {
    ApiError::bad(
        -1101,
        format!("Too many parameters; expected '{MAX_PARAMS}' and received '{received}'."),
    )
}

/// Checks the API key, signature and timestamp of a signed request; REST passes the query
/// string and body as the payload, the WebSocket API its sorted parameters.
pub(crate) fn authenticate<'a>(
    shared: &'a Shared,
    api_key: Option<&str>,
    payload: &[u8],
    signature: Option<&str>,
    p: &Params,
    now: i64,
    trade: bool,
) -> Result<&'a SimKey, ApiError> {
    let key = api_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::new(401, -2014, "API-key format invalid."))?;
    if !auth::key_format_ok(key) && !shared.keys.iter().any(|k| k.api_key == key) {
        return Err(ApiError::new(401, -2014, "API-key format invalid."));
    }
    let k = shared
        .keys
        .iter()
        .find(|k| k.api_key == key)
        .ok_or_else(|| ApiError::new(401, -2015, "Invalid API-key, IP, or permissions for action."))?;
    if trade && !k.enable_spot_trading {
        return Err(ApiError::new(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    let sig = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::mandatory("signature"))?;
    auth::check_timestamp(p.get("timestamp"), p.get("recvWindow"), now)?;
    if !auth::verify(&k.auth, payload, sig) {
        return Err(ApiError::bad(-1022, "Signature for this request is not valid."));
    }
    Ok(k)
}

/// POST /api/v3/order and WS `order.place` (validation, order-rate count, placement).
pub(crate) fn op_new_order(
    shared: &Shared,
    p: &Params,
    now: i64,
    test_only: bool,
) -> Result<Value, ApiError> {
    let mut e = shared.engine();
    let o = e.parse_new_order(p)?;
    e.check_filters(&o)?;
    if test_only {
        e.place(&o, now, true)?;
        if p.get("computeCommissionRates") == Some("true") {
            let r = s8(e.commission_rate);
            return Ok(json!({
                "standardCommissionForOrder": {"maker": r, "taker": r},
                "specialCommissionForOrder": {"maker": s8(Decimal::ZERO), "taker": s8(Decimal::ZERO)},
                "taxCommissionForOrder": {"maker": s8(Decimal::ZERO), "taker": s8(Decimal::ZERO)},
                "discount": {"enabledForAccount": false, "enabledForSymbol": false, "discountAsset": "BNB",
                             "discount": s8(Decimal::ZERO)}
            }));
        }
        return Ok(json!({}));
    }
    shared
        .rate()
        .admit_orders(1, now)
        .map_err(|r| ApiError::new(429, r.code, r.msg))?;
    let placed = e.place(&o, now, false)?;
    let v = e.placed_json(&placed, o.resp_type, now);
    shared.publish(&mut e);
    Ok(v)
}

/// GET /api/v3/order and WS `order.status`.
pub(crate) fn op_query_order(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let e = shared.engine();
    let id = e.find_order(p, ApiError::bad(-2013, "Order does not exist."))?;
    e.account
        .orders
        .get(&id)
        .map(order_json)
        .ok_or_else(|| ApiError::bad(-2013, "Order does not exist."))
}

/// DELETE /api/v3/order and WS `order.cancel` (an OCO leg cancels its whole list).
pub(crate) fn op_cancel(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let mut e = shared.engine();
    let v = e.cancel(p, now);
    shared.publish(&mut e);
    v
}

/// DELETE /api/v3/openOrders and WS `openOrders.cancelAll`.
pub(crate) fn op_cancel_all(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let symbol = p.req("symbol")?.to_string();
    let mut e = shared.engine();
    let v = e.cancel_all(&symbol, now);
    shared.publish(&mut e);
    v
}

/// GET /api/v3/openOrders and WS `openOrders.status`: one symbol's, or all.
pub(crate) fn op_open_orders(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let e = shared.engine();
    let symbol = p.get("symbol");
    if let Some(s) = symbol
        && e.market.get(s).is_none()
    {
        return Err(ApiError::bad_symbol());
    }
    Ok(Value::Array(
        e.account
            .orders
            .values()
            .filter(|o| o.is_open() && symbol.is_none_or(|s| o.symbol == s))
            .map(order_json)
            .collect(),
    ))
}

/// `-1100` for an enum parameter outside its values.
fn bad_enum(name: &str, legal: &str) -> ApiError {
    ApiError::bad(
        -1100,
        format!("Illegal characters found in parameter '{name}'; legal range is '{legal}'."),
    )
}

/// POST /api/v3/order/cancelReplace: cancels an order and places a new one on the same symbol,
/// as Binance's rest-api.md describes it. The new order's parameters and filters, and the
/// unfilled order count, are checked first (those failures answer like a new order's, and
/// nothing is cancelled); then the cancel (with `cancelRestrictions`; an OCO leg cancels its
/// list), then, unless the cancel failed under `STOP_ON_FAILURE`, the placement, which may use
/// what the cancel unlocked. Success answers 200 with both responses; otherwise `-2021`
/// ("partially failed", HTTP 409) when one half succeeded, `-2022` (HTTP 400) when neither
/// did, with `data` holding `cancelResult`/`newOrderResult`/`cancelResponse`/`newOrderResponse`.
/// Past the order count, `orderRateLimitExceededMode=DO_NOTHING` (the default) refuses with
/// `-1015`; `CANCEL_ONLY` still cancels and reports the new order's `-1015` (HTTP 429 under
/// `STOP_ON_FAILURE`, as the documentation's table says).
pub(crate) fn op_cancel_replace(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let allow_failure = match p.req("cancelReplaceMode")? {
        "STOP_ON_FAILURE" => false,
        "ALLOW_FAILURE" => true,
        _ => return Err(bad_enum("cancelReplaceMode", "STOP_ON_FAILURE, ALLOW_FAILURE")),
    };
    let cancel_only = match p.get("orderRateLimitExceededMode") {
        None | Some("DO_NOTHING") => false,
        Some("CANCEL_ONLY") => true,
        Some(_) => return Err(bad_enum("orderRateLimitExceededMode", "DO_NOTHING, CANCEL_ONLY")),
    };
    let mut e = shared.engine();
    let mut rate_refused = false;
    let (cancelled, placed) = e.cancel_replace(p, now, allow_failure, || {
        match shared.rate().admit_orders(1, now) {
            Ok(()) => Ok(None),
            Err(r) if cancel_only => {
                rate_refused = true;
                Ok(Some(ApiError::new(429, r.code, r.msg)))
            }
            Err(r) => Err(ApiError::new(429, r.code, r.msg)),
        }
    })?;
    shared.publish(&mut e);
    drop(e);
    cancel_replace_answer(cancelled, placed, rate_refused && !allow_failure)
}

/// The documented answer of a cancelReplace from its two halves (`None`: not attempted).
fn cancel_replace_answer(
    cancelled: Result<Value, ApiError>,
    placed: Option<Result<Value, ApiError>>,
    status_429: bool,
) -> Result<Value, ApiError> {
    let half = |r: &Result<Value, ApiError>| match r {
        Ok(v) => ("SUCCESS", v.clone()),
        Err(e) => ("FAILURE", e.to_json()),
    };
    let (cancel_result, cancel_response) = half(&cancelled);
    let (new_result, new_response) = match &placed {
        None => ("NOT_ATTEMPTED", Value::Null),
        Some(r) => half(r),
    };
    let data = json!({
        "cancelResult": cancel_result,
        "newOrderResult": new_result,
        "cancelResponse": cancel_response,
        "newOrderResponse": new_response,
    });
    let (code, msg, status) = match (cancelled.is_ok(), matches!(placed, Some(Ok(_)))) {
        (true, true) => return Ok(data),
        (true, false) | (false, true) => (-2021, "Order cancel-replace partially failed.", 409),
        (false, false) => (-2022, "Order cancel-replace failed.", 400),
    };
    let mut err = ApiError::new(if status_429 { 429 } else { status }, code, msg);
    err.data = Some(Box::new(data));
    Err(err)
}

/// Which order list a request places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Oco,
    Oto,
    Otoco,
}

/// POST /api/v3/orderList/{oco,oto,otoco} and WS `orderList.place.{oco,oto,otoco}`: the
/// order-rate count (2 orders, 3 for an OTOCO), then the list.
pub(crate) fn op_place_list(
    shared: &Shared,
    p: &Params,
    now: i64,
    kind: ListKind,
) -> Result<Value, ApiError> {
    let orders = if kind == ListKind::Otoco { 3 } else { 2 };
    shared
        .rate()
        .admit_orders(orders, now)
        .map_err(|r| ApiError::new(429, r.code, r.msg))?;
    let mut e = shared.engine();
    let v = match kind {
        ListKind::Oco => e.place_oco(p, now),
        ListKind::Oto => e.place_oto(p, now, false),
        ListKind::Otoco => e.place_oto(p, now, true),
    };
    shared.publish(&mut e);
    v
}

/// DELETE /api/v3/orderList and WS `orderList.cancel`.
pub(crate) fn op_cancel_list(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let mut e = shared.engine();
    let v = e.cancel_list(p, now);
    shared.publish(&mut e);
    v
}

/// GET /api/v3/orderList and WS `orderList.status`: one list by `orderListId` or
/// `origClientOrderId` (its `listClientOrderId`).
pub(crate) fn op_list_status(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let e = shared.engine();
    let missing = || ApiError::bad(-2013, "Order list does not exist.");
    let id = match (p.int("orderListId")?, p.get("origClientOrderId")) {
        (Some(id), _) => id,
        (None, Some(c)) => e
            .account
            .lists
            .values()
            .rev()
            .find(|l| l.list_client_order_id == c)
            .map(|l| l.order_list_id)
            .ok_or_else(missing)?,
        (None, None) => {
            return Err(ApiError::bad(
                -1102,
                "Param 'origClientOrderId' or 'orderListId' must be sent, but both were empty/null!",
            ));
        }
    };
    if !e.account.lists.contains_key(&id) {
        return Err(missing());
    }
    Ok(e.list_json(id, false, None))
}

/// GET /api/v3/openOrderList and WS `openOrderLists.status`.
pub(crate) fn op_open_lists(shared: &Shared) -> Result<Value, ApiError> {
    let e = shared.engine();
    Ok(Value::Array(
        e.account
            .lists
            .values()
            .filter(|l| l.list_order_status != super::engine::ListOrderStatus::AllDone)
            .map(|l| e.list_json(l.order_list_id, false, None))
            .collect(),
    ))
}

/// GET /api/v3/allOrderList and WS `allOrderLists`: `fromId` (oldest first from it), or a
/// time range of at most 24 hours, else the most recent; `limit` 500 by default, 1000 at most.
pub(crate) fn op_all_lists(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let from_id = p.int("fromId")?;
    let start = p.int("startTime")?;
    let end = p.int("endTime")?;
    check_from_id_or_time_range(from_id, start, end)?;
    let limit = limit_param(p, 500, 1000)?;
    let e = shared.engine();
    let rows: Vec<i64> = e
        .account
        .lists
        .values()
        .filter(|l| from_id.is_none_or(|id| l.order_list_id >= id))
        .filter(|l| {
            start.is_none_or(|s| l.transaction_time >= s) && end.is_none_or(|x| l.transaction_time <= x)
        })
        .map(|l| l.order_list_id)
        .collect();
    Ok(Value::Array(
        window(rows, from_id.is_some() || start.is_some(), limit)
            .into_iter()
            .map(|id| e.list_json(id, false, None))
            .collect(),
    ))
}

/// `GET /api/v3/myPreventedMatches` and WS `myPreventedMatches`: `symbol` with `preventedMatchId`, or with `orderId`
/// (the taker or the maker of the match; optionally `fromPreventedMatchId` and `limit`, 500 by
/// default, 1000 at most), oldest first.
pub(crate) fn op_prevented_matches(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    e.sym(symbol)?;
    let by_match = p.int("preventedMatchId")?;
    let by_order = p.int("orderId")?;
    let from = p.int("fromPreventedMatchId")?;
    let limit = p.int("limit")?;
    let rows = e.account.prevented.iter().filter(|m| m.symbol == symbol);
    let picked: Vec<Value> = match (by_match, by_order) {
        (Some(id), None) if from.is_none() && limit.is_none() => rows
            .filter(|m| m.prevented_match_id as i64 == id)
            .map(prevented_json)
            .collect(),
        (None, Some(id)) => rows
            .filter(|m| m.taker_order_id as i64 == id || m.maker_order_id as i64 == id)
            .filter(|m| from.is_none_or(|f| m.prevented_match_id as i64 >= f))
            .take(limit.unwrap_or(500).clamp(1, 1000) as usize)
            .map(prevented_json)
            .collect(),
        (None, None) => {
            return Err(ApiError::bad(
                -1102,
                "Param 'preventedMatchId' or 'orderId' must be sent, but both were empty/null!",
            ));
        }
        _ => {
            return Err(ApiError::bad(
                -1128,
                "Combination of optional parameters invalid.",
            ));
        }
    };
    Ok(Value::Array(picked))
}

// -------------------------------------------------------------------- paging of queries

/// `limit`: `default` when absent, brought into 1..=`max`.
pub(crate) fn limit_param(p: &Params, default: i64, max: i64) -> Result<usize, ApiError> {
    let l = p.int("limit")?.unwrap_or(default);
    Ok(l.clamp(1, max) as usize)
}

/// Queries of the account's history look at most 24 hours at a time. The distance is checked,
/// not computed blindly: `endTime - startTime` of two hostile `i64`s overflows, and a range
/// whose length does not fit in an `i64` is longer than a day.
pub(crate) fn check_time_range(start: Option<i64>, end: Option<i64>) -> Result<(), ApiError> {
    if let (Some(s), Some(x)) = (start, end)
        && x.checked_sub(s).is_none_or(|d| d > 86_400_000)
    {
        return Err(ApiError::bad(
            -1127,
            "More than 24 hours between startTime and endTime.",
        ));
    }
    Ok(())
}

/// A query pages either from an id (`fromId`) or by a time range, not both; the range as
/// `check_time_range` has it.
pub(crate) fn check_from_id_or_time_range(
    from_id: Option<i64>,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<(), ApiError> {
    if from_id.is_some() && (start.is_some() || end.is_some()) {
        return Err(ApiError::bad(
            -1128,
            "Combination of optional parameters invalid.",
        ));
    }
    check_time_range(start, end)
}

/// Time-range semantics of list endpoints: oldest first from a start, else the most recent.
pub(crate) fn window<T>(rows: Vec<T>, from_start: bool, limit: usize) -> Vec<T> {
    if from_start {
        rows.into_iter().take(limit).collect()
    } else {
        let skip = rows.len().saturating_sub(limit);
        rows.into_iter().skip(skip).collect()
    }
}
