//! Stream payloads: market-stream frames and user-data events over the
//! WebSocket API (§8), parsed into owned events for the engine.
//!
//! Owns: the frame shapes and their conversion (an order event also reads as the domain's
//! [`OrderReport`]). Must not: panic or give up on a bad frame —
//! every parse returns a typed error the stream task counts and logs; do I/O.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::book::DepthDiff;
use super::wire::{BalanceWire, Depth, DepthWire, Kline, depth_from_wire, parse_balances};
use crate::domain::broker::OrderReport;
use crate::domain::{
    Asset, Balance, ClientOrderId, Fill, Notional, OrderStatus, OrderType, Price, Qty, Side, Symbol,
};

/// A frame that could not be read. Counted and logged by the stream tasks, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct FrameError(pub String);

fn bad(what: impl std::fmt::Display) -> FrameError {
    FrameError(what.to_string())
}

fn not_decimal(s: &str) -> FrameError {
    bad(format!("`{s}` is not a decimal"))
}

fn dec(s: &str) -> Result<Decimal, FrameError> {
    read_decimal(s.trim()).ok_or_else(|| not_decimal(s))
}

/// `s` as a decimal: a plain one (an optional `-`, up to 19 digits, at most one point between
/// two of them, which is how Binance writes every number) read in one pass into an integer
/// mantissa and its scale; anything else by `Decimal`'s own parser. The same value and scale
/// either way (a property test holds the two to each other).
fn read_decimal(s: &str) -> Option<Decimal> {
    match plain_decimal(s) {
        Some(d) => Some(d),
        None => s.parse::<Decimal>().ok(),
    }
}

/// The one-pass read of [`read_decimal`]; `None` when `s` is not a plain decimal of at most 19
/// digits (so the mantissa cannot overflow a u64).
fn plain_decimal(s: &str) -> Option<Decimal> {
    let bytes = s.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0u32;
    let mut point = None;
    for (i, b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' if count < 19 => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
            }
            b'.' if point.is_none() && i > 0 && i + 1 < digits.len() => point = Some(i),
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let scale = point.map_or(0, |p| digits.len() - p - 1);
    let signed = if negative {
        -i128::from(mantissa)
    } else {
        i128::from(mantissa)
    };
    Decimal::try_from_i128_with_scale(signed, u32::try_from(scale).ok()?).ok()
}

/// `s` without the zeros that end its fraction (and without the point, when nothing is left
/// after it): `"97250.01000000"` is `"97250.01"`, `"97250.00000000"` is `"97250"`. Binance
/// writes every price and quantity with eight decimals; a [`Price`] or [`Qty`] keeps its value
/// normalised, so reading the short form gives the same value, without parsing eight digits
/// and then dividing them away one by one. `None` when there is nothing to strip or the text is
/// anything but a plain `-`, digits and one point (it is then read as it is, by [`dec`]).
fn without_trailing_zeros(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut point = None;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' | b'-' => {}
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    let point = point?;
    let fraction = s.get(point + 1..)?.trim_end_matches('0');
    let end = if fraction.is_empty() {
        point
    } else {
        point + 1 + fraction.len()
    };
    let short = s.get(..end)?;
    (end < s.len() && short.ends_with(|c: char| c.is_ascii_digit())).then_some(short)
}

/// A price or quantity as [`dec`] reads it, trailing zeros skipped (the same value).
fn number(s: &str) -> Result<Decimal, FrameError> {
    match without_trailing_zeros(s) {
        Some(short) => read_decimal(short).ok_or_else(|| not_decimal(s)),
        None => dec(s),
    }
}

fn price(s: &str) -> Result<Price, FrameError> {
    Price::try_new(number(s)?).map_err(bad)
}

fn qty(s: &str) -> Result<Qty, FrameError> {
    Qty::try_new(number(s)?).map_err(bad)
}

fn symbol(s: &str) -> Result<Symbol, FrameError> {
    Symbol::new(s).map_err(bad)
}

/// Connection-level news from a stream task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    Connected {
        streams: usize,
    },
    Disconnected {
        reason: String,
    },
    /// Exchange event time to local receipt, corrected by the clock offset (ms).
    Latency {
        ms: i64,
    },
    /// No message for this symbol within the stale threshold: refuse entries on it.
    Stale {
        symbol: Symbol,
    },
    /// Messages for a stale symbol flow again.
    Fresh {
        symbol: Symbol,
    },
    /// The exchange announced a shutdown; the task reconnects.
    ServerShutdown,
    /// A frame could not be read (running total).
    Malformed {
        total: u64,
    },
}

/// One market-data event (owned, for the engine's channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    BookTicker {
        symbol: Symbol,
        bid: Price,
        bid_qty: Qty,
        ask: Price,
        ask_qty: Qty,
        update_id: u64,
        recv_ms: i64,
    },
    MiniTicker {
        symbol: Symbol,
        open: Price,
        close: Price,
        high: Price,
        low: Price,
        volume: Qty,
        quote_volume: Notional,
        event_ms: i64,
    },
    Kline {
        symbol: Symbol,
        interval: String,
        kline: Kline,
        event_ms: i64,
    },
    Depth {
        symbol: Symbol,
        depth: Depth,
        recv_ms: i64,
    },
    /// A `depthUpdate` of the `@depth@100ms` diff stream (the selected symbol's local book).
    DepthDiff {
        symbol: Symbol,
        diff: DepthDiff,
        event_ms: i64,
    },
    /// An `@aggTrade`: a trade printed on the exchange (the selected symbol's tape).
    Trade {
        symbol: Symbol,
        trade: StreamTrade,
        event_ms: i64,
    },
    Status(StreamStatus),
}

/// One aggregated trade of the `@aggTrade` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTrade {
    /// `a`: the aggregate trade id.
    pub id: u64,
    pub price: Price,
    pub qty: Qty,
    /// `T`: the trade time.
    pub time_ms: i64,
    /// `m`: the buyer was the maker, so the taker sold.
    pub buyer_maker: bool,
}

impl MarketEvent {
    pub fn symbol(&self) -> Option<&Symbol> {
        match self {
            MarketEvent::BookTicker { symbol, .. }
            | MarketEvent::MiniTicker { symbol, .. }
            | MarketEvent::Kline { symbol, .. }
            | MarketEvent::Depth { symbol, .. }
            | MarketEvent::DepthDiff { symbol, .. }
            | MarketEvent::Trade { symbol, .. } => Some(symbol),
            MarketEvent::Status(_) => None,
        }
    }

    /// The exchange's event time, when the payload carries one.
    pub fn event_ms(&self) -> Option<i64> {
        match self {
            MarketEvent::MiniTicker { event_ms, .. }
            | MarketEvent::Kline { event_ms, .. }
            | MarketEvent::DepthDiff { event_ms, .. }
            | MarketEvent::Trade { event_ms, .. } => Some(*event_ms),
            _ => None,
        }
    }
}

/// What a market-stream text frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketFrame {
    Event(MarketEvent),
    /// Answer to SUBSCRIBE/UNSUBSCRIBE (`{"result":null,"id":1}` or an error).
    Reply {
        id: Option<i64>,
        error: Option<String>,
    },
    ServerShutdown,
    /// A stream crbot does not consume.
    Ignored,
}

#[derive(Deserialize)]
struct BookTickerWire<'a> {
    u: u64,
    s: &'a str,
    b: &'a str,
    #[serde(rename = "B")]
    bq: &'a str,
    a: &'a str,
    #[serde(rename = "A")]
    aq: &'a str,
}

#[derive(Deserialize)]
struct MiniTickerWire<'a> {
    #[serde(rename = "E")]
    event: i64,
    s: &'a str,
    c: &'a str,
    o: &'a str,
    h: &'a str,
    l: &'a str,
    v: &'a str,
    q: &'a str,
}

#[derive(Deserialize)]
struct KlineEventWire<'a> {
    #[serde(rename = "E")]
    event: i64,
    s: &'a str,
    #[serde(borrow)]
    k: KlineWire<'a>,
}

#[derive(Deserialize)]
struct KlineWire<'a> {
    t: i64,
    #[serde(rename = "T")]
    close_t: i64,
    i: &'a str,
    o: &'a str,
    c: &'a str,
    h: &'a str,
    l: &'a str,
    v: &'a str,
    x: bool,
}

#[derive(Deserialize)]
struct DepthUpdateWire<'a> {
    #[serde(rename = "E")]
    event: i64,
    s: &'a str,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    b: Levels,
    a: Levels,
}

/// A diff's side, `[["price","qty"],…]`, read straight into decimals as the text goes by: no
/// `String` per number (each would be allocated, wiped and freed for 20 numbers a side), with
/// the checks [`dec`] makes (trimmed, a decimal) and the range a level must be in (price above
/// zero, quantity not negative; zero removes the level). Either path of
/// [`parse_market_frame`] reads it the same way, so a bad level fails both alike.
struct Levels(Vec<(Decimal, Decimal)>);

/// Levels a diff side starts with room for (a busy pair's 100 ms diff carries tens).
const LEVELS_ROOM: usize = 16;

impl<'de> Deserialize<'de> for Levels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Levels, D::Error> {
        struct Side;
        impl<'de> serde::de::Visitor<'de> for Side {
            type Value = Levels;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of [price, quantity] levels")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Levels, A::Error> {
                let mut levels = Vec::with_capacity(seq.size_hint().unwrap_or(LEVELS_ROOM).min(LEVELS_ROOM));
                while let Some(Level(p, q)) = seq.next_element()? {
                    if p <= Decimal::ZERO || q < Decimal::ZERO {
                        return Err(serde::de::Error::custom("depth level out of range"));
                    }
                    levels.push((p, q));
                }
                Ok(Levels(levels))
            }
        }
        d.deserialize_seq(Side)
    }
}

/// One `["price","qty"]` pair, exactly two decimals written as strings.
struct Level(Decimal, Decimal);

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        struct Pair;
        impl<'de> serde::de::Visitor<'de> for Pair {
            type Value = Level;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [price, quantity] pair")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Level, A::Error> {
                let missing = |n| serde::de::Error::invalid_length(n, &"a [price, quantity] pair");
                let p = seq.next_element::<DecimalText>()?.ok_or_else(|| missing(0))?;
                let q = seq.next_element::<DecimalText>()?.ok_or_else(|| missing(1))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(missing(3));
                }
                Ok(Level(p.0, q.0))
            }
        }
        d.deserialize_tuple(2, Pair)
    }
}

/// A decimal written as a JSON string, parsed from the text as it is read (borrowed from the
/// frame, or from the parser's buffer when it held an escape), as [`dec`] parses it. Not
/// [`number`]: a level's price is kept as written (the book keys it by value), so skipping its
/// zeros would only add a pass over the text.
struct DecimalText(Decimal);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DecimalText, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = DecimalText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal as a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DecimalText, E> {
                dec(s).map(DecimalText).map_err(|e| E::custom(e.0))
            }
        }
        d.deserialize_str(Text)
    }
}

#[derive(Deserialize)]
struct AggTradeWire<'a> {
    #[serde(rename = "E")]
    event: i64,
    s: &'a str,
    a: u64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "T")]
    time: i64,
    m: bool,
}

/// The diff streams (`@depth`, `@depth@100ms`), as opposed to the partial books (`@depth5`…).
fn is_depth_diff(kind: &str) -> bool {
    kind == "depth" || kind == "depth@100ms"
}

/// Parses a combined-stream frame (`{"stream":…,"data":…}`), a control reply, or a shutdown.
///
/// A message of a stream crbot consumes is decoded straight into its wire struct (one pass over
/// the text after reading the stream's name); anything else — a reply, a shutdown, a stream crbot
/// ignores, a frame that does not decode that way — goes through the general path over a JSON
/// value, which decides every case, so both paths give the same answer for any frame.
pub fn parse_market_frame(text: &str, recv_ms: i64) -> Result<MarketFrame, FrameError> {
    match parse_stream_message(text, recv_ms) {
        Some(event) => Ok(MarketFrame::Event(event)),
        None => parse_market_value(text, recv_ms),
    }
}

/// The stream's name of a combined-stream frame; the rest of the frame is skipped.
#[derive(Deserialize)]
struct StreamName<'a> {
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
}

/// The stream's name when the frame starts with it, as Binance writes them
/// (`{"stream":"btcusdt@bookTicker",…`): read without a pass over the payload. A name with an
/// escape, or a frame laid out otherwise, is left to [`StreamName`].
fn leading_stream_name(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"stream":""#)?;
    let name = &rest[..rest.find('"')?];
    (!name.contains('\\')).then_some(name)
}

/// A combined-stream frame, typed. The name is read again so that a frame naming two streams
/// (a repeated key) is refused here and left to the general path.
#[derive(Deserialize)]
struct Framed<'a, T> {
    #[serde(borrow)]
    stream: Cow<'a, str>,
    data: T,
}

fn typed<'a, T: Deserialize<'a>>(text: &'a str, name: &str) -> Option<T> {
    let framed = serde_json::from_str::<Framed<T>>(text).ok()?;
    (framed.stream == name).then_some(framed.data)
}

/// The common case of [`parse_market_frame`]; `None` when the general path must decide.
fn parse_stream_message(text: &str, recv_ms: i64) -> Option<MarketEvent> {
    if text.contains("serverShutdown") {
        return None;
    }
    let name = match leading_stream_name(text) {
        Some(name) => Cow::Borrowed(name),
        None => serde_json::from_str::<StreamName>(text).ok()?.stream?,
    };
    let (prefix, kind) = name.split_once('@')?;
    if kind == "bookTicker" {
        book_ticker(typed(text, &name)?, recv_ms).ok()
    } else if kind == "miniTicker" {
        mini_ticker(typed(text, &name)?).ok()
    } else if kind.starts_with("kline_") {
        kline(typed(text, &name)?).ok()
    } else if is_depth_diff(kind) {
        depth_update(typed(text, &name)?).ok()
    } else if kind == "aggTrade" {
        agg_trade(typed(text, &name)?).ok()
    } else if kind.starts_with("depth") {
        depth(prefix, &typed(text, &name)?, recv_ms).ok()
    } else {
        None
    }
}

fn book_ticker(w: BookTickerWire<'_>, recv_ms: i64) -> Result<MarketEvent, FrameError> {
    Ok(MarketEvent::BookTicker {
        symbol: symbol(w.s)?,
        bid: price(w.b)?,
        bid_qty: qty(w.bq)?,
        ask: price(w.a)?,
        ask_qty: qty(w.aq)?,
        update_id: w.u,
        recv_ms,
    })
}

fn mini_ticker(w: MiniTickerWire<'_>) -> Result<MarketEvent, FrameError> {
    Ok(MarketEvent::MiniTicker {
        symbol: symbol(w.s)?,
        open: price(w.o)?,
        close: price(w.c)?,
        high: price(w.h)?,
        low: price(w.l)?,
        volume: qty(w.v)?,
        quote_volume: Notional::try_new(dec(w.q)?).map_err(bad)?,
        event_ms: w.event,
    })
}

fn kline(w: KlineEventWire<'_>) -> Result<MarketEvent, FrameError> {
    Ok(MarketEvent::Kline {
        symbol: symbol(w.s)?,
        interval: w.k.i.to_string(),
        kline: Kline {
            open_time_ms: w.k.t,
            close_time_ms: w.k.close_t,
            open: price(w.k.o)?,
            high: price(w.k.h)?,
            low: price(w.k.l)?,
            close: price(w.k.c)?,
            volume: qty(w.k.v)?,
            closed: w.k.x,
        },
        event_ms: w.event,
    })
}

fn depth_update(w: DepthUpdateWire<'_>) -> Result<MarketEvent, FrameError> {
    if w.first > w.u {
        return Err(bad("depthUpdate with U > u"));
    }
    Ok(MarketEvent::DepthDiff {
        symbol: symbol(w.s)?,
        diff: DepthDiff {
            first_id: w.first,
            last_id: w.u,
            bids: w.b.0,
            asks: w.a.0,
        },
        event_ms: w.event,
    })
}

fn agg_trade(w: AggTradeWire<'_>) -> Result<MarketEvent, FrameError> {
    Ok(MarketEvent::Trade {
        symbol: symbol(w.s)?,
        trade: StreamTrade {
            id: w.a,
            price: price(w.p)?,
            qty: qty(w.q)?,
            time_ms: w.time,
            buyer_maker: w.m,
        },
        event_ms: w.event,
    })
}

/// Partial book snapshots carry no symbol: it comes from the stream name.
fn depth(prefix: &str, w: &DepthWire, recv_ms: i64) -> Result<MarketEvent, FrameError> {
    Ok(MarketEvent::Depth {
        symbol: symbol(prefix)?,
        depth: depth_from_wire(w).map_err(bad)?,
        recv_ms,
    })
}

/// The general path of [`parse_market_frame`], over a JSON value.
fn parse_market_value(text: &str, recv_ms: i64) -> Result<MarketFrame, FrameError> {
    let v: Value = serde_json::from_str(text).map_err(bad)?;
    if v.get("stream").is_none() {
        if v.get("e").and_then(Value::as_str) == Some("serverShutdown") {
            return Ok(MarketFrame::ServerShutdown);
        }
        if v.get("id").is_some() || v.get("result").is_some() || v.get("code").is_some() {
            let error = v
                .get("msg")
                .or_else(|| v.get("error").and_then(|e| e.get("msg")))
                .and_then(Value::as_str)
                .map(str::to_string);
            return Ok(MarketFrame::Reply {
                id: v.get("id").and_then(Value::as_i64),
                error,
            });
        }
        return Err(bad("neither a stream message nor a reply"));
    }
    let stream = v
        .get("stream")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("stream is not text"))?;
    let data = v.get("data").cloned().ok_or_else(|| bad("no data"))?;
    if stream.contains("serverShutdown") || data.get("e").and_then(Value::as_str) == Some("serverShutdown") {
        return Ok(MarketFrame::ServerShutdown);
    }
    let (prefix, kind) = stream
        .split_once('@')
        .ok_or_else(|| bad("stream name without @"))?;
    let ev = if kind == "bookTicker" {
        book_ticker(Deserialize::deserialize(&data).map_err(bad)?, recv_ms)?
    } else if kind == "miniTicker" {
        mini_ticker(Deserialize::deserialize(&data).map_err(bad)?)?
    } else if kind.starts_with("kline_") {
        kline(Deserialize::deserialize(&data).map_err(bad)?)?
    } else if is_depth_diff(kind) {
        depth_update(Deserialize::deserialize(&data).map_err(bad)?)?
    } else if kind == "aggTrade" {
        agg_trade(Deserialize::deserialize(&data).map_err(bad)?)?
    } else if kind.starts_with("depth") && data.get("lastUpdateId").is_some() {
        depth(prefix, &DepthWire::deserialize(&data).map_err(bad)?, recv_ms)?
    } else {
        return Ok(MarketFrame::Ignored);
    };
    Ok(MarketFrame::Event(ev))
}

/// The stream names crbot subscribes per watchlist symbol. No book: only the selected
/// symbol's is followed ([`focus_streams_for`]), so a long watchlist costs no depth streams.
pub fn streams_for(symbol: &Symbol) -> [String; 3] {
    let s = symbol.stream_name();
    [
        format!("{s}@bookTicker"),
        format!("{s}@miniTicker"),
        format!("{s}@kline_1m"),
    ]
}

/// The streams of the selected symbol only: its book's diffs, its trades and its chart's
/// candles at `interval` (`1m`, `5m`, `1h`, `1d`).
pub fn focus_streams_for(symbol: &Symbol, interval: &str) -> [String; 3] {
    let s = symbol.stream_name();
    [
        format!("{s}@depth@100ms"),
        format!("{s}@aggTrade"),
        format!("{s}@kline_{interval}"),
    ]
}

/// `x` of an executionReport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionType {
    New,
    Canceled,
    Replaced,
    Rejected,
    Trade,
    Expired,
    TradePrevention,
    Other(String),
}

impl ExecutionType {
    fn parse(s: &str) -> Self {
        match s {
            "NEW" => ExecutionType::New,
            "CANCELED" => ExecutionType::Canceled,
            "REPLACED" => ExecutionType::Replaced,
            "REJECTED" => ExecutionType::Rejected,
            "TRADE" => ExecutionType::Trade,
            "EXPIRED" => ExecutionType::Expired,
            "TRADE_PREVENTION" => ExecutionType::TradePrevention,
            other => ExecutionType::Other(other.to_string()),
        }
    }
}

/// An `executionReport`: one order state change, with the fill when `x == TRADE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub symbol: Symbol,
    /// `c`: this event's request id (for a cancel: the cancel's own id).
    pub client_order_id: String,
    /// `C`: on cancels, the cancelled order's id; `None` otherwise.
    pub orig_client_order_id: Option<String>,
    pub order_id: u64,
    pub order_list_id: Option<i64>,
    pub side: Side,
    pub order_type: OrderType,
    pub execution: ExecutionType,
    pub status: OrderStatus,
    pub reject_reason: String,
    pub qty: Qty,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub cumulative_qty: Qty,
    pub cumulative_quote: Notional,
    /// The fill of this event (`x == TRADE`), deduplicate by `(symbol, trade_id, order_id)`.
    pub fill: Option<Fill>,
    pub event_ms: i64,
    pub transaction_ms: i64,
}

impl OrderUpdate {
    /// The order's own client id (the original on a cancel event).
    pub fn order_client_id(&self) -> &str {
        match &self.orig_client_order_id {
            Some(c) => c,
            None => &self.client_order_id,
        }
    }

    /// The order as this event reports it, in the domain's words: what a query would have
    /// answered at this moment (the stream carries no time in force crbot reads). The
    /// execution type, the fill and the reject reason are the event's own and stay on it.
    pub fn report(&self) -> OrderReport {
        OrderReport {
            symbol: self.symbol.clone(),
            order_id: self.order_id,
            order_list_id: self.order_list_id,
            client_order_id: self.client_order_id.clone(),
            orig_client_order_id: self.orig_client_order_id.clone(),
            side: self.side,
            order_type: self.order_type,
            time_in_force: None,
            status: self.status,
            price: self.price,
            stop_price: self.stop_price,
            orig_qty: self.qty,
            executed_qty: self.cumulative_qty,
            cumulative_quote_qty: self.cumulative_quote,
            time_ms: self.transaction_ms,
            update_ms: self.event_ms,
        }
    }
}

/// A `listStatus` event (OCO progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStatusUpdate {
    pub symbol: Symbol,
    pub order_list_id: i64,
    pub list_client_order_id: String,
    pub list_status_type: String,
    pub list_order_status: String,
    pub legs: Vec<(u64, String)>,
    pub event_ms: i64,
}

/// One user-data event (owned, for the engine's channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    Order(Box<OrderUpdate>),
    /// `outboundAccountPosition`: absolute balances of the assets that changed.
    AccountPosition {
        balances: Vec<Balance>,
        update_ms: i64,
        event_ms: i64,
    },
    /// `balanceUpdate`: a deposit, withdrawal or transfer (a signed delta).
    BalanceDelta {
        asset: Asset,
        delta: Decimal,
        event_ms: i64,
        clear_ms: i64,
    },
    ListStatus(ListStatusUpdate),
    /// Subscribed (first time or after a reconnect). Events during the gap are not replayed:
    /// the owner must now resync by REST (open orders, account, unfinished orders, myTrades).
    Subscribed {
        subscription_id: i64,
    },
    Disconnected {
        reason: String,
    },
    /// The exchange ended the subscription (`eventStreamTerminated`); the task resubscribes.
    Terminated,
    Malformed {
        total: u64,
    },
}

/// What a WebSocket API text frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFrame {
    Event(UserEvent),
    /// A response to one of our requests.
    Response {
        id: String,
        status: u16,
        result: Option<Value>,
        error: Option<(i64, String)>,
        /// `error.data.retryAfter` of a 429 or 418: when the exchange takes requests again
        /// (epoch ms).
        retry_after_ms: Option<i64>,
    },
    ServerShutdown,
    Ignored,
}

#[derive(Deserialize)]
struct ExecReportWire {
    #[serde(rename = "E")]
    event: i64,
    s: String,
    c: String,
    #[serde(rename = "S")]
    side: String,
    o: String,
    q: String,
    p: String,
    #[serde(rename = "P", default)]
    stop: Option<String>,
    #[serde(default = "minus_one")]
    g: i64,
    #[serde(rename = "C", default)]
    orig: Option<String>,
    x: String,
    #[serde(rename = "X")]
    status: String,
    #[serde(default)]
    r: Option<String>,
    i: u64,
    l: String,
    z: String,
    #[serde(rename = "L")]
    last_price: String,
    n: Option<String>,
    #[serde(rename = "N")]
    commission_asset: Option<String>,
    #[serde(rename = "T")]
    tx: i64,
    t: i64,
    #[serde(default)]
    m: bool,
    #[serde(rename = "Z")]
    cum_quote: String,
}

fn minus_one() -> i64 {
    -1
}

fn parse_execution_report(v: Value) -> Result<OrderUpdate, FrameError> {
    let w: ExecReportWire = serde_json::from_value(v).map_err(bad)?;
    let sym = symbol(&w.s)?;
    let side: Side = w.side.parse().map_err(bad)?;
    let execution = ExecutionType::parse(&w.x);
    let orig = w.orig.filter(|c| !c.is_empty());
    let order_cid = orig.clone().unwrap_or_else(|| w.c.clone());
    let fill = if execution == ExecutionType::Trade && w.t >= 0 {
        let commission_asset = match w.commission_asset.as_deref() {
            Some(a) => Asset::new(a).map_err(bad)?,
            None => return Err(bad("trade without commission asset")),
        };
        Some(Fill {
            symbol: sym.clone(),
            trade_id: u64::try_from(w.t).map_err(bad)?,
            order_id: w.i,
            client_order_id: ClientOrderId::new(&order_cid).ok(),
            side,
            price: price(&w.last_price)?,
            qty: qty(&w.l)?,
            commission: qty(w.n.as_deref().unwrap_or("0"))?,
            commission_asset,
            time_ms: w.tx,
            is_maker: w.m,
        })
    } else {
        None
    };
    let p = price(&w.p)?;
    let stop = match w.stop.as_deref() {
        Some(s) => Some(price(s)?).filter(|p| !p.is_zero()),
        None => None,
    };
    Ok(OrderUpdate {
        symbol: sym,
        client_order_id: w.c,
        orig_client_order_id: orig,
        order_id: w.i,
        order_list_id: (w.g >= 0).then_some(w.g),
        side,
        order_type: w.o.parse().map_err(bad)?,
        execution,
        status: w.status.parse().map_err(bad)?,
        reject_reason: w.r.unwrap_or_else(|| "NONE".into()),
        qty: qty(&w.q)?,
        price: (!p.is_zero()).then_some(p),
        stop_price: stop,
        cumulative_qty: qty(&w.z)?,
        cumulative_quote: Notional::try_new(dec(&w.cum_quote)?).map_err(bad)?,
        fill,
        event_ms: w.event,
        transaction_ms: w.tx,
    })
}

#[derive(Deserialize)]
struct AccountPositionWire {
    #[serde(rename = "E")]
    event: i64,
    u: i64,
    #[serde(rename = "B")]
    balances: Vec<BalanceWire>,
}

#[derive(Deserialize)]
struct BalanceUpdateWire {
    #[serde(rename = "E")]
    event: i64,
    a: String,
    d: String,
    #[serde(rename = "T")]
    clear: i64,
}

#[derive(Deserialize)]
struct ListStatusWire {
    #[serde(rename = "E")]
    event: i64,
    s: String,
    g: i64,
    l: String,
    #[serde(rename = "L")]
    order_status: String,
    #[serde(rename = "C")]
    list_cid: String,
    #[serde(rename = "O", default)]
    orders: Vec<ListLegWire>,
}

#[derive(Deserialize)]
struct ListLegWire {
    i: u64,
    c: String,
}

/// Parses one user-data event payload (the object inside `"event"`).
pub fn parse_user_event(v: Value) -> Result<Option<UserEvent>, FrameError> {
    let kind = v.get("e").and_then(Value::as_str).unwrap_or("").to_string();
    Ok(Some(match kind.as_str() {
        "executionReport" => UserEvent::Order(Box::new(parse_execution_report(v)?)),
        "outboundAccountPosition" => {
            let w: AccountPositionWire = serde_json::from_value(v).map_err(bad)?;
            let (balances, _skipped) = parse_balances(w.balances).map_err(bad)?;
            UserEvent::AccountPosition {
                balances,
                update_ms: w.u,
                event_ms: w.event,
            }
        }
        "balanceUpdate" => {
            let w: BalanceUpdateWire = serde_json::from_value(v).map_err(bad)?;
            UserEvent::BalanceDelta {
                asset: Asset::new(&w.a).map_err(bad)?,
                delta: dec(&w.d)?,
                event_ms: w.event,
                clear_ms: w.clear,
            }
        }
        "listStatus" => {
            let w: ListStatusWire = serde_json::from_value(v).map_err(bad)?;
            UserEvent::ListStatus(ListStatusUpdate {
                symbol: symbol(&w.s)?,
                order_list_id: w.g,
                list_client_order_id: w.list_cid,
                list_status_type: w.l,
                list_order_status: w.order_status,
                legs: w.orders.into_iter().map(|o| (o.i, o.c)).collect(),
                event_ms: w.event,
            })
        }
        "eventStreamTerminated" => UserEvent::Terminated,
        "" => return Err(bad("event without type")),
        // externalLockUpdate and future event types: not used by crbot.
        _ => return Ok(None),
    }))
}

/// Parses a WebSocket API frame: an event (`{"subscriptionId":…,"event":{…}}`), a response to
/// a request (`{"id":…,"status":…}`), or a shutdown notice.
pub fn parse_user_frame(text: &str) -> Result<UserFrame, FrameError> {
    let v: Value = serde_json::from_str(text).map_err(bad)?;
    if let Some(event) = v.get("event") {
        if event.get("e").and_then(Value::as_str) == Some("serverShutdown") {
            return Ok(UserFrame::ServerShutdown);
        }
        return Ok(match parse_user_event(event.clone())? {
            Some(e) => UserFrame::Event(e),
            None => UserFrame::Ignored,
        });
    }
    if let Some(status) = v.get("status").and_then(Value::as_u64) {
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let error = v.get("error").map(|e| {
            (
                e.get("code").and_then(Value::as_i64).unwrap_or(0),
                e.get("msg").and_then(Value::as_str).unwrap_or("").to_string(),
            )
        });
        let retry_after_ms = v
            .get("error")
            .and_then(|e| e.get("data"))
            .and_then(|d| d.get("retryAfter"))
            .and_then(Value::as_i64);
        return Ok(UserFrame::Response {
            id,
            status: u16::try_from(status).unwrap_or(0),
            result: v.get("result").cloned(),
            error,
            retry_after_ms,
        });
    }
    if v.get("e").and_then(Value::as_str) == Some("serverShutdown") {
        return Ok(UserFrame::ServerShutdown);
    }
    Err(bad("neither an event nor a response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Skipping a number's trailing zeros never changes what it reads as: the same value,
        /// or the same error for text that is not a number, whatever the text.
        #[test]
        fn numbers_read_without_trailing_zeros_are_the_same_values(
            s in prop_oneof![
                "-?[0-9]{0,12}(\\.[0-9]{0,8}0{0,8})?",
                "[-0-9. ]{0,14}",
                "[0-9]{1,6}\\.[0-9]{0,4}0{1,8}",
            ]
        ) {
            prop_assert_eq!(number(&s), dec(&s));
            if let Some(short) = without_trailing_zeros(&s) {
                prop_assert!(short.len() < s.len() && s.starts_with(short));
            }
        }
    }

    proptest! {
        /// The one-pass read of a plain decimal gives what `Decimal`'s parser gives, value and
        /// scale, and refuses what it refuses, whatever the text.
        #[test]
        fn a_plain_decimal_reads_as_decimals_own_parser_reads_it(
            s in prop_oneof![
                "-?[0-9]{1,20}(\\.[0-9]{1,20})?",
                "[-0-9.+e ]{0,24}",
            ]
        ) {
            let theirs = s.parse::<Decimal>().ok();
            let ours = read_decimal(&s);
            prop_assert_eq!(ours, theirs);
            prop_assert_eq!(ours.map(|d| d.scale()), theirs.map(|d| d.scale()));
            prop_assert_eq!(
                ours.map(|d| d.is_sign_negative()),
                theirs.map(|d| d.is_sign_negative())
            );
        }
    }

    #[test]
    fn plain_decimals_at_the_edges() {
        for s in [
            "-0",
            "-0.0",
            "0",
            "-0.00000001",
            "9999999999999999999",
            "99999999999999999999",
            "1.0000000000000000001",
            "0.1234567890123456789",
            "00.10",
            "-",
            ".5",
            "5.",
            "1..2",
            "--1",
            "1-2",
            "",
            "1.2.3",
        ] {
            let theirs = s.parse::<Decimal>().ok();
            let ours = read_decimal(s);
            assert_eq!(ours, theirs, "{s}");
            assert_eq!(ours.map(|d| d.scale()), theirs.map(|d| d.scale()), "{s}");
            assert_eq!(
                ours.map(|d| d.is_sign_negative()),
                theirs.map(|d| d.is_sign_negative()),
                "{s}"
            );
        }
    }

    #[test]
    fn binance_numbers_lose_only_their_trailing_zeros() {
        assert_eq!(without_trailing_zeros("97250.01000000"), Some("97250.01"));
        assert_eq!(without_trailing_zeros("97250.00000000"), Some("97250"));
        assert_eq!(without_trailing_zeros("0.00000000"), Some("0"));
        assert_eq!(without_trailing_zeros("97250.01"), None, "nothing to strip");
        assert_eq!(
            without_trailing_zeros("97250"),
            None,
            "no point: the zeros are the value's"
        );
        assert_eq!(without_trailing_zeros("1.0e5"), None);
        assert_eq!(
            without_trailing_zeros(" 1.50"),
            None,
            "read as it is, trimmed by dec"
        );
    }

    #[test]
    fn book_ticker_frame_has_no_event_time_and_uses_receipt_time() {
        let f = parse_market_frame(
            r#"{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#,
            77,
        )
        .expect("parse");
        match f {
            MarketFrame::Event(MarketEvent::BookTicker {
                symbol,
                bid,
                recv_ms,
                update_id,
                ..
            }) => {
                assert_eq!(
                    (symbol.as_str(), bid.to_string().as_str(), recv_ms, update_id),
                    ("BNBUSDT", "25.3519", 77, 400900217)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_field_written_with_an_escape_reads_as_the_plain_one() {
        // The typed path borrows every field from the frame, which an escape makes impossible;
        // such a frame is read by the general path instead, to the same event.
        let plain = r#"{"stream":"bnbusdt@bookTicker","data":{"u":1,"s":"BNBUSDT","b":"25.35","B":"31.2","a":"25.36","A":"40.6"}}"#;
        let escaped = r#"{"stream":"bnbusdt@bookTicker","data":{"u":1,"s":"\u0042NBUSDT","b":"25.3\u0035","B":"31.2","a":"25.36","A":"40.6"}}"#;
        assert!(
            parse_stream_message(escaped, 7).is_none(),
            "left to the general path"
        );
        assert_eq!(
            parse_market_frame(escaped, 7).expect("escaped"),
            parse_market_frame(plain, 7).expect("plain")
        );
    }

    #[test]
    fn kline_mini_ticker_and_partial_depth_frames_parse() {
        let k = parse_market_frame(
            r#"{"stream":"bnbbtc@kline_1m","data":{"e":"kline","E":123456789,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}}"#,
            0,
        )
        .expect("kline");
        assert!(
            matches!(k, MarketFrame::Event(MarketEvent::Kline { ref kline, .. }) if !kline.closed && kline.close.to_string() == "0.002")
        );
        let m = parse_market_frame(
            r#"{"stream":"bnbbtc@miniTicker","data":{"e":"24hrMiniTicker","E":5,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}}"#,
            0,
        )
        .expect("mini");
        assert_eq!(m, parse_market_frame(&m_text(), 0).expect("same"));
        let d = parse_market_frame(
            r#"{"stream":"bnbbtc@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}"#,
            9,
        )
        .expect("depth");
        assert!(
            matches!(d, MarketFrame::Event(MarketEvent::Depth { ref symbol, .. }) if symbol.as_str() == "BNBBTC")
        );
    }

    fn m_text() -> String {
        r#"{"stream":"bnbbtc@miniTicker","data":{"e":"24hrMiniTicker","E":5,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}}"#.to_string()
    }

    #[test]
    fn control_replies_and_shutdown_are_recognised() {
        assert_eq!(
            parse_market_frame(r#"{"result":null,"id":1}"#, 0),
            Ok(MarketFrame::Reply {
                id: Some(1),
                error: None
            })
        );
        assert!(matches!(
            parse_market_frame(r#"{"code":2,"msg":"Invalid request"}"#, 0),
            Ok(MarketFrame::Reply { error: Some(_), .. })
        ));
        assert_eq!(
            parse_market_frame(
                r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#,
                0
            ),
            Ok(MarketFrame::ServerShutdown)
        );
        assert_eq!(
            parse_market_frame(r#"{"e":"serverShutdown","E":1}"#, 0),
            Ok(MarketFrame::ServerShutdown)
        );
    }

    #[test]
    fn malformed_market_frames_are_errors_not_panics() {
        for text in [
            "not json",
            r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"x","B":"1","a":"1","A":"1"}}"#,
            r#"{"stream":"btcusdt@bookTicker","data":[]}"#,
            r#"{"stream":"nosuffix","data":{}}"#,
            r#"[1,2,3]"#,
        ] {
            assert!(parse_market_frame(text, 0).is_err(), "{text}");
        }
        assert_eq!(
            parse_market_frame(r#"{"stream":"btcusdt@trade","data":{}}"#, 0),
            Ok(MarketFrame::Ignored)
        );
    }

    const TRADE_REPORT: &str = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"cr-abc","S":"BUY","o":"LIMIT","f":"GTC",
        "q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE",
        "i":4293153,"l":"0.40000000","z":"0.40000000","L":"0.10264400","n":"0.0004","N":"ETH","T":1499405658657,"t":77,
        "I":8641984,"w":true,"m":true,"M":false,"O":1499405658657,"Z":"0.04105760","Y":"0.04105760","Q":"0.00000000",
        "W":1499405658657,"V":"NONE"}}"#;

    #[test]
    fn execution_report_with_a_trade_carries_the_fill() {
        let f = parse_user_frame(TRADE_REPORT).expect("parse");
        let UserFrame::Event(UserEvent::Order(u)) = f else {
            panic!("{f:?}")
        };
        assert_eq!(u.status, OrderStatus::PartiallyFilled);
        assert_eq!(u.execution, ExecutionType::Trade);
        assert_eq!(u.orig_client_order_id, None);
        assert_eq!(u.order_client_id(), "cr-abc");
        let fill = u.fill.expect("fill");
        assert_eq!(
            (fill.trade_id, fill.qty.to_string(), fill.price.to_string()),
            (77, "0.4".into(), "0.102644".into())
        );
        assert_eq!(fill.commission_asset.as_str(), "ETH");
        assert!(fill.is_maker);
        assert_eq!(fill.client_order_id.expect("cid").as_str(), "cr-abc");
    }

    #[test]
    fn an_order_event_reads_as_the_order_report_a_query_would_give() {
        let UserFrame::Event(UserEvent::Order(u)) = parse_user_frame(TRADE_REPORT).expect("parse") else {
            panic!("not an order")
        };
        let r = u.report();
        assert_eq!(r.order_client_id(), "cr-abc");
        assert_eq!((r.order_id, r.order_list_id), (4293153, None));
        assert_eq!(
            (r.side, r.order_type, r.status),
            (Side::Buy, OrderType::Limit, OrderStatus::PartiallyFilled)
        );
        assert_eq!(
            (r.orig_qty.to_string(), r.executed_qty.to_string()),
            ("1".into(), "0.4".into())
        );
        assert_eq!(r.cumulative_quote_qty.to_string(), "0.0410576");
        assert_eq!(r.price.map(|p| p.to_string()), Some("0.1026441".into()));
        assert_eq!(r.stop_price, None, "a zero stop price is no stop price");
        assert_eq!((r.time_ms, r.update_ms), (1499405658657, 1499405658658));
    }

    #[test]
    fn cancel_report_points_at_the_original_order() {
        let text = TRADE_REPORT
            .replace(r#""C":"""#, r#""C":"cr-abc""#)
            .replace(r#""c":"cr-abc""#, r#""c":"cancel-1""#)
            .replace(r#""x":"TRADE""#, r#""x":"CANCELED""#)
            .replace(r#""X":"PARTIALLY_FILLED""#, r#""X":"CANCELED""#);
        let UserFrame::Event(UserEvent::Order(u)) = parse_user_frame(&text).expect("parse") else {
            panic!("not an order")
        };
        assert_eq!(u.order_client_id(), "cr-abc");
        assert_eq!(u.fill, None);
        assert_eq!(u.status, OrderStatus::Canceled);
    }

    #[test]
    fn balance_events_and_list_status_parse() {
        let p = parse_user_frame(
            r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,"B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}}"#,
        )
        .expect("position");
        assert!(
            matches!(p, UserFrame::Event(UserEvent::AccountPosition { ref balances, .. }) if balances[0].free.to_string() == "10000")
        );
        let b = parse_user_frame(
            r#"{"subscriptionId":0,"event":{"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"-100.00000000","T":1573200697068}}"#,
        )
        .expect("delta");
        assert!(
            matches!(b, UserFrame::Event(UserEvent::BalanceDelta { delta, .. }) if delta == Decimal::from(-100))
        );
        let l = parse_user_frame(
            r#"{"subscriptionId":0,"event":{"e":"listStatus","E":1564035303637,"s":"ETHBTC","g":2,"c":"OCO","l":"EXEC_STARTED","L":"EXECUTING","r":"NONE","C":"F4QN4G8DlFATFlIUQ0cjdD","T":1564035303625,"O":[{"s":"ETHBTC","i":17,"c":"AJYsMjErWJesZvqlJCTUgL"},{"s":"ETHBTC","i":18,"c":"bfYPSQdLoqAJeNrOr9adzq"}]}}"#,
        )
        .expect("list");
        assert!(
            matches!(l, UserFrame::Event(UserEvent::ListStatus(ref s)) if s.legs.len() == 2 && s.order_list_id == 2)
        );
    }

    #[test]
    fn responses_and_terminations_are_recognised() {
        let r =
            parse_user_frame(r#"{"id":"sub-1","status":200,"result":{"subscriptionId":3}}"#).expect("resp");
        assert!(matches!(r, UserFrame::Response { status: 200, ref id, .. } if id == "sub-1"));
        let held = parse_user_frame(
            r#"{"id":"sub-3","status":429,"error":{"code":-1003,"msg":"Too much request weight used.","data":{"serverTime":1,"retryAfter":1700000060000}}}"#,
        )
        .expect("429");
        assert!(matches!(
            held,
            UserFrame::Response {
                status: 429,
                retry_after_ms: Some(1_700_000_060_000),
                ..
            }
        ));
        let e = parse_user_frame(r#"{"id":"sub-2","status":400,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}"#)
            .expect("err");
        assert!(matches!(
            e,
            UserFrame::Response {
                error: Some((-1022, _)),
                ..
            }
        ));
        assert_eq!(
            parse_user_frame(r#"{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1}}"#),
            Ok(UserFrame::Event(UserEvent::Terminated))
        );
        assert_eq!(
            parse_user_frame(
                r#"{"subscriptionId":0,"event":{"e":"externalLockUpdate","E":1,"a":"BTC","d":"1","T":1}}"#
            ),
            Ok(UserFrame::Ignored)
        );
        assert!(parse_user_frame(r#"{"subscriptionId":0,"event":{"e":"executionReport"}}"#).is_err());
        assert!(parse_user_frame("{").is_err());
    }

    /// Frames of every stream crbot consumes, and of some it does not.
    /// Frames of every stream crbot consumes (the first [`CONSUMED`]), then two it does not.
    const FRAMES: [&str; 8] = [
        r#"{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT","b":"97250.00000000","B":"0.41200000","a":"97250.01000000","A":"1.25300000"}}"#,
        r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1764333296000,"s":"BTCUSDT","c":"97250.01","o":"96120.00","h":"97800.00","l":"95900.00","v":"18231.12","q":"1771234567.12"}}"#,
        r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1764333296000,"s":"BTCUSDT","k":{"t":1764333240000,"T":1764333299999,"s":"BTCUSDT","i":"1m","o":"97240.00","c":"97250.01","h":"97260.00","l":"97230.00","v":"12.31","x":false}}}"#,
        r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["97250.00","0.41"],["97249.99","0.10"]],"asks":[["97250.01","1.25"]]}}"#,
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":157,"u":160,"b":[["97250.00000000","0.41000000"],["97249.99000000","0.00000000"]],"a":[["97250.01000000","1.25000000"],["97251.00000000","\u0031.5"]]}}"#,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":7,"s":"BTCUSDT","a":12345,"p":"97250.01","q":"0.012","f":100,"l":105,"T":6,"m":true,"M":true}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
        r#"{"result":null,"id":1}"#,
    ];

    /// The fast path answers only where it agrees with the general one.
    fn agrees(text: &str) -> Result<(), String> {
        match parse_stream_message(text, 5) {
            None => Ok(()),
            Some(fast) => match parse_market_value(text, 5) {
                Ok(MarketFrame::Event(general)) if general == fast => Ok(()),
                other => Err(format!("fast {fast:?}, general {other:?} for {text}")),
            },
        }
    }

    #[test]
    fn the_typed_path_reads_every_consumed_stream_as_the_general_path_does() {
        for text in &FRAMES[..CONSUMED] {
            assert!(
                parse_stream_message(text, 5).is_some(),
                "not on the fast path: {text}"
            );
            if let Err(e) = agrees(text) {
                panic!("{e}");
            }
        }
        for text in &FRAMES[CONSUMED..] {
            assert!(parse_stream_message(text, 5).is_none(), "{text}");
        }
        // What only the general path decides.
        let shutdown = r#"{"stream":"btcusdt@bookTicker","data":{"e":"serverShutdown","u":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}}"#;
        assert_eq!(parse_market_frame(shutdown, 5), Ok(MarketFrame::ServerShutdown));
        let two_names = r#"{"stream":"btcusdt@bookTicker","data":{"e":"kline"},"stream":"ethusdt@kline_1m"}"#;
        assert!(parse_stream_message(two_names, 5).is_none());
        let duplicate = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","s":"ETHUSDT","b":"1","B":"1","a":"1","A":"1"}}"#;
        assert!(parse_stream_message(duplicate, 5).is_none());
        assert!(matches!(
            parse_market_frame(duplicate, 5),
            Ok(MarketFrame::Event(MarketEvent::BookTicker { ref symbol, .. })) if symbol.as_str() == "ETHUSDT"
        ));
    }

    proptest::proptest! {
        /// A frame with one byte changed, dropped or repeated: the two paths never disagree.
        #[test]
        fn the_two_paths_agree_on_damaged_frames(which in 0usize..FRAMES.len(), at in 0usize..400, op in 0u8..3, byte in 0u8..128) {
            let mut bytes = FRAMES[which].as_bytes().to_vec();
            let at = at % bytes.len();
            match op {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, bytes[at]),
            }
            if let Ok(text) = String::from_utf8(bytes) {
                proptest::prop_assert!(agrees(&text).is_ok(), "{:?}", agrees(&text));
            }
        }
    }

    /// Frames of [`FRAMES`] on the typed path.
    const CONSUMED: usize = 6;

    #[test]
    fn a_diff_level_out_of_shape_or_range_is_refused_by_both_paths_alike() {
        let frame = |level: &str| {
            format!(
                r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":157,"u":160,"b":[["97250.00","0.41"],{level}],"a":[]}}}}"#
            )
        };
        let good = frame(r#"[" 97249.99 ","\u0032"]"#);
        match parse_stream_message(&good, 0) {
            Some(MarketEvent::DepthDiff { diff, .. }) => assert_eq!(
                diff.bids[1],
                (Decimal::new(9_724_999, 2), Decimal::TWO),
                "trimmed, and an escaped digit read"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(agrees(&good), Ok(()));
        for (level, why) in [
            (r#"["97249.99","x"]"#, "is not a decimal"),
            (r#"["","1"]"#, "is not a decimal"),
            (r#"["0","1"]"#, "out of range"),
            (r#"["-1","1"]"#, "out of range"),
            (r#"["97249.99","-0.1"]"#, "out of range"),
            (r#"["97249.99"]"#, "invalid length"),
            (r#"["97249.99","1","2"]"#, "invalid length"),
            (r#"[97249.99,"1"]"#, "invalid type"),
            (r#""97249.99""#, "invalid type"),
        ] {
            let text = frame(level);
            assert_eq!(parse_stream_message(&text, 0), None, "{level}");
            match parse_market_frame(&text, 0) {
                Err(FrameError(e)) => assert!(e.contains(why), "{level}: {e}"),
                other => panic!("{level}: {other:?}"),
            }
        }
    }

    #[test]
    fn depth_diffs_and_agg_trades_parse_on_both_paths() {
        let diff = r#"{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":5,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","0"]]}}"#;
        let spaced = r#"{ "stream" : "bnbbtc@depth@100ms", "data": {"e":"depthUpdate","E":5,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","0"]]}}"#;
        for text in [diff, spaced] {
            match parse_market_frame(text, 0) {
                Ok(MarketFrame::Event(MarketEvent::DepthDiff {
                    symbol,
                    diff,
                    event_ms,
                })) => {
                    assert_eq!(symbol.as_str(), "BNBBTC");
                    assert_eq!((diff.first_id, diff.last_id, event_ms), (157, 160, 5));
                    assert_eq!(diff.asks[0].1, Decimal::ZERO, "zero removes the level");
                }
                other => panic!("{other:?}"),
            }
        }
        let backwards = r#"{"stream":"bnbbtc@depth","data":{"e":"depthUpdate","E":5,"s":"BNBBTC","U":161,"u":160,"b":[],"a":[]}}"#;
        assert!(parse_market_frame(backwards, 0).is_err());
        let trade = r#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":7,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":6,"m":true,"M":true}}"#;
        match parse_market_frame(trade, 0) {
            Ok(MarketFrame::Event(MarketEvent::Trade { trade, .. })) => {
                assert_eq!((trade.id, trade.time_ms, trade.buyer_maker), (12345, 6, true));
                assert_eq!(trade.qty.to_string(), "100");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            focus_streams_for(&Symbol::new("BTCUSDT").expect("literal"), "5m"),
            ["btcusdt@depth@100ms", "btcusdt@aggTrade", "btcusdt@kline_5m"]
        );
    }
}
