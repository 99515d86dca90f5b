//! The broker: the one interface through which the engine, the commands and the kill switch
//! act on an exchange, in domain values only.
//!
//! Owns: the [`Broker`] trait. It lives beside [`RiskApproved`] rather than with the report
//! types in `domain::broker` because its two sending methods take only a `RiskApproved`
//! request, and `domain` sits below `risk`: the send path can then accept nothing the risk gate
//! did not approve, and an unapproved order cannot even be written. Must not: do anything
//! itself (the exchange clients implement it), or offer a way to send a bare request.
//!
//! The two sending methods refuse a bare request at compile time:
//!
//! ```compile_fail,E0308
//! use crbot::domain::{ClientOrderId, OrderRequest, OrderType, Side, Symbol};
//! use crbot::risk::Broker;
//!
//! async fn send(broker: &impl Broker) {
//!     let bare = OrderRequest {
//!         symbol: Symbol::new("BTCUSDT").unwrap(),
//!         side: Side::Buy,
//!         order_type: OrderType::Market,
//!         time_in_force: None,
//!         qty: "1".parse().unwrap(),
//!         price: None,
//!         stop_price: None,
//!         client_order_id: ClientOrderId::new("cr-1").unwrap(),
//!     };
//!     let _ = broker.place_order(&bare).await;
//! }
//! ```

use std::future::Future;

use super::RiskApproved;
use crate::domain::broker::{
    Account, BookQuote, BrokerError, Cancelled, ListReport, OcoRequest, OrderOutcome, OrderReport, Placed,
};
use crate::domain::{Fill, OrderRequest, Symbol};

/// An exchange account crbot trades on. Order actions answer an [`OrderOutcome`] (done,
/// rejected, or unknown: never resend an unknown one); reads answer a `Result`.
///
/// `Clone + Send + Sync + 'static` so that a task (the kill switch's sweep, a send spawned by
/// the engine) can take its own copy; a clone must act on the same account with the same
/// rate-limit state, as `BinanceRest`'s clones do.
pub trait Broker: Clone + Send + Sync + 'static {
    /// Places one order, once. The request must have passed the risk gate.
    fn place_order(
        &self,
        order: &RiskApproved<OrderRequest>,
    ) -> impl Future<Output = OrderOutcome<Placed>> + Send;

    /// Places a protective SELL OCO, once. The request must have passed the risk gate.
    fn place_oco(
        &self,
        oco: &RiskApproved<OcoRequest>,
    ) -> impl Future<Output = OrderOutcome<ListReport>> + Send;

    /// Cancels one order by its client order id.
    fn cancel_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> impl Future<Output = OrderOutcome<OrderReport>> + Send;

    /// Cancels every open order of a symbol, order lists included (spot has no global cancel).
    fn cancel_all(&self, symbol: &Symbol) -> impl Future<Output = OrderOutcome<Vec<Cancelled>>> + Send;

    /// One order by its client order id; [`CODE_NO_SUCH_ORDER`](crate::domain::broker::CODE_NO_SUCH_ORDER)
    /// when the exchange does not know it (yet).
    fn query_order(
        &self,
        symbol: &Symbol,
        client_order_id: &str,
    ) -> impl Future<Output = Result<OrderReport, BrokerError>> + Send;

    /// The open orders of one symbol, or of every symbol.
    fn open_orders(
        &self,
        symbol: Option<&Symbol>,
    ) -> impl Future<Output = Result<Vec<OrderReport>, BrokerError>> + Send;

    /// The open order lists (OCOs) of every symbol.
    fn open_order_lists(&self) -> impl Future<Output = Result<Vec<ListReport>, BrokerError>> + Send;

    /// The account: permissions and balances.
    fn account(&self) -> impl Future<Output = Result<Account, BrokerError>> + Send;

    /// The account's trades on a symbol from a trade id (inclusive), up to 1000, oldest first;
    /// without one, the most recent.
    fn my_trades(
        &self,
        symbol: &Symbol,
        from_id: Option<u64>,
    ) -> impl Future<Output = Result<Vec<Fill>, BrokerError>> + Send;

    /// One order's trades from a trade id (inclusive) when given, up to 1000, oldest first.
    fn my_trades_of_order(
        &self,
        symbol: &Symbol,
        order_id: u64,
        from_id: Option<u64>,
    ) -> impl Future<Output = Result<Vec<Fill>, BrokerError>> + Send;

    /// The best bid and ask of a symbol, read now.
    fn book_quote(&self, symbol: &Symbol) -> impl Future<Output = Result<BookQuote, BrokerError>> + Send;

    /// The end (epoch ms) of a rate-limit hold in force after a 429, if any: while it lasts
    /// anything sent, even a cancel, risks a ban, so the kill switch waits it out first.
    fn cancel_hold_until_ms(&self) -> Option<i64>;
}
