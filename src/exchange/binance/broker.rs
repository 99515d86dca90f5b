//! The Binance client as a [`Broker`]: the engine, the commands and the kill switch reach
//! Binance (and the local exchange, which speaks its protocol) through this.
//!
//! Owns: the mapping of each broker method onto the REST client's call. Must not: add
//! behaviour of its own (retries, waits, logging are the client's); every method delegates.

use super::rest::BinanceRest;
use crate::domain::broker::{
    Account, BookQuote, BrokerError, Cancelled, ListReport, OcoRequest, OrderOutcome, OrderReport, Placed,
};
use crate::domain::{Fill, OrderRequest, Symbol};
use crate::risk::{Broker, RiskApproved};

impl Broker for BinanceRest {
    async fn place_order(&self, order: &RiskApproved<OrderRequest>) -> OrderOutcome<Placed> {
        self.place_order_unchecked(order.inner()).await
    }

    async fn place_oco(&self, oco: &RiskApproved<OcoRequest>) -> OrderOutcome<ListReport> {
        self.place_oco_unchecked(oco.inner()).await
    }

    async fn cancel_order(&self, symbol: &Symbol, client_order_id: &str) -> OrderOutcome<OrderReport> {
        BinanceRest::cancel_order(self, symbol, client_order_id).await
    }

    async fn cancel_all(&self, symbol: &Symbol) -> OrderOutcome<Vec<Cancelled>> {
        BinanceRest::cancel_all(self, symbol).await
    }

    async fn query_order(&self, symbol: &Symbol, client_order_id: &str) -> Result<OrderReport, BrokerError> {
        BinanceRest::query_order(self, symbol, client_order_id).await
    }

    async fn open_orders(&self, symbol: Option<&Symbol>) -> Result<Vec<OrderReport>, BrokerError> {
        BinanceRest::open_orders(self, symbol).await
    }

    async fn open_order_lists(&self) -> Result<Vec<ListReport>, BrokerError> {
        BinanceRest::open_order_lists(self).await
    }

    async fn account(&self) -> Result<Account, BrokerError> {
        BinanceRest::account(self).await
    }

    async fn my_trades(&self, symbol: &Symbol, from_id: Option<u64>) -> Result<Vec<Fill>, BrokerError> {
        BinanceRest::my_trades(self, symbol, from_id).await
    }

    async fn my_trades_of_order(
        &self,
        symbol: &Symbol,
        order_id: u64,
        from_id: Option<u64>,
    ) -> Result<Vec<Fill>, BrokerError> {
        BinanceRest::my_trades_of_order(self, symbol, order_id, from_id).await
    }

    async fn book_quote(&self, symbol: &Symbol) -> Result<BookQuote, BrokerError> {
        self.book_ticker(symbol).await
    }

    fn cancel_hold_until_ms(&self) -> Option<i64> {
        self.usage().hold_until_ms
    }
}
