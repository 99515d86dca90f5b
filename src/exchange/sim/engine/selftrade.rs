//! The account's own resting orders as part of the book, and self-trade prevention (Binance's
//! STP FAQ): when a taker of the account meets a resting order of the same account, the
//! taker's `selfTradePreventionMode` decides, and an order that named none has the symbol's
//! default, EXPIRE_MAKER (`defaultSelfTradePreventionMode`), exactly as if it had named it.
//! `NONE` trades with itself (one trade on the tape, a fill on each side); `EXPIRE_TAKER`
//! expires what is left of the taker, `EXPIRE_MAKER` the resting order (the taker goes on
//! matching), `EXPIRE_BOTH` both. An order expired this way ends `EXPIRED_IN_MATCH`, with an
//! `executionReport` of execution type `TRADE_PREVENTION`, a `preventedMatchId` and its
//! `preventedQuantity`; the prevented match is listed by `GET /api/v3/myPreventedMatches`.
//! Every order that takes liquidity meets the account's orders so: market and limit orders,
//! IOC and FOK, stops when they trigger, order-list legs, cancelReplace's new order, on REST
//! and the WebSocket API alike. So an order a client places beside its own resting orders on
//! the one account expires those it crosses unless it names `NONE`.
//!
//! Owns: finding the best own resting order a taker crosses, and what meeting it does. Must
//! not: walk the synthetic book (that is `matching`).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::super::market::{checked_floor_to, s8};
use super::{Engine, ExecType, MyTrade, OrderStatus, PreventedMatch, SimOrder, StpMode, execution_json};

/// Book levels, price and quantity, best first.
pub type Levels = Vec<(Decimal, Decimal)>;

/// One side of a depth answer: the synthetic `book` side with the account's `own` levels
/// added, best first (bids when `bids`, else asks), its first `limit` levels as `[price, qty]`.
/// Only the first `limit` levels of each are read: the merged first `limit` are among them.
pub fn depth_side(
    book: &[(Decimal, Decimal)],
    own: &[(Decimal, Decimal)],
    bids: bool,
    limit: usize,
) -> Vec<Value> {
    let mut levels: std::collections::BTreeMap<Decimal, Decimal> = Default::default();
    for (px, q) in book.iter().take(limit).chain(own.iter().take(limit)) {
        *levels.entry(*px).or_default() += *q;
    }
    let row = |(px, q): (Decimal, Decimal)| json!([s8(px), s8(q)]);
    if bids {
        levels.into_iter().rev().take(limit).map(row).collect()
    } else {
        levels.into_iter().take(limit).map(row).collect()
    }
}

/// A resting order of the account that a taker on `buy`'s side may meet.
fn can_meet(x: &SimOrder, symbol: &str, buy: bool, taker: u64, limit: Option<Decimal>) -> bool {
    let crosses = match limit {
        Some(l) if buy => x.price <= l,
        Some(l) => x.price >= l,
        None => true,
    };
    x.is_open()
        && x.status != OrderStatus::PendingNew
        && x.is_working
        && x.order_type.is_limit_like()
        && x.symbol == symbol
        && x.buy() != buy
        && x.order_id != taker
        && crosses
}

impl Engine {
    /// The own resting order a taker on `buy`'s side meets first (best price, then oldest),
    /// with its price; `taker` is excluded.
    pub(super) fn best_own_maker(
        &self,
        symbol: &str,
        buy: bool,
        taker: u64,
        limit: Option<Decimal>,
    ) -> Option<(u64, Decimal)> {
        self.account
            .orders
            .values()
            .filter(|x| can_meet(x, symbol, buy, taker, limit))
            .min_by(|a, b| {
                let by_price = if buy {
                    a.price.cmp(&b.price)
                } else {
                    b.price.cmp(&a.price)
                };
                by_price.then(a.order_id.cmp(&b.order_id))
            })
            .map(|x| (x.order_id, x.price))
    }

    /// The account's resting orders as book levels of `symbol`: (bids best first, asks best
    /// first), each price with the visible quantity (an iceberg's current part) resting there.
    pub fn own_levels(&self, symbol: &str) -> (Levels, Levels) {
        let mut bids: std::collections::BTreeMap<Decimal, Decimal> = Default::default();
        let mut asks: std::collections::BTreeMap<Decimal, Decimal> = Default::default();
        for x in self.account.orders.values() {
            if can_meet(x, symbol, !x.buy(), 0, None) {
                let side = if x.buy() { &mut bids } else { &mut asks };
                *side.entry(x.price).or_default() += x.visible_qty();
            }
        }
        (bids.into_iter().rev().collect(), asks.into_iter().collect())
    }

    /// What own resting orders a FOK taker at `limit` could trade with.
    pub(super) fn own_crossing_qty(&self, symbol: &str, buy: bool, limit: Decimal) -> Decimal {
        self.account
            .orders
            .values()
            .filter(|x| can_meet(x, symbol, buy, 0, Some(limit)))
            .map(SimOrder::remaining)
            .sum()
    }

    /// The taker meets an own resting order at `price`. `None`: the taker is done (expired);
    /// `Some(None)`: the resting order expired and the taker goes on; `Some(Some(fill))`: a
    /// self-trade (`NONE`) of one visible part, the taker's fill returned.
    pub(super) fn meet_own(
        &mut self,
        taker: u64,
        maker: u64,
        price: Decimal,
        max_qty: Decimal,
        quote_cap: Option<Decimal>,
        now: i64,
    ) -> Option<Option<MyTrade>> {
        let t = self.account.orders.get(&taker)?.clone();
        let m = self.account.orders.get(&maker)?.clone();
        match t.stp_mode {
            StpMode::None => {
                let step = self.market.get(&t.symbol).map(|s| s.spec.step)?;
                let mut q = max_qty.min(m.visible_qty());
                if let Some(cap) = quote_cap {
                    q = q.min(cap.checked_div(price).and_then(|x| checked_floor_to(x, step))?);
                }
                if q <= Decimal::ZERO {
                    return None;
                }
                let fill = self.book_fill(taker, price, q, false, now, None);
                self.book_fill(maker, price, q, true, now, Some(fill.id));
                Some(Some(fill))
            }
            mode => {
                let expire_taker = matches!(mode, StpMode::ExpireTaker | StpMode::ExpireBoth);
                let expire_maker = matches!(mode, StpMode::ExpireMaker | StpMode::ExpireBoth);
                // Prevented matches are never removed: their count numbers the next one.
                let id = self.account.prevented.len() as u64 + 1;
                self.prevent(&t, &m, id, price, expire_taker, expire_maker, now);
                if expire_taker { None } else { Some(None) }
            }
        }
    }

    /// Records the prevented match and expires the side(s) the mode names.
    #[allow(clippy::too_many_arguments)]
    fn prevent(
        &mut self,
        taker: &SimOrder,
        maker: &SimOrder,
        id: u64,
        price: Decimal,
        expire_taker: bool,
        expire_maker: bool,
        now: i64,
    ) {
        self.account.prevented.push(PreventedMatch {
            symbol: taker.symbol.clone(),
            prevented_match_id: id,
            taker_order_id: taker.order_id,
            maker_order_id: maker.order_id,
            trade_group_id: -1,
            stp_mode: taker.stp_mode,
            price,
            maker_prevented_quantity: if expire_maker {
                maker.remaining()
            } else {
                Decimal::ZERO
            },
            transact_time: now,
        });
        if expire_maker {
            self.expire_in_match(maker.order_id, taker, id, now);
        }
        if expire_taker {
            self.expire_in_match(taker.order_id, maker, id, now);
        }
    }

    /// Ends an order `EXPIRED_IN_MATCH` for the prevented match `id` against `counter`.
    fn expire_in_match(&mut self, order_id: u64, counter: &SimOrder, id: u64, now: i64) {
        let Some(o) = self.account.orders.get_mut(&order_id) else {
            return;
        };
        let qty = o.remaining();
        o.status = OrderStatus::ExpiredInMatch;
        o.update_time = now;
        o.prevented_match_id = Some(id);
        o.prevented_qty += qty;
        self.release_lock(order_id);
        if let Some(o) = self.account.orders.get(&order_id) {
            let mut ev = execution_json(o, ExecType::TradePrevention, None, &o.client_order_id, "", now);
            if let Some(obj) = ev.as_object_mut() {
                obj.insert("v".into(), json!(id));
                obj.insert("A".into(), json!(s8(o.prevented_qty)));
                obj.insert("B".into(), json!(s8(qty)));
                obj.insert("u".into(), json!(-1));
                obj.insert("U".into(), json!(counter.order_id));
                obj.insert("Cs".into(), json!(counter.symbol));
            }
            self.user_events.push(ev);
        }
        self.list_order_expired(order_id, now);
        self.list_order_expired_in_match(order_id, now);
    }
}

/// A row of `GET /api/v3/myPreventedMatches`.
pub fn prevented_json(p: &PreventedMatch) -> Value {
    json!({
        "symbol": p.symbol, "preventedMatchId": p.prevented_match_id, "takerOrderId": p.taker_order_id,
        "makerSymbol": p.symbol, "makerOrderId": p.maker_order_id, "tradeGroupId": p.trade_group_id,
        "selfTradePreventionMode": p.stp_mode, "price": s8(p.price),
        "makerPreventedQuantity": s8(p.maker_prevented_quantity), "transactTime": p.transact_time
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_depth_side_adds_the_own_levels_and_keeps_the_best_first() {
        let l = |p: i64, q: i64| (Decimal::from(p), Decimal::from(q));
        let row = |p: i64, q: i64| json!([s8(Decimal::from(p)), s8(Decimal::from(q))]);
        let asks = [l(10, 1), l(11, 1), l(12, 1), l(13, 1)];
        let own = [l(11, 2), l(12, 5)];
        assert_eq!(depth_side(&asks, &own, false, 2), [row(10, 1), row(11, 3)]);
        assert_eq!(
            depth_side(&asks, &own, false, 3),
            [row(10, 1), row(11, 3), row(12, 6)]
        );
        let bids = [l(9, 1), l(8, 1), l(7, 1)];
        let own = [l(10, 4), l(8, 2)];
        assert_eq!(depth_side(&bids, &own, true, 2), [row(10, 4), row(9, 1)]);
        assert_eq!(depth_side(&bids, &[], true, 5).len(), 3);
    }
}
