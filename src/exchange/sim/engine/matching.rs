//! Matching: placing an order, walking the book as a taker, resting orders filled when the
//! market crosses them, stops that trigger, and booking each fill.
//!
//! Owns: when an order fills, at what price, and when it ends (filled or expired by its time in
//! force). Must not: parse parameters (that is `validate`), or decide an OCO sibling's fate
//! beyond asking `lists` to finish it.

use rust_decimal::Decimal;

use super::super::market::{self, MarketEvent, SymbolMarket, SymbolSpec, checked_floor_to};
use super::{
    ApiError, Engine, ExecType, MyTrade, NewOrder, OrderStatus, OrderType, Placed, Side, SimOrder, StpMode,
    TimeInForce,
};

/// Stop direction: `true` when the stop would trigger now.
pub(super) fn would_trigger(order_type: OrderType, buy: bool, stop: Decimal, last: Decimal) -> bool {
    let stop_loss = order_type.is_stop_loss();
    match (stop_loss, buy) {
        (true, true) | (false, false) => last >= stop,
        (true, false) | (false, true) => last <= stop,
    }
}

/// One price observation of a trailing stop, per Binance's trailing-stop FAQ; `true` when it
/// triggers. Tracking starts when the stop price condition is first met (at that price), or at
/// placement without a stop price; then a sell triggers once the price falls `trailingDelta`
/// BIPS below the highest price since, a buy once it rises that far above the lowest.
pub(super) fn trail(o: &mut SimOrder, last: Decimal, now: i64) -> bool {
    let Some(d) = o.trailing_delta else {
        return false;
    };
    let buy = o.buy();
    let Some(extreme) = o.trailing_extreme else {
        if o.stop_price.is_zero() || would_trigger(o.order_type, buy, o.stop_price, last) {
            o.trailing_extreme = Some(last);
            o.trailing_time = now;
        }
        return false;
    };
    let delta = Decimal::new(d, 4);
    if buy && last < extreme || !buy && last > extreme {
        o.trailing_extreme = Some(last);
        return false;
    }
    if buy {
        last >= extreme * (Decimal::ONE + delta)
    } else {
        last <= extreme * (Decimal::ONE - delta)
    }
}

impl Engine {
    // ---------------------------------------------------------------- placing

    /// Validates and places one order. `test_only` stops after validation (order/test).
    pub fn place(&mut self, o: &NewOrder, now: i64, test_only: bool) -> Result<Placed, ApiError> {
        let Some(order_id) = self.admit(o, now, test_only)? else {
            return Ok(Placed {
                order_id: 0,
                fills: Vec::new(),
            });
        };
        self.execution_report(order_id, ExecType::New, None, now);
        let mut fills = Vec::new();
        if !o.order_type.is_stop() {
            fills = self.run_taker(order_id, now);
        }
        if let Some(spec) = self.market.get(&o.symbol).map(|m| m.spec.clone()) {
            self.account_position(&spec, now);
        }
        Ok(Placed { order_id, fills })
    }

    /// An order placed but not yet run against the book (an OTO's working order, placed with
    /// its list): its checks and lock, no event.
    pub(super) fn place_parked(&mut self, o: &NewOrder, now: i64) -> Result<u64, ApiError> {
        self.admit(o, now, false)?.ok_or_else(|| {
            ApiError::new(
                500,
                -1000,
                "An unknown error occurred while processing the request.",
            )
        })
    }

    /// The checks of a new order and, unless `test_only`, the order recorded with its lock.
    fn admit(&mut self, o: &NewOrder, now: i64, test_only: bool) -> Result<Option<u64>, ApiError> {
        self.check_filters(o)?;
        let m = MarketView::of(self.sym(&o.symbol)?);
        let buy = o.side == Side::Buy;
        let t = o.order_type;
        let client_id = match &o.client_order_id {
            Some(c) => c.clone(),
            None => self.gen_client_id(now),
        };
        self.check_duplicate(&client_id)?;
        if let Some(stop) = o.stop_price
            && would_trigger(t, buy, stop, m.last)
        {
            return Err(ApiError::rejected("Order would trigger immediately."));
        }
        if t == OrderType::LimitMaker
            && let Some(p) = o.price
        {
            let takes = if buy { p >= m.best_ask } else { p <= m.best_bid };
            let own = self.best_own_maker(&o.symbol, buy, 0, Some(p)).is_some();
            if takes || own {
                return Err(ApiError::rejected("Order would immediately match and take."));
            }
        }
        // Balance: what must be locked (limit-like and stop orders) or spent (market).
        let (lock_asset, lock_amount, lock_price) = if buy {
            let unit = match (o.price, o.stop_price, o.trailing_delta) {
                (Some(p), _, _) => p,
                // A trailing market buy triggers at most `delta` above where it starts tracking.
                (None, s, Some(d)) => {
                    let top = s.unwrap_or(m.last) * (Decimal::ONE + Decimal::new(d, 4));
                    (top / m.spec.tick).ceil() * m.spec.tick
                }
                (None, s, None) => s.unwrap_or(Decimal::ZERO),
            };
            // The filters bound price and quantity, so this cannot overflow; if it ever did,
            // no balance could cover it.
            let amount = unit
                .checked_mul(o.quantity.unwrap_or_default())
                .ok_or_else(ApiError::insufficient)?;
            (m.spec.quote.to_string(), amount, unit)
        } else {
            (
                m.spec.base.to_string(),
                o.quantity.unwrap_or_default(),
                Decimal::ZERO,
            )
        };
        if t == OrderType::Market {
            if buy {
                let need = match (o.quantity, o.quote_qty) {
                    (_, Some(qq)) => qq,
                    (Some(q), None) => estimate_cost(&m.asks, q),
                    _ => Decimal::ZERO,
                };
                if self.balance(m.spec.quote).free < need {
                    return Err(ApiError::insufficient());
                }
            } else {
                let need = match o.quantity {
                    Some(q) => Some(q),
                    None => estimate_qty_for_quote(m.best_bid, m.spec.step, o.quote_qty.unwrap_or_default()),
                };
                // No estimate means more base than any decimal holds: no balance covers it.
                if need.is_none_or(|need| self.balance(m.spec.base).free < need) {
                    return Err(ApiError::insufficient());
                }
            }
        } else if self.balance(&lock_asset).free < lock_amount {
            return Err(ApiError::insufficient());
        }
        if test_only {
            return Ok(None);
        }
        let order_id = self.account.next_order_id;
        self.account.next_order_id += 1;
        let mut order = SimOrder {
            lock_price,
            ..SimOrder::placed(o, order_id, -1, client_id, now)
        };
        // Without a stop price a trailing stop tracks from the price at placement.
        if o.trailing_delta.is_some() && o.stop_price.is_none() {
            order.trailing_time = now;
            order.trailing_extreme = Some(m.last);
        }
        if t != OrderType::Market {
            let b = self.bal_mut(&lock_asset);
            b.free -= lock_amount;
            b.locked += lock_amount;
            order.lock_asset = lock_asset.clone();
            order.locked_left = lock_amount;
        }
        self.account.orders.insert(order_id, order);
        Ok(Some(order_id))
    }

    /// Runs a working order against the book as a taker, then applies its time-in-force. The
    /// book is the synthetic one plus the account's own resting orders (`selftrade`): levels
    /// strictly better than the best own order are taken first, then the own order is met as
    /// the taker's self-trade prevention mode says, and so on.
    pub(super) fn run_taker(&mut self, order_id: u64, now: i64) -> Vec<MyTrade> {
        let Some(o) = self.account.orders.get(&order_id).cloned() else {
            return Vec::new();
        };
        let buy = o.buy();
        let limit = if o.order_type.is_limit_like() {
            Some(o.price)
        } else {
            None
        };
        if o.order_type == OrderType::LimitMaker {
            return Vec::new();
        }
        // What a market-type order (MARKET, or a triggered STOP_LOSS/TAKE_PROFIT) may use: the
        // free balance plus what is still locked for it, so a gap never drives a balance negative.
        let (base, quote, tick) = match self.market.get(&o.symbol) {
            Some(m) => (m.spec.base, m.spec.quote, m.spec.tick),
            None => return Vec::new(),
        };
        let holder_locked = self
            .account
            .orders
            .get(&o.lock_from.unwrap_or(order_id))
            .map(|h| h.locked_left)
            .unwrap_or_default();
        let usable = |asset: &str| self.balance(asset).free + holder_locked;
        let market_type = !o.order_type.is_limit_like();
        let usable_quote = usable(quote);
        let usable_base = usable(base);
        let quote_mode = o.order_type == OrderType::Market && o.orig_qty.is_zero();
        if o.time_in_force == TimeInForce::Fok && limit.is_some() {
            let own = if o.stp_mode == StpMode::None {
                self.own_crossing_qty(&o.symbol, buy, o.price)
            } else {
                Decimal::ZERO
            };
            let synthetic = self
                .market
                .get(&o.symbol)
                .map(|m| m.crossing_qty(buy, o.price))
                .unwrap_or_default();
            if synthetic + own < o.remaining() {
                self.expire(order_id, "UNFILLED_FOK_ORDER_EXPIRED", now);
                return Vec::new();
            }
        }
        let (mut max_qty, max_quote) = if quote_mode {
            (Decimal::from(1_000_000_000_000i64), Some(o.orig_quote_qty))
        } else {
            (o.remaining(), None)
        };
        let mut quote_cap = if buy && market_type {
            Some(max_quote.map(|q| q.min(usable_quote)).unwrap_or(usable_quote))
        } else {
            max_quote
        };
        if !buy && market_type {
            max_qty = max_qty.min(usable_base);
        }
        let mut fills = Vec::new();
        if quote_mode {
            fills = self.run_quote_taker(&o, max_qty, quote_cap, now);
        } else {
            loop {
                let own = self.best_own_maker(&o.symbol, buy, order_id, limit);
                // Synthetic levels strictly better than the best own order come first.
                let bound = match own {
                    Some((_, p)) => {
                        let before = if buy { p - tick } else { p + tick };
                        Some(match limit {
                            Some(l) if buy => l.min(before),
                            Some(l) => l.max(before),
                            None => before,
                        })
                    }
                    None => limit,
                };
                let levels = self.take_levels(&o.symbol, buy, max_qty, bound, quote_cap, now);
                for (price, qty) in levels {
                    max_qty -= qty;
                    quote_cap = quote_cap.map(|c| c - price * qty);
                    fills.push(self.apply_fill(order_id, price, qty, false, now));
                }
                let open = self.account.orders.get(&order_id).is_some_and(SimOrder::is_open);
                let Some((maker, price)) = own else { break };
                if !open || max_qty <= Decimal::ZERO {
                    break;
                }
                match self.meet_own(order_id, maker, price, max_qty, quote_cap, now) {
                    Some(Some(t)) => {
                        max_qty -= t.qty;
                        quote_cap = quote_cap.map(|c| c - t.quote_qty);
                        fills.push(t);
                    }
                    Some(None) => {}
                    None => break,
                }
            }
        }
        let Some(o) = self.account.orders.get(&order_id).cloned() else {
            return fills;
        };
        if o.is_open() {
            let rests = o.order_type.is_limit_like() && o.time_in_force == TimeInForce::Gtc;
            if !rests {
                let reason = if o.order_type == OrderType::Market || quote_mode {
                    "INSUFFICIENT_LIQUIDITY"
                } else {
                    "UNFILLED_IOC_QUANTITY_EXPIRED"
                };
                self.expire(order_id, reason, now);
            }
        }
        fills
    }

    /// `run_taker` for a quoteOrderQty MARKET order `o`: its quantity is what the amount
    /// bought, known only once the walk is done, so the walk is planned first and the taker's
    /// fills booked after its `origQty` is set. The own orders it meets are met on the way as
    /// its mode says: an expired maker is gone before the levels behind it are taken; a
    /// self-trade (`NONE`) books the maker's side at once (putting the trade on the tape) and
    /// the taker's with the others; a taker the mode expires stops there and expires after
    /// its fills are booked, what the rest of its amount buys at that price being its
    /// quantity left (its `preventedQuantity`).
    fn run_quote_taker(
        &mut self,
        o: &SimOrder,
        mut max_qty: Decimal,
        mut quote_cap: Option<Decimal>,
        now: i64,
    ) -> Vec<MyTrade> {
        let (buy, id) = (o.buy(), o.order_id);
        let (tick, step) = match self.market.get(&o.symbol) {
            Some(m) => (m.spec.tick, m.spec.step),
            None => return Vec::new(),
        };
        // (price, qty, the tape's trade id when the maker's side already booked it).
        let mut plan: Vec<(Decimal, Decimal, Option<u64>)> = Vec::new();
        let mut stopped_at = None;
        loop {
            let own = self.best_own_maker(&o.symbol, buy, id, None);
            let bound = own.map(|(_, p)| if buy { p - tick } else { p + tick });
            for (price, qty) in self.take_levels(&o.symbol, buy, max_qty, bound, quote_cap, now) {
                max_qty -= qty;
                quote_cap = quote_cap.map(|c| c - price * qty);
                plan.push((price, qty, None));
            }
            let Some((maker, price)) = own else { break };
            if max_qty <= Decimal::ZERO || quote_cap.is_some_and(|c| c <= Decimal::ZERO) {
                break;
            }
            match o.stp_mode {
                StpMode::None => {
                    let visible = self.account.orders.get(&maker).map(SimOrder::visible_qty);
                    let q = visible
                        .unwrap_or_default()
                        .min(qty_left(price, max_qty, quote_cap, step));
                    if q <= Decimal::ZERO {
                        break;
                    }
                    let t = self.book_fill(maker, price, q, true, now, None);
                    max_qty -= q;
                    quote_cap = quote_cap.map(|c| c - price * q);
                    plan.push((price, q, Some(t.id)));
                }
                StpMode::ExpireMaker => {
                    self.meet_own(id, maker, price, max_qty, quote_cap, now);
                }
                StpMode::ExpireTaker | StpMode::ExpireBoth => {
                    stopped_at = Some((maker, price))
                        .filter(|_| qty_left(price, max_qty, quote_cap, step) > Decimal::ZERO);
                    break;
                }
            }
        }
        let rest = stopped_at
            .map(|(_, p)| qty_left(p, max_qty, quote_cap, step))
            .unwrap_or_default();
        if let Some(x) = self.account.orders.get_mut(&id) {
            x.orig_qty = plan.iter().map(|(_, q, _)| *q).sum::<Decimal>() + rest;
        }
        let fills = plan
            .into_iter()
            .map(|(price, qty, trade)| self.book_fill(id, price, qty, false, now, trade))
            .collect();
        if let Some((maker, price)) = stopped_at {
            self.meet_own(id, maker, price, max_qty, quote_cap, now);
        }
        fills
    }

    /// Takes synthetic levels up to `limit` and publishes the depth change; the fills are the
    /// caller's to book.
    fn take_levels(
        &mut self,
        symbol: &str,
        buy: bool,
        max_qty: Decimal,
        limit: Option<Decimal>,
        quote_cap: Option<Decimal>,
        now: i64,
    ) -> Vec<(Decimal, Decimal)> {
        if max_qty <= Decimal::ZERO || quote_cap.is_some_and(|c| c <= Decimal::ZERO) {
            return Vec::new();
        }
        let Some(m) = self.market.get_mut(symbol) else {
            return Vec::new();
        };
        let (levels, diff) = m.take(buy, max_qty, limit, quote_cap);
        if let Some(diff) = diff {
            self.market_events.push(MarketEvent::Depth {
                symbol: symbol.to_string(),
                time: now,
                diff,
            });
            self.market_events.push(MarketEvent::BookTicker {
                symbol: symbol.to_string(),
            });
        }
        levels
    }

    /// Books one fill: balances, order progress, the trade record and its events.
    pub(super) fn apply_fill(
        &mut self,
        order_id: u64,
        price: Decimal,
        qty: Decimal,
        maker: bool,
        now: i64,
    ) -> MyTrade {
        self.book_fill(order_id, price, qty, maker, now, None)
    }

    /// `apply_fill`, or with `trade_id` the maker side of a self-trade whose taker side
    /// already put the trade on the tape.
    pub(super) fn book_fill(
        &mut self,
        order_id: u64,
        price: Decimal,
        qty: Decimal,
        maker: bool,
        now: i64,
        trade_id: Option<u64>,
    ) -> MyTrade {
        let Some(o) = self.account.orders.get(&order_id).cloned() else {
            return empty_trade();
        };
        let (base, quote) = match self.market.get(&o.symbol) {
            Some(m) => (m.spec.base.to_string(), m.spec.quote.to_string()),
            None => return empty_trade(),
        };
        let buy = o.buy();
        let quote_amt = price * qty;
        // Move this fill's share of the lock back to free, then debit free.
        let holder = o.lock_from.unwrap_or(order_id);
        if let Some(h) = self.account.orders.get_mut(&holder)
            && !h.lock_asset.is_empty()
        {
            let share = if buy { qty * o.lock_price } else { qty };
            let unlock = share.min(h.locked_left);
            h.locked_left -= unlock;
            let asset = h.lock_asset.clone();
            let b = self.bal_mut(&asset);
            b.locked -= unlock;
            b.free += unlock;
        }
        if buy {
            self.bal_mut(&quote).free -= quote_amt;
            self.bal_mut(&base).free += qty;
        } else {
            self.bal_mut(&base).free -= qty;
            self.bal_mut(&quote).free += quote_amt;
        }
        // Charged after the trade moved the balances, so BNB just bought can pay its own fee.
        let (commission, commission_asset) = self.commission(buy, qty, quote_amt, &base, &quote);
        self.bal_mut(&commission_asset).free -= commission;
        let buyer_maker = buy == maker;
        let trade_id = match (trade_id, self.market.get_mut(&o.symbol)) {
            (Some(id), _) => id,
            (None, Some(m)) => {
                let t = m.record_trade(price, qty, buyer_maker, now);
                let id = t.id;
                self.market_events.push(MarketEvent::Trade {
                    symbol: o.symbol.clone(),
                    trade: t,
                });
                id
            }
            (None, None) => 0,
        };
        let trade = MyTrade {
            symbol: o.symbol.clone(),
            id: trade_id,
            order_id,
            order_list_id: o.order_list_id,
            price,
            qty,
            quote_qty: quote_amt,
            commission,
            commission_asset: commission_asset.clone(),
            time: now,
            is_buyer: buy,
            is_maker: maker,
        };
        self.account.trades.push(trade.clone());
        let filled = {
            let Some(x) = self.account.orders.get_mut(&order_id) else {
                return trade;
            };
            x.executed_qty += qty;
            x.cum_quote += quote_amt;
            x.update_time = now;
            x.status = if x.executed_qty >= x.orig_qty && !x.orig_qty.is_zero() {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
            x.status == OrderStatus::Filled
        };
        self.account.update_time = now;
        self.execution_report(order_id, ExecType::Trade, Some(&trade), now);
        if filled {
            self.release_lock(order_id);
        }
        // An OCO leg that trades ends its sibling; an OTO's working order that fills places
        // its pending order(s).
        if o.order_list_id >= 0 {
            self.list_order_traded(o.order_list_id, order_id, filled, now);
        }
        trade
    }

    pub(super) fn expire(&mut self, order_id: u64, reason: &str, now: i64) {
        if let Some(o) = self.account.orders.get_mut(&order_id) {
            o.status = OrderStatus::Expired;
            o.update_time = now;
            o.expiry_reason = Some(reason.to_string());
        }
        self.release_lock(order_id);
        self.execution_report(order_id, ExecType::Expired, None, now);
        self.list_order_expired(order_id, now);
    }

    // ---------------------------------------------------------------- market steps

    /// Advances the market one step, then triggers stops and fills resting orders it crossed.
    pub fn step(&mut self, now: i64) {
        let events = self.market.step(now);
        self.market_events.extend(events);
        self.match_resting(now);
    }

    /// Moves a symbol's price (control endpoint) and matches at once.
    pub fn force_price(&mut self, symbol: &str, price: Decimal, now: i64) -> Result<(), ApiError> {
        let events = self.market.force_price(symbol, price, now).map_err(|r| match r {
            market::PriceRefused::UnknownSymbol => ApiError::bad_symbol(),
            market::PriceRefused::Filter { min, max, tick } => ApiError::bad(
                -1013,
                format!(
                    "Filter failure: PRICE_FILTER (price {price} must be within [{min}, {max}] and a multiple of {tick})"
                ),
            ),
        })?;
        self.market_events.extend(events);
        self.match_resting(now);
        Ok(())
    }

    /// Paper mode: sets a symbol's top of book from the outside source.
    pub fn set_quote(&mut self, symbol: &str, bid: (Decimal, Decimal), ask: (Decimal, Decimal), now: i64) {
        if let Some(events) = self.market.set_quote(symbol, bid, ask, now) {
            self.market_events.extend(events);
            self.match_resting(now);
        }
    }

    pub(super) fn match_resting(&mut self, now: i64) {
        let open: Vec<u64> = self
            .account
            .orders
            .values()
            .filter(|o| o.is_open())
            .map(|o| o.order_id)
            .collect();
        let mut touched = Vec::new();
        for id in open {
            let Some(o) = self.account.orders.get(&id).cloned() else {
                continue;
            };
            if !o.is_open() || o.status == OrderStatus::PendingNew {
                continue;
            }
            let Some(m) = self.market.get(&o.symbol) else {
                continue;
            };
            let buy = o.buy();
            if !o.is_working {
                let last = m.last_price;
                let fire = match self.account.orders.get_mut(&id) {
                    Some(x) if x.trailing_delta.is_some() => trail(x, last, now),
                    _ => would_trigger(o.order_type, buy, o.stop_price, last),
                };
                if fire {
                    if let Some(x) = self.account.orders.get_mut(&id) {
                        x.is_working = true;
                        x.working_time = now;
                    }
                    if o.order_list_id >= 0 {
                        // The stop leg of an OCO triggered: the other leg expires.
                        self.finish_list_sibling(o.order_list_id, id, now);
                    }
                    self.run_taker(id, now);
                    if o.order_list_id >= 0 {
                        self.maybe_finish_list(o.order_list_id, now);
                    }
                    touched.push(o.symbol.clone());
                }
                continue;
            }
            if !o.order_type.is_limit_like() {
                continue;
            }
            let avail = m.crossing_qty(buy, o.price);
            let q = avail.min(o.remaining());
            if q <= Decimal::ZERO {
                continue;
            }
            if let Some(mm) = self.market.get_mut(&o.symbol) {
                let (_, diff) = mm.take(buy, q, Some(o.price), None);
                if let Some(diff) = diff {
                    self.market_events.push(MarketEvent::Depth {
                        symbol: o.symbol.clone(),
                        time: now,
                        diff,
                    });
                    self.market_events.push(MarketEvent::BookTicker {
                        symbol: o.symbol.clone(),
                    });
                }
            }
            // An iceberg trades one visible part at a time, each part refilled from the rest.
            let mut left = q;
            while left > Decimal::ZERO {
                let part = self
                    .account
                    .orders
                    .get(&id)
                    .filter(|x| x.is_open())
                    .map(|x| x.visible_qty().min(left))
                    .unwrap_or_default();
                if part <= Decimal::ZERO {
                    break;
                }
                self.apply_fill(id, o.price, part, true, now);
                left -= part;
            }
            touched.push(o.symbol.clone());
        }
        touched.dedup();
        for s in touched {
            if let Some(spec) = self.market.get(&s).map(|m| m.spec.clone()) {
                self.account_position(&spec, now);
            }
        }
    }
}

/// What a taker with `max_qty` and at most `quote_cap` to spend can still trade at `price`, in
/// whole steps.
fn qty_left(price: Decimal, max_qty: Decimal, quote_cap: Option<Decimal>, step: Decimal) -> Decimal {
    let by_quote = match quote_cap {
        Some(c) => c.checked_div(price).and_then(|x| checked_floor_to(x, step)),
        None => Some(max_qty),
    };
    by_quote.unwrap_or_default().min(max_qty).max(Decimal::ZERO)
}

fn empty_trade() -> MyTrade {
    MyTrade {
        symbol: String::new(),
        id: 0,
        order_id: 0,
        order_list_id: -1,
        price: Decimal::ZERO,
        qty: Decimal::ZERO,
        quote_qty: Decimal::ZERO,
        commission: Decimal::ZERO,
        commission_asset: String::new(),
        time: 0,
        is_buyer: false,
        is_maker: false,
    }
}

/// What placing an order reads of its market, copied so that the engine can change while it
/// is held: the market itself also holds its candles and trade tape, far too much to copy
/// for every order.
struct MarketView {
    spec: SymbolSpec,
    last: Decimal,
    best_bid: Decimal,
    best_ask: Decimal,
    asks: Vec<(Decimal, Decimal)>,
}

impl MarketView {
    fn of(m: &SymbolMarket) -> Self {
        MarketView {
            spec: m.spec.clone(),
            last: m.last_price,
            best_bid: m.best_bid().0,
            best_ask: m.best_ask().0,
            asks: m.asks.clone(),
        }
    }
}

/// Cost of buying `qty` now by walking the asks (the rest priced at the worst level).
fn estimate_cost(asks: &[(Decimal, Decimal)], qty: Decimal) -> Decimal {
    let mut left = qty;
    let mut cost = Decimal::ZERO;
    for (p, q) in asks {
        let take = left.min(*q);
        cost += take * p;
        left -= take;
        if left <= Decimal::ZERO {
            break;
        }
    }
    cost
}

/// Base quantity a quote amount sells for at the best bid; `None` when it overflows.
fn estimate_qty_for_quote(bid: Decimal, step: Decimal, quote: Decimal) -> Option<Decimal> {
    if bid.is_zero() {
        Some(Decimal::ZERO)
    } else {
        checked_floor_to(quote.checked_div(bid)?, step)
    }
}
