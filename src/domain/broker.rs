//! What the exchange reports, in crbot's words: the answers the broker gives (order reports,
//! order lists, cancels, the account, a book quote), the protective OCO request, the ways a
//! request can fail ([`BrokerError`]) and the three-way outcome of an order action
//! ([`OrderOutcome`]), which makes "we do not know whether the exchange acted" its own case so
//! that no caller can mistake it for a failure and resend.
//!
//! Owns: these values, the exchange's error codes crbot reacts to, and the classification of
//! a failure (retryable read, unknown order outcome). The Binance client parses its answers into them; the engine, the kill switch and
//! reconciliation read only them. Must not: do I/O, know a wire format (parameter names, JSON
//! shapes), or carry a secret, a signature or a signed URL in any message.

use std::time::Duration;

use super::{
    Balance, ClientOrderId, Fill, LocalOrderState, Notional, Order, OrderPurpose, OrderStatus, OrderType,
    Price, Qty, Side, Symbol, TimeInForce,
};

/// Codes whose meaning is "execution status unknown".
pub const UNKNOWN_CODES: [i64; 4] = [-1000, -1001, -1006, -1007];
/// `INVALID_TIMESTAMP`: the clock offset needs a refresh.
pub const CODE_INVALID_TIMESTAMP: i64 = -1021;
/// `NO_SUCH_ORDER` on a query.
pub const CODE_NO_SUCH_ORDER: i64 = -2013;
/// `NEW_ORDER_REJECTED` (also "Stop price would trigger immediately.").
pub const CODE_NEW_ORDER_REJECTED: i64 = -2010;
/// `CANCEL_REJECTED` ("Unknown order sent." — usually already terminal).
pub const CODE_CANCEL_REJECTED: i64 = -2011;

/// An epoch-ms time as UTC text, for messages.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} (epoch ms)"))
}

/// The largest offset crbot accepts between its clock and the exchange's. Signing would cope
/// with any offset, but beyond this one of the clocks is simply wrong, and crbot's UTC days
/// (daily loss, trades per day), journal times and ban times all read the local clock.
pub const MAX_CLOCK_OFFSET_MS: i64 = 60 * 60 * 1000;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The exchange answered `{"code":…,"msg":…}` with a 4xx status.
    #[error("exchange refused the request (HTTP {http_status}, code {code}): {msg}")]
    Api {
        http_status: u16,
        code: i64,
        msg: String,
    },
    /// HTTP 429, or a client-side hold after one: only cancels go out until it passes.
    #[error("rate limited: retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// HTTP 418: the IP is banned; nothing is sent until `until_ms` (epoch ms).
    #[error("IP banned by the exchange until {}; nothing is sent to it until then", utc(*until_ms))]
    Banned { until_ms: i64 },
    /// The client gave up waiting for an answer.
    #[error("request timed out")]
    Timeout,
    /// The connection could not be opened: the request never left.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection failed after the request may have been sent.
    #[error("network error: {0}")]
    Network(String),
    /// A 5xx answer: the exchange may or may not have acted.
    #[error("exchange server error (HTTP {status}): {msg}")]
    Server5xx { status: u16, msg: String },
    /// The answer could not be read as the documented JSON.
    #[error("could not decode the exchange's answer: {0}")]
    Decode(String),
    /// Signing failed (the signer's own message: the domain does not depend on the signer).
    #[error("could not sign the request: {0}")]
    Sign(String),
    #[error("this request needs API keys and none are configured")]
    NoCredentials,
    /// The exchange's clock and this machine's disagree by more than
    /// [`MAX_CLOCK_OFFSET_MS`]: nothing signed is sent.
    #[error(
        "clock offset too large: the exchange's clock is {} ms {} this machine's (at most {} ms is accepted); set the system clock (e.g. `timedatectl set-ntp true`, chrony or ntpd) and check that BINANCE_REST_URL is the exchange you expect",
        offset_ms.unsigned_abs(),
        if *offset_ms >= 0 { "ahead of" } else { "behind" },
        MAX_CLOCK_OFFSET_MS
    )]
    ClockOffset { offset_ms: i64 },
}

impl BrokerError {
    /// The Binance error code, if the exchange sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            BrokerError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when a GET may be retried automatically (transient, idempotent).
    pub fn is_retryable_for_get(&self) -> bool {
        match self {
            BrokerError::Timeout
            | BrokerError::Connect(_)
            | BrokerError::Network(_)
            | BrokerError::Server5xx { .. } => true,
            BrokerError::Api { code, .. } => UNKNOWN_CODES.contains(code) || *code == -1008,
            _ => false,
        }
    }

    /// True when, for an order placement or cancel, this error leaves the outcome unknown:
    /// a 5xx, `-1000`, `-1001`, `-1006`, `-1007`, a client timeout, a connection dropped
    /// after sending, or an unreadable success answer.
    pub fn leaves_order_unknown(&self) -> bool {
        match self {
            BrokerError::Server5xx { .. }
            | BrokerError::Timeout
            | BrokerError::Network(_)
            | BrokerError::Decode(_) => true,
            BrokerError::Api { code, .. } => UNKNOWN_CODES.contains(code),
            BrokerError::RateLimited { .. }
            | BrokerError::Banned { .. }
            | BrokerError::Connect(_)
            | BrokerError::Sign(_)
            | BrokerError::NoCredentials
            | BrokerError::ClockOffset { .. } => false,
        }
    }
}

/// What happened to an order placement or cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome<T> {
    /// The exchange acted and said so.
    Done(T),
    /// The exchange definitely did not act (or the request never left).
    Rejected(BrokerError),
    /// The exchange may have acted. Never resend: reconcile with the user-data stream and
    /// `resolve_unknown`.
    Unknown { reason: String },
}

impl<T> OrderOutcome<T> {
    /// Sorts a request's result into the three outcomes.
    pub fn from_result(result: Result<T, BrokerError>) -> Self {
        match result {
            Ok(v) => OrderOutcome::Done(v),
            Err(e) if e.leaves_order_unknown() => OrderOutcome::Unknown {
                reason: e.to_string(),
            },
            Err(e) => OrderOutcome::Rejected(e),
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, OrderOutcome::Unknown { .. })
    }

    pub fn done(self) -> Option<T> {
        match self {
            OrderOutcome::Done(v) => Some(v),
            _ => None,
        }
    }
}

/// The account as the exchange reports it, reduced to what crbot uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub can_trade: bool,
    pub can_withdraw: bool,
    pub update_time_ms: i64,
    pub balances: Vec<Balance>,
    /// Assets whose names crbot could not read (listed, not fatal).
    pub skipped_assets: Vec<String>,
}

/// An order as the exchange reports it (query, open orders, cancel, placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReport {
    pub symbol: Symbol,
    pub order_id: u64,
    pub order_list_id: Option<i64>,
    /// The order's client id (for a cancel answer: the cancel's id — see `orig_client_order_id`).
    pub client_order_id: String,
    /// On cancel answers: the cancelled order's client id.
    pub orig_client_order_id: Option<String>,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: Option<TimeInForce>,
    pub status: OrderStatus,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub orig_qty: Qty,
    pub executed_qty: Qty,
    pub cumulative_quote_qty: Notional,
    pub time_ms: i64,
    pub update_ms: i64,
}

impl OrderReport {
    /// The client id of the order itself (on a cancel answer, the original one).
    pub fn order_client_id(&self) -> &str {
        match &self.orig_client_order_id {
            Some(c) if !c.is_empty() => c,
            _ => &self.client_order_id,
        }
    }

    /// The order as crbot records it. An id that is not a valid crbot id (never the case for
    /// Binance-generated ids) becomes `x-<orderId>`.
    pub fn to_order(&self, purpose: OrderPurpose) -> Order {
        let cid = ClientOrderId::new(self.order_client_id()).unwrap_or_else(|_| {
            ClientOrderId::new(&format!("x-{}", self.order_id))
                .unwrap_or_else(|_| ClientOrderId::generate(0, 0))
        });
        Order {
            client_order_id: cid,
            order_id: Some(self.order_id),
            order_list_id: self.order_list_id,
            symbol: self.symbol.clone(),
            side: self.side,
            order_type: self.order_type,
            price: self.price,
            stop_price: self.stop_price,
            qty: self.orig_qty,
            executed_qty: self.executed_qty,
            cumulative_quote_qty: self.cumulative_quote_qty,
            state: LocalOrderState::Exchange(self.status),
            purpose,
            created_ms: self.time_ms,
            updated_ms: self.update_ms,
        }
    }
}

/// A new order's answer: the order and the fills it got at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order: OrderReport,
    pub fills: Vec<Fill>,
}

/// An order list (OCO) as the exchange reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReport {
    pub order_list_id: i64,
    pub list_client_order_id: String,
    pub symbol: Symbol,
    pub list_status_type: String,
    pub list_order_status: String,
    /// `(orderId, clientOrderId)` of each leg.
    pub legs: Vec<(u64, String)>,
    /// Full order objects, when the answer carries them.
    pub reports: Vec<OrderReport>,
}

/// One item a cancel-all answers with: a plain order or an order list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    Order(OrderReport),
    List(ListReport),
}

/// The best bid and ask of one symbol, read on request (not from the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookQuote {
    pub symbol: Symbol,
    pub bid: Price,
    pub bid_qty: Qty,
    pub ask: Price,
    pub ask_qty: Qty,
}

/// A protective SELL OCO for a long position.
///
/// Legs, chosen and fixed here: the **above** leg is a `LIMIT_MAKER` at the take-profit (it
/// rests on the book, pays the maker fee, and is refused rather than filled as a taker if the
/// market is already above it); the **below** leg is a `STOP_LOSS` at the stop-loss, which
/// becomes a MARKET sell when triggered, so the position is closed even in a fast fall (a
/// `STOP_LOSS_LIMIT` can be jumped over and leave the position open). Set `stop_limit` to get a
/// `STOP_LOSS_LIMIT` (GTC) with that limit price instead. There is no side: it always sells,
/// so a protective OCO can never open or grow a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcoRequest {
    pub symbol: Symbol,
    pub qty: Qty,
    pub take_profit: Price,
    pub stop_loss: Price,
    pub stop_limit: Option<Price>,
    pub list_client_order_id: ClientOrderId,
    pub take_profit_client_order_id: ClientOrderId,
    pub stop_loss_client_order_id: ClientOrderId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> BrokerError {
        BrokerError::Api {
            http_status: 400,
            code,
            msg: "m".into(),
        }
    }

    #[test]
    fn server_errors_timeouts_and_unknown_codes_leave_an_order_unknown() {
        for e in [
            BrokerError::Server5xx {
                status: 503,
                msg: "x".into(),
            },
            BrokerError::Timeout,
            BrokerError::Network("reset".into()),
            BrokerError::Decode("bad json".into()),
            api(-1000),
            api(-1001),
            api(-1006),
            api(-1007),
        ] {
            assert!(
                OrderOutcome::<()>::from_result(Err(e.clone())).is_unknown(),
                "{e}"
            );
        }
    }

    #[test]
    fn definite_refusals_are_rejections_not_unknowns() {
        for e in [
            api(-2010),
            api(-1013),
            api(-1021),
            api(-2011),
            BrokerError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            BrokerError::Banned { until_ms: 1 },
            BrokerError::Connect("refused".into()),
        ] {
            assert!(
                matches!(
                    OrderOutcome::<()>::from_result(Err(e.clone())),
                    OrderOutcome::Rejected(_)
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn only_transient_errors_are_retryable_for_gets() {
        assert!(BrokerError::Timeout.is_retryable_for_get());
        assert!(api(-1007).is_retryable_for_get());
        assert!(!api(-1121).is_retryable_for_get());
        assert!(!BrokerError::Banned { until_ms: 0 }.is_retryable_for_get());
        assert!(
            !BrokerError::RateLimited {
                retry_after: Duration::ZERO
            }
            .is_retryable_for_get()
        );
    }
}
