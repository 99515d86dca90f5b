//! Order lists (OCO): placing the two legs with one lock, ending the other leg when one fills or
//! triggers, and cancelling a list.
//!
//! Owns: the list's statuses and its `listStatus` events. Must not: fill orders (that is
//! `matching`, which calls back here when a leg trades).

use rust_decimal::Decimal;
use serde_json::Value;

use super::super::market::SymbolSpec;
use super::matching::would_trigger;
use super::validate::{check_iceberg, parse_side, parse_stp_mode, parse_time_in_force};
use super::{
    ApiError, ContingencyType, Engine, ExecType, ListOrderStatus, ListStatusType, NewOrder, OrderList,
    OrderStatus, OrderType, Params, RespType, Side, SimOrder, TimeInForce, check_client_id,
};

impl Engine {
    pub(super) fn finish_list_sibling(&mut self, list_id: i64, order_id: u64, now: i64) {
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        for id in &list.order_ids {
            if *id != order_id && self.account.orders.get(id).is_some_and(SimOrder::is_open) {
                self.expire(*id, "OCO_TRIGGER", now);
            }
        }
        self.maybe_finish_list(list_id, now);
    }

    pub(super) fn maybe_finish_list(&mut self, list_id: i64, now: i64) {
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        if list.list_order_status == ListOrderStatus::AllDone {
            return;
        }
        let open = list
            .order_ids
            .iter()
            .any(|id| self.account.orders.get(id).is_some_and(SimOrder::is_open));
        if !open {
            for id in &list.order_ids {
                self.release_lock(*id);
            }
            if let Some(l) = self.account.lists.get_mut(&list_id) {
                l.list_status_type = ListStatusType::AllDone;
                l.list_order_status = ListOrderStatus::AllDone;
                l.transaction_time = now;
            }
            self.list_status_event(list_id, now);
        }
    }

    pub(super) fn cancel_list_inner(&mut self, list_id: i64, cancel_client_id: &str, now: i64) {
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        for id in &list.order_ids {
            if self.account.orders.get(id).is_some_and(SimOrder::is_open) {
                if let Some(o) = self.account.orders.get_mut(id) {
                    o.status = OrderStatus::Canceled;
                    o.update_time = now;
                }
                self.cancel_report(*id, cancel_client_id, now);
            }
        }
        self.maybe_finish_list(list_id, now);
    }

    /// DELETE /api/v3/orderList.
    pub fn cancel_list(&mut self, p: &Params, now: i64) -> Result<Value, ApiError> {
        let symbol = p.req("symbol")?.to_string();
        self.sym(&symbol)?;
        let lid = p.int("orderListId")?;
        let lcid = p.get("listClientOrderId");
        let list_id = match (lid, lcid) {
            (None, None) => {
                return Err(ApiError::bad(
                    -1102,
                    "Param 'listClientOrderId' or 'orderListId' must be sent, but both were empty/null!",
                ));
            }
            (Some(id), _) => id,
            (None, Some(c)) => self
                .account
                .lists
                .values()
                .rev()
                .find(|l| l.list_client_order_id == c && l.symbol == symbol)
                .map(|l| l.order_list_id)
                .unwrap_or(-1),
        };
        let unknown = ApiError::bad(-2011, "Unknown order list sent.");
        let list = self
            .account
            .lists
            .get(&list_id)
            .filter(|l| l.symbol == symbol)
            .cloned()
            .ok_or(unknown.clone())?;
        if list.list_order_status == ListOrderStatus::AllDone {
            return Err(unknown);
        }
        let cancel_id = match p.get("newClientOrderId") {
            Some(c) => c.to_string(),
            None => self.gen_client_id(now),
        };
        self.cancel_list_inner(list_id, &cancel_id, now);
        if let Some(spec) = self.market.get(&symbol).map(|m| m.spec.clone()) {
            self.account_position(&spec, now);
        }
        Ok(self.list_json(list_id, true, Some(&cancel_id)))
    }

    // ---------------------------------------------------------------- OCO

    /// POST /api/v3/orderList/oco: validates the list, then places both legs under one lock.
    pub fn place_oco(&mut self, p: &Params, now: i64) -> Result<Value, ApiError> {
        let oco = self.parse_oco(p)?;
        let (above, below, spec) = (&oco.above, &oco.below, &oco.spec);
        let qty = oco.qty;
        let (lock_asset, lock_amount, lock_price) = match oco.side {
            Side::Buy => {
                let unit = oco_level(above)
                    .max(above.price.unwrap_or_default())
                    .max(oco_level(below))
                    .max(below.price.unwrap_or_default());
                (spec.quote.to_string(), unit * qty, unit)
            }
            Side::Sell => (spec.base.to_string(), qty, Decimal::ZERO),
        };
        if self.balance(&lock_asset).free < lock_amount {
            return Err(ApiError::insufficient());
        }
        let (list_id, list_client_id) = self.next_list_id(p, now);
        let mut ids = Vec::new();
        // Below leg first, as Binance lists the stop leg first for a sell OCO.
        for (i, o) in [below, above].into_iter().enumerate() {
            let (id, cid) = self.next_order_id(o, now);
            let order = SimOrder {
                orig_qty: qty,
                lock_asset: if i == 0 { lock_asset.clone() } else { String::new() },
                locked_left: if i == 0 { lock_amount } else { Decimal::ZERO },
                lock_price,
                lock_from: ids.first().copied(),
                ..SimOrder::placed(o, id, list_id, cid, now)
            };
            self.account.orders.insert(id, order);
            ids.push(id);
        }
        let b = self.bal_mut(&lock_asset);
        b.free -= lock_amount;
        b.locked += lock_amount;
        self.open_list(
            list_id,
            list_client_id,
            &oco.symbol,
            ids,
            ContingencyType::Oco,
            now,
        );
        self.account_position(&oco.spec, now);
        let out = self.list_json(list_id, true, None);
        Ok(out)
    }

    /// A new list's id, and its client id: `listClientOrderId`, else a generated one.
    pub(super) fn next_list_id(&mut self, p: &Params, now: i64) -> (i64, String) {
        let list_id = self.account.next_list_id;
        self.account.next_list_id += 1;
        let client_id = match p.get("listClientOrderId") {
            Some(c) => c.to_string(),
            None => self.gen_client_id(now),
        };
        (list_id, client_id)
    }

    /// A new order's id, and its client id: the request's, else a generated one.
    pub(super) fn next_order_id(&mut self, o: &NewOrder, now: i64) -> (u64, String) {
        let id = self.account.next_order_id;
        self.account.next_order_id += 1;
        let client_id = match &o.client_order_id {
            Some(c) => c.clone(),
            None => self.gen_client_id(now),
        };
        (id, client_id)
    }

    /// Records a new list of orders already recorded (`ids`, in the list's order) and tells
    /// the user-data stream: each order's NEW report, then the list's status.
    pub(super) fn open_list(
        &mut self,
        list_id: i64,
        list_client_order_id: String,
        symbol: &str,
        ids: Vec<u64>,
        contingency: ContingencyType,
        now: i64,
    ) {
        let reports = ids.clone();
        self.account.lists.insert(
            list_id,
            OrderList {
                order_list_id: list_id,
                list_client_order_id,
                symbol: symbol.to_string(),
                list_status_type: ListStatusType::ExecStarted,
                list_order_status: ListOrderStatus::Executing,
                transaction_time: now,
                order_ids: ids,
                contingency,
            },
        );
        for id in reports {
            self.execution_report(id, ExecType::New, None, now);
        }
        self.list_status_event(list_id, now);
    }

    /// The checks of an OCO request before any balance is looked at, in Binance's order:
    /// presence, symbol, side, leg types, client ids, each leg's parameters, contingency,
    /// filters, stops already crossed, the price relationship, duplicate client ids.
    pub(super) fn parse_oco(&self, p: &Params) -> Result<OcoRequest, ApiError> {
        let symbol = p.req("symbol")?.to_string();
        let side = p.req("side")?;
        let qty = p
            .dec("quantity")?
            .ok_or_else(|| ApiError::mandatory("quantity"))?;
        let above_type = p.req("aboveType")?;
        let below_type = p.req("belowType")?;
        let (spec, last) = {
            let m = self.sym(&symbol)?;
            (m.spec.clone(), m.last_price)
        };
        let side = parse_side(side)?;
        // Every served type but LIMIT and MARKET may be either leg.
        let leg_type =
            |t: &str| OrderType::parse(t).filter(|t| !matches!(t, OrderType::Limit | OrderType::Market));
        let (Some(above_type), Some(below_type)) = (leg_type(above_type), leg_type(below_type)) else {
            return Err(ApiError::bad(-1158, "Order type not supported in OCO."));
        };
        for id in ["listClientOrderId", "aboveClientOrderId", "belowClientOrderId"] {
            if let Some(v) = p.get(id) {
                check_client_id(id, v)?;
            }
        }
        let above = oco_leg(p, "above", above_type, &symbol, side, qty)?;
        let below = oco_leg(p, "below", below_type, &symbol, side, qty)?;
        if !above_type.is_stop() && !below_type.is_stop() {
            return Err(ApiError::bad(-1168, "At least one OCO order must be contingent."));
        }
        self.check_filters(&above)?;
        self.check_filters(&below)?;
        // A stop leg the last price has already crossed would trigger as soon as the list is
        // placed; Binance refuses the whole list, before the price relationship is looked at.
        for o in [&above, &below] {
            if let Some(stop) = o.stop_price
                && would_trigger(o.order_type, side == Side::Buy, stop, last)
            {
                return Err(ApiError::rejected("Order would trigger immediately."));
            }
        }
        // Price relationship: the above leg is above the last price, the below leg below it.
        if oco_level(&above) <= last || oco_level(&below) >= last {
            return Err(ApiError::rejected(
                "The relationship of the prices for the orders is not correct.",
            ));
        }
        // A LIMIT_MAKER leg may not take: above (below) the last price it cannot cross the
        // synthetic book, but it can cross a resting order of the account between the two.
        for o in [&above, &below] {
            if o.order_type == OrderType::LimitMaker
                && let Some(p) = o.price
                && self
                    .best_own_maker(&symbol, side == Side::Buy, 0, Some(p))
                    .is_some()
            {
                return Err(ApiError::rejected("Order would immediately match and take."));
            }
        }
        for o in [&above, &below] {
            if let Some(c) = &o.client_order_id {
                self.check_duplicate(c)?;
            }
        }
        self.check_duplicate_list(p.get("listClientOrderId"))?;
        Ok(OcoRequest {
            symbol,
            side,
            qty,
            above,
            below,
            spec,
        })
    }
}

/// A validated OCO request: both legs as orders, and the symbol's description.
pub(super) struct OcoRequest {
    pub(super) symbol: String,
    pub(super) side: Side,
    pub(super) qty: Decimal,
    pub(super) above: NewOrder,
    pub(super) below: NewOrder,
    pub(super) spec: SymbolSpec,
}

/// The price that places a leg above or below the market: its stop, else its limit.
fn oco_level(o: &NewOrder) -> Decimal {
    o.stop_price.or(o.price).unwrap_or_default()
}

/// One leg's parameters (`abovePrice`, `belowStopPrice`, …) as an order. A time in force is
/// read only for the `_LIMIT` stops, the one kind of leg that takes it.
fn oco_leg(
    p: &Params,
    prefix: &str,
    t: OrderType,
    symbol: &str,
    side: Side,
    qty: Decimal,
) -> Result<NewOrder, ApiError> {
    let price = p.dec(&format!("{prefix}Price"))?;
    let stop = p.dec(&format!("{prefix}StopPrice"))?;
    let tif = p.get(&format!("{prefix}TimeInForce"));
    let iceberg_qty = p.dec(&format!("{prefix}IcebergQty"))?;
    // Trailing legs are not served: refused rather than placed as plain stops.
    if p.get(&format!("{prefix}TrailingDelta")).is_some() {
        return Err(ApiError::rejected(
            "Trailing stop legs are not supported in order lists.",
        ));
    }
    if t.is_limit_like() && price.is_none() {
        return Err(ApiError::mandatory(&format!("{prefix}Price")));
    }
    if t.is_stop() && stop.is_none() {
        return Err(ApiError::mandatory(&format!("{prefix}StopPrice")));
    }
    if t.is_stop_limit() && tif.is_none() {
        return Err(ApiError::mandatory(&format!("{prefix}TimeInForce")));
    }
    let time_in_force = match tif {
        Some(tif) if t.is_stop_limit() => Some(parse_time_in_force(tif)?),
        _ => None,
    };
    // An iceberg leg follows a new order's rules, but a leg's time in force other than GTC
    // (only a stop-limit leg, limit-like, takes one) has its own error.
    if iceberg_qty.is_some() && time_in_force.is_some_and(|x| x != TimeInForce::Gtc) {
        return Err(ApiError::bad(
            -1160,
            format!("Parameter '{prefix}IcebergQty' is not supported if '{prefix}TimeInForce' is not GTC."),
        ));
    }
    check_iceberg(t, time_in_force, Some(qty), iceberg_qty)?;
    Ok(NewOrder {
        symbol: symbol.to_string(),
        side,
        order_type: t,
        time_in_force,
        quantity: Some(qty),
        quote_qty: None,
        price: if t.is_limit_like() { price } else { None },
        stop_price: if t.is_stop() { stop } else { None },
        trailing_delta: None,
        client_order_id: p.get(&format!("{prefix}ClientOrderId")).map(str::to_string),
        resp_type: RespType::Ack,
        iceberg_qty,
        stp_mode: parse_stp_mode(p, "selfTradePreventionMode")?,
    })
}
