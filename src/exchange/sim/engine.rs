//! The matching engine and the one account of the local exchange: balances (free/locked),
//! orders, order lists (OCO), fills and the user-data events they cause.
//!
//! Owns: order validation after the request was authenticated (parameters, filters, balance),
//! matching against the synthetic book, commissions, and the JSON shapes of orders, fills and
//! `executionReport`/`outboundAccountPosition`/`listStatus` events. Must not: read the clock
//! (every call takes `now`), do I/O, or check signatures (that is `auth`).
//!
//! Rules taken from Binance's official spot API docs (rest-api.md, filters.md, errors.md):
//! taker fills walk the opposite side of the book at each level's price; a resting order
//! fills at its own price when the synthetic market crosses it; buys pay commission in the
//! base asset, sells in the quote asset, unless BNB fees are on (below); an OCO leg that fills
//! or triggers expires the other.
//!
//! BNB fees (`bnb_fees`, like Binance's "use BNB to pay for fees"): when on and the account's
//! free BNB covers it, a fill's commission is charged in BNB instead: the fill's quote value ×
//! the commission rate × (1 − [`BNB_FEE_DISCOUNT`]), converted at the BNBUSDT mid (the middle
//! of its best bid and ask when the fill is booked) and rounded to 8 decimals. Otherwise (not
//! enough BNB, a quote asset other than USDT, no BNBUSDT book) the usual asset pays in full.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::market::{self, Market, MarketEvent, SymbolMarket, checked_floor_to, s8};

/// An error answered to the client: HTTP status, Binance code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {msg}")]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub msg: String,
}

impl ApiError {
    pub fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            msg: msg.into(),
        }
    }
    pub fn bad(code: i64, msg: impl Into<String>) -> Self {
        Self::new(400, code, msg)
    }
    pub fn mandatory(name: &str) -> Self {
        Self::bad(
            -1102,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    }
    pub fn filter(name: &str) -> Self {
        Self::bad(-1013, format!("Filter failure: {name}"))
    }
    pub fn rejected(msg: &str) -> Self {
        Self::bad(-2010, msg)
    }
    pub fn insufficient() -> Self {
        Self::rejected("Account has insufficient balance for requested action.")
    }
    pub fn bad_symbol() -> Self {
        Self::bad(-1121, "Invalid symbol.")
    }
    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "msg": self.msg})
    }
}

/// Request parameters after decoding (query string first, then body; the first wins).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
    pub fn req(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::mandatory(name))
    }
    /// A decimal parameter; `None` when absent.
    ///
    /// The grammar is Binance's own, `^([0-9]{1,20})(\.[0-9]{1,20})?$`, and at most 8
    /// significant decimals. Twenty integer digits keep every value far below `Decimal::MAX`
    /// (about 7.9e28), so a product of a parameter with a price or a quotient by a tick can be
    /// computed with checked arithmetic that does not fail for any value a client can send.
    pub fn dec(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let illegal = || {
            ApiError::bad(
                -1100,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
                ),
            )
        };
        let (int, frac) = match v.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (v, None),
        };
        let digits = |s: &str| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(illegal());
        }
        if frac.map(|f| f.trim_end_matches('0').len()).unwrap_or(0) > 8 {
            return Err(ApiError::bad(
                -1111,
                format!("Parameter '{name}' has too much precision."),
            ));
        }
        v.parse::<Decimal>().map(Some).map_err(|_| illegal())
    }
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad(
                -1100,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^(-?[0-9]{{1,19}})$'."
                ),
            )
        })
    }
}

/// `^[a-zA-Z0-9-_]{1,36}$`.
pub fn check_client_id(name: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 36
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            -1100,
            format!(
                "Illegal characters found in parameter '{name}'; legal range is '^[a-zA-Z0-9-_]{{1,36}}$'."
            ),
        ))
    }
}

/// The largest free balance a deposit may produce (10^20, the largest integer part a decimal
/// parameter may have).
pub const MAX_BALANCE: Decimal = Decimal::from_parts(1_661_992_960, 1_808_227_885, 5, false, 0);

const BNB: &str = "BNB";
const BNB_USDT: &str = "BNBUSDT";
/// The discount on commissions paid in BNB (Binance's standard spot discount is 25 %).
pub const BNB_FEE_DISCOUNT: Decimal = Decimal::from_parts(25, 0, 0, false, 2);

pub const ORDER_TYPES: [&str; 7] = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
];

fn buy_side(side: &str) -> bool {
    side == "BUY"
}

fn is_stop(t: &str) -> bool {
    t.starts_with("STOP_LOSS") || t.starts_with("TAKE_PROFIT")
}
fn is_limit_like(t: &str) -> bool {
    matches!(
        t,
        "LIMIT" | "LIMIT_MAKER" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT_LIMIT"
    )
}

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
    pub status: String,
    pub time_in_force: String,
    pub order_type: String,
    pub side: String,
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
}

impl SimOrder {
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "NEW" | "PARTIALLY_FILLED" | "PENDING_NEW")
    }
    fn buy(&self) -> bool {
        self.side == "BUY"
    }
    fn remaining(&self) -> Decimal {
        self.orig_qty - self.executed_qty
    }
}

/// One order list (OCO).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderList {
    pub order_list_id: i64,
    pub list_client_order_id: String,
    pub symbol: String,
    pub list_status_type: String,
    pub list_order_status: String,
    pub transaction_time: i64,
    pub order_ids: Vec<u64>,
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
}

/// A validated new-order request.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    pub time_in_force: Option<String>,
    pub quantity: Option<Decimal>,
    pub quote_qty: Option<Decimal>,
    pub price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub client_order_id: Option<String>,
    pub resp_type: String,
}

/// The exchange: the market plus the account, and the events produced since the last drain.
#[derive(Debug)]
pub struct Engine {
    pub market: Market,
    pub account: AccountState,
    pub commission_rate: Decimal,
    /// Pay commissions in BNB when the account holds enough (see the module doc).
    pub bnb_fees: bool,
    /// User-data event payloads waiting to be published.
    pub user_events: Vec<Value>,
    /// Market events waiting to be published.
    pub market_events: Vec<MarketEvent>,
    id_counter: u64,
}

/// What placing an order produced (for the response builder).
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: u64,
    pub fills: Vec<MyTrade>,
}

impl Engine {
    pub fn new(market: Market, account: AccountState, commission_rate: Decimal) -> Self {
        let mut account = account;
        if account.next_order_id == 0 {
            account.next_order_id = 1;
        }
        if account.next_list_id == 0 {
            account.next_list_id = 1;
        }
        let mut market = market;
        // Trade ids keep increasing across restarts: the tape continues after the last saved fill.
        for t in &account.trades {
            if let Some(m) = market.get_mut(&t.symbol) {
                m.next_trade_id = m.next_trade_id.max(t.id + 1);
            }
        }
        Engine {
            market,
            account,
            commission_rate,
            bnb_fees: false,
            user_events: Vec::new(),
            market_events: Vec::new(),
            id_counter: 0,
        }
    }

    fn sym(&self, symbol: &str) -> Result<&SymbolMarket, ApiError> {
        self.market.get(symbol).ok_or_else(ApiError::bad_symbol)
    }

    /// A 22-character id like Binance's generated ones.
    pub fn gen_client_id(&mut self, now: i64) -> String {
        self.id_counter += 1;
        let mut x = (now as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(self.id_counter.wrapping_mul(1442695040888963407));
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut s = String::from("sim");
        for _ in 0..19 {
            s.push(A[(x % 62) as usize] as char);
            x = (x / 62) ^ x.rotate_left(17).wrapping_mul(31);
        }
        s
    }

    pub fn balance(&self, asset: &str) -> Bal {
        self.account.balances.get(asset).copied().unwrap_or_default()
    }

    fn bal_mut(&mut self, asset: &str) -> &mut Bal {
        self.account.balances.entry(asset.to_string()).or_default()
    }

    // ---------------------------------------------------------------- parsing and validation

    /// Parses and validates new-order parameters (before balances are looked at).
    pub fn parse_new_order(&self, p: &Params) -> Result<NewOrder, ApiError> {
        let symbol = p.req("symbol")?.to_string();
        let side = p.req("side")?.to_string();
        let order_type = p.req("type")?.to_string();
        self.sym(&symbol)?;
        if side != "BUY" && side != "SELL" {
            return Err(ApiError::bad(-1117, "Invalid side."));
        }
        if !ORDER_TYPES.contains(&order_type.as_str()) {
            return Err(ApiError::bad(-1116, "Invalid orderType."));
        }
        let tif = p.get("timeInForce").map(str::to_string);
        if let Some(t) = &tif
            && !matches!(t.as_str(), "GTC" | "IOC" | "FOK")
        {
            return Err(ApiError::bad(-1115, "Invalid timeInForce."));
        }
        let quantity = p.dec("quantity")?;
        let quote_qty = p.dec("quoteOrderQty")?;
        let price = p.dec("price")?;
        let stop_price = p.dec("stopPrice")?;
        if let Some(id) = p.get("newClientOrderId") {
            check_client_id("newClientOrderId", id)?;
        }
        // exchangeInfo says icebergAllowed=false, allowTrailingStop=false, STP modes ["NONE"].
        if p.get("icebergQty").is_some() {
            return Err(ApiError::rejected(
                "Iceberg orders are not supported for this symbol.",
            ));
        }
        if p.get("trailingDelta").is_some() {
            return Err(ApiError::rejected(
                "Trailing stop orders are not supported for this symbol.",
            ));
        }
        if p.get("selfTradePreventionMode").is_some_and(|m| m != "NONE") {
            return Err(ApiError::bad(
                -1130,
                "Data sent for parameter 'selfTradePreventionMode' is not valid.",
            ));
        }
        let resp_type = p.get("newOrderRespType").map(str::to_string).unwrap_or_else(|| {
            if order_type == "MARKET" || order_type == "LIMIT" {
                "FULL".into()
            } else {
                "ACK".into()
            }
        });
        if !matches!(resp_type.as_str(), "ACK" | "RESULT" | "FULL") {
            return Err(ApiError::bad(
                -1130,
                "Data sent for parameter 'newOrderRespType' is not valid.",
            ));
        }
        let t = order_type.as_str();
        match t {
            "LIMIT" => {
                if tif.is_none() {
                    return Err(ApiError::mandatory("timeInForce"));
                }
                quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
                price.ok_or_else(|| ApiError::mandatory("price"))?;
            }
            "MARKET" => {
                if quantity.is_none() && quote_qty.is_none() {
                    return Err(ApiError::bad(
                        -1102,
                        "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                    ));
                }
                if quantity.is_some() && quote_qty.is_some() {
                    return Err(ApiError::bad(
                        -1106,
                        "Parameter 'quoteOrderQty' sent when not required.",
                    ));
                }
            }
            "LIMIT_MAKER" => {
                quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
                price.ok_or_else(|| ApiError::mandatory("price"))?;
            }
            "STOP_LOSS" | "TAKE_PROFIT" => {
                quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
                stop_price.ok_or_else(|| ApiError::mandatory("stopPrice"))?;
            }
            _ => {
                if tif.is_none() {
                    return Err(ApiError::mandatory("timeInForce"));
                }
                quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
                price.ok_or_else(|| ApiError::mandatory("price"))?;
                stop_price.ok_or_else(|| ApiError::mandatory("stopPrice"))?;
            }
        }
        if (t == "MARKET" || t == "STOP_LOSS" || t == "TAKE_PROFIT" || t == "LIMIT_MAKER") && tif.is_some() {
            return Err(ApiError::bad(
                -1106,
                "Parameter 'timeInForce' sent when not required.",
            ));
        }
        if !is_limit_like(t) && price.is_some() {
            return Err(ApiError::bad(-1106, "Parameter 'price' sent when not required."));
        }
        if !is_stop(t) && stop_price.is_some() {
            return Err(ApiError::bad(
                -1106,
                "Parameter 'stopPrice' sent when not required.",
            ));
        }
        Ok(NewOrder {
            symbol,
            side,
            order_type,
            time_in_force: tif,
            quantity,
            quote_qty,
            price,
            stop_price,
            client_order_id: p.get("newClientOrderId").map(str::to_string),
            resp_type,
        })
    }

    /// The symbol filters (Binance's filters.md), in the order Binance reports them.
    pub fn check_filters(&self, o: &NewOrder) -> Result<(), ApiError> {
        let m = self.sym(&o.symbol)?;
        let s = &m.spec;
        for px in [o.price, o.stop_price].into_iter().flatten() {
            if !s.price_ok(px) {
                return Err(ApiError::filter("PRICE_FILTER"));
            }
        }
        let avg = m.avg_price(5);
        if let Some(px) = o.price {
            let up = avg * Decimal::from(5);
            let down = avg * Decimal::new(2, 1);
            if px > up || px < down {
                return Err(ApiError::filter("PERCENT_PRICE_BY_SIDE"));
            }
        }
        if let Some(q) = o.quantity {
            if o.order_type == "MARKET" && (q > s.market_max_qty || q <= Decimal::ZERO) {
                return Err(ApiError::filter("MARKET_LOT_SIZE"));
            }
            let on_step = q.checked_rem(s.step).is_some_and(|r| r.is_zero());
            if q < s.min_qty || q > s.max_qty || !on_step {
                return Err(ApiError::filter("LOT_SIZE"));
            }
        }
        // Checked products: a notional too large for a decimal is above maxNotional anyway.
        let notional = match (o.order_type.as_str(), o.quantity, o.quote_qty) {
            ("MARKET", _, Some(qq)) => Some(Some(qq)),
            ("MARKET", Some(q), None) => Some(q.checked_mul(avg)),
            (t, Some(q), _) if is_limit_like(t) => o.price.map(|p| p.checked_mul(q)),
            (_, Some(q), _) => o.stop_price.map(|p| p.checked_mul(q)),
            _ => None,
        };
        if let Some(n) = notional {
            let Some(n) = n else {
                return Err(ApiError::filter("NOTIONAL"));
            };
            let market_order = o.order_type == "MARKET";
            if n < s.min_notional || (!market_order && n > s.max_notional) {
                return Err(ApiError::filter("NOTIONAL"));
            }
        }
        let open = self
            .account
            .orders
            .values()
            .filter(|x| x.symbol == o.symbol && x.is_open())
            .count();
        if open >= market::MAX_NUM_ORDERS {
            return Err(ApiError::filter("MAX_NUM_ORDERS"));
        }
        Ok(())
    }

    fn check_duplicate(&self, client_id: &str) -> Result<(), ApiError> {
        if self
            .account
            .orders
            .values()
            .any(|x| x.is_open() && x.client_order_id == client_id)
        {
            return Err(ApiError::rejected("Duplicate order sent."));
        }
        Ok(())
    }

    /// Stop direction: `true` when the stop would trigger now.
    fn would_trigger(order_type: &str, buy: bool, stop: Decimal, last: Decimal) -> bool {
        let stop_loss = order_type.starts_with("STOP_LOSS");
        match (stop_loss, buy) {
            (true, true) | (false, false) => last >= stop,
            (true, false) | (false, true) => last <= stop,
        }
    }

    // ---------------------------------------------------------------- placing

    /// Validates and places one order. `test_only` stops after validation (order/test).
    pub fn place(&mut self, o: &NewOrder, now: i64, test_only: bool) -> Result<Placed, ApiError> {
        self.check_filters(o)?;
        let m = self.sym(&o.symbol)?.clone();
        let buy = o.side == "BUY";
        let t = o.order_type.as_str();
        let client_id = match &o.client_order_id {
            Some(c) => c.clone(),
            None => self.gen_client_id(now),
        };
        self.check_duplicate(&client_id)?;
        if let Some(stop) = o.stop_price
            && Self::would_trigger(t, buy, stop, m.last_price)
        {
            return Err(ApiError::rejected("Order would trigger immediately."));
        }
        if t == "LIMIT_MAKER"
            && let Some(p) = o.price
        {
            let takes = if buy {
                p >= m.best_ask().0
            } else {
                p <= m.best_bid().0
            };
            if takes {
                return Err(ApiError::rejected("Order would immediately match and take."));
            }
        }
        // Balance: what must be locked (limit-like and stop orders) or spent (market).
        let (lock_asset, lock_amount, lock_price) = if buy {
            let unit = o.price.or(o.stop_price).unwrap_or(Decimal::ZERO);
            // The filters bound price and quantity, so this cannot overflow; if it ever did,
            // no balance could cover it.
            let amount = unit
                .checked_mul(o.quantity.unwrap_or_default())
                .ok_or_else(ApiError::insufficient)?;
            (m.spec.quote.to_string(), amount, unit)
        } else {
            (
                m.spec.base.to_string(),
                o.quantity.unwrap_or_default(),
                Decimal::ZERO,
            )
        };
        if t == "MARKET" {
            if buy {
                let need = match (o.quantity, o.quote_qty) {
                    (_, Some(qq)) => qq,
                    (Some(q), None) => estimate_cost(&m, q),
                    _ => Decimal::ZERO,
                };
                if self.balance(m.spec.quote).free < need {
                    return Err(ApiError::insufficient());
                }
            } else {
                let need = match o.quantity {
                    Some(q) => Some(q),
                    None => estimate_qty_for_quote(&m, o.quote_qty.unwrap_or_default()),
                };
                // No estimate means more base than any decimal holds: no balance covers it.
                if need.is_none_or(|need| self.balance(m.spec.base).free < need) {
                    return Err(ApiError::insufficient());
                }
            }
        } else if self.balance(&lock_asset).free < lock_amount {
            return Err(ApiError::insufficient());
        }
        if test_only {
            return Ok(Placed {
                order_id: 0,
                fills: Vec::new(),
            });
        }
        let order_id = self.account.next_order_id;
        self.account.next_order_id += 1;
        let untriggered = is_stop(t);
        let mut order = SimOrder {
            symbol: o.symbol.clone(),
            order_id,
            order_list_id: -1,
            client_order_id: client_id,
            price: o.price.unwrap_or(Decimal::ZERO),
            orig_qty: o.quantity.unwrap_or(Decimal::ZERO),
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: "NEW".into(),
            time_in_force: o.time_in_force.clone().unwrap_or_else(|| "GTC".into()),
            order_type: o.order_type.clone(),
            side: o.side.clone(),
            stop_price: o.stop_price.unwrap_or(Decimal::ZERO),
            orig_quote_qty: o.quote_qty.unwrap_or(Decimal::ZERO),
            time: now,
            update_time: now,
            working_time: if untriggered { -1 } else { now },
            is_working: !untriggered,
            lock_asset: String::new(),
            locked_left: Decimal::ZERO,
            lock_price,
            lock_from: None,
            expiry_reason: None,
        };
        if t != "MARKET" {
            let b = self.bal_mut(&lock_asset);
            b.free -= lock_amount;
            b.locked += lock_amount;
            order.lock_asset = lock_asset.clone();
            order.locked_left = lock_amount;
        }
        self.account.orders.insert(order_id, order);
        self.execution_report(order_id, "NEW", None, now);
        let mut fills = Vec::new();
        if !untriggered {
            fills = self.run_taker(order_id, now);
        }
        self.account_position(&m, now);
        Ok(Placed { order_id, fills })
    }

    /// Runs a working order against the book as a taker, then applies its time-in-force.
    fn run_taker(&mut self, order_id: u64, now: i64) -> Vec<MyTrade> {
        let Some(o) = self.account.orders.get(&order_id).cloned() else {
            return Vec::new();
        };
        let buy = o.buy();
        let limit = if is_limit_like(&o.order_type) {
            Some(o.price)
        } else {
            None
        };
        if o.order_type == "LIMIT_MAKER" {
            return Vec::new();
        }
        // What a market-type order (MARKET, or a triggered STOP_LOSS/TAKE_PROFIT) may use: the
        // free balance plus what is still locked for it, so a gap never drives a balance negative.
        let (base, quote) = match self.market.get(&o.symbol) {
            Some(m) => (m.spec.base, m.spec.quote),
            None => return Vec::new(),
        };
        let holder_locked = self
            .account
            .orders
            .get(&o.lock_from.unwrap_or(order_id))
            .map(|h| h.locked_left)
            .unwrap_or_default();
        let usable = |asset: &str| self.balance(asset).free + holder_locked;
        let market_type = !is_limit_like(&o.order_type);
        let usable_quote = usable(quote);
        let usable_base = usable(base);
        let Some(m) = self.market.get_mut(&o.symbol) else {
            return Vec::new();
        };
        let quote_mode = o.order_type == "MARKET" && o.orig_qty.is_zero();
        if o.time_in_force == "FOK" && limit.is_some() && m.crossing_qty(buy, o.price) < o.remaining() {
            self.expire(order_id, "UNFILLED_FOK_ORDER_EXPIRED", now);
            return Vec::new();
        }
        let (mut max_qty, max_quote) = if quote_mode {
            (Decimal::from(1_000_000_000_000i64), Some(o.orig_quote_qty))
        } else {
            (o.remaining(), None)
        };
        let quote_cap = if buy && market_type {
            Some(max_quote.map(|q| q.min(usable_quote)).unwrap_or(usable_quote))
        } else {
            max_quote
        };
        if !buy && market_type {
            max_qty = max_qty.min(usable_base);
        }
        let (levels, diff) = m.take(buy, max_qty, limit, quote_cap);
        let symbol = o.symbol.clone();
        if let Some(diff) = diff {
            self.market_events.push(MarketEvent::Depth {
                symbol: symbol.clone(),
                time: now,
                diff,
            });
            self.market_events.push(MarketEvent::BookTicker {
                symbol: symbol.clone(),
            });
        }
        if quote_mode {
            // The order's quantity is what the quote amount bought.
            let q: Decimal = levels.iter().map(|(_, q)| *q).sum();
            if let Some(x) = self.account.orders.get_mut(&order_id) {
                x.orig_qty = q;
            }
        }
        let mut fills = Vec::new();
        for (price, qty) in levels {
            fills.push(self.apply_fill(order_id, price, qty, false, now));
        }
        let Some(o) = self.account.orders.get(&order_id).cloned() else {
            return fills;
        };
        if o.is_open() {
            let rests = is_limit_like(&o.order_type) && o.time_in_force == "GTC";
            if !rests {
                let reason = if o.order_type == "MARKET" || quote_mode {
                    "INSUFFICIENT_LIQUIDITY"
                } else {
                    "UNFILLED_IOC_QUANTITY_EXPIRED"
                };
                self.expire(order_id, reason, now);
            }
        }
        fills
    }

    /// Books one fill: balances, order progress, the trade record and its events.
    fn apply_fill(&mut self, order_id: u64, price: Decimal, qty: Decimal, maker: bool, now: i64) -> MyTrade {
        let rate = self.commission_rate;
        let Some(o) = self.account.orders.get(&order_id).cloned() else {
            return empty_trade();
        };
        let (base, quote) = match self.market.get(&o.symbol) {
            Some(m) => (m.spec.base.to_string(), m.spec.quote.to_string()),
            None => return empty_trade(),
        };
        let buy = o.buy();
        let quote_amt = price * qty;
        // Move this fill's share of the lock back to free, then debit free.
        let holder = o.lock_from.unwrap_or(order_id);
        if let Some(h) = self.account.orders.get_mut(&holder)
            && !h.lock_asset.is_empty()
        {
            let share = if buy { qty * o.lock_price } else { qty };
            let unlock = share.min(h.locked_left);
            h.locked_left -= unlock;
            let asset = h.lock_asset.clone();
            let b = self.bal_mut(&asset);
            b.locked -= unlock;
            b.free += unlock;
        }
        if buy {
            self.bal_mut(&quote).free -= quote_amt;
            self.bal_mut(&base).free += qty;
        } else {
            self.bal_mut(&base).free -= qty;
            self.bal_mut(&quote).free += quote_amt;
        }
        // Charged after the trade moved the balances, so BNB just bought can pay its own fee.
        let (commission, commission_asset) = match self.bnb_commission(&quote, quote_amt) {
            Some(fee) => (fee, BNB.to_string()),
            None if buy => ((qty * rate).round_dp(8), base.clone()),
            None => ((quote_amt * rate).round_dp(8), quote.clone()),
        };
        self.bal_mut(&commission_asset).free -= commission;
        let buyer_maker = buy == maker;
        let trade_id = match self.market.get_mut(&o.symbol) {
            Some(m) => {
                let t = m.record_trade(price, qty, buyer_maker, now);
                let id = t.id;
                self.market_events.push(MarketEvent::Trade {
                    symbol: o.symbol.clone(),
                    trade: t,
                });
                id
            }
            None => 0,
        };
        let trade = MyTrade {
            symbol: o.symbol.clone(),
            id: trade_id,
            order_id,
            order_list_id: o.order_list_id,
            price,
            qty,
            quote_qty: quote_amt,
            commission,
            commission_asset: commission_asset.clone(),
            time: now,
            is_buyer: buy,
            is_maker: maker,
        };
        self.account.trades.push(trade.clone());
        let filled = {
            let Some(x) = self.account.orders.get_mut(&order_id) else {
                return trade;
            };
            x.executed_qty += qty;
            x.cum_quote += quote_amt;
            x.update_time = now;
            x.status = if x.executed_qty >= x.orig_qty && !x.orig_qty.is_zero() {
                "FILLED".into()
            } else {
                "PARTIALLY_FILLED".into()
            };
            x.status == "FILLED"
        };
        self.account.update_time = now;
        self.execution_report(order_id, "TRADE", Some(&trade), now);
        if filled {
            self.release_lock(order_id);
        }
        // An OCO leg that trades ends its sibling.
        if o.order_list_id >= 0 {
            self.finish_list_sibling(o.order_list_id, order_id, now);
        }
        trade
    }

    /// The commission in BNB for a fill worth `quote_amt` of `quote`, when BNB fees are on and
    /// the free BNB covers it; `None` means the usual asset pays.
    fn bnb_commission(&self, quote: &str, quote_amt: Decimal) -> Option<Decimal> {
        if !self.bnb_fees || quote != "USDT" {
            return None;
        }
        let m = self.market.get(BNB_USDT)?;
        let (bid, ask) = (m.best_bid().0, m.best_ask().0);
        if bid.is_zero() || ask.is_zero() {
            return None;
        }
        let mid = (bid + ask) / Decimal::TWO;
        let fee = (quote_amt * self.commission_rate * (Decimal::ONE - BNB_FEE_DISCOUNT) / mid).round_dp(8);
        (self.balance(BNB).free >= fee).then_some(fee)
    }

    fn release_lock(&mut self, order_id: u64) {
        let holder = {
            let Some(o) = self.account.orders.get(&order_id) else {
                return;
            };
            o.lock_from.unwrap_or(order_id)
        };
        // Keep a list's lock while another leg is still open.
        if let Some(list_id) = self.account.orders.get(&order_id).map(|o| o.order_list_id)
            && list_id >= 0
        {
            let any_open = self
                .account
                .lists
                .get(&list_id)
                .map(|l| {
                    l.order_ids
                        .iter()
                        .any(|id| self.account.orders.get(id).is_some_and(SimOrder::is_open))
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

    fn expire(&mut self, order_id: u64, reason: &str, now: i64) {
        if let Some(o) = self.account.orders.get_mut(&order_id) {
            o.status = "EXPIRED".into();
            o.update_time = now;
            o.expiry_reason = Some(reason.to_string());
        }
        self.release_lock(order_id);
        self.execution_report(order_id, "EXPIRED", None, now);
    }

    fn finish_list_sibling(&mut self, list_id: i64, order_id: u64, now: i64) {
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

    fn maybe_finish_list(&mut self, list_id: i64, now: i64) {
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        if list.list_order_status == "ALL_DONE" {
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
                l.list_status_type = "ALL_DONE".into();
                l.list_order_status = "ALL_DONE".into();
                l.transaction_time = now;
            }
            self.list_status_event(list_id, now);
        }
    }

    // ---------------------------------------------------------------- market steps

    /// Advances the market one step, then triggers stops and fills resting orders it crossed.
    pub fn step(&mut self, now: i64) {
        let events = self.market.step(now);
        self.market_events.extend(events);
        self.match_resting(now);
    }

    /// Moves a symbol's price (control endpoint) and matches at once.
    pub fn force_price(&mut self, symbol: &str, price: Decimal, now: i64) -> Result<(), ApiError> {
        let events = self.market.force_price(symbol, price, now).map_err(|r| match r {
            market::PriceRefused::UnknownSymbol => ApiError::bad_symbol(),
            market::PriceRefused::Filter { min, max, tick } => ApiError::bad(
                -1013,
                format!(
                    "Filter failure: PRICE_FILTER (price {price} must be within [{min}, {max}] and a multiple of {tick})"
                ),
            ),
        })?;
        self.market_events.extend(events);
        self.match_resting(now);
        Ok(())
    }

    /// Paper mode: sets a symbol's top of book from the outside source.
    pub fn set_quote(&mut self, symbol: &str, bid: (Decimal, Decimal), ask: (Decimal, Decimal), now: i64) {
        if let Some(events) = self.market.set_quote(symbol, bid, ask, now) {
            self.market_events.extend(events);
            self.match_resting(now);
        }
    }

    fn match_resting(&mut self, now: i64) {
        let open: Vec<u64> = self
            .account
            .orders
            .values()
            .filter(|o| o.is_open())
            .map(|o| o.order_id)
            .collect();
        let mut touched = Vec::new();
        for id in open {
            let Some(o) = self.account.orders.get(&id).cloned() else {
                continue;
            };
            if !o.is_open() {
                continue;
            }
            let Some(m) = self.market.get(&o.symbol) else {
                continue;
            };
            let buy = o.buy();
            if !o.is_working {
                if Self::would_trigger(&o.order_type, buy, o.stop_price, m.last_price) {
                    if let Some(x) = self.account.orders.get_mut(&id) {
                        x.is_working = true;
                        x.working_time = now;
                    }
                    if o.order_list_id >= 0 {
                        // The stop leg of an OCO triggered: the other leg expires.
                        self.finish_list_sibling(o.order_list_id, id, now);
                    }
                    self.run_taker(id, now);
                    if o.order_list_id >= 0 {
                        self.maybe_finish_list(o.order_list_id, now);
                    }
                    touched.push(o.symbol.clone());
                }
                continue;
            }
            if !is_limit_like(&o.order_type) {
                continue;
            }
            let avail = m.crossing_qty(buy, o.price);
            let q = avail.min(o.remaining());
            if q <= Decimal::ZERO {
                continue;
            }
            if let Some(mm) = self.market.get_mut(&o.symbol) {
                let (_, diff) = mm.take(buy, q, Some(o.price), None);
                if let Some(diff) = diff {
                    self.market_events.push(MarketEvent::Depth {
                        symbol: o.symbol.clone(),
                        time: now,
                        diff,
                    });
                    self.market_events.push(MarketEvent::BookTicker {
                        symbol: o.symbol.clone(),
                    });
                }
            }
            self.apply_fill(id, o.price, q, true, now);
            touched.push(o.symbol.clone());
        }
        touched.dedup();
        for s in touched {
            if let Some(m) = self.market.get(&s).cloned() {
                self.account_position(&m, now);
            }
        }
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
            Some("ONLY_NEW") if o.status != "NEW" => {
                return Err(ApiError::bad(
                    -2011,
                    "Order was not canceled due to cancel restrictions.",
                ));
            }
            Some("ONLY_PARTIALLY_FILLED") if o.status != "PARTIALLY_FILLED" => {
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
        if let Some(m) = self.market.get(&o.symbol).cloned() {
            self.account_position(&m, now);
        }
        let x = self
            .account
            .orders
            .get(&id)
            .cloned()
            .ok_or(ApiError::bad(-2011, "Unknown order sent."))?;
        Ok(cancel_json(&x, &cancel_id))
    }

    fn cancel_one(&mut self, id: u64, cancel_client_id: &str, now: i64) {
        if let Some(o) = self.account.orders.get_mut(&id) {
            o.status = "CANCELED".into();
            o.update_time = now;
        }
        self.release_lock(id);
        self.cancel_report(id, cancel_client_id, now);
    }

    fn cancel_list_inner(&mut self, list_id: i64, cancel_client_id: &str, now: i64) {
        let Some(list) = self.account.lists.get(&list_id).cloned() else {
            return;
        };
        for id in &list.order_ids {
            if self.account.orders.get(id).is_some_and(SimOrder::is_open) {
                if let Some(o) = self.account.orders.get_mut(id) {
                    o.status = "CANCELED".into();
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
        if list.list_order_status == "ALL_DONE" {
            return Err(unknown);
        }
        let cancel_id = match p.get("newClientOrderId") {
            Some(c) => c.to_string(),
            None => self.gen_client_id(now),
        };
        self.cancel_list_inner(list_id, &cancel_id, now);
        if let Some(m) = self.market.get(&symbol).cloned() {
            self.account_position(&m, now);
        }
        Ok(self.list_json(list_id, true, Some(&cancel_id)))
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
        if let Some(m) = self.market.get(symbol).cloned() {
            self.account_position(&m, now);
        }
        Ok(Value::Array(out))
    }

    // ---------------------------------------------------------------- OCO

    /// POST /api/v3/orderList/oco.
    pub fn place_oco(&mut self, p: &Params, now: i64) -> Result<Value, ApiError> {
        let symbol = p.req("symbol")?.to_string();
        let side = p.req("side")?.to_string();
        let qty = p
            .dec("quantity")?
            .ok_or_else(|| ApiError::mandatory("quantity"))?;
        let above_type = p.req("aboveType")?.to_string();
        let below_type = p.req("belowType")?.to_string();
        let m = self.sym(&symbol)?.clone();
        if side != "BUY" && side != "SELL" {
            return Err(ApiError::bad(-1117, "Invalid side."));
        }
        let above_ok = [
            "STOP_LOSS_LIMIT",
            "STOP_LOSS",
            "LIMIT_MAKER",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ];
        let below_ok = [
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
            "LIMIT_MAKER",
        ];
        if !above_ok.contains(&above_type.as_str()) || !below_ok.contains(&below_type.as_str()) {
            return Err(ApiError::bad(-1158, "Order type not supported in OCO."));
        }
        for id in ["listClientOrderId", "aboveClientOrderId", "belowClientOrderId"] {
            if let Some(v) = p.get(id) {
                check_client_id(id, v)?;
            }
        }
        let leg = |prefix: &str, t: &str| -> Result<NewOrder, ApiError> {
            let price = p.dec(&format!("{prefix}Price"))?;
            let stop = p.dec(&format!("{prefix}StopPrice"))?;
            let tif = p.get(&format!("{prefix}TimeInForce")).map(str::to_string);
            if is_limit_like(t) && price.is_none() {
                return Err(ApiError::mandatory(&format!("{prefix}Price")));
            }
            if is_stop(t) && stop.is_none() {
                return Err(ApiError::mandatory(&format!("{prefix}StopPrice")));
            }
            if t.ends_with("_LIMIT") && tif.is_none() {
                return Err(ApiError::mandatory(&format!("{prefix}TimeInForce")));
            }
            Ok(NewOrder {
                symbol: symbol.clone(),
                side: side.clone(),
                order_type: t.to_string(),
                time_in_force: if t.ends_with("_LIMIT") { tif } else { None },
                quantity: Some(qty),
                quote_qty: None,
                price: if is_limit_like(t) { price } else { None },
                stop_price: if is_stop(t) { stop } else { None },
                client_order_id: p.get(&format!("{prefix}ClientOrderId")).map(str::to_string),
                resp_type: "ACK".into(),
            })
        };
        let above = leg("above", &above_type)?;
        let below = leg("below", &below_type)?;
        let contingent = |t: &str| t.starts_with("STOP_LOSS") || t.starts_with("TAKE_PROFIT");
        if !contingent(&above_type) && !contingent(&below_type) {
            return Err(ApiError::bad(-1168, "At least one OCO order must be contingent."));
        }
        self.check_filters(&above)?;
        self.check_filters(&below)?;
        // A stop leg the last price has already crossed would trigger as soon as the list is
        // placed; Binance refuses the whole list, before the price relationship is looked at.
        for o in [&above, &below] {
            if let Some(stop) = o.stop_price
                && Self::would_trigger(&o.order_type, buy_side(&side), stop, m.last_price)
            {
                return Err(ApiError::rejected("Order would trigger immediately."));
            }
        }
        // Price relationship: the above leg is above the last price, the below leg below it.
        let last = m.last_price;
        let level = |o: &NewOrder| o.stop_price.or(o.price).unwrap_or_default();
        if level(&above) <= last || level(&below) >= last {
            return Err(ApiError::rejected(
                "The relationship of the prices for the orders is not correct.",
            ));
        }
        let mut ids = Vec::new();
        for o in [&above, &below] {
            if let Some(c) = &o.client_order_id {
                self.check_duplicate(c)?;
            }
        }
        let buy = side == "BUY";
        let (lock_asset, lock_amount, lock_price) = if buy {
            let unit = level(&above)
                .max(above.price.unwrap_or_default())
                .max(level(&below))
                .max(below.price.unwrap_or_default());
            (m.spec.quote.to_string(), unit * qty, unit)
        } else {
            (m.spec.base.to_string(), qty, Decimal::ZERO)
        };
        if self.balance(&lock_asset).free < lock_amount {
            return Err(ApiError::insufficient());
        }
        let list_id = self.account.next_list_id;
        self.account.next_list_id += 1;
        let list_client_id = match p.get("listClientOrderId") {
            Some(c) => c.to_string(),
            None => self.gen_client_id(now),
        };
        // Below leg first, as Binance lists the stop leg first for a sell OCO.
        for (i, o) in [&below, &above].into_iter().enumerate() {
            let id = self.account.next_order_id;
            self.account.next_order_id += 1;
            let cid = match &o.client_order_id {
                Some(c) => c.clone(),
                None => self.gen_client_id(now),
            };
            let untriggered = is_stop(&o.order_type);
            let first = ids.first().copied();
            let order = SimOrder {
                symbol: symbol.clone(),
                order_id: id,
                order_list_id: list_id,
                client_order_id: cid,
                price: o.price.unwrap_or_default(),
                orig_qty: qty,
                executed_qty: Decimal::ZERO,
                cum_quote: Decimal::ZERO,
                status: "NEW".into(),
                time_in_force: o.time_in_force.clone().unwrap_or_else(|| "GTC".into()),
                order_type: o.order_type.clone(),
                side: side.clone(),
                stop_price: o.stop_price.unwrap_or_default(),
                orig_quote_qty: Decimal::ZERO,
                time: now,
                update_time: now,
                working_time: if untriggered { -1 } else { now },
                is_working: !untriggered,
                lock_asset: if i == 0 { lock_asset.clone() } else { String::new() },
                locked_left: if i == 0 { lock_amount } else { Decimal::ZERO },
                lock_price,
                lock_from: first,
                expiry_reason: None,
            };
            self.account.orders.insert(id, order);
            ids.push(id);
        }
        let b = self.bal_mut(&lock_asset);
        b.free -= lock_amount;
        b.locked += lock_amount;
        self.account.lists.insert(
            list_id,
            OrderList {
                order_list_id: list_id,
                list_client_order_id: list_client_id,
                symbol: symbol.clone(),
                list_status_type: "EXEC_STARTED".into(),
                list_order_status: "EXECUTING".into(),
                transaction_time: now,
                order_ids: ids.clone(),
            },
        );
        for id in &ids {
            self.execution_report(*id, "NEW", None, now);
        }
        self.list_status_event(list_id, now);
        self.account_position(&m, now);
        let out = self.list_json(list_id, true, None);
        Ok(out)
    }

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
            "contingencyType": "OCO",
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
    pub fn placed_json(&self, placed: &Placed, resp_type: &str, now: i64) -> Value {
        let Some(o) = self.account.orders.get(&placed.order_id) else {
            return json!({});
        };
        match resp_type {
            "ACK" => json!({
                "symbol": o.symbol, "orderId": o.order_id, "orderListId": o.order_list_id,
                "clientOrderId": o.client_order_id, "transactTime": now
            }),
            "RESULT" => result_json(o, now),
            _ => {
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

    fn execution_report(&mut self, id: u64, exec: &str, fill: Option<&MyTrade>, now: i64) {
        let Some(o) = self.account.orders.get(&id) else {
            return;
        };
        let ev = execution_json(o, exec, fill, &o.client_order_id, "", now);
        self.user_events.push(ev);
    }

    fn cancel_report(&mut self, id: u64, cancel_client_id: &str, now: i64) {
        let Some(o) = self.account.orders.get(&id) else {
            return;
        };
        let ev = execution_json(o, "CANCELED", None, cancel_client_id, &o.client_order_id, now);
        self.user_events.push(ev);
    }

    fn list_status_event(&mut self, list_id: i64, now: i64) {
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
            "e": "listStatus", "E": now, "s": l.symbol, "g": l.order_list_id, "c": "OCO",
            "l": l.list_status_type, "L": l.list_order_status, "r": "NONE",
            "C": l.list_client_order_id, "T": now, "O": orders
        });
        self.user_events.push(ev);
    }

    fn account_position(&mut self, m: &SymbolMarket, now: i64) {
        let assets = [m.spec.base, m.spec.quote];
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

fn empty_trade() -> MyTrade {
    MyTrade {
        symbol: String::new(),
        id: 0,
        order_id: 0,
        order_list_id: -1,
        price: Decimal::ZERO,
        qty: Decimal::ZERO,
        quote_qty: Decimal::ZERO,
        commission: Decimal::ZERO,
        commission_asset: String::new(),
        time: 0,
        is_buyer: false,
        is_maker: false,
    }
}

/// Cost of buying `qty` now by walking the asks (the rest priced at the worst level).
fn estimate_cost(m: &SymbolMarket, qty: Decimal) -> Decimal {
    let mut left = qty;
    let mut cost = Decimal::ZERO;
    for (p, q) in &m.asks {
        let take = left.min(*q);
        cost += take * p;
        left -= take;
        if left <= Decimal::ZERO {
            break;
        }
    }
    cost
}

/// Base quantity a quote amount sells for at the best bid; `None` when it overflows.
fn estimate_qty_for_quote(m: &SymbolMarket, quote: Decimal) -> Option<Decimal> {
    let bid = m.best_bid().0;
    if bid.is_zero() {
        Some(Decimal::ZERO)
    } else {
        checked_floor_to(quote.checked_div(bid)?, m.spec.step)
    }
}

/// Order object of GET /api/v3/order (§3.6).
pub fn order_json(o: &SimOrder) -> Value {
    let mut v = json!({
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id, "price": s8(o.price), "origQty": s8(o.orig_qty),
        "executedQty": s8(o.executed_qty), "cummulativeQuoteQty": s8(o.cum_quote), "status": o.status,
        "timeInForce": o.time_in_force, "type": o.order_type, "side": o.side, "stopPrice": s8(o.stop_price),
        "icebergQty": s8(Decimal::ZERO), "time": o.time, "updateTime": o.update_time, "isWorking": o.is_working,
        "workingTime": o.working_time, "origQuoteOrderQty": s8(o.orig_quote_qty),
        "selfTradePreventionMode": "NONE"
    });
    if let (Some(r), Some(obj)) = (&o.expiry_reason, v.as_object_mut()) {
        obj.insert("expiryReason".into(), json!(r));
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
        "workingTime": o.working_time, "selfTradePreventionMode": "NONE"
    });
    if let Some(obj) = v.as_object_mut() {
        if !o.stop_price.is_zero() {
            obj.insert("stopPrice".into(), json!(s8(o.stop_price)));
        }
        if let Some(r) = &o.expiry_reason {
            obj.insert("expiryReason".into(), json!(r));
        }
    }
    v
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
        "selfTradePreventionMode": "NONE"
    });
    if let Some(obj) = v.as_object_mut()
        && !o.stop_price.is_zero()
    {
        obj.insert("stopPrice".into(), json!(s8(o.stop_price)));
    }
    v
}

/// `executionReport`. `c` is this event's request id, `C` the original
/// client id on cancels and `""` otherwise.
pub fn execution_json(
    o: &SimOrder,
    exec: &str,
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
        "f": o.time_in_force, "q": s8(o.orig_qty), "p": s8(o.price), "P": s8(o.stop_price), "F": zero,
        "g": o.order_list_id, "C": big_c, "x": exec, "X": o.status, "r": "NONE", "i": o.order_id,
        "l": l, "z": s8(o.executed_qty), "L": lp, "n": n, "N": nn, "T": now, "t": t,
        "I": now.rem_euclid(1_000_000_000) * 10 + (o.order_id as i64 % 10), "w": o.is_open() && o.is_working && is_limit_like(&o.order_type),
        "m": m, "M": false, "O": o.time, "Z": s8(o.cum_quote), "Y": y, "Q": s8(o.orig_quote_qty),
        "W": o.working_time, "V": "NONE"
    });
    if let (Some(r), Some(obj)) = (&o.expiry_reason, v.as_object_mut())
        && exec == "EXPIRED"
    {
        obj.insert("eR".into(), json!(r));
    }
    v
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_700_000_000_000;

    fn engine() -> Engine {
        let mut account = AccountState::default();
        account.balances.insert(
            "USDT".into(),
            Bal {
                free: Decimal::from(50_000),
                locked: Decimal::ZERO,
            },
        );
        account.balances.insert(
            "BTC".into(),
            Bal {
                free: Decimal::ONE,
                locked: Decimal::ZERO,
            },
        );
        let mut e = Engine::new(Market::new(1, Decimal::ONE, T0), account, Decimal::new(1, 3));
        e.force_price("BTCUSDT", Decimal::from(100_000), T0).unwrap();
        e
    }

    fn params(v: &[(&str, String)]) -> Params {
        Params(v.iter().map(|(k, x)| (k.to_string(), x.clone())).collect())
    }

    /// Locked balances equal what open orders (or their list) still hold; nothing is negative.
    fn check_invariants(e: &Engine) {
        for (asset, b) in &e.account.balances {
            assert!(b.free >= Decimal::ZERO, "{asset} free {}", b.free);
            assert!(b.locked >= Decimal::ZERO, "{asset} locked {}", b.locked);
            let held: Decimal = e
                .account
                .orders
                .values()
                .filter(|o| o.lock_asset == *asset)
                .map(|o| o.locked_left)
                .sum();
            assert_eq!(held, b.locked, "{asset} locked vs orders");
        }
        for o in e.account.orders.values() {
            assert!(o.executed_qty <= o.orig_qty || o.orig_qty.is_zero());
            if !o.is_open() && o.order_list_id < 0 {
                assert!(
                    o.locked_left.is_zero(),
                    "closed order {} still holds {}",
                    o.order_id,
                    o.locked_left
                );
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Limit {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            tif: usize,
        },
        Market {
            buy: bool,
            qty_milli: i64,
        },
        Stop {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            limit: bool,
        },
        Oco {
            qty_milli: i64,
        },
        Cancel {
            pick: usize,
        },
        Move {
            bp: i64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), -300i64..300, 1i64..80, 0usize..3).prop_map(
                |(buy, offset_bp, qty_milli, tif)| Op::Limit {
                    buy,
                    offset_bp,
                    qty_milli,
                    tif
                }
            ),
            (any::<bool>(), 1i64..80).prop_map(|(buy, qty_milli)| Op::Market { buy, qty_milli }),
            (any::<bool>(), 10i64..300, 1i64..80, any::<bool>()).prop_map(
                |(buy, offset_bp, qty_milli, limit)| Op::Stop {
                    buy,
                    offset_bp,
                    qty_milli,
                    limit
                }
            ),
            (1i64..80).prop_map(|qty_milli| Op::Oco { qty_milli }),
            (0usize..20).prop_map(|pick| Op::Cancel { pick }),
            (-400i64..400).prop_map(|bp| Op::Move { bp }),
        ]
    }

    fn price_at(e: &Engine, bp: i64) -> Decimal {
        let last = e.market.get("BTCUSDT").unwrap().last_price;
        market::round_tick(last * (Decimal::ONE + Decimal::new(bp, 4)), Decimal::new(1, 2))
    }

    fn apply(e: &mut Engine, op: &Op, now: i64) {
        let qty = |m: i64| (Decimal::new(m, 3)).to_string();
        let s = |x: &str| x.to_string();
        let p = match op {
            Op::Limit {
                buy,
                offset_bp,
                qty_milli,
                tif,
            } => params(&[
                ("symbol", s("BTCUSDT")),
                ("side", s(if *buy { "BUY" } else { "SELL" })),
                ("type", s("LIMIT")),
                ("timeInForce", s(["GTC", "IOC", "FOK"][*tif])),
                ("quantity", qty(*qty_milli)),
                ("price", price_at(e, *offset_bp).to_string()),
            ]),
            Op::Market { buy, qty_milli } => params(&[
                ("symbol", s("BTCUSDT")),
                ("side", s(if *buy { "BUY" } else { "SELL" })),
                ("type", s("MARKET")),
                ("quantity", qty(*qty_milli)),
            ]),
            Op::Stop {
                buy,
                offset_bp,
                qty_milli,
                limit,
            } => {
                // Stop-loss buys sit above the market, sells below.
                let bp = if *buy { *offset_bp } else { -*offset_bp };
                let stop = price_at(e, bp);
                let mut v = vec![
                    ("symbol", s("BTCUSDT")),
                    ("side", s(if *buy { "BUY" } else { "SELL" })),
                    ("type", s(if *limit { "STOP_LOSS_LIMIT" } else { "STOP_LOSS" })),
                    ("quantity", qty(*qty_milli)),
                    ("stopPrice", stop.to_string()),
                ];
                if *limit {
                    v.push(("price", stop.to_string()));
                    v.push(("timeInForce", s("GTC")));
                }
                params(&v)
            }
            Op::Oco { qty_milli } => {
                let p = params(&[
                    ("symbol", s("BTCUSDT")),
                    ("side", s("SELL")),
                    ("quantity", qty(*qty_milli)),
                    ("aboveType", s("LIMIT_MAKER")),
                    ("abovePrice", price_at(e, 200).to_string()),
                    ("belowType", s("STOP_LOSS")),
                    ("belowStopPrice", price_at(e, -200).to_string()),
                ]);
                let _ = e.place_oco(&p, now);
                return;
            }
            Op::Cancel { pick } => {
                let open: Vec<u64> = e
                    .account
                    .orders
                    .values()
                    .filter(|o| o.is_open())
                    .map(|o| o.order_id)
                    .collect();
                if let Some(id) = open.get(pick % open.len().max(1)) {
                    let p = params(&[("symbol", s("BTCUSDT")), ("orderId", id.to_string())]);
                    e.cancel(&p, now).unwrap();
                }
                return;
            }
            Op::Move { bp } => {
                let target = price_at(e, *bp);
                e.force_price("BTCUSDT", target, now).unwrap();
                return;
            }
        };
        if let Ok(o) = e.parse_new_order(&p) {
            let _ = e.place(&o, now, false);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        #[test]
        fn no_sequence_of_orders_and_moves_breaks_the_balance_invariants(ops in proptest::collection::vec(op(), 1..40)) {
            let mut e = engine();
            for (i, op) in ops.iter().enumerate() {
                apply(&mut e, op, T0 + 1_000 * (i as i64 + 1));
                check_invariants(&e);
            }
        }
    }

    #[test]
    fn decimal_parameters_follow_binance_grammar() {
        let one = |v: &str| params(&[("x", v.to_string())]).dec("x").map_err(|e| e.code);
        assert_eq!(
            one("12345678901234567890.12345678"),
            Ok(Some("12345678901234567890.12345678".parse().unwrap()))
        );
        assert_eq!(one("0.100000000000000000"), Ok(Some(Decimal::new(1, 1))));
        for bad in [
            "123456789012345678901",
            "79228162514264337593543950335",
            "1.",
            ".5",
            "-1",
            "1e5",
            "NaN",
            "1.2.3",
            "１",
        ] {
            assert_eq!(one(bad), Err(-1100), "{bad}");
        }
        assert_eq!(one("0.000000001"), Err(-1111));
    }

    #[test]
    fn max_balance_is_ten_to_the_twentieth() {
        assert_eq!(MAX_BALANCE, "100000000000000000000".parse::<Decimal>().unwrap());
    }

    #[test]
    fn deposits_may_not_overflow_or_overdraw() {
        let mut e = engine();
        assert!(e.adjust_balance("USDT", Decimal::MAX, T0).is_err());
        assert!(e.adjust_balance("USDT", MAX_BALANCE, T0).is_err());
        assert_eq!(
            e.adjust_balance("USDT", Decimal::from(-50_001), T0)
                .map_err(|x| x.code),
            Err(-2010)
        );
        assert!(e.adjust_balance("", Decimal::ONE, T0).is_err());
        assert_eq!(e.balance("USDT").free, Decimal::from(50_000));
        assert!(e.adjust_balance("USDT", Decimal::from(-50_000), T0).is_ok());
        assert_eq!(e.balance("USDT").free, Decimal::ZERO);
    }

    #[test]
    fn commission_is_taken_from_what_is_received() {
        let mut e = engine();
        let p = params(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "BUY".into()),
            ("type", "MARKET".into()),
            ("quantity", "0.1".into()),
        ]);
        let o = e.parse_new_order(&p).unwrap();
        let placed = e.place(&o, T0, false).unwrap();
        let fee: Decimal = placed.fills.iter().map(|f| f.commission).sum();
        assert_eq!(fee, Decimal::new(1, 4));
        assert_eq!(e.balance("BTC").free, Decimal::ONE + Decimal::new(1, 1) - fee);
    }

    fn market_order(e: &Engine, symbol: &str, side: &str, qty: &str) -> NewOrder {
        let p = params(&[
            ("symbol", symbol.into()),
            ("side", side.into()),
            ("type", "MARKET".into()),
            ("quantity", qty.into()),
        ]);
        e.parse_new_order(&p).unwrap()
    }

    fn bnb_mid(e: &Engine) -> Decimal {
        let m = e.market.get("BNBUSDT").unwrap();
        (m.best_bid().0 + m.best_ask().0) / Decimal::TWO
    }

    #[test]
    fn bnb_fees_charge_the_discounted_commission_in_bnb_and_leave_the_traded_assets_whole() {
        let mut e = engine();
        e.bnb_fees = true;
        e.force_price("BNBUSDT", Decimal::from(600), T0).unwrap();
        e.adjust_balance("BNB", Decimal::from(2), T0).unwrap();
        e.user_events.clear();
        let mid = bnb_mid(&e);
        let usdt_before = e.balance("USDT").free;

        let buy = market_order(&e, "BTCUSDT", "BUY", "0.1");
        let placed = e.place(&buy, T0, false).unwrap();
        let sell = market_order(&e, "BTCUSDT", "SELL", "0.05");
        let sold = e.place(&sell, T0 + 1, false).unwrap();

        let mut bnb_paid = Decimal::ZERO;
        for f in placed.fills.iter().chain(&sold.fills) {
            // 0.1 % less 25 %, of the fill's quote value, in BNB at the BNBUSDT mid.
            let expected = (f.quote_qty * Decimal::new(1, 3) * Decimal::new(75, 2) / mid).round_dp(8);
            assert_eq!((f.commission, f.commission_asset.as_str()), (expected, "BNB"));
            bnb_paid += f.commission;
        }
        assert!(bnb_paid > Decimal::ZERO);
        assert_eq!(e.balance("BNB").free, Decimal::from(2) - bnb_paid);
        // Buys receive the whole quantity and sells the whole proceeds.
        assert_eq!(e.balance("BTC").free, Decimal::ONE + Decimal::new(5, 2));
        let spent: Decimal = placed.fills.iter().map(|f| f.quote_qty).sum();
        let got: Decimal = sold.fills.iter().map(|f| f.quote_qty).sum();
        assert_eq!(e.balance("USDT").free, usdt_before - spent + got);
        // The trade record and the execution reports name BNB as the commission asset.
        assert!(e.account.trades.iter().all(|t| t.commission_asset == "BNB"));
        let reports: Vec<&Value> = e
            .user_events
            .iter()
            .filter(|v| v["e"] == "executionReport" && v["x"] == "TRADE")
            .collect();
        assert_eq!(reports.len(), placed.fills.len() + sold.fills.len());
        assert!(reports.iter().all(|v| v["N"] == "BNB"));
    }

    #[test]
    fn bnb_fees_fall_back_to_the_received_asset_when_the_bnb_balance_is_short() {
        let mut e = engine();
        e.bnb_fees = true;
        e.force_price("BNBUSDT", Decimal::from(600), T0).unwrap();
        // No BNB at all: the buy pays in BTC as usual.
        let buy = market_order(&e, "BTCUSDT", "BUY", "0.1");
        let placed = e.place(&buy, T0, false).unwrap();
        assert!(placed.fills.iter().all(|f| f.commission_asset == "BTC"));
        // A little BNB, less than the fee of a large sell: that sell pays in USDT, BNB untouched.
        e.adjust_balance("BNB", Decimal::new(1, 8), T0).unwrap();
        let sell = market_order(&e, "BTCUSDT", "SELL", "0.5");
        let sold = e.place(&sell, T0 + 1, false).unwrap();
        assert!(sold.fills.iter().all(|f| f.commission_asset == "USDT"));
        assert_eq!(e.balance("BNB").free, Decimal::new(1, 8));
    }

    #[test]
    fn bnb_fees_off_keep_the_received_asset_rule_even_with_bnb_held() {
        let mut e = engine();
        e.adjust_balance("BNB", Decimal::from(2), T0).unwrap();
        let buy = market_order(&e, "BTCUSDT", "BUY", "0.1");
        let placed = e.place(&buy, T0, false).unwrap();
        assert!(placed.fills.iter().all(|f| f.commission_asset == "BTC"));
        assert_eq!(e.balance("BNB").free, Decimal::from(2));
    }
}
