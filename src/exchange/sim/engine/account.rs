//! The one account: balances (free and locked), the orders, order lists and fills it holds, and
//! what the state file keeps of them.
//!
//! Owns: the persisted records, releasing what an order locked, and deposits and withdrawals.
//! Must not: decide when an order fills or ends (that is `matching` and `lists`); it only moves
//! what a decision frees or adds.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::market::s8;
use super::{
    ApiError, ContingencyType, Engine, ListOrderStatus, ListStatusType, NewOrder, OrderStatus, OrderType,
    Side, StpMode, TimeInForce,
};

/// The largest free balance a deposit may produce (10^20, the largest integer part a decimal
/// parameter may have).
pub const MAX_BALANCE: Decimal = Decimal::from_parts(1_661_992_960, 1_808_227_885, 5, false, 0);

/// One order of the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimOrder {
    pub symbol: String,
    pub order_id: u64,
    pub order_list_id: i64,
    pub client_order_id: String,
    pub price: Decimal,
    pub orig_qty: Decimal,
    pub executed_qty: Decimal,
    pub cum_quote: Decimal,
    pub status: OrderStatus,
    pub time_in_force: TimeInForce,
    pub order_type: OrderType,
    pub side: Side,
    pub stop_price: Decimal,
    pub orig_quote_qty: Decimal,
    pub time: i64,
    pub update_time: i64,
    pub working_time: i64,
    pub is_working: bool,
    /// Asset locked for this order (or for its list, see `lock_from`) and what is left of it.
    pub lock_asset: String,
    pub locked_left: Decimal,
    /// Quote locked per unit of base for buys (limit or stop price).
    pub lock_price: Decimal,
    /// An OCO leg that draws from its sibling's lock.
    pub lock_from: Option<u64>,
    pub expiry_reason: Option<String>,
    /// A trailing stop's `trailingDelta` in BIPS (see `matching::Engine::trail`).
    #[serde(default)]
    pub trailing_delta: Option<i64>,
    /// When the trailing stop began tracking prices (`trailingTime`); -1 before.
    #[serde(default = "minus_one")]
    pub trailing_time: i64,
    /// The best price seen since tracking began: the highest for sells, the lowest for buys.
    #[serde(default)]
    pub trailing_extreme: Option<Decimal>,
    /// An iceberg's visible part (`icebergQty`); the rest of the order is hidden.
    #[serde(default)]
    pub iceberg_qty: Option<Decimal>,
    /// `selfTradePreventionMode`.
    #[serde(default)]
    pub stp_mode: StpMode,
    /// The last match self-trade prevention stopped for this order, and the quantity it
    /// expired (`preventedMatchId`, `preventedQuantity`).
    #[serde(default)]
    pub prevented_match_id: Option<u64>,
    #[serde(default)]
    pub prevented_qty: Decimal,
}

fn minus_one() -> i64 {
    -1
}

impl SimOrder {
    /// A request as a new order on the book (`NEW`; a stop waits, untriggered, with no working
    /// time) holding nothing yet: the caller sets its lock, or its list's.
    pub(super) fn placed(
        o: &NewOrder,
        order_id: u64,
        order_list_id: i64,
        client_order_id: String,
        now: i64,
    ) -> Self {
        let untriggered = o.order_type.is_stop();
        SimOrder {
            symbol: o.symbol.clone(),
            order_id,
            order_list_id,
            client_order_id,
            price: o.price.unwrap_or_default(),
            orig_qty: o.quantity.unwrap_or_default(),
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: OrderStatus::New,
            time_in_force: o.time_in_force.unwrap_or(TimeInForce::Gtc),
            order_type: o.order_type,
            side: o.side,
            stop_price: o.stop_price.unwrap_or_default(),
            orig_quote_qty: o.quote_qty.unwrap_or_default(),
            time: now,
            update_time: now,
            working_time: if untriggered { -1 } else { now },
            is_working: !untriggered,
            lock_asset: String::new(),
            locked_left: Decimal::ZERO,
            lock_price: Decimal::ZERO,
            lock_from: None,
            expiry_reason: None,
            trailing_delta: o.trailing_delta,
            trailing_time: -1,
            trailing_extreme: None,
            iceberg_qty: o.iceberg_qty,
            stp_mode: o.stp_mode,
            prevented_match_id: None,
            prevented_qty: Decimal::ZERO,
        }
    }

    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
    pub(super) fn buy(&self) -> bool {
        self.side == Side::Buy
    }
    pub(super) fn remaining(&self) -> Decimal {
        self.orig_qty - self.executed_qty
    }
    /// What the book shows of a resting order: all of what is left, or of an iceberg the
    /// part of its current slice not yet traded (a slice refills when it is used up).
    pub fn visible_qty(&self) -> Decimal {
        let left = self.remaining();
        match self.iceberg_qty {
            Some(part) if part > Decimal::ZERO => {
                let used = self.executed_qty % part;
                (part - used).min(left)
            }
            _ => left,
        }
    }
}

/// A match self-trade prevention stopped (`GET /api/v3/myPreventedMatches`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreventedMatch {
    pub symbol: String,
    pub prevented_match_id: u64,
    pub taker_order_id: u64,
    pub maker_order_id: u64,
    pub trade_group_id: i64,
    pub stp_mode: StpMode,
    pub price: Decimal,
    pub maker_prevented_quantity: Decimal,
    pub transact_time: i64,
}

/// One order list (OCO).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderList {
    pub order_list_id: i64,
    pub list_client_order_id: String,
    pub symbol: String,
    pub list_status_type: ListStatusType,
    pub list_order_status: ListOrderStatus,
    pub transaction_time: i64,
    pub order_ids: Vec<u64>,
    /// OCO, or OTO (OTO and OTOCO): in an OTO list the first order is the working order,
    /// the others the pending ones.
    #[serde(default)]
    pub contingency: ContingencyType,
}

/// One fill of the account (myTrades).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MyTrade {
    pub symbol: String,
    pub id: u64,
    pub order_id: u64,
    pub order_list_id: i64,
    pub price: Decimal,
    pub qty: Decimal,
    pub quote_qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: String,
    pub time: i64,
    pub is_buyer: bool,
    pub is_maker: bool,
}

/// Free and locked amounts of one asset.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Bal {
    pub free: Decimal,
    pub locked: Decimal,
}

/// The persisted part of the account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountState {
    pub balances: BTreeMap<String, Bal>,
    pub orders: BTreeMap<u64, SimOrder>,
    pub lists: BTreeMap<i64, OrderList>,
    pub trades: Vec<MyTrade>,
    pub next_order_id: u64,
    pub next_list_id: i64,
    pub update_time: i64,
    #[serde(default)]
    pub prevented: Vec<PreventedMatch>,
}

impl Engine {
    pub fn balance(&self, asset: &str) -> Bal {
        self.account.balances.get(asset).copied().unwrap_or_default()
    }

    pub(super) fn bal_mut(&mut self, asset: &str) -> &mut Bal {
        self.account.balances.entry(asset.to_string()).or_default()
    }

    pub(super) fn release_lock(&mut self, order_id: u64) {
        let holder = {
            let Some(o) = self.account.orders.get(&order_id) else {
                return;
            };
            o.lock_from.unwrap_or(order_id)
        };
        // Keep a shared lock (an OCO's, or an OTOCO's pending pair's) while another order
        // drawing from it is still open.
        if let Some(list_id) = self.account.orders.get(&order_id).map(|o| o.order_list_id)
            && list_id >= 0
        {
            let any_open = self
                .account
                .lists
                .get(&list_id)
                .map(|l| {
                    l.order_ids.iter().any(|id| {
                        self.account
                            .orders
                            .get(id)
                            .is_some_and(|x| x.is_open() && x.lock_from.unwrap_or(x.order_id) == holder)
                    })
                })
                .unwrap_or(false);
            if any_open {
                return;
            }
        }
        if let Some(h) = self.account.orders.get_mut(&holder) {
            let left = h.locked_left;
            h.locked_left = Decimal::ZERO;
            let asset = h.lock_asset.clone();
            if !asset.is_empty() && left > Decimal::ZERO {
                let b = self.bal_mut(&asset);
                b.locked -= left;
                b.free += left;
            }
        }
    }

    /// A deposit or withdrawal by the control endpoint (`balanceUpdate` event).
    ///
    /// Refused when it would leave the free balance negative (locked funds stay locked) or
    /// above `MAX_BALANCE`, the bound that keeps every later product of a balance with a
    /// price inside a decimal.
    pub fn adjust_balance(&mut self, asset: &str, delta: Decimal, now: i64) -> Result<(), ApiError> {
        let valid_asset = !asset.is_empty()
            && asset.len() <= 20
            && asset
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid_asset {
            return Err(ApiError::bad(
                -1100,
                "Illegal characters found in parameter 'asset'.",
            ));
        }
        let free = self
            .balance(asset)
            .free
            .checked_add(delta)
            .filter(|f| *f <= MAX_BALANCE)
            .ok_or_else(|| ApiError::bad(-1013, format!("A balance may not exceed {MAX_BALANCE}.")))?;
        if free < Decimal::ZERO {
            return Err(ApiError::insufficient());
        }
        self.bal_mut(asset).free = free;
        self.account.update_time = now;
        self.user_events
            .push(json!({"e": "balanceUpdate", "E": now, "a": asset, "d": s8(delta), "T": now}));
        let x = self.balance(asset);
        self.user_events
            .push(json!({"e": "outboundAccountPosition", "E": now, "u": now,
            "B": [{"a": asset, "f": s8(x.free), "l": s8(x.locked)}]}));
        Ok(())
    }
}
