//! What the engine says: the JSON of orders, lists, fills and placed-order responses, and the
//! user-data events (`executionReport`, `listStatus`, `outboundAccountPosition`).
//!
//! Owns: the field names and formats of those objects. Must not: change the account.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::super::market::{SymbolSpec, s8};
use super::{Engine, ExecType, MyTrade, Placed, RespType, SimOrder};

impl Engine {
    // ---------------------------------------------------------------- JSON

    pub fn order_json(&self, o: &SimOrder) -> Value {
        order_json(o)
    }

    pub fn list_json(&self, list_id: i64, with_reports: bool, cancel_id: Option<&str>) -> Value {
        let Some(l) = self.account.lists.get(&list_id) else {
            return Value::Null;
        };
        let orders: Vec<Value> = l
            .order_ids
            .iter()
            .filter_map(|id| self.account.orders.get(id))
            .map(|o| json!({"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}))
            .collect();
        let mut v = json!({
            "orderListId": l.order_list_id,
            "contingencyType": l.contingency,
            "listStatusType": l.list_status_type,
            "listOrderStatus": l.list_order_status,
            "listClientOrderId": l.list_client_order_id,
            "transactionTime": l.transaction_time,
            "symbol": l.symbol,
            "orders": orders,
        });
        if with_reports {
            let reports: Vec<Value> = l
                .order_ids
                .iter()
                .filter_map(|id| self.account.orders.get(id))
                .map(|o| match cancel_id {
                    Some(c) => cancel_json(o, c),
                    None => result_json(o, o.time),
                })
                .collect();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("orderReports".into(), Value::Array(reports));
            }
        }
        v
    }

    /// The response of POST /api/v3/order for the response type.
    pub fn placed_json(&self, placed: &Placed, resp_type: RespType, now: i64) -> Value {
        let Some(o) = self.account.orders.get(&placed.order_id) else {
            return json!({});
        };
        match resp_type {
            RespType::Ack => json!({
                "symbol": o.symbol, "orderId": o.order_id, "orderListId": o.order_list_id,
                "clientOrderId": o.client_order_id, "transactTime": now
            }),
            RespType::Result => result_json(o, now),
            RespType::Full => {
                let mut v = result_json(o, now);
                let fills: Vec<Value> = placed
                    .fills
                    .iter()
                    .map(|f| {
                        json!({"price": s8(f.price), "qty": s8(f.qty), "commission": s8(f.commission),
                               "commissionAsset": f.commission_asset, "tradeId": f.id})
                    })
                    .collect();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("fills".into(), Value::Array(fills));
                }
                v
            }
        }
    }

    // ---------------------------------------------------------------- user-data events

    pub(super) fn execution_report(&mut self, id: u64, exec: ExecType, fill: Option<&MyTrade>, now: i64) {
        let Some(o) = self.account.orders.get(&id) else {
            return;
        };
        let ev = execution_json(o, exec, fill, &o.client_order_id, "", now);
        self.user_events.push(ev);
    }

    pub(super) fn cancel_report(&mut self, id: u64, cancel_client_id: &str, now: i64) {
        let Some(o) = self.account.orders.get(&id) else {
            return;
        };
        let ev = execution_json(
            o,
            ExecType::Canceled,
            None,
            cancel_client_id,
            &o.client_order_id,
            now,
        );
        self.user_events.push(ev);
    }

    pub(super) fn list_status_event(&mut self, list_id: i64, now: i64) {
        let Some(l) = self.account.lists.get(&list_id) else {
            return;
        };
        let orders: Vec<Value> = l
            .order_ids
            .iter()
            .filter_map(|id| self.account.orders.get(id))
            .map(|o| json!({"s": o.symbol, "i": o.order_id, "c": o.client_order_id}))
            .collect();
        let ev = json!({
            "e": "listStatus", "E": now, "s": l.symbol, "g": l.order_list_id, "c": l.contingency,
            "l": l.list_status_type, "L": l.list_order_status, "r": "NONE",
            "C": l.list_client_order_id, "T": now, "O": orders
        });
        self.user_events.push(ev);
    }

    pub(super) fn account_position(&mut self, spec: &SymbolSpec, now: i64) {
        let assets = [spec.base, spec.quote];
        let b: Vec<Value> = assets
            .iter()
            .map(|a| {
                let x = self.balance(a);
                json!({"a": a, "f": s8(x.free), "l": s8(x.locked)})
            })
            .collect();
        self.account.update_time = now;
        self.user_events
            .push(json!({"e": "outboundAccountPosition", "E": now, "u": now, "B": b}));
    }
}

/// Order object of GET /api/v3/order (§3.6).
pub fn order_json(o: &SimOrder) -> Value {
    let mut v = json!({
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id, "price": s8(o.price), "origQty": s8(o.orig_qty),
        "executedQty": s8(o.executed_qty), "cummulativeQuoteQty": s8(o.cum_quote), "status": o.status,
        "timeInForce": o.time_in_force, "type": o.order_type, "side": o.side, "stopPrice": s8(o.stop_price),
        "icebergQty": s8(o.iceberg_qty.unwrap_or_default()), "time": o.time, "updateTime": o.update_time,
        "isWorking": o.is_working, "workingTime": o.working_time, "origQuoteOrderQty": s8(o.orig_quote_qty),
        "selfTradePreventionMode": o.stp_mode
    });
    if let (Some(r), Some(obj)) = (&o.expiry_reason, v.as_object_mut()) {
        obj.insert("expiryReason".into(), json!(r));
    }
    with_prevented(with_trailing(v, o, "trailingDelta", "trailingTime"), o)
}

/// The conditional `preventedMatchId`/`preventedQuantity` of an order self-trade prevention
/// expired (`selftrade`).
fn with_prevented(mut v: Value, o: &SimOrder) -> Value {
    if let (Some(id), Some(obj)) = (o.prevented_match_id, v.as_object_mut()) {
        obj.insert("preventedMatchId".into(), json!(id));
        obj.insert("preventedQuantity".into(), json!(s8(o.prevented_qty)));
    }
    v
}

/// The conditional `icebergQty` of an order response (order objects always carry it).
fn with_iceberg(mut v: Value, o: &SimOrder) -> Value {
    if let (Some(q), Some(obj)) = (o.iceberg_qty, v.as_object_mut()) {
        obj.insert("icebergQty".into(), json!(s8(q)));
    }
    v
}

/// The conditional `trailingDelta`/`trailingTime` fields of a trailing stop (under the names
/// the shape uses).
fn with_trailing(mut v: Value, o: &SimOrder, delta: &str, time: &str) -> Value {
    if let (Some(d), Some(obj)) = (o.trailing_delta, v.as_object_mut()) {
        obj.insert(delta.into(), json!(d));
        obj.insert(time.into(), json!(o.trailing_time));
    }
    v
}

/// RESULT response of a new order (§3.4).
pub fn result_json(o: &SimOrder, now: i64) -> Value {
    let mut v = json!({
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id, "transactTime": now, "price": s8(o.price),
        "origQty": s8(o.orig_qty), "executedQty": s8(o.executed_qty),
        "origQuoteOrderQty": s8(o.orig_quote_qty), "cummulativeQuoteQty": s8(o.cum_quote),
        "status": o.status, "timeInForce": o.time_in_force, "type": o.order_type, "side": o.side,
        "workingTime": o.working_time, "selfTradePreventionMode": o.stp_mode
    });
    if let Some(obj) = v.as_object_mut() {
        if !o.stop_price.is_zero() {
            obj.insert("stopPrice".into(), json!(s8(o.stop_price)));
        }
        if let Some(r) = &o.expiry_reason {
            obj.insert("expiryReason".into(), json!(r));
        }
    }
    with_prevented(
        with_iceberg(with_trailing(v, o, "trailingDelta", "trailingTime"), o),
        o,
    )
}

/// Response of DELETE /api/v3/order (§3.7): `origClientOrderId` is the order's id,
/// `clientOrderId` the cancel's.
pub fn cancel_json(o: &SimOrder, cancel_id: &str) -> Value {
    let mut v = json!({
        "symbol": o.symbol, "origClientOrderId": o.client_order_id, "orderId": o.order_id,
        "orderListId": o.order_list_id, "clientOrderId": cancel_id, "transactTime": o.update_time,
        "price": s8(o.price), "origQty": s8(o.orig_qty), "executedQty": s8(o.executed_qty),
        "origQuoteOrderQty": s8(o.orig_quote_qty), "cummulativeQuoteQty": s8(o.cum_quote),
        "status": o.status, "timeInForce": o.time_in_force, "type": o.order_type, "side": o.side,
        "selfTradePreventionMode": o.stp_mode
    });
    if let Some(obj) = v.as_object_mut()
        && !o.stop_price.is_zero()
    {
        obj.insert("stopPrice".into(), json!(s8(o.stop_price)));
    }
    with_iceberg(with_trailing(v, o, "trailingDelta", "trailingTime"), o)
}

/// `executionReport`. `c` is this event's request id, `C` the original
/// client id on cancels and `""` otherwise.
pub fn execution_json(
    o: &SimOrder,
    exec: ExecType,
    fill: Option<&MyTrade>,
    c: &str,
    big_c: &str,
    now: i64,
) -> Value {
    let zero = s8(Decimal::ZERO);
    let (l, lp, n, nn, t, m, y) = match fill {
        Some(f) => (
            s8(f.qty),
            s8(f.price),
            s8(f.commission),
            Value::String(f.commission_asset.clone()),
            f.id as i64,
            f.is_maker,
            s8(f.quote_qty),
        ),
        None => (
            zero.clone(),
            zero.clone(),
            "0".to_string(),
            Value::Null,
            -1,
            false,
            zero.clone(),
        ),
    };
    let mut v = json!({
        "e": "executionReport", "E": now, "s": o.symbol, "c": c, "S": o.side, "o": o.order_type,
        "f": o.time_in_force, "q": s8(o.orig_qty), "p": s8(o.price), "P": s8(o.stop_price), "F": s8(o.iceberg_qty.unwrap_or_default()),
        "g": o.order_list_id, "C": big_c, "x": exec, "X": o.status, "r": "NONE", "i": o.order_id,
        "l": l, "z": s8(o.executed_qty), "L": lp, "n": n, "N": nn, "T": now, "t": t,
        "I": now.rem_euclid(1_000_000_000) * 10 + (o.order_id as i64 % 10), "w": o.is_open() && o.is_working && o.order_type.is_limit_like(),
        "m": m, "M": false, "O": o.time, "Z": s8(o.cum_quote), "Y": y, "Q": s8(o.orig_quote_qty),
        "W": o.working_time, "V": o.stp_mode
    });
    if let (Some(r), Some(obj)) = (&o.expiry_reason, v.as_object_mut())
        && exec == ExecType::Expired
    {
        obj.insert("eR".into(), json!(r));
    }
    with_trailing(v, o, "d", "D")
}

/// A myTrades row (§3.11).
pub fn trade_json(t: &MyTrade) -> Value {
    json!({
        "symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": t.order_list_id,
        "price": s8(t.price), "qty": s8(t.qty), "quoteQty": s8(t.quote_qty),
        "commission": s8(t.commission), "commissionAsset": t.commission_asset, "time": t.time,
        "isBuyer": t.is_buyer, "isMaker": t.is_maker, "isBestMatch": true
    })
}
