//! New-order requests: their parameters checked in Binance's order, then the symbol's filters
//! and the duplicate-id rule, before any balance is looked at.
//!
//! Owns: the error code and message of each refused parameter combination and filter. Must
//! not: change the account (a validated order is placed by `matching`).

use rust_decimal::Decimal;

use super::super::market;
use super::{ApiError, Engine, OrderType, Params, RespType, Side, StpMode, TimeInForce, check_client_id};

/// A validated new-order request.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: Option<TimeInForce>,
    pub quantity: Option<Decimal>,
    pub quote_qty: Option<Decimal>,
    pub price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    /// `trailingDelta` in BIPS (trailing stops).
    pub trailing_delta: Option<i64>,
    pub client_order_id: Option<String>,
    pub resp_type: RespType,
    /// `icebergQty`: the visible part of an iceberg.
    pub iceberg_qty: Option<Decimal>,
    /// `selfTradePreventionMode` (the symbol's default when not sent).
    pub stp_mode: StpMode,
}

/// The `ICEBERG_PARTS` filter's limit: an iceberg may be cut into at most this many parts.
pub const ICEBERG_PARTS: i64 = 100;

/// The self-trade prevention modes every symbol allows (`allowedSelfTradePreventionModes`),
/// and the one an order without `selfTradePreventionMode` gets: EXPIRE_MAKER, as on Binance's
/// spot symbols (`defaultSelfTradePreventionMode`), applied as if the order had named it.
/// NONE is allowed as well (Binance documents it among the modes; its live symbols no longer
/// list it), so that a test can ask for a self-trade.
pub const ALLOWED_STP_MODES: &[StpMode] = &[
    StpMode::None,
    StpMode::ExpireTaker,
    StpMode::ExpireMaker,
    StpMode::ExpireBoth,
];
pub const DEFAULT_STP_MODE: StpMode = StpMode::ExpireMaker;

/// `selfTradePreventionMode`, else `-1130`: one of `ALLOWED_STP_MODES`.
pub(super) fn parse_stp_mode(p: &Params, name: &str) -> Result<StpMode, ApiError> {
    match p.get(name) {
        None => Ok(DEFAULT_STP_MODE),
        Some(m) => StpMode::parse(m)
            .filter(|m| ALLOWED_STP_MODES.contains(m))
            .ok_or_else(|| ApiError::bad(-1130, format!("Data sent for parameter '{name}' is not valid."))),
    }
}

/// The rules of `icebergQty` (errors.md): only on an order that can rest at a limit price,
/// only with `timeInForce=GTC` (LIMIT_MAKER takes none), and less than the quantity.
pub(super) fn check_iceberg(
    order_type: OrderType,
    time_in_force: Option<TimeInForce>,
    quantity: Option<Decimal>,
    iceberg_qty: Option<Decimal>,
) -> Result<(), ApiError> {
    let Some(part) = iceberg_qty else {
        return Ok(());
    };
    let gtc = time_in_force.is_none_or(|t| t == TimeInForce::Gtc);
    if !order_type.is_limit_like() || !gtc {
        return Err(ApiError::rejected("Unsupported order combination"));
    }
    if quantity.is_some_and(|q| part >= q) {
        return Err(ApiError::rejected("IcebergQty exceeds QTY."));
    }
    Ok(())
}

/// The `TRAILING_DELTA` filter's bounds in BIPS, the same above and below the market (those of
/// Binance's BTCUSDT).
pub const MIN_TRAILING_DELTA: i64 = 10;
pub const MAX_TRAILING_DELTA: i64 = 2000;

/// `side`, else `-1117` (new orders and order lists alike).
pub(super) fn parse_side(side: &str) -> Result<Side, ApiError> {
    Side::parse(side).ok_or_else(|| ApiError::bad(-1117, "Invalid side."))
}

/// A `timeInForce` parameter, else `-1115`.
pub(super) fn parse_time_in_force(tif: &str) -> Result<TimeInForce, ApiError> {
    TimeInForce::parse(tif).ok_or_else(|| ApiError::bad(-1115, "Invalid timeInForce."))
}

/// Refuses what `exchangeInfo` says the sim does not serve: `pegInstructionsAllowed=false`.
fn check_unsupported(p: &Params) -> Result<(), ApiError> {
    if ["pegPriceType", "pegOffsetType", "pegOffsetValue"]
        .iter()
        .any(|k| p.get(k).is_some())
    {
        return Err(ApiError::rejected(
            "Pegged orders are not supported for this symbol.",
        ));
    }
    Ok(())
}

/// `newOrderRespType`; without it MARKET and LIMIT orders answer FULL, the others ACK.
fn parse_resp_type(p: &Params, order_type: OrderType) -> Result<RespType, ApiError> {
    match p.get("newOrderRespType") {
        Some(r) => RespType::parse(r)
            .ok_or_else(|| ApiError::bad(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")),
        None if matches!(order_type, OrderType::Market | OrderType::Limit) => Ok(RespType::Full),
        None => Ok(RespType::Ack),
    }
}

/// The parameters each order type requires, then those it must not carry.
fn check_type_params(t: OrderType, o: &NewOrder) -> Result<(), ApiError> {
    let (tif, quantity, quote_qty) = (o.time_in_force, o.quantity, o.quote_qty);
    let (price, stop_price) = (o.price, o.stop_price);
    // A trailing stop may omit its stop price (it then tracks from placement).
    let stop_or_trailing = || {
        if stop_price.is_none() && o.trailing_delta.is_none() {
            return Err(ApiError::bad(
                -1102,
                "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
            ));
        }
        Ok(())
    };
    match t {
        OrderType::Limit => {
            if tif.is_none() {
                return Err(ApiError::mandatory("timeInForce"));
            }
            quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
            price.ok_or_else(|| ApiError::mandatory("price"))?;
        }
        OrderType::Market => {
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
        OrderType::LimitMaker => {
            quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
            price.ok_or_else(|| ApiError::mandatory("price"))?;
        }
        OrderType::StopLoss | OrderType::TakeProfit => {
            quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
            stop_or_trailing()?;
        }
        OrderType::StopLossLimit | OrderType::TakeProfitLimit => {
            if tif.is_none() {
                return Err(ApiError::mandatory("timeInForce"));
            }
            quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
            price.ok_or_else(|| ApiError::mandatory("price"))?;
            stop_or_trailing()?;
        }
    }
    let no_tif = matches!(
        t,
        OrderType::Market | OrderType::StopLoss | OrderType::TakeProfit | OrderType::LimitMaker
    );
    if no_tif && tif.is_some() {
        return Err(ApiError::bad(
            -1106,
            "Parameter 'timeInForce' sent when not required.",
        ));
    }
    if t != OrderType::Market && quote_qty.is_some() {
        return Err(ApiError::bad(
            -1106,
            "Parameter 'quoteOrderQty' sent when not required.",
        ));
    }
    if !t.is_limit_like() && price.is_some() {
        return Err(ApiError::bad(-1106, "Parameter 'price' sent when not required."));
    }
    if !t.is_stop() && o.trailing_delta.is_some() {
        return Err(ApiError::bad(
            -1106,
            "Parameter 'trailingDelta' sent when not required.",
        ));
    }
    if !t.is_stop() && stop_price.is_some() {
        return Err(ApiError::bad(
            -1106,
            "Parameter 'stopPrice' sent when not required.",
        ));
    }
    Ok(())
}

impl Engine {
    /// Parses and validates new-order parameters (before balances are looked at), in the order
    /// Binance reports errors: presence of symbol, side and type, the symbol, the names of side,
    /// type and time in force, the numbers, the client id, unsupported features, the response
    /// type, then what the order type requires.
    pub fn parse_new_order(&self, p: &Params) -> Result<NewOrder, ApiError> {
        let symbol = p.req("symbol")?.to_string();
        let side = p.req("side")?;
        let order_type = p.req("type")?;
        self.sym(&symbol)?;
        let side = parse_side(side)?;
        let order_type =
            OrderType::parse(order_type).ok_or_else(|| ApiError::bad(-1116, "Invalid orderType."))?;
        let time_in_force = p.get("timeInForce").map(parse_time_in_force).transpose()?;
        let quantity = p.dec("quantity")?;
        let quote_qty = p.dec("quoteOrderQty")?;
        let price = p.dec("price")?;
        let stop_price = p.dec("stopPrice")?;
        let trailing_delta = p.int("trailingDelta")?;
        let iceberg_qty = p.dec("icebergQty")?;
        if let Some(id) = p.get("newClientOrderId") {
            check_client_id("newClientOrderId", id)?;
        }
        check_unsupported(p)?;
        let stp_mode = parse_stp_mode(p, "selfTradePreventionMode")?;
        let resp_type = parse_resp_type(p, order_type)?;
        let order = NewOrder {
            symbol,
            side,
            order_type,
            time_in_force,
            quantity,
            quote_qty,
            price,
            stop_price,
            trailing_delta,
            client_order_id: p.get("newClientOrderId").map(str::to_string),
            resp_type,
            iceberg_qty,
            stp_mode,
        };
        check_type_params(order_type, &order)?;
        check_iceberg(order_type, order.time_in_force, order.quantity, order.iceberg_qty)?;
        Ok(order)
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
        // TRAILING_DELTA: one range for both directions, so above and below check alike.
        if o.trailing_delta
            .is_some_and(|d| !(MIN_TRAILING_DELTA..=MAX_TRAILING_DELTA).contains(&d))
        {
            return Err(ApiError::filter("TRAILING_DELTA"));
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
            if o.order_type == OrderType::Market && (q > s.market_max_qty || q <= Decimal::ZERO) {
                return Err(ApiError::filter("MARKET_LOT_SIZE"));
            }
            let on_step = q.checked_rem(s.step).is_some_and(|r| r.is_zero());
            if q < s.min_qty || q > s.max_qty || !on_step {
                return Err(ApiError::filter("LOT_SIZE"));
            }
        }
        // LOT_SIZE also bounds an iceberg's visible part; ICEBERG_PARTS the number of parts.
        if let Some(part) = o.iceberg_qty {
            let on_step = part.checked_rem(s.step).is_some_and(|r| r.is_zero());
            if part < s.min_qty || part > s.max_qty || !on_step {
                return Err(ApiError::filter("LOT_SIZE"));
            }
            let parts = o
                .quantity
                .and_then(|q| q.checked_div(part))
                .map(|x| x.ceil())
                .unwrap_or(Decimal::MAX);
            if parts > Decimal::from(ICEBERG_PARTS) {
                return Err(ApiError::filter("ICEBERG_PARTS"));
            }
        }
        // Checked products: a notional too large for a decimal is above maxNotional anyway.
        let notional = match (o.order_type, o.quantity, o.quote_qty) {
            (OrderType::Market, _, Some(qq)) => Some(Some(qq)),
            (OrderType::Market, Some(q), None) => Some(q.checked_mul(avg)),
            (t, Some(q), _) if t.is_limit_like() => o.price.map(|p| p.checked_mul(q)),
            (_, Some(q), _) => o.stop_price.map(|p| p.checked_mul(q)),
            _ => None,
        };
        if let Some(n) = notional {
            let Some(n) = n else {
                return Err(ApiError::filter("NOTIONAL"));
            };
            let market_order = o.order_type == OrderType::Market;
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

    /// A `listClientOrderId` is unique among the lists still executing (rest-api.md: the same
    /// id is accepted again once the earlier list is done).
    pub(super) fn check_duplicate_list(&self, list_client_id: Option<&str>) -> Result<(), ApiError> {
        let Some(id) = list_client_id else {
            return Ok(());
        };
        if self
            .account
            .lists
            .values()
            .any(|l| l.list_order_status != super::ListOrderStatus::AllDone && l.list_client_order_id == id)
        {
            return Err(ApiError::rejected("Duplicate order sent."));
        }
        Ok(())
    }

    pub(super) fn check_duplicate(&self, client_id: &str) -> Result<(), ApiError> {
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
}
