//! OTO and OTOCO order lists (Binance's rest-api.md "New order list - OTO" and "- OTOCO"): a
//! working order (LIMIT or LIMIT_MAKER) that goes on the book at once, and one pending order
//! (OTO: any type but a quoteOrderQty MARKET) or a pending OCO pair (OTOCO) that goes on the
//! book only when the working order is fully filled. Until then the pending orders are
//! `PENDING_NEW` and hold nothing; when placed they lock what they need (an OTOCO pair shares
//! one lock, as an OCO does) or, when the account cannot cover it then, expire. Cancelling
//! any order of the list cancels the list; the working order expiring (IOC/FOK, self-trade
//! prevention) expires the pending ones (`OTO_PHASE_ONE_EXPIRED`).
//!
//! Owns: parsing the two requests (each leg is checked as the order it will be, with the leg's
//! own parameter names in the errors), placing the list and placing the pending orders. Must
//! not: fill orders (that is `matching`, which calls back here when a list's order trades or
//! expires).

use rust_decimal::Decimal;
use serde_json::Value;

use super::matching::would_trigger;
use super::validate::parse_stp_mode;
use super::{
    ApiError, ContingencyType, Engine, ExecType, NewOrder, OrderStatus, OrderType, Params, Side, SimOrder,
    check_client_id, result_json,
};

/// A leg's parameter names: the new-order name, and the list's prefix for it.
const LEG_PARAMS: &[&str] = &[
    "Type",
    "Side",
    "ClientOrderId",
    "Price",
    "StopPrice",
    "TrailingDelta",
    "Quantity",
    "IcebergQty",
    "TimeInForce",
];

/// The new-order parameter a leg parameter stands for (`workingPrice` → `price`).
fn plain_name(suffix: &str) -> &'static str {
    match suffix {
        "Type" => "type",
        "Side" => "side",
        "ClientOrderId" => "newClientOrderId",
        "Price" => "price",
        "StopPrice" => "stopPrice",
        "TrailingDelta" => "trailingDelta",
        "Quantity" => "quantity",
        "IcebergQty" => "icebergQty",
        _ => "timeInForce",
    }
}

/// One leg's parameters as a new order's (`prefix` + suffix → plain name), plus the symbol
/// and the list's self-trade prevention mode. `side` and `quantity` may come from shared
/// names (`pendingSide`, `pendingQuantity` of an OTOCO pair).
fn leg_params(p: &Params, prefix: &str, shared: &str) -> Params {
    let mut out = Vec::new();
    for k in ["symbol", "selfTradePreventionMode"] {
        if let Some(v) = p.get(k) {
            out.push((k.to_string(), v.to_string()));
        }
    }
    for suffix in LEG_PARAMS {
        let own = p.get(&format!("{prefix}{suffix}"));
        let v = match *suffix {
            "Side" | "Quantity" => own.or_else(|| p.get(&format!("{shared}{suffix}"))),
            _ => own,
        };
        if let Some(v) = v {
            out.push((plain_name(suffix).to_string(), v.to_string()));
        }
    }
    Params(out)
}

/// An error about a plain parameter, told with the leg's name for it.
fn rename_error(mut e: ApiError, prefix: &str) -> ApiError {
    for suffix in LEG_PARAMS {
        let plain = format!("'{}'", plain_name(suffix));
        e.msg = e.msg.replace(&plain, &format!("'{prefix}{suffix}'"));
    }
    e
}

/// A validated OTO/OTOCO request.
struct OtoRequest {
    working: NewOrder,
    /// One pending order (OTO), or the above and below orders of the pending pair (OTOCO).
    pending: Vec<NewOrder>,
}

impl Engine {
    /// Checks one leg as the order it will be.
    fn oto_leg(&self, p: &Params, prefix: &str, shared: &str) -> Result<NewOrder, ApiError> {
        let lp = leg_params(p, prefix, shared);
        for name in ["type", "side", "quantity"] {
            if lp.get(name).is_none() {
                let suffix = match name {
                    "type" => "Type",
                    "side" => "Side",
                    _ => "Quantity",
                };
                let owner = if name == "type" { prefix } else { shared };
                return Err(ApiError::mandatory(&format!("{owner}{suffix}")));
            }
        }
        let o = self.parse_new_order(&lp).map_err(|e| rename_error(e, prefix))?;
        self.check_filters(&o).map_err(|e| rename_error(e, prefix))?;
        if let Some(stop) = o.stop_price
            && let Some(m) = self.market.get(&o.symbol)
            && would_trigger(o.order_type, o.side == Side::Buy, stop, m.last_price)
        {
            return Err(ApiError::rejected("Order would trigger immediately."));
        }
        Ok(o)
    }

    fn parse_oto(&self, p: &Params, otoco: bool) -> Result<OtoRequest, ApiError> {
        let symbol = p.req("symbol")?.to_string();
        self.sym(&symbol)?;
        if let Some(v) = p.get("listClientOrderId") {
            check_client_id("listClientOrderId", v)?;
        }
        parse_stp_mode(p, "selfTradePreventionMode")?;
        // The working order rests on the book: LIMIT or LIMIT_MAKER only.
        let working_type = OrderType::parse(p.req("workingType")?);
        if working_type.is_some_and(|t| !matches!(t, OrderType::Limit | OrderType::LimitMaker)) {
            return Err(ApiError::rejected("Unsupported order combination"));
        }
        let working = self.oto_leg(p, "working", "working")?;
        let pending = if otoco {
            let mut pending = Vec::new();
            for prefix in ["pendingAbove", "pendingBelow"] {
                let kind = OrderType::parse(p.req(&format!("{prefix}Type"))?);
                let allowed = |t: OrderType| {
                    if prefix == "pendingAbove" {
                        !matches!(t, OrderType::Limit | OrderType::Market)
                    } else {
                        t.is_stop()
                    }
                };
                if kind.is_some_and(|t| !allowed(t)) {
                    return Err(ApiError::bad(-1158, "Order type not supported in OCO."));
                }
                pending.push(self.oto_leg(p, prefix, "pending")?);
            }
            // The pair's prices as an OCO's: the above order above the last price, the below
            // order below it.
            let last = self.sym(&symbol)?.last_price;
            let level = |o: &NewOrder| o.stop_price.or(o.price).unwrap_or_default();
            if level(&pending[0]) <= last || level(&pending[1]) >= last {
                return Err(ApiError::rejected(
                    "The relationship of the prices for the orders is not correct.",
                ));
            }
            pending
        } else {
            vec![self.oto_leg(p, "pending", "pending")?]
        };
        // The list's client ids are unique among open orders, and among themselves.
        let mut ids: Vec<&str> = Vec::new();
        for o in std::iter::once(&working).chain(&pending) {
            if let Some(c) = &o.client_order_id {
                self.check_duplicate(c)?;
                if ids.contains(&c.as_str()) {
                    return Err(ApiError::rejected("Duplicate order sent."));
                }
                ids.push(c);
            }
        }
        self.check_duplicate_list(p.get("listClientOrderId"))?;
        Ok(OtoRequest { working, pending })
    }

    /// `POST /api/v3/orderList/oto` (`otoco` false) and `/otoco`: the list's response.
    pub fn place_oto(&mut self, p: &Params, now: i64, otoco: bool) -> Result<Value, ApiError> {
        let req = self.parse_oto(p, otoco)?;
        // The working order is placed as any order (its checks, its lock); it runs against the
        // book only once the list exists, so that a fill can place the pending orders.
        let placed = self.place_parked(&req.working, now)?;
        let (list_id, list_client_id) = self.next_list_id(p, now);
        let mut ids = vec![placed];
        for o in &req.pending {
            let (id, cid) = self.next_order_id(o, now);
            self.account
                .orders
                .insert(id, pending_order(o, id, list_id, cid, now));
            ids.push(id);
        }
        if let Some(w) = self.account.orders.get_mut(&placed) {
            w.order_list_id = list_id;
        }
        let symbol = &req.working.symbol;
        self.open_list(list_id, list_client_id, symbol, ids, ContingencyType::Oto, now);
        // As Binance answers: the reports as placed (the pending orders PENDING_NEW), the
        // working order's after it met the book.
        let mut out = self.list_json(list_id, true, None);
        self.run_taker(placed, now);
        if let (Some(w), Some(Value::Array(reports))) =
            (self.account.orders.get(&placed), out.get_mut("orderReports"))
            && let Some(first) = reports.first_mut()
        {
            *first = result_json(w, now);
        }
        if let Some(spec) = self.market.get(&req.working.symbol).map(|m| m.spec.clone()) {
            self.account_position(&spec, now);
        }
        Ok(out)
    }

    /// A list's order traded: an OTO's working order that filled places the pending order(s);
    /// an OCO's (or an OTOCO pair's) order ends its sibling.
    pub(super) fn list_order_traded(&mut self, list_id: i64, order_id: u64, filled: bool, now: i64) {
        let Some(list) = self.account.lists.get(&list_id) else {
            return;
        };
        if list.contingency == ContingencyType::Oto && list.order_ids.first() == Some(&order_id) {
            if filled {
                self.activate_pending(list_id, now);
            }
            return;
        }
        self.finish_list_sibling(list_id, order_id, now);
    }

    /// A list's order expired: an OTO's working order takes its pending orders with it.
    pub(super) fn list_order_expired(&mut self, order_id: u64, now: i64) {
        let Some(list_id) = self.account.orders.get(&order_id).map(|o| o.order_list_id) else {
            return;
        };
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        if list.contingency != ContingencyType::Oto || list.order_ids.first() != Some(&order_id) {
            return;
        }
        for id in &list.order_ids[1..] {
            if self
                .account
                .orders
                .get(id)
                .is_some_and(|o| o.status == OrderStatus::PendingNew)
            {
                self.end_pending(*id, "OTO_PHASE_ONE_EXPIRED", now);
            }
        }
        self.maybe_finish_list(list_id, now);
    }

    /// A list's order expired in match (self-trade prevention): an OCO does not go on with one
    /// leg gone, as when a leg is cancelled, so its other leg (or the other of an OTOCO's
    /// pair) expires with it and the list is done. An OTO's working order is
    /// [`Engine::list_order_expired`]'s.
    pub(super) fn list_order_expired_in_match(&mut self, order_id: u64, now: i64) {
        let Some(list_id) = self.account.orders.get(&order_id).map(|o| o.order_list_id) else {
            return;
        };
        let Some(list) = self.account.lists.get(&list_id) else {
            return;
        };
        if list.contingency == ContingencyType::Oto && list.order_ids.first() == Some(&order_id) {
            return;
        }
        self.finish_list_sibling(list_id, order_id, now);
    }

    fn end_pending(&mut self, id: u64, reason: &str, now: i64) {
        if let Some(o) = self.account.orders.get_mut(&id) {
            o.status = OrderStatus::Expired;
            o.update_time = now;
            o.expiry_reason = Some(reason.to_string());
        }
        self.execution_report(id, ExecType::Expired, None, now);
    }

    /// The working order filled: the pending order(s) go on the book with their lock (an
    /// OTOCO pair shares one), then work as any order placed now would.
    fn activate_pending(&mut self, list_id: i64, now: i64) {
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        let pending: Vec<SimOrder> = list.order_ids[1..]
            .iter()
            .filter_map(|id| self.account.orders.get(id))
            .filter(|o| o.status == OrderStatus::PendingNew)
            .cloned()
            .collect();
        let Some(first) = pending.first() else {
            return;
        };
        let Some((base, quote, tick, last)) = self
            .market
            .get(&first.symbol)
            .map(|m| (m.spec.base, m.spec.quote, m.spec.tick, m.last_price))
        else {
            return;
        };
        let (asset, amount, unit) = if first.buy() {
            let unit = pending
                .iter()
                .map(|o| buy_unit(o, last, tick))
                .max()
                .unwrap_or_default();
            (quote.to_string(), unit * first.orig_qty, unit)
        } else {
            (base.to_string(), first.orig_qty, Decimal::ZERO)
        };
        // A MARKET pending order locks nothing: it trades at once.
        let locks = first.order_type != OrderType::Market;
        if locks && self.balance(&asset).free < amount {
            for o in &pending {
                self.end_pending(o.order_id, "INSUFFICIENT_BALANCES", now);
            }
            self.maybe_finish_list(list_id, now);
            return;
        }
        if locks {
            let b = self.bal_mut(&asset);
            b.free -= amount;
            b.locked += amount;
        }
        for (i, p) in pending.iter().enumerate() {
            let Some(o) = self.account.orders.get_mut(&p.order_id) else {
                continue;
            };
            o.status = OrderStatus::New;
            o.update_time = now;
            o.lock_price = unit;
            let stop = o.order_type.is_stop();
            o.is_working = !stop;
            o.working_time = if stop { -1 } else { now };
            if o.trailing_delta.is_some() && o.stop_price.is_zero() {
                o.trailing_time = now;
                o.trailing_extreme = Some(last);
            }
            if i == 0 && locks {
                o.lock_asset = asset.clone();
                o.locked_left = amount;
            } else if i > 0 {
                o.lock_from = Some(first.order_id);
            }
            self.execution_report(p.order_id, ExecType::New, None, now);
        }
        self.list_status_event(list_id, now);
        for p in &pending {
            if !p.order_type.is_stop() {
                self.run_taker(p.order_id, now);
            }
        }
    }
}

/// The quote a pending buy locks per unit: its limit price, else its stop price, else (a
/// trailing stop without one) the highest it can trigger at from `last`.
fn buy_unit(o: &SimOrder, last: Decimal, tick: Decimal) -> Decimal {
    let level = o.price.max(o.stop_price);
    if !level.is_zero() {
        return level;
    }
    match o.trailing_delta {
        Some(d) => {
            let top = last * (Decimal::ONE + Decimal::new(d, 4));
            (top / tick).ceil() * tick
        }
        None => Decimal::ZERO,
    }
}

/// A pending order as placed with its list: `PENDING_NEW`, not working, holding nothing yet.
fn pending_order(o: &NewOrder, id: u64, list_id: i64, cid: String, now: i64) -> SimOrder {
    SimOrder {
        status: OrderStatus::PendingNew,
        working_time: -1,
        is_working: false,
        ..SimOrder::placed(o, id, list_id, cid, now)
    }
}
