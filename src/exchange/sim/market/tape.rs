//! The tape of one symbol: the public trades it printed (synthetic flow, forced prices and the
//! account's own fills alike), newest last, and their aggregates, both bounded.
//!
//! Owns: what `GET /api/v3/trades`, `historicalTrades` and `aggTrades` read. Must not: know
//! about accounts. Aggregation follows Binance's definition ("trades that fill at the time,
//! from the same taker order, with the same price"): a trade joins the previous aggregate when
//! it has the same time, price and side and no new taker began in between (`new_taker`).
//! An aggregate's id is its first trade's id: increasing like Binance's, and the same number
//! the `@aggTrade` stream sends for it.

use std::collections::VecDeque;

use rust_decimal::Decimal;

use super::PublicTrade;

/// Trades (and aggregates) kept per symbol. Older ones are dropped first; the ids go on.
pub const MAX_TAPE: usize = 10_000;

/// One aggregate trade (`aggTrades` row, `@aggTrade` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggTrade {
    pub id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub first_id: u64,
    pub last_id: u64,
    pub time: i64,
    pub buyer_maker: bool,
}

#[derive(Debug, Clone)]
pub struct Tape {
    trades: VecDeque<PublicTrade>,
    aggs: VecDeque<AggTrade>,
    /// The next trade starts a new aggregate whatever it matches.
    fresh_taker: bool,
}

impl Default for Tape {
    fn default() -> Self {
        Tape {
            trades: VecDeque::new(),
            aggs: VecDeque::new(),
            fresh_taker: true,
        }
    }
}

impl Tape {
    /// The next trade comes from another taker: it never joins the previous aggregate.
    pub fn new_taker(&mut self) {
        self.fresh_taker = true;
    }

    /// Appends a printed trade.
    pub fn push(&mut self, t: &PublicTrade) {
        let joins = !self.fresh_taker
            && self
                .aggs
                .back()
                .is_some_and(|a| a.time == t.time && a.price == t.price && a.buyer_maker == t.buyer_maker);
        self.fresh_taker = false;
        match self.aggs.back_mut() {
            Some(a) if joins => {
                a.qty += t.qty;
                a.last_id = t.id;
            }
            _ => {
                self.aggs.push_back(AggTrade {
                    id: t.id,
                    price: t.price,
                    qty: t.qty,
                    first_id: t.id,
                    last_id: t.id,
                    time: t.time,
                    buyer_maker: t.buyer_maker,
                });
            }
        }
        self.trades.push_back(t.clone());
        while self.trades.len() > MAX_TAPE {
            self.trades.pop_front();
        }
        while self.aggs.len() > MAX_TAPE {
            self.aggs.pop_front();
        }
    }

    /// The last aggregate (the one the trade just pushed belongs to).
    pub fn last_agg(&self) -> Option<&AggTrade> {
        self.aggs.back()
    }

    /// The most recent `limit` trades, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<&PublicTrade> {
        let skip = self.trades.len().saturating_sub(limit);
        self.trades.iter().skip(skip).collect()
    }

    /// Up to `limit` trades from id `from` on (inclusive), oldest first.
    pub fn from_id(&self, from: u64, limit: usize) -> Vec<&PublicTrade> {
        let start = self.trades.partition_point(|t| t.id < from);
        self.trades.iter().skip(start).take(limit).collect()
    }

    /// `aggTrades`: from an id, else within `[start, end]`; from the oldest match when a lower
    /// bound is given, else the most recent ones; `limit` at most, oldest first.
    pub fn aggs(
        &self,
        from: Option<u64>,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Vec<&AggTrade> {
        let rows = self
            .aggs
            .iter()
            .filter(|a| from.is_none_or(|f| a.id >= f))
            .filter(|a| start.is_none_or(|s| a.time >= s) && end.is_none_or(|e| a.time <= e));
        if from.is_some() || start.is_some() {
            rows.take(limit).collect()
        } else {
            let all: Vec<&AggTrade> = rows.collect();
            let skip = all.len().saturating_sub(limit);
            all.into_iter().skip(skip).collect()
        }
    }

    pub fn len(&self) -> usize {
        self.trades.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trades.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, price: i64, time: i64, buyer_maker: bool) -> PublicTrade {
        PublicTrade {
            id,
            price: Decimal::from(price),
            qty: Decimal::ONE,
            time,
            buyer_maker,
        }
    }

    #[test]
    fn one_takers_fills_at_one_price_aggregate_and_another_takers_do_not() {
        let mut tape = Tape::default();
        tape.new_taker();
        tape.push(&t(1, 10, 5, false));
        tape.push(&t(2, 10, 5, false));
        tape.push(&t(3, 11, 5, false));
        tape.new_taker();
        tape.push(&t(4, 11, 5, false));
        let aggs = tape.aggs(None, None, None, 10);
        let shape: Vec<(u64, u64, u64, Decimal)> = aggs
            .iter()
            .map(|a| (a.id, a.first_id, a.last_id, a.qty))
            .collect();
        assert_eq!(
            shape,
            vec![
                (1, 1, 2, Decimal::TWO),
                (3, 3, 3, Decimal::ONE),
                (4, 4, 4, Decimal::ONE)
            ]
        );
    }

    #[test]
    fn the_tape_is_bounded_and_ids_go_on() {
        let mut tape = Tape::default();
        for id in 1..=(MAX_TAPE as u64 + 5) {
            tape.new_taker();
            tape.push(&t(id, 10, id as i64, true));
        }
        assert_eq!(tape.len(), MAX_TAPE);
        assert_eq!(tape.recent(1)[0].id, MAX_TAPE as u64 + 5);
        assert_eq!(tape.from_id(1, 2)[0].id, 6);
        assert_eq!(
            tape.from_id(100, 2).iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![100, 101]
        );
        assert_eq!(tape.aggs(None, None, None, 1)[0].id, MAX_TAPE as u64 + 5);
        assert_eq!(tape.aggs(None, Some(50), Some(51), 10).len(), 2);
        assert_eq!(tape.aggs(Some(7), None, None, 1)[0].first_id, 7);
    }
}
