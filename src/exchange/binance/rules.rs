//! Exchange rules cache and ticket preparation (issue 4 item 5, binance-spot.md §4).
//!
//! Owns: the per-symbol [`SymbolRules`] from `exchangeInfo` with the time they were fetched,
//! and turning a [`Ticket`] into the exact [`OrderRequest`] that would be sent: quantity
//! rounded **down** to the step, price rounded to the tick (conservative side), then checked
//! against every filter. Must not: fetch (the owner refreshes with `BinanceRest::exchange_info`
//! on a schedule and after "Market is closed." rejections) or decide risk.

use std::collections::HashMap;

use super::wire::ExchangeInfo;
use crate::domain::{
    ClientOrderId, FilterFailure, OrderRequest, Price, Symbol, SymbolRules, SymbolStatus, Ticket,
};

/// How often the owner should refresh `exchangeInfo` (binance-spot.md §0.1: "periodically").
pub const REFRESH_EVERY_MS: i64 = 15 * 60 * 1000;

/// Cached rules per symbol.
#[derive(Debug, Clone, Default)]
pub struct RulesCache {
    rules: HashMap<Symbol, SymbolRules>,
    fetched_at_ms: Option<i64>,
}

impl RulesCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the cache with a fresh `exchangeInfo` (symbols missing from a partial answer
    /// keep their previous rules).
    pub fn update(&mut self, info: &ExchangeInfo, now_ms: i64) {
        for r in &info.symbols {
            self.rules.insert(r.symbol.clone(), r.clone());
        }
        self.fetched_at_ms = Some(now_ms);
    }

    pub fn get(&self, symbol: &Symbol) -> Option<&SymbolRules> {
        self.rules.get(symbol)
    }

    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.rules.keys()
    }

    pub fn fetched_at_ms(&self) -> Option<i64> {
        self.fetched_at_ms
    }

    /// True when the cache is empty or older than [`REFRESH_EVERY_MS`].
    pub fn refresh_due(&self, now_ms: i64) -> bool {
        self.fetched_at_ms.is_none_or(|t| now_ms - t >= REFRESH_EVERY_MS)
    }

    /// True when the symbol is known and `TRADING` (anything else takes no entries).
    pub fn is_trading(&self, symbol: &Symbol) -> bool {
        self.rules
            .get(symbol)
            .is_some_and(|r| r.status == SymbolStatus::Trading)
    }
}

/// Why a ticket cannot become an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("no exchange rules for {0}: refresh exchangeInfo")]
    UnknownSymbol(Symbol),
    #[error("the ticket fails the exchange filters: {}", list(.0))]
    Filters(Vec<FilterFailure>),
}

fn list(f: &[FilterFailure]) -> String {
    f.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Rounds a ticket (quantity down to the step, a limit price to the tick on the conservative
/// side) and checks the result against every filter. `reference` is the price for MARKET
/// notional and the percent-price band (the mid or last price). Returns every failure at once.
pub fn prepare_order(
    ticket: &Ticket,
    rules: &SymbolRules,
    reference: Option<Price>,
    client_order_id: ClientOrderId,
) -> Result<OrderRequest, PrepareError> {
    let order_type = ticket.order_type();
    let price = ticket.limit_price().map(|p| rules.round_price(ticket.side, p));
    let order = OrderRequest {
        symbol: ticket.symbol.clone(),
        side: ticket.side,
        order_type,
        time_in_force: None,
        qty: rules.round_qty(order_type, ticket.qty),
        price,
        stop_price: None,
        client_order_id,
    };
    let failures = rules.check(&order, reference);
    if failures.is_empty() {
        Ok(order)
    } else {
        Err(PrepareError::Filters(failures))
    }
}

/// [`prepare_order`] with the rules looked up in the cache.
pub fn prepare_from_cache(
    cache: &RulesCache,
    ticket: &Ticket,
    reference: Option<Price>,
    client_order_id: ClientOrderId,
) -> Result<OrderRequest, PrepareError> {
    let rules = cache
        .get(&ticket.symbol)
        .ok_or_else(|| PrepareError::UnknownSymbol(ticket.symbol.clone()))?;
    prepare_order(ticket, rules, reference, client_order_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Asset, Filters, LotSize, NotionalFilter, OrderType, PriceFilter, Side, TicketKind};
    use rust_decimal::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn rules(status: SymbolStatus) -> SymbolRules {
        SymbolRules {
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            status,
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
                notional: Some(NotionalFilter {
                    min_notional: d("5"),
                    apply_min_to_market: true,
                    max_notional: None,
                    apply_max_to_market: false,
                }),
                ..Filters::default()
            },
        }
    }

    fn ticket(qty: &str, limit: Option<&str>) -> Ticket {
        Ticket {
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            side: Side::Buy,
            kind: match limit {
                Some(p) => TicketKind::Limit {
                    price: p.parse().expect("ok"),
                },
                None => TicketKind::Market,
            },
            qty: qty.parse().expect("ok"),
            stop_loss: None,
            take_profit: None,
        }
    }

    fn cid() -> ClientOrderId {
        ClientOrderId::new("t").expect("ok")
    }

    #[test]
    fn ticket_is_rounded_down_to_step_and_to_the_tick() {
        let o = prepare_order(
            &ticket("0.0012399", Some("60000.019")),
            &rules(SymbolStatus::Trading),
            None,
            cid(),
        )
        .expect("valid");
        assert_eq!(o.qty.to_string(), "0.00123");
        assert_eq!(o.price.map(|p| p.to_string()), Some("60000.01".into()));
    }

    #[test]
    fn a_ticket_below_min_notional_or_on_a_halted_symbol_lists_every_failure() {
        let err = prepare_order(
            &ticket("0.00001", Some("60000")),
            &rules(SymbolStatus::Halt),
            None,
            cid(),
        )
        .expect_err("refused");
        let PrepareError::Filters(f) = err else {
            panic!("{err:?}")
        };
        assert!(f.iter().any(|x| matches!(x, FilterFailure::NotTrading { .. })));
        assert!(f.iter().any(|x| matches!(x, FilterFailure::MinNotional { .. })));
    }

    #[test]
    fn market_ticket_uses_the_reference_price_for_notional() {
        let r = rules(SymbolStatus::Trading);
        let p: Price = "60000".parse().expect("ok");
        assert!(prepare_order(&ticket("0.001", None), &r, Some(p), cid()).is_ok());
        assert!(prepare_order(&ticket("0.00005", None), &r, Some(p), cid()).is_err());
    }

    #[test]
    fn cache_knows_trading_status_and_when_to_refresh() {
        let mut c = RulesCache::new();
        assert!(c.refresh_due(0));
        let info = ExchangeInfo {
            server_time_ms: 0,
            rate_limits: vec![],
            symbols: vec![rules(SymbolStatus::Trading)],
            skipped: vec![],
        };
        c.update(&info, 1000);
        let btc = Symbol::new("BTCUSDT").expect("ok");
        assert!(c.is_trading(&btc));
        assert!(!c.is_trading(&Symbol::new("ETHUSDT").expect("ok")));
        assert!(!c.refresh_due(1000 + REFRESH_EVERY_MS - 1));
        assert!(c.refresh_due(1000 + REFRESH_EVERY_MS));
        assert!(matches!(
            prepare_from_cache(
                &c,
                &Ticket {
                    symbol: Symbol::new("ETHUSDT").expect("ok"),
                    ..ticket("1", None)
                },
                None,
                cid()
            ),
            Err(PrepareError::UnknownSymbol(_))
        ));
    }
}
