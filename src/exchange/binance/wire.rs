//! REST answers as Binance sends them, and their conversion into crbot's domain types.
//!
//! Owns: the JSON shapes of Binance's REST answers and filters (prices and quantities arrive as strings,
//! ids and times as numbers; unknown fields are ignored) and the `exchangeInfo` filter
//! mapping, including `MIN_NOTIONAL` → [`NotionalFilter`]; the answers become the domain's
//! report types (`crate::domain::broker`). Must not: use `f64` for a price or a
//! quantity, or fail a whole answer because one symbol or asset in it is unusual: such entries
//! are skipped and counted, never fatal.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::limits::{RateLimit, RateLimitWire};
use crate::domain::broker::{Account, BookQuote, BrokerError, Cancelled, ListReport, OrderReport, Placed};
use crate::domain::{
    Asset, Balance, ClientOrderId, Fill, Filters, LotSize, Notional, NotionalFilter, PercentPriceBySide,
    Price, PriceFilter, Qty, Side, Symbol, SymbolRules, SymbolStatus,
};

fn decode<T>(what: &str, r: Result<T, impl std::fmt::Display>) -> Result<T, BrokerError> {
    r.map_err(|e| BrokerError::Decode(format!("{what}: {e}")))
}

fn dec(what: &str, s: &str) -> Result<Decimal, BrokerError> {
    decode(what, Decimal::from_str(s.trim()))
}

fn price(what: &str, s: &str) -> Result<Price, BrokerError> {
    decode(what, Price::try_new(dec(what, s)?))
}

fn qty(what: &str, s: &str) -> Result<Qty, BrokerError> {
    decode(what, Qty::try_new(dec(what, s)?))
}

/// A price field where `0` means "not set" (stopPrice of a LIMIT, price of a MARKET).
fn opt_price(what: &str, s: Option<&str>) -> Result<Option<Price>, BrokerError> {
    match s {
        None => Ok(None),
        Some(s) => {
            let p = price(what, s)?;
            Ok((!p.is_zero()).then_some(p))
        }
    }
}

fn parse_enum<T: FromStr<Err = String>>(s: &str) -> Result<T, BrokerError> {
    s.parse().map_err(BrokerError::Decode)
}

/// `GET /api/v3/exchangeInfo`, reduced to what crbot uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeInfo {
    pub server_time_ms: i64,
    pub rate_limits: Vec<RateLimit>,
    pub symbols: Vec<SymbolRules>,
    /// Symbols left out because their name, status or filters could not be read.
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeInfoWire {
    #[serde(default)]
    server_time: i64,
    #[serde(default)]
    rate_limits: Vec<RateLimitWire>,
    #[serde(default)]
    symbols: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SymbolWire {
    symbol: String,
    status: String,
    base_asset: String,
    quote_asset: String,
    #[serde(default)]
    order_types: Vec<String>,
    #[serde(default)]
    oco_allowed: bool,
    #[serde(default)]
    filters: Vec<Value>,
}

fn field<'a>(f: &'a Value, name: &str) -> Result<&'a str, BrokerError> {
    f.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| BrokerError::Decode(format!("filter field `{name}` missing")))
}

fn flag(f: &Value, name: &str) -> bool {
    f.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn lot(f: &Value) -> Result<LotSize, BrokerError> {
    Ok(LotSize {
        min_qty: dec("minQty", field(f, "minQty")?)?,
        max_qty: dec("maxQty", field(f, "maxQty")?)?,
        step_size: dec("stepSize", field(f, "stepSize")?)?,
    })
}

/// Maps `exchangeInfo.symbols[].filters` into [`Filters`]. `MIN_NOTIONAL` (older symbols) becomes
/// a [`NotionalFilter`] with no maximum; when both it and `NOTIONAL` are present the stricter
/// minimum wins. Unknown filter types are ignored.
pub fn parse_filters(filters: &[Value]) -> Result<Filters, BrokerError> {
    let mut out = Filters::default();
    let mut min_notional_legacy: Option<NotionalFilter> = None;
    for f in filters {
        match f.get("filterType").and_then(Value::as_str).unwrap_or("") {
            "PRICE_FILTER" => {
                out.price = Some(PriceFilter {
                    min_price: dec("minPrice", field(f, "minPrice")?)?,
                    max_price: dec("maxPrice", field(f, "maxPrice")?)?,
                    tick_size: dec("tickSize", field(f, "tickSize")?)?,
                });
            }
            "LOT_SIZE" => out.lot_size = Some(lot(f)?),
            "MARKET_LOT_SIZE" => out.market_lot_size = Some(lot(f)?),
            "NOTIONAL" => {
                let max = dec("maxNotional", field(f, "maxNotional")?)?;
                out.notional = Some(NotionalFilter {
                    min_notional: dec("minNotional", field(f, "minNotional")?)?,
                    apply_min_to_market: flag(f, "applyMinToMarket"),
                    max_notional: (!max.is_zero()).then_some(max),
                    apply_max_to_market: flag(f, "applyMaxToMarket"),
                });
            }
            "MIN_NOTIONAL" => {
                min_notional_legacy = Some(NotionalFilter {
                    min_notional: dec("minNotional", field(f, "minNotional")?)?,
                    apply_min_to_market: flag(f, "applyToMarket"),
                    max_notional: None,
                    apply_max_to_market: false,
                });
            }
            "PERCENT_PRICE_BY_SIDE" => {
                out.percent_price_by_side = Some(PercentPriceBySide {
                    bid_multiplier_up: dec("bidMultiplierUp", field(f, "bidMultiplierUp")?)?,
                    bid_multiplier_down: dec("bidMultiplierDown", field(f, "bidMultiplierDown")?)?,
                    ask_multiplier_up: dec("askMultiplierUp", field(f, "askMultiplierUp")?)?,
                    ask_multiplier_down: dec("askMultiplierDown", field(f, "askMultiplierDown")?)?,
                });
            }
            "MAX_NUM_ORDERS" => {
                out.max_num_orders = f
                    .get("maxNumOrders")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok());
            }
            _ => {}
        }
    }
    if let Some(legacy) = min_notional_legacy {
        out.notional = Some(match out.notional.take() {
            None => legacy,
            Some(mut n) => {
                if legacy.min_notional > n.min_notional {
                    n.min_notional = legacy.min_notional;
                    n.apply_min_to_market |= legacy.apply_min_to_market;
                }
                n
            }
        });
    }
    Ok(out)
}

fn parse_symbol(v: Value) -> Result<SymbolRules, (String, BrokerError)> {
    let name = v.get("symbol").and_then(Value::as_str).unwrap_or("?").to_string();
    let fail = |e: BrokerError| (name.clone(), e);
    let w: SymbolWire = decode("symbol", serde_json::from_value(v)).map_err(fail)?;
    let symbol = decode("symbol name", Symbol::new(&w.symbol)).map_err(fail)?;
    let status: SymbolStatus = parse_enum(&w.status).map_err(fail)?;
    Ok(SymbolRules {
        symbol,
        status,
        base_asset: decode("baseAsset", Asset::new(&w.base_asset)).map_err(fail)?,
        quote_asset: decode("quoteAsset", Asset::new(&w.quote_asset)).map_err(fail)?,
        // Order types crbot does not know are left out: crbot never sends them.
        order_types: w.order_types.iter().filter_map(|t| t.parse().ok()).collect(),
        oco_allowed: w.oco_allowed,
        filters: parse_filters(&w.filters).map_err(fail)?,
    })
}

pub fn parse_exchange_info(body: &[u8]) -> Result<ExchangeInfo, BrokerError> {
    let w: ExchangeInfoWire = decode("exchangeInfo", serde_json::from_slice(body))?;
    let mut symbols = Vec::with_capacity(w.symbols.len());
    let mut skipped = Vec::new();
    for s in w.symbols {
        match parse_symbol(s) {
            Ok(r) => symbols.push(r),
            Err((name, e)) => {
                tracing::warn!(symbol = %name, error = %e, "exchangeInfo: symbol skipped");
                skipped.push(name);
            }
        }
    }
    Ok(ExchangeInfo {
        server_time_ms: w.server_time,
        rate_limits: w.rate_limits.iter().filter_map(RateLimit::from_wire).collect(),
        symbols,
        skipped,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountWire {
    #[serde(default)]
    can_trade: bool,
    #[serde(default)]
    can_withdraw: bool,
    #[serde(default)]
    update_time: i64,
    #[serde(default)]
    balances: Vec<BalanceWire>,
}

#[derive(Deserialize)]
pub(crate) struct BalanceWire {
    #[serde(alias = "a")]
    asset: String,
    #[serde(alias = "f")]
    free: String,
    #[serde(alias = "l")]
    locked: String,
}

/// Balances whose asset name is not a crbot [`Asset`] are returned as skipped names.
pub(crate) fn parse_balances(wire: Vec<BalanceWire>) -> Result<(Vec<Balance>, Vec<String>), BrokerError> {
    let mut balances = Vec::with_capacity(wire.len());
    let mut skipped = Vec::new();
    for b in wire {
        match Asset::new(&b.asset) {
            Ok(asset) => balances.push(Balance {
                asset,
                free: qty("free", &b.free)?,
                locked: qty("locked", &b.locked)?,
            }),
            Err(_) => skipped.push(b.asset),
        }
    }
    Ok((balances, skipped))
}

pub fn parse_account(body: &[u8]) -> Result<Account, BrokerError> {
    let w: AccountWire = decode("account", serde_json::from_slice(body))?;
    let (balances, skipped_assets) = parse_balances(w.balances)?;
    Ok(Account {
        can_trade: w.can_trade,
        can_withdraw: w.can_withdraw,
        update_time_ms: w.update_time,
        balances,
        skipped_assets,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderWire {
    symbol: String,
    order_id: u64,
    #[serde(default = "minus_one")]
    order_list_id: i64,
    client_order_id: String,
    #[serde(default)]
    orig_client_order_id: Option<String>,
    #[serde(default)]
    price: Option<String>,
    orig_qty: String,
    executed_qty: String,
    #[serde(default)]
    cummulative_quote_qty: Option<String>,
    status: String,
    #[serde(default)]
    time_in_force: Option<String>,
    #[serde(rename = "type")]
    order_type: String,
    side: String,
    #[serde(default)]
    stop_price: Option<String>,
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    update_time: Option<i64>,
    #[serde(default)]
    transact_time: Option<i64>,
    #[serde(default)]
    fills: Vec<FillWire>,
}

fn minus_one() -> i64 {
    -1
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FillWire {
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
    trade_id: u64,
}

fn order_from_wire(w: &OrderWire) -> Result<OrderReport, BrokerError> {
    let time = w.time.or(w.transact_time).unwrap_or(0);
    // cummulativeQuoteQty < 0 on some historical orders means "not available".
    let cum = match &w.cummulative_quote_qty {
        Some(s) => Notional::try_new(dec("cummulativeQuoteQty", s)?).unwrap_or(Notional::ZERO),
        None => Notional::ZERO,
    };
    Ok(OrderReport {
        symbol: decode("symbol", Symbol::new(&w.symbol))?,
        order_id: w.order_id,
        order_list_id: (w.order_list_id >= 0).then_some(w.order_list_id),
        client_order_id: w.client_order_id.clone(),
        orig_client_order_id: w.orig_client_order_id.clone(),
        side: parse_enum(&w.side)?,
        order_type: parse_enum(&w.order_type)?,
        time_in_force: w.time_in_force.as_deref().and_then(|t| t.parse().ok()),
        status: parse_enum(&w.status)?,
        price: opt_price("price", w.price.as_deref())?,
        stop_price: opt_price("stopPrice", w.stop_price.as_deref())?,
        orig_qty: qty("origQty", &w.orig_qty)?,
        executed_qty: qty("executedQty", &w.executed_qty)?,
        cumulative_quote_qty: cum,
        time_ms: time,
        update_ms: w.update_time.unwrap_or(time),
    })
}

fn fills_from_wire(order: &OrderReport, fills: &[FillWire]) -> Result<Vec<Fill>, BrokerError> {
    let cid = ClientOrderId::new(order.order_client_id()).ok();
    fills
        .iter()
        .map(|f| {
            Ok(Fill {
                symbol: order.symbol.clone(),
                trade_id: f.trade_id,
                order_id: order.order_id,
                client_order_id: cid.clone(),
                side: order.side,
                price: price("fill price", &f.price)?,
                qty: qty("fill qty", &f.qty)?,
                commission: qty("commission", &f.commission)?,
                commission_asset: decode("commissionAsset", Asset::new(&f.commission_asset))?,
                time_ms: order.time_ms,
                // An order's immediate fills take liquidity.
                is_maker: false,
            })
        })
        .collect()
}

pub fn parse_placed_order(body: &[u8]) -> Result<Placed, BrokerError> {
    let w: OrderWire = decode("order", serde_json::from_slice(body))?;
    let order = order_from_wire(&w)?;
    let fills = fills_from_wire(&order, &w.fills)?;
    Ok(Placed { order, fills })
}

pub fn parse_order(body: &[u8]) -> Result<OrderReport, BrokerError> {
    let w: OrderWire = decode("order", serde_json::from_slice(body))?;
    order_from_wire(&w)
}

pub fn parse_orders(body: &[u8]) -> Result<Vec<OrderReport>, BrokerError> {
    let w: Vec<OrderWire> = decode("orders", serde_json::from_slice(body))?;
    w.iter().map(order_from_wire).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderListWire {
    order_list_id: i64,
    list_client_order_id: String,
    symbol: String,
    list_status_type: String,
    list_order_status: String,
    #[serde(default)]
    orders: Vec<ListLegWire>,
    #[serde(default)]
    order_reports: Vec<OrderWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListLegWire {
    order_id: u64,
    client_order_id: String,
}

fn list_from_wire(w: &OrderListWire) -> Result<ListReport, BrokerError> {
    Ok(ListReport {
        order_list_id: w.order_list_id,
        list_client_order_id: w.list_client_order_id.clone(),
        symbol: decode("symbol", Symbol::new(&w.symbol))?,
        list_status_type: w.list_status_type.clone(),
        list_order_status: w.list_order_status.clone(),
        legs: w
            .orders
            .iter()
            .map(|l| (l.order_id, l.client_order_id.clone()))
            .collect(),
        reports: w
            .order_reports
            .iter()
            .map(order_from_wire)
            .collect::<Result<_, _>>()?,
    })
}

pub fn parse_order_list(body: &[u8]) -> Result<ListReport, BrokerError> {
    let w: OrderListWire = decode("orderList", serde_json::from_slice(body))?;
    list_from_wire(&w)
}

pub fn parse_order_lists(body: &[u8]) -> Result<Vec<ListReport>, BrokerError> {
    let w: Vec<OrderListWire> = decode("orderLists", serde_json::from_slice(body))?;
    w.iter().map(list_from_wire).collect()
}

pub fn parse_cancel_all(body: &[u8]) -> Result<Vec<Cancelled>, BrokerError> {
    let items: Vec<Value> = decode("cancel all", serde_json::from_slice(body))?;
    items
        .into_iter()
        .map(|v| {
            if v.get("orderListId").is_some() && v.get("contingencyType").is_some() {
                let w: OrderListWire = decode("orderList", serde_json::from_value(v))?;
                Ok(Cancelled::List(list_from_wire(&w)?))
            } else {
                let w: OrderWire = decode("order", serde_json::from_value(v))?;
                Ok(Cancelled::Order(order_from_wire(&w)?))
            }
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TradeWire {
    symbol: String,
    id: u64,
    order_id: u64,
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
    time: i64,
    is_buyer: bool,
    is_maker: bool,
}

/// `GET /api/v3/myTrades` → fills (client order id unknown here: match by order id).
pub fn parse_trades(body: &[u8]) -> Result<Vec<Fill>, BrokerError> {
    let w: Vec<TradeWire> = decode("myTrades", serde_json::from_slice(body))?;
    w.iter()
        .map(|t| {
            Ok(Fill {
                symbol: decode("symbol", Symbol::new(&t.symbol))?,
                trade_id: t.id,
                order_id: t.order_id,
                client_order_id: None,
                side: if t.is_buyer { Side::Buy } else { Side::Sell },
                price: price("price", &t.price)?,
                qty: qty("qty", &t.qty)?,
                commission: qty("commission", &t.commission)?,
                commission_asset: decode("commissionAsset", Asset::new(&t.commission_asset))?,
                time_ms: t.time,
                is_maker: t.is_maker,
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookTickerWire {
    symbol: String,
    bid_price: String,
    bid_qty: String,
    ask_price: String,
    ask_qty: String,
}

pub fn parse_book_ticker(body: &[u8]) -> Result<BookQuote, BrokerError> {
    let w: BookTickerWire = decode("bookTicker", serde_json::from_slice(body))?;
    Ok(BookQuote {
        symbol: decode("symbol", Symbol::new(&w.symbol))?,
        bid: price("bidPrice", &w.bid_price)?,
        bid_qty: qty("bidQty", &w.bid_qty)?,
        ask: price("askPrice", &w.ask_price)?,
        ask_qty: qty("askQty", &w.ask_qty)?,
    })
}

/// `GET /api/v3/ticker/24hr` (FULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticker24h {
    pub symbol: Symbol,
    pub last: Price,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    /// Signed percentage (`-1.25` = −1.25 %).
    pub change_percent: Decimal,
    pub volume: Qty,
    pub quote_volume: Notional,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticker24hWire {
    symbol: String,
    last_price: String,
    open_price: String,
    high_price: String,
    low_price: String,
    #[serde(default)]
    price_change_percent: Option<String>,
    volume: String,
    quote_volume: String,
}

fn ticker_from_wire(w: &Ticker24hWire) -> Result<Ticker24h, BrokerError> {
    Ok(Ticker24h {
        symbol: decode("symbol", Symbol::new(&w.symbol))?,
        last: price("lastPrice", &w.last_price)?,
        open: price("openPrice", &w.open_price)?,
        high: price("highPrice", &w.high_price)?,
        low: price("lowPrice", &w.low_price)?,
        change_percent: match &w.price_change_percent {
            Some(s) => dec("priceChangePercent", s)?,
            None => Decimal::ZERO,
        },
        volume: qty("volume", &w.volume)?,
        quote_volume: decode(
            "quoteVolume",
            Notional::try_new(dec("quoteVolume", &w.quote_volume)?),
        )?,
    })
}

/// One object (single symbol) or an array.
pub fn parse_tickers_24h(body: &[u8]) -> Result<Vec<Ticker24h>, BrokerError> {
    let v: Value = decode("ticker/24hr", serde_json::from_slice(body))?;
    let list: Vec<Ticker24hWire> = if v.is_array() {
        decode("ticker/24hr", serde_json::from_value(v))?
    } else {
        vec![decode("ticker/24hr", serde_json::from_value(v))?]
    };
    list.iter().map(ticker_from_wire).collect()
}

/// One kline (candle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kline {
    pub open_time_ms: i64,
    pub close_time_ms: i64,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: Qty,
    /// False for the still-forming candle (streams only; REST rows are treated as closed).
    pub closed: bool,
}

pub fn parse_klines(body: &[u8]) -> Result<Vec<Kline>, BrokerError> {
    let rows: Vec<Vec<Value>> = decode("klines", serde_json::from_slice(body))?;
    rows.iter()
        .map(|r| {
            let s = |i: usize| -> Result<&str, BrokerError> {
                r.get(i)
                    .and_then(Value::as_str)
                    .ok_or_else(|| BrokerError::Decode(format!("kline column {i}")))
            };
            let n = |i: usize| -> Result<i64, BrokerError> {
                r.get(i)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| BrokerError::Decode(format!("kline column {i}")))
            };
            Ok(Kline {
                open_time_ms: n(0)?,
                open: price("open", s(1)?)?,
                high: price("high", s(2)?)?,
                low: price("low", s(3)?)?,
                close: price("close", s(4)?)?,
                volume: qty("volume", s(5)?)?,
                close_time_ms: n(6)?,
                closed: true,
            })
        })
        .collect()
}

/// Price levels of a book snapshot, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    pub last_update_id: u64,
    pub bids: Vec<(Price, Qty)>,
    pub asks: Vec<(Price, Qty)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DepthWire {
    last_update_id: u64,
    bids: Vec<(String, String)>,
    asks: Vec<(String, String)>,
}

pub(crate) fn depth_from_wire(w: &DepthWire) -> Result<Depth, BrokerError> {
    let levels = |l: &[(String, String)]| -> Result<Vec<(Price, Qty)>, BrokerError> {
        l.iter()
            .map(|(p, q)| Ok((price("level price", p)?, qty("level qty", q)?)))
            .collect()
    };
    Ok(Depth {
        last_update_id: w.last_update_id,
        bids: levels(&w.bids)?,
        asks: levels(&w.asks)?,
    })
}

pub fn parse_depth(body: &[u8]) -> Result<Depth, BrokerError> {
    let w: DepthWire = decode("depth", serde_json::from_slice(body))?;
    depth_from_wire(&w)
}

/// Commission rates of a symbol (fractions: `0.001` = 0.1 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommissionRates {
    pub maker: Decimal,
    pub taker: Decimal,
}

pub fn parse_commission(body: &[u8]) -> Result<CommissionRates, BrokerError> {
    let v: Value = decode("commission", serde_json::from_slice(body))?;
    let std = v
        .get("standardCommission")
        .ok_or_else(|| BrokerError::Decode("standardCommission missing".into()))?;
    Ok(CommissionRates {
        maker: dec("maker", field(std, "maker")?)?,
        taker: dec("taker", field(std, "taker")?)?,
    })
}

/// `GET /sapi/v1/account/apiRestrictions`: what the key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRestrictions {
    #[serde(default)]
    pub ip_restrict: bool,
    #[serde(default)]
    pub enable_reading: bool,
    #[serde(default)]
    pub enable_spot_and_margin_trading: bool,
    /// crbot refuses to trade with a key that can withdraw.
    #[serde(default)]
    pub enable_withdrawals: bool,
}

pub fn parse_api_restrictions(body: &[u8]) -> Result<ApiRestrictions, BrokerError> {
    decode("apiRestrictions", serde_json::from_slice(body))
}

/// `{"code":-1121,"msg":"Invalid symbol."}`; `None` when the body is not that shape.
pub fn parse_api_error(body: &[u8]) -> Option<(i64, String)> {
    #[derive(Deserialize)]
    struct E {
        code: i64,
        msg: String,
    }
    serde_json::from_slice::<E>(body).ok().map(|e| (e.code, e.msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LocalOrderState, OrderPurpose, OrderStatus, OrderType};

    const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","serverTime":1565246363776,
      "rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},
                    {"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50}],
      "exchangeFilters":[],
      "symbols":[
        {"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC",
         "orderTypes":["LIMIT","LIMIT_MAKER","MARKET","STOP_LOSS","STOP_LOSS_LIMIT","TAKE_PROFIT","TAKE_PROFIT_LIMIT"],
         "ocoAllowed":true,"newField":{"x":1},
         "filters":[
           {"filterType":"PRICE_FILTER","minPrice":"0.00000100","maxPrice":"100000.00000000","tickSize":"0.00000100"},
           {"filterType":"LOT_SIZE","minQty":"0.00100000","maxQty":"100000.00000000","stepSize":"0.00100000"},
           {"filterType":"MIN_NOTIONAL","minNotional":"0.00010000","applyToMarket":true,"avgPriceMins":5},
           {"filterType":"ICEBERG_PARTS","limit":10},
           {"filterType":"MAX_NUM_ORDERS","maxNumOrders":200}]},
        {"symbol":"BNBUSDT","status":"HALT","baseAsset":"BNB","quoteAsset":"USDT","orderTypes":["LIMIT","PEGGED"],
         "filters":[
           {"filterType":"NOTIONAL","minNotional":"5.00000000","applyMinToMarket":true,"maxNotional":"9000000.00000000","applyMaxToMarket":false,"avgPriceMins":5},
           {"filterType":"MARKET_LOT_SIZE","minQty":"0.00000000","maxQty":"1000.00000000","stepSize":"0.00000000"},
           {"filterType":"PERCENT_PRICE_BY_SIDE","bidMultiplierUp":"5","bidMultiplierDown":"0.2","askMultiplierUp":"5","askMultiplierDown":"0.2","avgPriceMins":5}]},
        {"symbol":"这是测试币456","status":"TRADING","baseAsset":"这是测试币","quoteAsset":"456","filters":[]}
      ]}"#;

    #[test]
    fn exchange_info_maps_filters_and_skips_unreadable_symbols() {
        let info = parse_exchange_info(EXCHANGE_INFO.as_bytes()).expect("parse");
        assert_eq!(info.rate_limits.len(), 2);
        assert_eq!(info.symbols.len(), 2);
        assert_eq!(info.skipped, vec!["这是测试币456".to_string()]);
        let eth = &info.symbols[0];
        assert_eq!(eth.symbol.as_str(), "ETHBTC");
        assert_eq!(eth.order_types.len(), 7);
        let pf = eth.filters.price.as_ref().expect("price filter");
        assert_eq!(pf.tick_size, dec("t", "0.000001").expect("d"));
        let n = eth.filters.notional.as_ref().expect("MIN_NOTIONAL mapped");
        assert_eq!(n.min_notional, dec("t", "0.0001").expect("d"));
        assert!(n.apply_min_to_market);
        assert_eq!(n.max_notional, None);
        assert_eq!(eth.filters.max_num_orders, Some(200));
        let bnb = &info.symbols[1];
        assert_eq!(bnb.status, SymbolStatus::Halt);
        assert_eq!(bnb.order_types, vec![OrderType::Limit]);
        let n = bnb.filters.notional.as_ref().expect("NOTIONAL");
        assert_eq!(n.max_notional, Some(dec("t", "9000000").expect("d")));
        assert!(!n.apply_max_to_market);
        assert!(bnb.filters.percent_price_by_side.is_some());
    }

    #[test]
    fn stricter_minimum_wins_when_both_notional_filters_exist() {
        let f: Vec<Value> = serde_json::from_str(
            r#"[{"filterType":"NOTIONAL","minNotional":"5","applyMinToMarket":false,"maxNotional":"0","applyMaxToMarket":false},
                {"filterType":"MIN_NOTIONAL","minNotional":"10","applyToMarket":true}]"#,
        )
        .expect("json");
        let n = parse_filters(&f).expect("filters").notional.expect("notional");
        assert_eq!(n.min_notional, Decimal::TEN);
        assert!(n.apply_min_to_market);
        assert_eq!(n.max_notional, None, "0 means no maximum");
    }

    #[test]
    fn full_order_answer_gives_order_and_fills() {
        let body = r#"{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"cr-abc-1",
          "transactTime":1507725176595,"price":"0.00000000","origQty":"10.00000000","executedQty":"10.00000000",
          "origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"10.00000000","status":"FILLED","timeInForce":"GTC",
          "type":"MARKET","side":"SELL","workingTime":1507725176595,"selfTradePreventionMode":"NONE",
          "fills":[{"price":"4000.00000000","qty":"1.00000000","commission":"4.00000000","commissionAsset":"USDT","tradeId":56},
                   {"price":"3999.00000000","qty":"5.00000000","commission":"19.99500000","commissionAsset":"USDT","tradeId":57}]}"#;
        let p = parse_placed_order(body.as_bytes()).expect("parse");
        assert_eq!(p.order.status, OrderStatus::Filled);
        assert_eq!(p.order.price, None);
        assert_eq!(p.order.order_list_id, None);
        assert_eq!(p.fills.len(), 2);
        assert_eq!(p.fills[1].trade_id, 57);
        assert_eq!(p.fills[1].qty.to_string(), "5");
        assert_eq!(
            p.fills[0].client_order_id.as_ref().map(ClientOrderId::as_str),
            Some("cr-abc-1")
        );
        assert_eq!(p.fills[0].side, Side::Sell);
    }

    #[test]
    fn cancel_answer_keeps_the_original_client_id() {
        let body = r#"{"symbol":"LTCBTC","origClientOrderId":"myOrder1","orderId":4,"orderListId":-1,
          "clientOrderId":"cancelMyOrder1","transactTime":1684804350068,"price":"2.00000000","origQty":"1.00000000",
          "executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC",
          "type":"LIMIT","side":"BUY","selfTradePreventionMode":"NONE"}"#;
        let o = parse_order(body.as_bytes()).expect("parse");
        assert_eq!(o.order_client_id(), "myOrder1");
        let order = o.to_order(OrderPurpose::External);
        assert_eq!(order.client_order_id.as_str(), "myOrder1");
        assert_eq!(order.state, LocalOrderState::Exchange(OrderStatus::Canceled));
    }

    #[test]
    fn negative_cumulative_quote_is_read_as_unavailable() {
        let body = r#"[{"symbol":"LTCBTC","orderId":1,"orderListId":-1,"clientOrderId":"a","price":"0.1",
          "origQty":"1.0","executedQty":"0.0","cummulativeQuoteQty":"-1.00000000","status":"NEW","timeInForce":"GTC",
          "type":"LIMIT","side":"BUY","stopPrice":"0.0","icebergQty":"0.0","time":1499827319559,
          "updateTime":1499827319559,"isWorking":true}]"#;
        let o = parse_orders(body.as_bytes()).expect("parse");
        assert_eq!(o[0].cumulative_quote_qty, Notional::ZERO);
        assert_eq!(o[0].stop_price, None);
    }

    #[test]
    fn my_trades_become_fills_with_side_from_is_buyer() {
        let body = r#"[{"symbol":"BNBBTC","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100",
          "qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000","commissionAsset":"BNB",
          "time":1499865549590,"isBuyer":true,"isMaker":false,"isBestMatch":true}]"#;
        let f = parse_trades(body.as_bytes()).expect("parse");
        assert_eq!(
            (f[0].trade_id, f[0].side, f[0].price.to_string()),
            (28457, Side::Buy, "4.000001".into())
        );
    }

    #[test]
    fn cancel_all_mixes_orders_and_lists() {
        let body = r#"[{"symbol":"BTCUSDT","origClientOrderId":"E6APeyTJvkMvLMYMqu1KQ4","orderId":11,"orderListId":-1,
          "clientOrderId":"pXLV6Hz6mprAcVYpVMTGgx","price":"0.089853","origQty":"0.178622","executedQty":"0.000000",
          "cummulativeQuoteQty":"0.000000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY"},
          {"orderListId":1929,"contingencyType":"OCO","listStatusType":"ALL_DONE","listOrderStatus":"ALL_DONE",
           "listClientOrderId":"2inzWQdDvZLHbbAmAozX2N","transactionTime":1585230948299,"symbol":"BTCUSDT",
           "orders":[{"symbol":"BTCUSDT","orderId":20,"clientOrderId":"CwOOIPHSmYywx6jZX77TdL"},
                     {"symbol":"BTCUSDT","orderId":21,"clientOrderId":"461cPg51vQjV3zIMOXNz39"}],
           "orderReports":[]}]"#;
        let items = parse_cancel_all(body.as_bytes()).expect("parse");
        assert!(matches!(&items[0], Cancelled::Order(o) if o.order_id == 11));
        assert!(matches!(&items[1], Cancelled::List(l) if l.legs.len() == 2));
    }

    #[test]
    fn market_data_answers_parse() {
        let bt = parse_book_ticker(
            br#"{"symbol":"LTCBTC","bidPrice":"4.00000000","bidQty":"431.00000000","askPrice":"4.00000200","askQty":"9.00000000"}"#,
        )
        .expect("bookTicker");
        assert_eq!(bt.ask.to_string(), "4.000002");
        let k = parse_klines(
            br#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]"#,
        )
        .expect("klines");
        assert_eq!(k[0].close.to_string(), "0.015771");
        let d = parse_depth(br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}"#)
            .expect("depth");
        assert_eq!(d.bids[0].1.to_string(), "431");
        let t = parse_tickers_24h(
            br#"{"symbol":"BNBBTC","priceChange":"-94.99999800","priceChangePercent":"-95.960","lastPrice":"4.00000200",
                "openPrice":"99.00000000","highPrice":"100.00000000","lowPrice":"0.10000000","volume":"8913.30000000",
                "quoteVolume":"15.30000000"}"#,
        )
        .expect("ticker");
        assert_eq!(t[0].change_percent, dec("t", "-95.96").expect("d"));
    }

    #[test]
    fn malformed_numbers_are_decode_errors_not_panics() {
        let r = parse_book_ticker(
            br#"{"symbol":"LTCBTC","bidPrice":"1e5","bidQty":"1","askPrice":"x","askQty":"1"}"#,
        );
        assert!(matches!(r, Err(BrokerError::Decode(_))), "{r:?}");
        assert!(matches!(parse_account(b"<html>"), Err(BrokerError::Decode(_))));
    }

    #[test]
    fn api_error_body_is_recognised() {
        assert_eq!(
            parse_api_error(br#"{"code":-1121,"msg":"Invalid symbol."}"#),
            Some((-1121, "Invalid symbol.".into()))
        );
        assert_eq!(parse_api_error(b"Forbidden"), None);
    }
}
