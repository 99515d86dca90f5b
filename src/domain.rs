//! Value types shared by every part of crbot: symbols, assets, sides, order types and
//! statuses, exchange filters, order tickets, orders, fills and balances, and what a broker
//! reports and how its requests fail ([`broker`]).
//!
//! Owns: the vocabulary and the client-side exchange-filter arithmetic. Must not: do I/O,
//! read a clock, or hold mutable state. Money is always `rust_decimal` through the newtypes
//! in [`money`]; a bare `f64` never carries a price or a quantity.

pub mod broker;
pub mod money;
pub mod plural;

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use broker::{
    Account, BookQuote, BrokerError, Cancelled, ListReport, OcoRequest, OrderOutcome, OrderReport, Placed,
};
pub use money::{
    DecimalError, Money, MoneyError, Notional, Price, Qty, decimals_of, display_fixed, display_price, plain,
};

/// Why a name (symbol, asset, client order id) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("symbol `{0}` is not valid: use 1 to 20 letters or digits, e.g. BTCUSDT")]
    Symbol(String),
    #[error("asset `{0}` is not valid: use 1 to 20 letters or digits, e.g. USDT")]
    Asset(String),
    #[error("client order id `{0}` is not valid: 1 to 36 characters of A-Z a-z 0-9 _ -")]
    ClientOrderId(String),
}

fn valid_name(s: &str) -> bool {
    (1..=20).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// An exchange symbol, upper case (`BTCUSDT`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(String);

impl Symbol {
    /// Accepts letters and digits, any case; stores upper case.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let up = s.trim().to_ascii_uppercase();
        if valid_name(&up) {
            Ok(Self(up))
        } else {
            Err(NameError::Symbol(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercase form used in stream names (`btcusdt`).
    pub fn stream_name(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl TryFrom<String> for Symbol {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> String {
        s.0
    }
}

impl FromStr for Symbol {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An asset code (`USDT`, `BTC`, `BNB`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Asset(String);

impl Asset {
    pub fn new(s: &str) -> Result<Self, NameError> {
        let up = s.trim().to_ascii_uppercase();
        if valid_name(&up) {
            Ok(Self(up))
        } else {
            Err(NameError::Asset(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quote asset crbot marks equity in.
    pub fn usdt() -> Self {
        Self("USDT".to_string())
    }

    /// Decimals an amount of this asset is shown with: 2 for fiat and dollar stablecoins
    /// (cents), 8 for everything else (Binance's balance precision).
    pub fn display_dp(&self) -> u32 {
        const CENTS: &[&str] = &[
            "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDP", "DAI", "USD", "EUR", "GBP", "TRY", "BRL",
        ];
        if CENTS.contains(&self.0.as_str()) { 2 } else { 8 }
    }
}

impl TryFrom<String> for Asset {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Asset> for String {
    fn from(a: Asset) -> String {
        a.0
    }
}

impl FromStr for Asset {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client order id: 1 to 36 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientOrderId(String);

impl ClientOrderId {
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok = (1..=36).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::ClientOrderId(s.to_string()))
        }
    }

    /// A fresh id `cr-<millis base36>-<random>`: unique, sortable by time, ≤ 36 chars.
    pub fn generate(now_ms: i64, random: u64) -> Self {
        let id = format!("cr-{}-{}", base36(now_ms.unsigned_abs()), base36(random));
        let id: String = id.chars().take(36).collect();
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".to_string();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

impl TryFrom<String> for ClientOrderId {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<ClientOrderId> for String {
    fn from(c: ClientOrderId) -> String {
        c.0
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Generates `Display`/`FromStr`/serde for a fieldless enum from its Binance wire names.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact string Binance uses.
            pub fn as_wire(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_wire())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(format!("unknown {} `{}`", stringify!($name), other)),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_wire())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

wire_enum!(
    /// Buy or sell.
    Side { Buy => "BUY", Sell => "SELL" }
);

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

wire_enum!(
    /// Spot order types crbot understands.
    OrderType {
        Market => "MARKET",
        Limit => "LIMIT",
        LimitMaker => "LIMIT_MAKER",
        StopLoss => "STOP_LOSS",
        StopLossLimit => "STOP_LOSS_LIMIT",
        TakeProfit => "TAKE_PROFIT",
        TakeProfitLimit => "TAKE_PROFIT_LIMIT",
    }
);

wire_enum!(
    /// Time in force.
    TimeInForce { Gtc => "GTC", Ioc => "IOC", Fok => "FOK" }
);

wire_enum!(
    /// Order status as the exchange reports it.
    OrderStatus {
        New => "NEW",
        PendingNew => "PENDING_NEW",
        PartiallyFilled => "PARTIALLY_FILLED",
        Filled => "FILLED",
        Canceled => "CANCELED",
        PendingCancel => "PENDING_CANCEL",
        Rejected => "REJECTED",
        Expired => "EXPIRED",
        ExpiredInMatch => "EXPIRED_IN_MATCH",
    }
);

impl OrderStatus {
    /// FILLED, CANCELED, REJECTED, EXPIRED and EXPIRED_IN_MATCH end an order's life.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
                | OrderStatus::ExpiredInMatch
        )
    }
}

wire_enum!(
    /// A symbol's trading status.
    SymbolStatus {
        Trading => "TRADING",
        EndOfDay => "END_OF_DAY",
        Halt => "HALT",
        Break => "BREAK",
        CancelOnly => "CANCEL_ONLY",
        PreTrading => "PRE_TRADING",
        PostTrading => "POST_TRADING",
        AuctionMatch => "AUCTION_MATCH",
    }
);

/// Where crbot stands with an order it created; `Exchange` once the exchange has told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LocalOrderState {
    /// Journaled, not yet sent.
    Pending,
    /// The request is on the wire, no answer yet.
    Sending,
    /// Sent, but the outcome is unknown (5xx, timeout, dropped connection): being reconciled.
    Unknown,
    /// The exchange reported this status.
    Exchange(OrderStatus),
    /// Never reached the exchange (refused by risk, or rejected before the matching engine).
    NotSent,
}

impl LocalOrderState {
    pub fn is_open(self) -> bool {
        match self {
            LocalOrderState::Pending | LocalOrderState::Sending | LocalOrderState::Unknown => true,
            LocalOrderState::Exchange(s) => !s.is_terminal(),
            LocalOrderState::NotSent => false,
        }
    }

    /// Stable text stored in the journal (`SENDING`, `UNKNOWN`, or the exchange status).
    pub fn as_code(self) -> &'static str {
        match self {
            LocalOrderState::Pending => "PENDING",
            LocalOrderState::Sending => "SENDING",
            LocalOrderState::Unknown => "UNKNOWN",
            LocalOrderState::NotSent => "NOT_SENT",
            LocalOrderState::Exchange(s) => s.as_wire(),
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "PENDING" => Some(LocalOrderState::Pending),
            "SENDING" => Some(LocalOrderState::Sending),
            "UNKNOWN" => Some(LocalOrderState::Unknown),
            "NOT_SENT" => Some(LocalOrderState::NotSent),
            other => other.parse().ok().map(LocalOrderState::Exchange),
        }
    }
}

/// `PRICE_FILTER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceFilter {
    pub min_price: Decimal,
    pub max_price: Decimal,
    pub tick_size: Decimal,
}

/// `LOT_SIZE` or `MARKET_LOT_SIZE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotSize {
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub step_size: Decimal,
}

/// `NOTIONAL` (or the older `MIN_NOTIONAL`, mapped with no maximum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotionalFilter {
    pub min_notional: Decimal,
    pub apply_min_to_market: bool,
    /// `None` when the exchange sets no maximum.
    pub max_notional: Option<Decimal>,
    pub apply_max_to_market: bool,
}

/// `PERCENT_PRICE_BY_SIDE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PercentPriceBySide {
    pub bid_multiplier_up: Decimal,
    pub bid_multiplier_down: Decimal,
    pub ask_multiplier_up: Decimal,
    pub ask_multiplier_down: Decimal,
}

/// The filters of one symbol that crbot checks before sending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    pub price: Option<PriceFilter>,
    pub lot_size: Option<LotSize>,
    pub market_lot_size: Option<LotSize>,
    pub notional: Option<NotionalFilter>,
    pub percent_price_by_side: Option<PercentPriceBySide>,
    pub max_num_orders: Option<u32>,
}

/// A symbol's trading rules, from `exchangeInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolRules {
    pub symbol: Symbol,
    pub status: SymbolStatus,
    pub base_asset: Asset,
    pub quote_asset: Asset,
    pub order_types: Vec<OrderType>,
    pub oco_allowed: bool,
    pub filters: Filters,
}

/// A failed exchange filter, named as Binance names it, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterFailure {
    #[error("PRICE_FILTER: {field} {value} outside [{min}, {max}]")]
    PriceRange {
        field: &'static str,
        value: String,
        min: String,
        max: String,
    },
    #[error("PRICE_FILTER: {field} {value} is not a multiple of tick size {tick}")]
    Tick {
        field: &'static str,
        value: String,
        tick: String,
    },
    #[error("{filter}: quantity {value} outside [{min}, {max}]")]
    QtyRange {
        filter: &'static str,
        value: String,
        min: String,
        max: String,
    },
    #[error("{filter}: quantity {value} is not a multiple of step size {step}")]
    Step {
        filter: &'static str,
        value: String,
        step: String,
    },
    #[error("NOTIONAL: {value} is below the minimum {min}")]
    MinNotional { value: String, min: String },
    #[error("NOTIONAL: {value} is above the maximum {max}")]
    MaxNotional { value: String, max: String },
    #[error("PERCENT_PRICE_BY_SIDE: price {value} outside [{low}, {high}] for a {side}")]
    PercentPrice {
        side: Side,
        value: String,
        low: String,
        high: String,
    },
    #[error("symbol {symbol} is {status}, not TRADING")]
    NotTrading { symbol: Symbol, status: SymbolStatus },
    #[error("order type {0} is not allowed on this symbol")]
    OrderType(OrderType),
}

/// The exact values an order would carry, after rounding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: Option<TimeInForce>,
    pub qty: Qty,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub client_order_id: ClientOrderId,
}

impl SymbolRules {
    /// Rounds a quantity down to the step of the filter that applies to `order_type`.
    pub fn round_qty(&self, order_type: OrderType, qty: Qty) -> Qty {
        let lot = self.lot_for(order_type);
        match lot {
            Some(l) => qty.floor_to(l.step_size).unwrap_or(Qty::ZERO),
            None => qty,
        }
    }

    /// Rounds a price to the tick: down for a buy, up for a sell (the conservative side).
    pub fn round_price(&self, side: Side, price: Price) -> Price {
        let Some(pf) = &self.filters.price else {
            return price;
        };
        let rounded = match side {
            Side::Buy => price.floor_to(pf.tick_size),
            Side::Sell => price.ceil_to(pf.tick_size),
        };
        rounded.unwrap_or(price)
    }

    /// Rounds a price to the nearest tick.
    pub fn round_price_nearest(&self, price: Price) -> Price {
        let Some(pf) = &self.filters.price else {
            return price;
        };
        price.round_to(pf.tick_size).unwrap_or(price)
    }

    /// The lot filter for an order type: MARKET_LOT_SIZE for market orders when it is set
    /// with a non-zero step, LOT_SIZE otherwise.
    pub fn lot_for(&self, order_type: OrderType) -> Option<&LotSize> {
        if order_type == OrderType::Market
            && let Some(m) = &self.filters.market_lot_size
            && !m.step_size.is_zero()
        {
            return Some(m);
        }
        self.filters.lot_size.as_ref()
    }

    /// Checks an order against every filter. `reference` is the price used for MARKET
    /// notional and for PERCENT_PRICE_BY_SIDE (the average or last price).
    pub fn check(&self, order: &OrderRequest, reference: Option<Price>) -> Vec<FilterFailure> {
        let mut out = Vec::new();
        if self.status != SymbolStatus::Trading {
            out.push(FilterFailure::NotTrading {
                symbol: self.symbol.clone(),
                status: self.status,
            });
        }
        if !self.order_types.is_empty() && !self.order_types.contains(&order.order_type) {
            out.push(FilterFailure::OrderType(order.order_type));
        }
        if let Some(pf) = &self.filters.price {
            for (field, p) in [("price", order.price), ("stopPrice", order.stop_price)] {
                let Some(p) = p else { continue };
                let v = p.value();
                let below = !pf.min_price.is_zero() && v < pf.min_price;
                let above = !pf.max_price.is_zero() && v > pf.max_price;
                if below || above {
                    out.push(FilterFailure::PriceRange {
                        field,
                        value: p.to_string(),
                        min: plain(pf.min_price),
                        max: plain(pf.max_price),
                    });
                }
                if !p.is_multiple_of(pf.tick_size) {
                    out.push(FilterFailure::Tick {
                        field,
                        value: p.to_string(),
                        tick: plain(pf.tick_size),
                    });
                }
            }
        }
        let (lot_name, lot) = if order.order_type == OrderType::Market {
            match self.lot_for(OrderType::Market) {
                Some(l) if Some(l) == self.filters.market_lot_size.as_ref() => ("MARKET_LOT_SIZE", Some(l)),
                other => ("LOT_SIZE", other),
            }
        } else {
            ("LOT_SIZE", self.filters.lot_size.as_ref())
        };
        if let Some(l) = lot {
            let q = order.qty.value();
            let below = q < l.min_qty;
            let above = !l.max_qty.is_zero() && q > l.max_qty;
            if below || above {
                out.push(FilterFailure::QtyRange {
                    filter: lot_name,
                    value: order.qty.to_string(),
                    min: plain(l.min_qty),
                    max: plain(l.max_qty),
                });
            }
            if !order.qty.is_multiple_of(l.step_size) {
                out.push(FilterFailure::Step {
                    filter: lot_name,
                    value: order.qty.to_string(),
                    step: plain(l.step_size),
                });
            }
        }
        let is_market = order.order_type == OrderType::Market;
        let price_for_notional = if is_market {
            reference
        } else {
            order.price.or(reference)
        };
        if let (Some(nf), Some(p)) = (&self.filters.notional, price_for_notional)
            && let Some(n) = p.notional(order.qty)
        {
            if (!is_market || nf.apply_min_to_market) && n.value() < nf.min_notional {
                out.push(FilterFailure::MinNotional {
                    value: n.to_string(),
                    min: plain(nf.min_notional),
                });
            }
            if let Some(max) = nf.max_notional
                && (!is_market || nf.apply_max_to_market)
                && !max.is_zero()
                && n.value() > max
            {
                out.push(FilterFailure::MaxNotional {
                    value: n.to_string(),
                    max: plain(max),
                });
            }
        }
        if let (Some(pp), Some(r), Some(p)) = (&self.filters.percent_price_by_side, reference, order.price) {
            let (down, up) = match order.side {
                Side::Buy => (pp.bid_multiplier_down, pp.bid_multiplier_up),
                Side::Sell => (pp.ask_multiplier_down, pp.ask_multiplier_up),
            };
            // Checked: an absurd reference price must be a failure, never an overflow panic.
            let (Some(low), Some(high)) = (r.value().checked_mul(down), r.value().checked_mul(up)) else {
                out.push(FilterFailure::PercentPrice {
                    side: order.side,
                    value: p.to_string(),
                    low: "overflow".to_string(),
                    high: "overflow".to_string(),
                });
                return out;
            };
            if p.value() < low || p.value() > high {
                out.push(FilterFailure::PercentPrice {
                    side: order.side,
                    value: p.to_string(),
                    low: plain(low),
                    high: plain(high),
                });
            }
        }
        out
    }
}

/// How an order ticket prices its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketKind {
    Market,
    Limit { price: Price },
}

/// An order ticket as the trader typed it (before risk and rounding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub symbol: Symbol,
    pub side: Side,
    pub kind: TicketKind,
    pub qty: Qty,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
}

impl Ticket {
    pub fn order_type(&self) -> OrderType {
        match self.kind {
            TicketKind::Market => OrderType::Market,
            TicketKind::Limit { .. } => OrderType::Limit,
        }
    }

    pub fn limit_price(&self) -> Option<Price> {
        match self.kind {
            TicketKind::Market => None,
            TicketKind::Limit { price } => Some(price),
        }
    }
}

/// One execution (a trade) of one of the account's orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub symbol: Symbol,
    pub trade_id: u64,
    pub order_id: u64,
    pub client_order_id: Option<ClientOrderId>,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub commission: Qty,
    pub commission_asset: Asset,
    pub time_ms: i64,
    pub is_maker: bool,
}

/// One asset's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub asset: Asset,
    pub free: Qty,
    pub locked: Qty,
}

impl Balance {
    pub fn total(&self) -> Qty {
        self.free.checked_add(self.locked).unwrap_or(self.free)
    }
}

/// A top-of-book quote with the time it was received (ms since epoch, local clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub bid: Price,
    pub ask: Price,
    pub time_ms: i64,
}

impl Quote {
    /// The mid price, `(bid + ask) / 2`.
    pub fn mid(&self) -> Price {
        let sum = self
            .bid
            .value()
            .checked_add(self.ask.value())
            .unwrap_or(self.ask.value());
        Price::try_new(sum / Decimal::TWO).unwrap_or(self.ask)
    }
}

/// An order as crbot knows it (journal and exchange merged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub client_order_id: ClientOrderId,
    pub order_id: Option<u64>,
    pub order_list_id: Option<i64>,
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub qty: Qty,
    pub executed_qty: Qty,
    pub cumulative_quote_qty: Notional,
    pub state: LocalOrderState,
    /// Entry, protective stop-loss, take-profit, exit, flatten — why crbot sent it.
    pub purpose: OrderPurpose,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Why crbot sent an order; decides how reducing/halted states treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderPurpose {
    Entry,
    StopLoss,
    TakeProfit,
    Exit,
    Flatten,
    /// Found on the exchange, not created by crbot.
    External,
}

impl OrderPurpose {
    pub fn as_code(self) -> &'static str {
        match self {
            OrderPurpose::Entry => "ENTRY",
            OrderPurpose::StopLoss => "STOP_LOSS",
            OrderPurpose::TakeProfit => "TAKE_PROFIT",
            OrderPurpose::Exit => "EXIT",
            OrderPurpose::Flatten => "FLATTEN",
            OrderPurpose::External => "EXTERNAL",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "ENTRY" => OrderPurpose::Entry,
            "STOP_LOSS" => OrderPurpose::StopLoss,
            "TAKE_PROFIT" => OrderPurpose::TakeProfit,
            "EXIT" => OrderPurpose::Exit,
            "FLATTEN" => OrderPurpose::Flatten,
            "EXTERNAL" => OrderPurpose::External,
            _ => return None,
        })
    }

    /// Protective orders stay on the exchange when trading goes to *reducing*.
    pub fn is_protective(self) -> bool {
        matches!(self, OrderPurpose::StopLoss | OrderPurpose::TakeProfit)
    }
}

/// The account's trading mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    Sim,
    Paper,
    Demo,
    Testnet,
    Live,
}

impl Mode {
    pub const ALL: [Mode; 5] = [Mode::Sim, Mode::Paper, Mode::Demo, Mode::Testnet, Mode::Live];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sim => "sim",
            Mode::Paper => "paper",
            Mode::Demo => "demo",
            Mode::Testnet => "testnet",
            Mode::Live => "live",
        }
    }

    /// Demo, testnet and live trade with keys from the vault.
    pub fn needs_keys(self) -> bool {
        matches!(self, Mode::Demo | Mode::Testnet | Mode::Live)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sim" => Ok(Mode::Sim),
            "paper" => Ok(Mode::Paper),
            "demo" => Ok(Mode::Demo),
            "testnet" => Ok(Mode::Testnet),
            "live" => Ok(Mode::Live),
            other => Err(format!(
                "unknown mode `{other}` (allowed: sim, paper, demo, testnet, live)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }

    fn rules() -> SymbolRules {
        SymbolRules {
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            status: SymbolStatus::Trading,
            base_asset: Asset::new("BTC").expect("ok"),
            quote_asset: Asset::usdt(),
            order_types: vec![OrderType::Market, OrderType::Limit],
            oco_allowed: true,
            filters: Filters {
                price: Some(PriceFilter {
                    min_price: d("0.01"),
                    max_price: d("1000000"),
                    tick_size: d("0.01"),
                }),
                lot_size: Some(LotSize {
                    min_qty: d("0.00001"),
                    max_qty: d("9000"),
                    step_size: d("0.00001"),
                }),
                market_lot_size: Some(LotSize {
                    min_qty: d("0.0001"),
                    max_qty: d("100"),
                    step_size: d("0.0001"),
                }),
                notional: Some(NotionalFilter {
                    min_notional: d("5"),
                    apply_min_to_market: true,
                    max_notional: Some(d("9000000")),
                    apply_max_to_market: false,
                }),
                percent_price_by_side: Some(PercentPriceBySide {
                    bid_multiplier_up: d("5"),
                    bid_multiplier_down: d("0.2"),
                    ask_multiplier_up: d("5"),
                    ask_multiplier_down: d("0.2"),
                }),
                max_num_orders: Some(200),
            },
        }
    }

    fn order(order_type: OrderType, qty: &str, price: Option<&str>) -> OrderRequest {
        OrderRequest {
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            side: Side::Buy,
            order_type,
            time_in_force: None,
            qty: qty.parse().expect("ok"),
            price: price.map(|p| p.parse().expect("ok")),
            stop_price: None,
            client_order_id: ClientOrderId::new("t1").expect("ok"),
        }
    }

    #[test]
    fn symbol_is_upper_cased_and_validated() {
        assert_eq!(Symbol::new("btcusdt").expect("ok").as_str(), "BTCUSDT");
        assert!(Symbol::new("BTC/USDT").is_err());
        assert!(Symbol::new("").is_err());
    }

    #[test]
    fn client_order_id_format_is_enforced() {
        assert!(ClientOrderId::new(&"a".repeat(36)).is_ok());
        assert!(ClientOrderId::new(&"a".repeat(37)).is_err());
        assert!(ClientOrderId::new("has space").is_err());
        let g = ClientOrderId::generate(1_764_000_000_000, u64::MAX);
        assert!(ClientOrderId::new(g.as_str()).is_ok(), "{g}");
    }

    #[test]
    fn a_valid_limit_order_passes_every_filter() {
        let p = Price::try_new(d("60000")).expect("ok");
        assert_eq!(
            rules().check(&order(OrderType::Limit, "0.001", Some("60000.01")), Some(p)),
            vec![]
        );
    }

    #[test]
    fn filters_name_each_failure() {
        let p = Price::try_new(d("60000")).expect("ok");
        let f = rules().check(&order(OrderType::Limit, "0.0000015", Some("60000.015")), Some(p));
        assert!(f.iter().any(|x| matches!(x, FilterFailure::Tick { .. })), "{f:?}");
        assert!(f.iter().any(|x| matches!(x, FilterFailure::Step { .. })), "{f:?}");
        assert!(
            f.iter().any(|x| matches!(x, FilterFailure::QtyRange { .. })),
            "{f:?}"
        );
        assert!(
            f.iter().any(|x| matches!(x, FilterFailure::MinNotional { .. })),
            "{f:?}"
        );
        let far = rules().check(&order(OrderType::Limit, "0.001", Some("400000")), Some(p));
        assert!(
            far.iter()
                .any(|x| matches!(x, FilterFailure::PercentPrice { .. })),
            "{far:?}"
        );
    }

    #[test]
    fn market_orders_use_market_lot_size_and_reference_price() {
        let p = Price::try_new(d("60000")).expect("ok");
        // 0.00005 is a LOT_SIZE multiple but not a MARKET_LOT_SIZE one.
        let f = rules().check(&order(OrderType::Market, "0.00005", None), Some(p));
        assert!(
            f.iter().any(|x| matches!(
                x,
                FilterFailure::Step {
                    filter: "MARKET_LOT_SIZE",
                    ..
                }
            )),
            "{f:?}"
        );
        assert_eq!(
            rules()
                .round_qty(OrderType::Market, "0.12345".parse().expect("ok"))
                .to_string(),
            "0.1234"
        );
        assert_eq!(
            rules()
                .round_qty(OrderType::Limit, "0.123456".parse().expect("ok"))
                .to_string(),
            "0.12345"
        );
    }

    #[test]
    fn price_rounds_to_the_conservative_side() {
        let p: Price = "100.005".parse().expect("ok");
        assert_eq!(rules().round_price(Side::Buy, p).to_string(), "100");
        assert_eq!(rules().round_price(Side::Sell, p).to_string(), "100.01");
    }

    #[test]
    fn a_symbol_not_trading_fails() {
        let mut r = rules();
        r.status = SymbolStatus::Halt;
        let f = r.check(&order(OrderType::Limit, "0.001", Some("60000")), None);
        assert!(f.iter().any(|x| matches!(x, FilterFailure::NotTrading { .. })));
    }

    #[test]
    fn local_state_codes_round_trip() {
        for s in [
            LocalOrderState::Pending,
            LocalOrderState::Sending,
            LocalOrderState::Unknown,
            LocalOrderState::NotSent,
            LocalOrderState::Exchange(OrderStatus::PartiallyFilled),
        ] {
            assert_eq!(LocalOrderState::from_code(s.as_code()), Some(s));
        }
        assert!(LocalOrderState::Unknown.is_open());
        assert!(!LocalOrderState::Exchange(OrderStatus::Filled).is_open());
    }

    #[test]
    fn wire_enums_parse_binance_names() {
        assert_eq!(
            "STOP_LOSS_LIMIT".parse::<OrderType>(),
            Ok(OrderType::StopLossLimit)
        );
        assert!("stop".parse::<OrderType>().is_err());
        assert_eq!(serde_json::to_string(&Side::Sell).expect("ok"), "\"SELL\"");
    }
}
