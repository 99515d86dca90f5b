//! Finding an order by id or client id, and cancelling one order or every open order of a
//! symbol.
//!
//! Owns: the cancel rules (`cancelRestrictions`, unknown orders) and their error codes. Must
//! not: end a list's other legs itself (a cancelled OCO leg cancels its list through `lists`).

use serde_json::Value;

use super::{ApiError, Engine, OrderStatus, Params, SimOrder, cancel_json, check_client_id};

/// The two halves of a cancelReplace: the cancel's answer, and the new order's (`None`: not
/// attempted).
pub type CancelReplaced = (Result<Value, ApiError>, Option<Result<Value, ApiError>>);

impl Engine {
    /// The engine's part of `POST /api/v3/order/cancelReplace` (the answer is `ops`'s): the new
    /// order's parameters and filters, then `admit` (the unfilled order count: `Err` refuses
    /// the whole request, `Ok(Some(e))` lets only the cancel go on and fails the new order with
    /// `e`), then the cancel, then, unless it failed and `allow_failure` is off, the placement,
    /// which may use what the cancel unlocked.
    pub fn cancel_replace(
        &mut self,
        p: &Params,
        now: i64,
        allow_failure: bool,
        admit: impl FnOnce() -> Result<Option<ApiError>, ApiError>,
    ) -> Result<CancelReplaced, ApiError> {
        if p.get("cancelOrderId").is_none() && p.get("cancelOrigClientOrderId").is_none() {
            return Err(ApiError::bad(
                -1102,
                "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!",
            ));
        }
        let mut cp = vec![("symbol".to_string(), p.req("symbol")?.to_string())];
        for (from, to) in [
            ("cancelOrderId", "orderId"),
            ("cancelOrigClientOrderId", "origClientOrderId"),
            ("cancelNewClientOrderId", "newClientOrderId"),
            ("cancelRestrictions", "cancelRestrictions"),
        ] {
            if let Some(v) = p.get(from) {
                cp.push((to.to_string(), v.to_string()));
            }
        }
        let o = self.parse_new_order(p)?;
        self.check_filters(&o)?;
        let over_limit = admit()?;
        let cancelled = self.cancel(&Params(cp), now);
        let placed = if cancelled.is_err() && !allow_failure {
            None
        } else if let Some(err) = over_limit {
            Some(Err(err))
        } else {
            Some(match self.place(&o, now, false) {
                Ok(placed) => Ok(self.placed_json(&placed, o.resp_type, now)),
                Err(err) => Err(err),
            })
        };
        Ok((cancelled, placed))
    }

    // ---------------------------------------------------------------- queries and cancels

    /// Finds an order by `orderId` or `origClientOrderId` (§3.6); `-2013` when missing.
    pub fn find_order(&self, p: &Params, missing: ApiError) -> Result<u64, ApiError> {
        let symbol = p.req("symbol")?;
        self.sym(symbol)?;
        let oid = p.int("orderId")?;
        let cid = p.get("origClientOrderId");
        match (oid, cid) {
            (None, None) => Err(ApiError::bad(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )),
            (Some(id), c) => {
                let o = self
                    .account
                    .orders
                    .get(&(id.max(0) as u64))
                    .filter(|o| o.symbol == symbol)
                    .ok_or(missing)?;
                if let Some(c) = c
                    && c != o.client_order_id
                {
                    return Err(ApiError::bad(-2039, "Order ID and client order ID do not match."));
                }
                Ok(o.order_id)
            }
            (None, Some(c)) => self
                .account
                .orders
                .values()
                .rev()
                .find(|o| o.symbol == symbol && o.client_order_id == c && o.is_open())
                .or_else(|| {
                    self.account
                        .orders
                        .values()
                        .rev()
                        .find(|o| o.symbol == symbol && o.client_order_id == c)
                })
                .map(|o| o.order_id)
                .ok_or(missing),
        }
    }

    /// Cancels one order (and its list, if any). Returns the cancelled order's JSON.
    pub fn cancel(&mut self, p: &Params, now: i64) -> Result<Value, ApiError> {
        let unknown = ApiError::bad(-2011, "Unknown order sent.");
        if let Some(c) = p.get("newClientOrderId") {
            check_client_id("newClientOrderId", c)?;
        }
        let id = self.find_order(p, unknown.clone())?;
        let o = self.account.orders.get(&id).cloned().ok_or(unknown.clone())?;
        if !o.is_open() {
            return Err(unknown);
        }
        match p.get("cancelRestrictions") {
            None => {}
            Some("ONLY_NEW") if o.status != OrderStatus::New => {
                return Err(ApiError::bad(
                    -2011,
                    "Order was not canceled due to cancel restrictions.",
                ));
            }
            Some("ONLY_PARTIALLY_FILLED") if o.status != OrderStatus::PartiallyFilled => {
                return Err(ApiError::bad(
                    -2011,
                    "Order was not canceled due to cancel restrictions.",
                ));
            }
            Some("ONLY_NEW") | Some("ONLY_PARTIALLY_FILLED") => {}
            Some(_) => {
                return Err(ApiError::bad(
                    -1145,
                    "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED.",
                ));
            }
        }
        let cancel_id = match p.get("newClientOrderId") {
            Some(c) => c.to_string(),
            None => self.gen_client_id(now),
        };
        if o.order_list_id >= 0 {
            self.cancel_list_inner(o.order_list_id, &cancel_id, now);
        } else {
            self.cancel_one(id, &cancel_id, now);
        }
        if let Some(spec) = self.market.get(&o.symbol).map(|m| m.spec.clone()) {
            self.account_position(&spec, now);
        }
        let x = self
            .account
            .orders
            .get(&id)
            .cloned()
            .ok_or(ApiError::bad(-2011, "Unknown order sent."))?;
        Ok(cancel_json(&x, &cancel_id))
    }

    pub(super) fn cancel_one(&mut self, id: u64, cancel_client_id: &str, now: i64) {
        if let Some(o) = self.account.orders.get_mut(&id) {
            o.status = OrderStatus::Canceled;
            o.update_time = now;
        }
        self.release_lock(id);
        self.cancel_report(id, cancel_client_id, now);
    }

    /// DELETE /api/v3/openOrders: every open order and list of the symbol.
    pub fn cancel_all(&mut self, symbol: &str, now: i64) -> Result<Value, ApiError> {
        self.sym(symbol)?;
        let open: Vec<SimOrder> = self
            .account
            .orders
            .values()
            .filter(|o| o.symbol == symbol && o.is_open())
            .cloned()
            .collect();
        if open.is_empty() {
            return Err(ApiError::bad(-2011, "Unknown order sent."));
        }
        let mut out = Vec::new();
        let mut lists_done = Vec::new();
        for o in open {
            let cancel_id = self.gen_client_id(now);
            if o.order_list_id >= 0 {
                if !lists_done.contains(&o.order_list_id) {
                    lists_done.push(o.order_list_id);
                    self.cancel_list_inner(o.order_list_id, &cancel_id, now);
                    out.push(self.list_json(o.order_list_id, true, Some(&cancel_id)));
                }
            } else {
                self.cancel_one(o.order_id, &cancel_id, now);
                if let Some(x) = self.account.orders.get(&o.order_id) {
                    out.push(cancel_json(x, &cancel_id));
                }
            }
        }
        if let Some(spec) = self.market.get(symbol).map(|m| m.spec.clone()) {
            self.account_position(&spec, now);
        }
        Ok(Value::Array(out))
    }
}
