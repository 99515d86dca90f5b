//! The matching engine and the one account of the local exchange: balances (free/locked),
//! orders, order lists (OCO), fills and the user-data events they cause.
//!
//! Owns: order validation after the request was authenticated (parameters, filters, balance),
//! matching against the synthetic book, commissions, and the JSON shapes of orders, fills and
//! `executionReport`/`outboundAccountPosition`/`listStatus` events. Must not: read the clock
//! (every call takes `now`), do I/O, or check signatures (that is `auth`).
//!
//! Rules taken from Binance's official spot API docs (rest-api.md, filters.md, errors.md):
//! taker fills walk the opposite side of the book at each level's price; a resting order
//! fills at its own price when the synthetic market crosses it; buys pay commission in the
//! base asset, sells in the quote asset, unless BNB fees are on (below); an OCO leg that fills
//! or triggers expires the other.
//!
//! BNB fees (`bnb_fees`, like Binance's "use BNB to pay for fees"): when on and the account's
//! free BNB covers it, a fill's commission is charged in BNB instead: the fill's quote value ×
//! the commission rate × (1 − [`BNB_FEE_DISCOUNT`]), converted at the BNBUSDT mid (the middle
//! of its best bid and ask when the fill is booked) and rounded to 8 decimals. Otherwise (not
//! enough BNB, a quote asset other than USDT, no BNBUSDT book) the usual asset pays in full.
//!
//! This file is the façade: the `Engine` and its constructor, and re-exports, so callers name
//! everything as `engine::X`. The work is in one sub-module per job: `request` (parameters and
//! the error answered), `kinds` (the order enums and their wire names), `validate` (new-order
//! checks and filters), `account` (balances, records, locks, deposits), `matching` (placing,
//! taking, resting fills, stops), `selftrade` (the account's own orders in the book and
//! self-trade prevention), `fees`, `lists` (OCO), `oto` (OTO and OTOCO lists), `cancels`
//! (finding and cancelling orders) and `reports` (JSON shapes and user-data events).

mod account;
mod cancels;
mod fees;
mod kinds;
mod lists;
mod matching;
mod oto;
mod reports;
mod request;
mod selftrade;
mod validate;

use rust_decimal::Decimal;
use serde_json::Value;

use super::market::{Market, MarketEvent, SymbolMarket};

pub use account::{AccountState, Bal, MAX_BALANCE, MyTrade, OrderList, PreventedMatch, SimOrder};
pub use cancels::CancelReplaced;
pub use fees::BNB_FEE_DISCOUNT;
pub use kinds::{
    ContingencyType, ExecType, ListOrderStatus, ListStatusType, OrderStatus, OrderType, RespType, Side,
    StpMode, TimeInForce,
};
pub use reports::{cancel_json, execution_json, order_json, result_json, trade_json};
pub use request::{ApiError, Params, check_client_id};
pub use selftrade::{Levels, depth_side, prevented_json};
pub use validate::{
    ALLOWED_STP_MODES, DEFAULT_STP_MODE, ICEBERG_PARTS, MAX_TRAILING_DELTA, MIN_TRAILING_DELTA, NewOrder,
};

/// The exchange: the market plus the account, and the events produced since the last drain.
#[derive(Debug)]
pub struct Engine {
    pub market: Market,
    pub account: AccountState,
    pub commission_rate: Decimal,
    /// Pay commissions in BNB when the account holds enough (see the module doc).
    pub bnb_fees: bool,
    /// User-data event payloads waiting to be published.
    pub user_events: Vec<Value>,
    /// Market events waiting to be published.
    pub market_events: Vec<MarketEvent>,
    id_counter: u64,
}

/// What placing an order produced (for the response builder).
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: u64,
    pub fills: Vec<MyTrade>,
}

impl Engine {
    pub fn new(market: Market, account: AccountState, commission_rate: Decimal) -> Self {
        let mut account = account;
        if account.next_order_id == 0 {
            account.next_order_id = 1;
        }
        if account.next_list_id == 0 {
            account.next_list_id = 1;
        }
        let mut market = market;
        // Trade ids keep increasing across restarts: the tape continues after the last saved fill.
        for t in &account.trades {
            if let Some(m) = market.get_mut(&t.symbol) {
                m.next_trade_id = m.next_trade_id.max(t.id + 1);
            }
        }
        Engine {
            market,
            account,
            commission_rate,
            bnb_fees: false,
            user_events: Vec::new(),
            market_events: Vec::new(),
            id_counter: 0,
        }
    }

    /// The symbol's market, or the "Invalid symbol." answer.
    pub(crate) fn sym(&self, symbol: &str) -> Result<&SymbolMarket, ApiError> {
        self.market.get(symbol).ok_or_else(ApiError::bad_symbol)
    }

    /// A 22-character id like Binance's generated ones.
    pub fn gen_client_id(&mut self, now: i64) -> String {
        self.id_counter += 1;
        let mut x = (now as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(self.id_counter.wrapping_mul(1442695040888963407));
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut s = String::from("sim");
        for _ in 0..19 {
            s.push(A[(x % 62) as usize] as char);
            x = (x / 62) ^ x.rotate_left(17).wrapping_mul(31);
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::exchange::sim::market;
    use proptest::prelude::*;
    use serde_json::json;

    const T0: i64 = 1_700_000_000_000;

    fn engine() -> Engine {
        let mut account = AccountState::default();
        account.balances.insert(
            "USDT".into(),
            Bal {
                free: Decimal::from(50_000),
                locked: Decimal::ZERO,
            },
        );
        account.balances.insert(
            "BTC".into(),
            Bal {
                free: Decimal::ONE,
                locked: Decimal::ZERO,
            },
        );
        let mut e = Engine::new(Market::new(1, Decimal::ONE, T0), account, Decimal::new(1, 3));
        e.force_price("BTCUSDT", Decimal::from(100_000), T0).unwrap();
        e
    }

    fn params(v: &[(&str, String)]) -> Params {
        Params(v.iter().map(|(k, x)| (k.to_string(), x.clone())).collect())
    }

    /// Every balance is the starting one moved by each fill on both sides: the base and quote
    /// of every trade of the account, its commission (a self-trade books both sides).
    fn check_fills_balance(e: &Engine, start: &std::collections::BTreeMap<String, Decimal>) {
        let mut expected = start.clone();
        for t in &e.account.trades {
            let m = e.market.get(&t.symbol).unwrap();
            let (base, quote) = (m.spec.base.to_string(), m.spec.quote.to_string());
            let sign = if t.is_buyer { Decimal::ONE } else { -Decimal::ONE };
            *expected.entry(base).or_default() += sign * t.qty;
            *expected.entry(quote).or_default() -= sign * t.quote_qty;
            *expected.entry(t.commission_asset.clone()).or_default() -= t.commission;
        }
        for (asset, want) in expected {
            let b = e.balance(&asset);
            assert_eq!(b.free + b.locked, want, "{asset}: balance vs fills");
        }
        // A self-trade is one trade on the tape with a fill on each side of it.
        let mut by_id: std::collections::BTreeMap<u64, Vec<&MyTrade>> = Default::default();
        for t in &e.account.trades {
            by_id.entry(t.id).or_default().push(t);
        }
        for (id, rows) in by_id {
            assert!(rows.len() <= 2, "trade {id} booked {} times", rows.len());
            if let [a, b] = rows[..] {
                assert_ne!(a.is_buyer, b.is_buyer, "self-trade {id} has one side twice");
                assert_ne!(a.is_maker, b.is_maker, "self-trade {id} has two makers or takers");
                assert_eq!((a.qty, a.price), (b.qty, b.price), "self-trade {id} sides differ");
            }
        }
    }

    /// Locked balances equal what open orders (or their list) still hold; nothing is negative.
    fn check_invariants(e: &Engine) {
        for (asset, b) in &e.account.balances {
            assert!(b.free >= Decimal::ZERO, "{asset} free {}", b.free);
            assert!(b.locked >= Decimal::ZERO, "{asset} locked {}", b.locked);
            let held: Decimal = e
                .account
                .orders
                .values()
                .filter(|o| o.lock_asset == *asset)
                .map(|o| o.locked_left)
                .sum();
            assert_eq!(held, b.locked, "{asset} locked vs orders");
        }
        for o in e.account.orders.values() {
            assert!(o.executed_qty <= o.orig_qty || o.orig_qty.is_zero());
            // An open order on its own holds exactly what the rest of it needs: its remaining
            // quantity (sells) or that at its lock price (buys). On its own: not in a list, or
            // an OTO's working order or its one placed pending order (an OCO pair, of an OCO
            // or an OTOCO, shares one lock).
            let shares =
                o.lock_from.is_some() || e.account.orders.values().any(|x| x.lock_from == Some(o.order_id));
            let own_lock = o.order_list_id < 0 || (!shares && o.status != OrderStatus::PendingNew);
            if o.is_open() && own_lock {
                let need = if o.buy() {
                    o.remaining() * o.lock_price
                } else {
                    o.remaining()
                };
                assert_eq!(
                    o.locked_left, need,
                    "order {} holds {} for a need of {need}",
                    o.order_id, o.locked_left
                );
            }
            // A pending order of an OTO list holds nothing until its working order fills.
            if o.status == OrderStatus::PendingNew {
                assert!(
                    o.locked_left.is_zero(),
                    "pending order {} holds funds",
                    o.order_id
                );
            }
            // An iceberg shows at most its part, and never more than is left.
            if let Some(part) = o.iceberg_qty {
                assert!(o.visible_qty() <= part && o.visible_qty() <= o.remaining());
            }
            if !o.is_open() && o.order_list_id < 0 {
                assert!(
                    o.locked_left.is_zero(),
                    "closed order {} still holds {}",
                    o.order_id,
                    o.locked_left
                );
            }
        }
        check_self_trade_prevention(e);
    }

    /// Every taker meets the account's own orders (whatever its mode, named or the default),
    /// so they never rest crossed; each order ended by self-trade prevention is in a prevented
    /// match of a taker and a maker on opposite sides.
    fn check_self_trade_prevention(e: &Engine) {
        let (bids, asks) = e.own_levels("BTCUSDT");
        if let (Some((bid, _)), Some((ask, _))) = (bids.first(), asks.first()) {
            assert!(bid < ask, "own orders rest crossed: bid {bid} >= ask {ask}");
        }
        for p in &e.account.prevented {
            let (t, m) = (
                &e.account.orders[&p.taker_order_id],
                &e.account.orders[&p.maker_order_id],
            );
            assert_ne!(
                t.buy(),
                m.buy(),
                "prevented match {} on one side",
                p.prevented_match_id
            );
            if p.maker_prevented_quantity > Decimal::ZERO {
                assert_eq!(
                    m.status,
                    OrderStatus::ExpiredInMatch,
                    "maker of {}",
                    p.prevented_match_id
                );
            }
        }
        for o in e.account.orders.values() {
            if o.status == OrderStatus::ExpiredInMatch {
                let id = o.prevented_match_id;
                let named = e.account.prevented.iter().any(|p| {
                    Some(p.prevented_match_id) == id
                        && (p.taker_order_id == o.order_id || p.maker_order_id == o.order_id)
                });
                assert!(
                    named,
                    "order {} expired in match without its prevented match",
                    o.order_id
                );
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Limit {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            tif: usize,
        },
        Market {
            buy: bool,
            qty_milli: i64,
        },
        Stop {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            limit: bool,
            take_profit: bool,
            tif: usize,
        },
        LimitMaker {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
        },
        /// A quoteOrderQty MARKET order, with a self-trade prevention mode (`STP`, or none
        /// named past its end).
        QuoteMarket {
            buy: bool,
            quote: i64,
            stp: usize,
        },
        Oco {
            qty_milli: i64,
        },
        Cancel {
            pick: usize,
        },
        Move {
            bp: i64,
        },
        Trailing {
            buy: bool,
            delta: i64,
            stop_bp: Option<i64>,
            qty_milli: i64,
            limit: bool,
            take_profit: bool,
        },
        Replace {
            pick: usize,
            allow_failure: bool,
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
        },
        /// An OTO (one pending order) or OTOCO (a pending OCO pair): a working LIMIT on one
        /// side, the pending order(s) on the other.
        Oto {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            otoco: bool,
            pending_market: bool,
        },
        /// A GTC LIMIT or LIMIT_MAKER with a visible part of `part_milli`, and a
        /// self-trade prevention mode.
        Iceberg {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            part_milli: i64,
            maker: bool,
            stp: usize,
        },
        /// A taker against the account's own orders: a LIMIT (at the best own order's price)
        /// or a MARKET order, with a self-trade prevention mode (`STP`, or none named past its
        /// end: the symbol's default).
        SelfTaker {
            buy: bool,
            offset_bp: i64,
            qty_milli: i64,
            stp: usize,
            tif: usize,
            market: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), -300i64..300, 1i64..80, 0usize..3).prop_map(
                |(buy, offset_bp, qty_milli, tif)| Op::Limit {
                    buy,
                    offset_bp,
                    qty_milli,
                    tif
                }
            ),
            (any::<bool>(), 1i64..80).prop_map(|(buy, qty_milli)| Op::Market { buy, qty_milli }),
            (
                any::<bool>(),
                10i64..300,
                1i64..80,
                any::<bool>(),
                any::<bool>(),
                0usize..3
            )
                .prop_map(|(buy, offset_bp, qty_milli, limit, take_profit, tif)| Op::Stop {
                    buy,
                    offset_bp,
                    qty_milli,
                    limit,
                    take_profit,
                    tif
                }),
            (any::<bool>(), -300i64..300, 1i64..80).prop_map(|(buy, offset_bp, qty_milli)| {
                Op::LimitMaker {
                    buy,
                    offset_bp,
                    qty_milli,
                }
            }),
            (any::<bool>(), 5i64..8000, 0usize..STP.len() + 1)
                .prop_map(|(buy, quote, stp)| Op::QuoteMarket { buy, quote, stp }),
            (1i64..80).prop_map(|qty_milli| Op::Oco { qty_milli }),
            (0usize..20).prop_map(|pick| Op::Cancel { pick }),
            (-400i64..400).prop_map(|bp| Op::Move { bp }),
            (
                any::<bool>(),
                5i64..400,
                proptest::option::of(10i64..300),
                1i64..80,
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(buy, delta, stop_bp, qty_milli, limit, take_profit)| {
                    Op::Trailing {
                        buy,
                        delta,
                        stop_bp,
                        qty_milli,
                        limit,
                        take_profit,
                    }
                }),
            (
                any::<bool>(),
                -300i64..300,
                2i64..80,
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(buy, offset_bp, qty_milli, otoco, pending_market)| Op::Oto {
                    buy,
                    offset_bp,
                    qty_milli,
                    otoco,
                    pending_market,
                }),
            (
                any::<bool>(),
                -300i64..300,
                2i64..80,
                1i64..40,
                any::<bool>(),
                0usize..4
            )
                .prop_map(
                    |(buy, offset_bp, qty_milli, part_milli, maker, stp)| Op::Iceberg {
                        buy,
                        offset_bp,
                        qty_milli,
                        part_milli,
                        maker,
                        stp,
                    }
                ),
            (
                any::<bool>(),
                -300i64..300,
                1i64..120,
                0usize..STP.len() + 1,
                0usize..3,
                any::<bool>()
            )
                .prop_map(|(buy, offset_bp, qty_milli, stp, tif, market)| Op::SelfTaker {
                    buy,
                    offset_bp,
                    qty_milli,
                    stp,
                    tif,
                    market,
                }),
            (0usize..20, any::<bool>(), any::<bool>(), -300i64..300, 1i64..200).prop_map(
                |(pick, allow_failure, buy, offset_bp, qty_milli)| Op::Replace {
                    pick,
                    allow_failure,
                    buy,
                    offset_bp,
                    qty_milli,
                }
            ),
        ]
    }

    fn price_at(e: &Engine, bp: i64) -> Decimal {
        let last = e.market.get("BTCUSDT").unwrap().last_price;
        market::round_tick(last * (Decimal::ONE + Decimal::new(bp, 4)), Decimal::new(1, 2))
    }

    /// The order type of a stop: loss or profit, market or limit.
    fn stop_kind(take_profit: bool, limit: bool) -> &'static str {
        match (take_profit, limit) {
            (false, false) => "STOP_LOSS",
            (false, true) => "STOP_LOSS_LIMIT",
            (true, false) => "TAKE_PROFIT",
            (true, true) => "TAKE_PROFIT_LIMIT",
        }
    }

    /// A trailing stop's parameters (`Op::Trailing`).
    fn trailing_params(e: &Engine, op: &Op) -> Params {
        let Op::Trailing {
            buy,
            delta,
            stop_bp,
            qty_milli,
            limit,
            take_profit,
        } = op
        else {
            return Params::default();
        };
        let qty = |m: i64| (Decimal::new(m, 3)).to_string();
        let s = |x: &str| x.to_string();

        let kind = stop_kind(*take_profit, *limit);
        let mut v = vec![
            ("symbol", s("BTCUSDT")),
            ("side", s(if *buy { "BUY" } else { "SELL" })),
            ("type", s(kind)),
            ("quantity", qty(*qty_milli)),
            ("trailingDelta", delta.to_string()),
        ];
        // Stop-loss buys and take-profit sells wait above the market, the others below.
        let above = *buy != *take_profit;
        let bp = stop_bp.unwrap_or(100);
        let stop = price_at(e, if above { bp } else { -bp });
        if stop_bp.is_some() {
            v.push(("stopPrice", stop.to_string()));
        }
        if *limit {
            v.push(("price", stop.to_string()));
            v.push(("timeInForce", s("GTC")));
        }
        params(&v)
    }

    /// A cancelReplace of an open order (or an unknown one) by a LIMIT order (`Op::Replace`).
    fn replace(e: &mut Engine, op: &Op, now: i64) {
        let Op::Replace {
            pick,
            allow_failure,
            buy,
            offset_bp,
            qty_milli,
        } = op
        else {
            return;
        };
        let qty = |m: i64| (Decimal::new(m, 3)).to_string();
        let s = |x: &str| x.to_string();
        let open: Vec<u64> = e
            .account
            .orders
            .values()
            .filter(|o| o.is_open())
            .map(|o| o.order_id)
            .collect();
        let id = open.get(pick % open.len().max(1)).copied().unwrap_or(999);
        let p = params(&[
            ("symbol", s("BTCUSDT")),
            (
                "cancelReplaceMode",
                s(if *allow_failure {
                    "ALLOW_FAILURE"
                } else {
                    "STOP_ON_FAILURE"
                }),
            ),
            ("cancelOrderId", id.to_string()),
            ("side", s(if *buy { "BUY" } else { "SELL" })),
            ("type", s("LIMIT")),
            ("timeInForce", s("GTC")),
            ("quantity", qty(*qty_milli)),
            ("price", price_at(e, *offset_bp).to_string()),
        ]);
        let _ = e.cancel_replace(&p, now, *allow_failure, || Ok(None));
    }

    const STP: [&str; 4] = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"];

    /// An order's parameters with `selfTradePreventionMode` `STP[stp]`, or without one (the
    /// symbol's default applies) when `stp` is past the end.
    fn with_stp(mut v: Vec<(&str, String)>, stp: usize) -> Params {
        if let Some(mode) = STP.get(stp) {
            v.push(("selfTradePreventionMode", mode.to_string()));
        }
        params(&v)
    }

    /// An OTO/OTOCO request (`Op::Oto`): the working LIMIT at `offset_bp`, the pending
    /// order(s) on the other side around the market.
    fn oto_params(e: &Engine, op: &Op) -> Params {
        let Op::Oto {
            buy,
            offset_bp,
            qty_milli,
            otoco,
            pending_market,
        } = op
        else {
            return Params::default();
        };
        let qty = |m: i64| (Decimal::new(m, 3)).to_string();
        let s = |x: &str| x.to_string();
        let (side, other) = if *buy { ("BUY", "SELL") } else { ("SELL", "BUY") };
        let mut v = vec![
            ("symbol", s("BTCUSDT")),
            ("workingType", s("LIMIT")),
            ("workingSide", s(side)),
            ("workingPrice", price_at(e, *offset_bp).to_string()),
            ("workingQuantity", qty(*qty_milli)),
            ("workingTimeInForce", s("GTC")),
            ("pendingSide", s(other)),
            // Less than the working order: a buy receives its quantity less the commission.
            ("pendingQuantity", qty(*qty_milli - 1)),
        ];
        if *otoco {
            // The pair's stop on the loss side of the pending order's direction.
            let (above, below) = if *buy {
                (
                    ("LIMIT_MAKER", "pendingAbovePrice"),
                    ("STOP_LOSS", "pendingBelowStopPrice"),
                )
            } else {
                (
                    ("STOP_LOSS", "pendingAboveStopPrice"),
                    ("TAKE_PROFIT", "pendingBelowStopPrice"),
                )
            };
            v.push(("pendingAboveType", s(above.0)));
            v.push((above.1, price_at(e, 250).to_string()));
            v.push(("pendingBelowType", s(below.0)));
            v.push((below.1, price_at(e, -250).to_string()));
        } else if *pending_market {
            v.push(("pendingType", s("MARKET")));
        } else {
            v.push(("pendingType", s("LIMIT")));
            v.push(("pendingTimeInForce", s("GTC")));
            let bp = if *buy { 200 } else { -200 };
            v.push(("pendingPrice", price_at(e, bp).to_string()));
        }
        params(&v)
    }

    /// An iceberg (`Op::Iceberg`) or a taker meant to meet the account's own orders
    /// (`Op::SelfTaker`), with their self-trade prevention modes.
    fn own_book_params(e: &Engine, op: &Op) -> Params {
        let qty = |m: i64| (Decimal::new(m, 3)).to_string();
        let s = |x: &str| x.to_string();
        let side = |buy: bool| s(if buy { "BUY" } else { "SELL" });
        match op {
            Op::Iceberg {
                buy,
                offset_bp,
                qty_milli,
                part_milli,
                maker,
                stp,
            } => {
                // A LIMIT_MAKER away from the market, a LIMIT at the touch (its own side's best
                // price, where a taker of the account meets it before the synthetic book).
                let m = e.market.get("BTCUSDT").unwrap();
                let price = match (*maker, *buy) {
                    (true, _) => price_at(e, *offset_bp),
                    (false, true) => m.best_bid().0,
                    (false, false) => m.best_ask().0,
                };
                let mut v = vec![
                    ("symbol", s("BTCUSDT")),
                    ("side", side(*buy)),
                    ("type", s(if *maker { "LIMIT_MAKER" } else { "LIMIT" })),
                    ("quantity", qty(*qty_milli)),
                    ("icebergQty", qty(*part_milli)),
                    ("price", price.to_string()),
                    ("selfTradePreventionMode", s(STP[*stp])),
                ];
                if !*maker {
                    v.push(("timeInForce", s("GTC")));
                }
                params(&v)
            }
            Op::SelfTaker {
                buy,
                offset_bp,
                qty_milli,
                stp,
                tif,
                market,
            } => {
                // At the price of the best own order on the other side when there is one.
                let own = e
                    .best_own_maker("BTCUSDT", *buy, 0, None)
                    .map(|(_, p)| p)
                    .unwrap_or_else(|| price_at(e, *offset_bp));
                let mut v = vec![
                    ("symbol", s("BTCUSDT")),
                    ("side", side(*buy)),
                    ("quantity", qty(*qty_milli)),
                ];
                if *market {
                    v.push(("type", s("MARKET")));
                } else {
                    v.push(("type", s("LIMIT")));
                    v.push(("timeInForce", s(["GTC", "IOC", "FOK"][*tif])));
                    v.push(("price", own.to_string()));
                }
                with_stp(v, *stp)
            }
            _ => Params::default(),
        }
    }

    fn apply(e: &mut Engine, op: &Op, now: i64) {
        let qty = |m: i64| (Decimal::new(m, 3)).to_string();
        let s = |x: &str| x.to_string();
        let p = match op {
            Op::Limit {
                buy,
                offset_bp,
                qty_milli,
                tif,
            } => params(&[
                ("symbol", s("BTCUSDT")),
                ("side", s(if *buy { "BUY" } else { "SELL" })),
                ("type", s("LIMIT")),
                ("timeInForce", s(["GTC", "IOC", "FOK"][*tif])),
                ("quantity", qty(*qty_milli)),
                ("price", price_at(e, *offset_bp).to_string()),
            ]),
            Op::Market { buy, qty_milli } => params(&[
                ("symbol", s("BTCUSDT")),
                ("side", s(if *buy { "BUY" } else { "SELL" })),
                ("type", s("MARKET")),
                ("quantity", qty(*qty_milli)),
            ]),
            Op::Stop {
                buy,
                offset_bp,
                qty_milli,
                limit,
                take_profit,
                tif,
            } => {
                // Stop-loss buys and take-profit sells sit above the market, the others below.
                let bp = if *buy != *take_profit {
                    *offset_bp
                } else {
                    -*offset_bp
                };
                let stop = price_at(e, bp);
                let kind = stop_kind(*take_profit, *limit);
                let mut v = vec![
                    ("symbol", s("BTCUSDT")),
                    ("side", s(if *buy { "BUY" } else { "SELL" })),
                    ("type", s(kind)),
                    ("quantity", qty(*qty_milli)),
                    ("stopPrice", stop.to_string()),
                ];
                if *limit {
                    v.push(("price", stop.to_string()));
                    v.push(("timeInForce", s(["GTC", "IOC", "FOK"][*tif])));
                }
                params(&v)
            }
            Op::LimitMaker {
                buy,
                offset_bp,
                qty_milli,
            } => params(&[
                ("symbol", s("BTCUSDT")),
                ("side", s(if *buy { "BUY" } else { "SELL" })),
                ("type", s("LIMIT_MAKER")),
                ("quantity", qty(*qty_milli)),
                ("price", price_at(e, *offset_bp).to_string()),
            ]),
            Op::QuoteMarket { buy, quote, stp } => with_stp(
                vec![
                    ("symbol", s("BTCUSDT")),
                    ("side", s(if *buy { "BUY" } else { "SELL" })),
                    ("type", s("MARKET")),
                    ("quoteOrderQty", quote.to_string()),
                ],
                *stp,
            ),
            Op::Oco { qty_milli } => {
                let p = params(&[
                    ("symbol", s("BTCUSDT")),
                    ("side", s("SELL")),
                    ("quantity", qty(*qty_milli)),
                    ("aboveType", s("LIMIT_MAKER")),
                    ("abovePrice", price_at(e, 200).to_string()),
                    ("belowType", s("STOP_LOSS")),
                    ("belowStopPrice", price_at(e, -200).to_string()),
                ]);
                let _ = e.place_oco(&p, now);
                return;
            }
            Op::Cancel { pick } => {
                let open: Vec<u64> = e
                    .account
                    .orders
                    .values()
                    .filter(|o| o.is_open())
                    .map(|o| o.order_id)
                    .collect();
                if let Some(id) = open.get(pick % open.len().max(1)) {
                    let p = params(&[("symbol", s("BTCUSDT")), ("orderId", id.to_string())]);
                    e.cancel(&p, now).unwrap();
                }
                return;
            }
            Op::Move { bp } => {
                let target = price_at(e, *bp);
                e.force_price("BTCUSDT", target, now).unwrap();
                return;
            }
            Op::Trailing { .. } => trailing_params(e, op),
            Op::Replace { .. } => {
                replace(e, op, now);
                return;
            }
            Op::Oto { .. } => {
                let p = oto_params(e, op);
                let otoco = matches!(op, Op::Oto { otoco: true, .. });
                let _ = e.place_oto(&p, now, otoco);
                return;
            }
            Op::Iceberg { .. } | Op::SelfTaker { .. } => own_book_params(e, op),
        };
        let first_own = match op {
            Op::SelfTaker { buy, .. } => first_in_book_own_maker(e, *buy, None),
            Op::QuoteMarket { buy, quote, .. } => first_in_book_own_maker(e, *buy, Some(*quote)),
            _ => None,
        };
        if let Ok(o) = e.parse_new_order(&p) {
            let placed = e.place(&o, now, false);
            // A FOK may expire before it meets anything.
            if let (Some(maker), Ok(placed)) = (first_own, placed)
                && placed.order_id != 0
                && o.time_in_force != Some(TimeInForce::Fok)
            {
                check_met(e, placed.order_id, maker);
            }
        }
    }

    /// The account's own resting order a taker on `buy`'s side meets before any synthetic
    /// level (it is at or better than the synthetic touch), when the account (and the taker's
    /// `quote` amount, if it has one) can pay for at least one step at its price.
    fn first_in_book_own_maker(e: &Engine, buy: bool, quote: Option<i64>) -> Option<u64> {
        let m = e.market.get("BTCUSDT")?;
        let (maker, price) = e.best_own_maker("BTCUSDT", buy, 0, None)?;
        let first = if buy {
            price <= m.best_ask().0
        } else {
            price >= m.best_bid().0
        };
        let step = m.spec.step;
        let funded = if buy {
            e.balance("USDT").free >= price * step
        } else {
            e.balance("BTC").free >= step
        };
        let amount = quote.is_none_or(|q| Decimal::from(q) >= price * step);
        Some(maker).filter(|_| first && funded && amount)
    }

    /// The taker met the own order `maker` as its mode says, named or the default: a prevented
    /// match between them, or (NONE) a trade with a fill on each of them.
    fn check_met(e: &Engine, taker: u64, maker: u64) {
        let prevented = e
            .account
            .prevented
            .iter()
            .any(|p| p.taker_order_id == taker && p.maker_order_id == maker);
        let traded = e.account.trades.iter().any(|t| {
            t.order_id == taker
                && e.account
                    .trades
                    .iter()
                    .any(|x| x.id == t.id && x.order_id == maker)
        });
        let mode = e.account.orders.get(&taker).map(|o| o.stp_mode);
        assert!(
            prevented || traded,
            "taker {taker} ({mode:?}) did not meet the account's order {maker} first in the book"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn no_sequence_of_orders_trailing_stops_replaces_and_moves_breaks_the_balance_invariants(ops in proptest::collection::vec(op(), 1..40)) {
            let mut e = engine();
            let start = e.account.balances.iter().map(|(a, b)| (a.clone(), b.free + b.locked)).collect();
            for (i, op) in ops.iter().enumerate() {
                apply(&mut e, op, T0 + 1_000 * (i as i64 + 1));
                check_invariants(&e);
                check_fills_balance(&e, &start);
            }
        }
    }

    #[test]
    fn decimal_parameters_follow_binance_grammar() {
        let one = |v: &str| params(&[("x", v.to_string())]).dec("x").map_err(|e| e.code);
        assert_eq!(
            one("12345678901234567890.12345678"),
            Ok(Some("12345678901234567890.12345678".parse().unwrap()))
        );
        assert_eq!(one("0.100000000000000000"), Ok(Some(Decimal::new(1, 1))));
        for bad in [
            "123456789012345678901",
            "79228162514264337593543950335",
            "1.",
            ".5",
            "-1",
            "1e5",
            "NaN",
            "1.2.3",
            "１",
        ] {
            assert_eq!(one(bad), Err(-1100), "{bad}");
        }
        assert_eq!(one("0.000000001"), Err(-1111));
    }

    #[test]
    fn the_state_file_keeps_binance_wire_names_for_orders_and_lists() {
        let mut e = engine();
        let limit = params(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "BUY".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "0.01".into()),
            ("price", "99000".into()),
        ]);
        let o = e.parse_new_order(&limit).unwrap();
        e.place(&o, T0, false).unwrap();
        let oco = params(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "SELL".into()),
            ("quantity", "0.01".into()),
            ("aboveType", "LIMIT_MAKER".into()),
            ("abovePrice", "101000".into()),
            ("belowType", "STOP_LOSS_LIMIT".into()),
            ("belowStopPrice", "98000".into()),
            ("belowPrice", "97900".into()),
            ("belowTimeInForce", "IOC".into()),
        ]);
        e.place_oco(&oco, T0).unwrap();
        let saved = serde_json::to_value(&e.account).unwrap();
        let order = &saved["orders"]["1"];
        assert_eq!(
            (
                &order["status"],
                &order["side"],
                &order["order_type"],
                &order["time_in_force"]
            ),
            (&json!("NEW"), &json!("BUY"), &json!("LIMIT"), &json!("GTC"))
        );
        let stop = &saved["orders"]["2"];
        assert_eq!(
            (&stop["order_type"], &stop["time_in_force"]),
            (&json!("STOP_LOSS_LIMIT"), &json!("IOC"))
        );
        let list = &saved["lists"]["1"];
        assert_eq!(
            (&list["list_status_type"], &list["list_order_status"]),
            (&json!("EXEC_STARTED"), &json!("EXECUTING"))
        );
        let back: AccountState = serde_json::from_value(saved).unwrap();
        assert_eq!(back.orders[&1].status, OrderStatus::New);
        assert_eq!(back.orders[&2].order_type, OrderType::StopLossLimit);
    }

    #[test]
    fn an_oco_stop_limit_leg_with_an_unknown_time_in_force_is_refused_like_an_order() {
        let mut e = engine();
        let oco = params(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "SELL".into()),
            ("quantity", "0.01".into()),
            ("aboveType", "LIMIT_MAKER".into()),
            ("abovePrice", "101000".into()),
            ("belowType", "STOP_LOSS_LIMIT".into()),
            ("belowStopPrice", "98000".into()),
            ("belowPrice", "97900".into()),
            ("belowTimeInForce", "GTX".into()),
        ]);
        let err = e.place_oco(&oco, T0).unwrap_err();
        assert_eq!((err.code, err.msg.as_str()), (-1115, "Invalid timeInForce."));
        assert!(e.account.orders.is_empty());
    }

    #[test]
    fn max_balance_is_ten_to_the_twentieth() {
        assert_eq!(MAX_BALANCE, "100000000000000000000".parse::<Decimal>().unwrap());
    }

    #[test]
    fn deposits_may_not_overflow_or_overdraw() {
        let mut e = engine();
        assert!(e.adjust_balance("USDT", Decimal::MAX, T0).is_err());
        assert!(e.adjust_balance("USDT", MAX_BALANCE, T0).is_err());
        assert_eq!(
            e.adjust_balance("USDT", Decimal::from(-50_001), T0)
                .map_err(|x| x.code),
            Err(-2010)
        );
        assert!(e.adjust_balance("", Decimal::ONE, T0).is_err());
        assert_eq!(e.balance("USDT").free, Decimal::from(50_000));
        assert!(e.adjust_balance("USDT", Decimal::from(-50_000), T0).is_ok());
        assert_eq!(e.balance("USDT").free, Decimal::ZERO);
    }

    #[test]
    fn commission_is_taken_from_what_is_received() {
        let mut e = engine();
        let p = params(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "BUY".into()),
            ("type", "MARKET".into()),
            ("quantity", "0.1".into()),
        ]);
        let o = e.parse_new_order(&p).unwrap();
        let placed = e.place(&o, T0, false).unwrap();
        let fee: Decimal = placed.fills.iter().map(|f| f.commission).sum();
        assert_eq!(fee, Decimal::new(1, 4));
        assert_eq!(e.balance("BTC").free, Decimal::ONE + Decimal::new(1, 1) - fee);
    }

    fn market_order(e: &Engine, symbol: &str, side: &str, qty: &str) -> NewOrder {
        let p = params(&[
            ("symbol", symbol.into()),
            ("side", side.into()),
            ("type", "MARKET".into()),
            ("quantity", qty.into()),
        ]);
        e.parse_new_order(&p).unwrap()
    }

    fn bnb_mid(e: &Engine) -> Decimal {
        let m = e.market.get("BNBUSDT").unwrap();
        (m.best_bid().0 + m.best_ask().0) / Decimal::TWO
    }

    #[test]
    fn bnb_fees_charge_the_discounted_commission_in_bnb_and_leave_the_traded_assets_whole() {
        let mut e = engine();
        e.bnb_fees = true;
        e.force_price("BNBUSDT", Decimal::from(600), T0).unwrap();
        e.adjust_balance("BNB", Decimal::from(2), T0).unwrap();
        e.user_events.clear();
        let mid = bnb_mid(&e);
        let usdt_before = e.balance("USDT").free;

        let buy = market_order(&e, "BTCUSDT", "BUY", "0.1");
        let placed = e.place(&buy, T0, false).unwrap();
        let sell = market_order(&e, "BTCUSDT", "SELL", "0.05");
        let sold = e.place(&sell, T0 + 1, false).unwrap();

        let mut bnb_paid = Decimal::ZERO;
        for f in placed.fills.iter().chain(&sold.fills) {
            // 0.1 % less 25 %, of the fill's quote value, in BNB at the BNBUSDT mid.
            let expected = (f.quote_qty * Decimal::new(1, 3) * Decimal::new(75, 2) / mid).round_dp(8);
            assert_eq!((f.commission, f.commission_asset.as_str()), (expected, "BNB"));
            bnb_paid += f.commission;
        }
        assert!(bnb_paid > Decimal::ZERO);
        assert_eq!(e.balance("BNB").free, Decimal::from(2) - bnb_paid);
        // Buys receive the whole quantity and sells the whole proceeds.
        assert_eq!(e.balance("BTC").free, Decimal::ONE + Decimal::new(5, 2));
        let spent: Decimal = placed.fills.iter().map(|f| f.quote_qty).sum();
        let got: Decimal = sold.fills.iter().map(|f| f.quote_qty).sum();
        assert_eq!(e.balance("USDT").free, usdt_before - spent + got);
        // The trade record and the execution reports name BNB as the commission asset.
        assert!(e.account.trades.iter().all(|t| t.commission_asset == "BNB"));
        let reports: Vec<&Value> = e
            .user_events
            .iter()
            .filter(|v| v["e"] == "executionReport" && v["x"] == "TRADE")
            .collect();
        assert_eq!(reports.len(), placed.fills.len() + sold.fills.len());
        assert!(reports.iter().all(|v| v["N"] == "BNB"));
    }

    #[test]
    fn bnb_fees_fall_back_to_the_received_asset_when_the_bnb_balance_is_short() {
        let mut e = engine();
        e.bnb_fees = true;
        e.force_price("BNBUSDT", Decimal::from(600), T0).unwrap();
        // No BNB at all: the buy pays in BTC as usual.
        let buy = market_order(&e, "BTCUSDT", "BUY", "0.1");
        let placed = e.place(&buy, T0, false).unwrap();
        assert!(placed.fills.iter().all(|f| f.commission_asset == "BTC"));
        // A little BNB, less than the fee of a large sell: that sell pays in USDT, BNB untouched.
        e.adjust_balance("BNB", Decimal::new(1, 8), T0).unwrap();
        let sell = market_order(&e, "BTCUSDT", "SELL", "0.5");
        let sold = e.place(&sell, T0 + 1, false).unwrap();
        assert!(sold.fills.iter().all(|f| f.commission_asset == "USDT"));
        assert_eq!(e.balance("BNB").free, Decimal::new(1, 8));
    }

    #[test]
    fn bnb_fees_off_keep_the_received_asset_rule_even_with_bnb_held() {
        let mut e = engine();
        e.adjust_balance("BNB", Decimal::from(2), T0).unwrap();
        let buy = market_order(&e, "BTCUSDT", "BUY", "0.1");
        let placed = e.place(&buy, T0, false).unwrap();
        assert!(placed.fills.iter().all(|f| f.commission_asset == "BTC"));
        assert_eq!(e.balance("BNB").free, Decimal::from(2));
    }
}
