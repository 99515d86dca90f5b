//! Scripted driving of `engine::machine::Engine` with no exchange at all: a journal in a
//! temporary folder, a clock that is a plain `i64` moved by hand, and every exchange answer
//! built here and fed back as `Input::Answer`. Builders for the exchange's reports (orders,
//! fills, accounts, rules) and pickers for the effects an input returned.
//!
//! Owns: set-up (start-up through the machine up to "reconciled") and the builders. Must not:
//! assert behaviour itself beyond the set-up it performs; each test says what it proves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

use crbot::domain::broker::{Account, ListReport, OcoRequest, OrderOutcome, OrderReport, Placed};
use crbot::domain::{
    Asset, Balance, ClientOrderId, Fill, Filters, LocalOrderState, LotSize, Mode, Notional, NotionalFilter,
    Order, OrderRequest, OrderStatus, OrderType, Price, PriceFilter, Qty, Side, Symbol, SymbolRules,
    SymbolStatus,
};
use crbot::engine::core::Core;
use crbot::engine::machine::{Answer, Effect, Engine, Input};
use crbot::engine::snapshot::{Command, Snapshot, TicketDraft};
use crbot::exchange::binance::events::{ExecutionType, MarketEvent, OrderUpdate, UserEvent};
use crbot::exchange::binance::reconcile::{Resolution, ResyncReport, ResyncRequest};
use crbot::journal::{EventKind, Journal, TicketSource, TradingStateCode};
use crbot::risk::Limits;

/// 2026-03-02 10:00:00 UTC: mid-day, so no test crosses a UTC midnight by accident.
pub const T0: i64 = 1_772_445_600_000;
pub const BTC: &str = "BTCUSDT";
pub const ETH: &str = "ETHUSDT";

pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}
pub fn q(s: &str) -> Qty {
    s.parse().unwrap()
}
pub fn p(s: &str) -> Price {
    s.parse().unwrap()
}
pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}
pub fn asset(s: &str) -> Asset {
    Asset::new(s).unwrap()
}

/// BTCUSDT's rules: tick 0.01, step 0.00001 (min 0.00001), minimum notional 5 USDT.
pub fn btc_rules() -> SymbolRules {
    usdt_rules(BTC, "BTC")
}

/// A USDT pair's rules: tick 0.01, step 0.00001 (min 0.00001), minimum notional 5 USDT.
pub fn usdt_rules(symbol: &str, base: &str) -> SymbolRules {
    SymbolRules {
        symbol: sym(symbol),
        status: SymbolStatus::Trading,
        base_asset: asset(base),
        quote_asset: asset("USDT"),
        order_types: vec![
            OrderType::Market,
            OrderType::Limit,
            OrderType::LimitMaker,
            OrderType::StopLoss,
            OrderType::StopLossLimit,
        ],
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

/// Every symbol's rules, as the exchange-info answer carries them.
pub fn info() -> Vec<SymbolRules> {
    vec![btc_rules(), usdt_rules(ETH, "ETH")]
}

pub fn balance(a: &str, free: &str, locked: &str) -> Balance {
    Balance {
        asset: asset(a),
        free: q(free),
        locked: q(locked),
    }
}

pub fn account(balances: Vec<Balance>, at: i64) -> Account {
    Account {
        can_trade: true,
        can_withdraw: false,
        update_time_ms: at,
        balances,
        skipped_assets: Vec::new(),
    }
}

/// A resync's answer: these balances, these open orders, nothing else to settle.
pub fn resynced(balances: Vec<Balance>, open: Vec<OrderReport>, at: i64) -> Answer {
    Answer::Resynced(Box::new(Ok(ResyncReport {
        open_orders: open,
        account: account(balances, at),
        orders: Vec::new(),
        fills: Vec::new(),
    })))
}

/// A resync's answer that also settles the orders crbot asked about (`orders`).
pub fn resynced_settling(balances: Vec<Balance>, orders: Vec<(String, Resolution)>, at: i64) -> Answer {
    Answer::Resynced(Box::new(Ok(ResyncReport {
        open_orders: Vec::new(),
        account: account(balances, at),
        orders,
        fills: Vec::new(),
    })))
}

/// The exchange's report of one of crbot's orders (`req` as sent), at `status` with
/// `executed` done at `price` each.
pub fn report(
    req: &OrderRequest,
    order_id: u64,
    status: OrderStatus,
    executed: &str,
    price: &str,
) -> OrderReport {
    let executed = q(executed);
    OrderReport {
        symbol: req.symbol.clone(),
        order_id,
        order_list_id: None,
        client_order_id: req.client_order_id.to_string(),
        orig_client_order_id: None,
        side: req.side,
        order_type: req.order_type,
        time_in_force: req.time_in_force,
        status,
        price: req.price,
        stop_price: req.stop_price,
        orig_qty: req.qty,
        executed_qty: executed,
        cumulative_quote_qty: p(price).notional(executed).unwrap_or(Notional::ZERO),
        time_ms: T0,
        update_ms: T0,
    }
}

/// The exchange's report of an order crbot already knows, by client id only: what the engine
/// reads of a known order's report is its status, ids and executed amounts.
pub fn settled(symbol: &Symbol, cid: &str, order_id: u64, status: OrderStatus) -> OrderReport {
    OrderReport {
        symbol: symbol.clone(),
        order_id,
        order_list_id: None,
        client_order_id: cid.to_string(),
        orig_client_order_id: None,
        side: Side::Sell,
        order_type: OrderType::Limit,
        time_in_force: None,
        status,
        price: None,
        stop_price: None,
        orig_qty: Qty::ZERO,
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        time_ms: T0,
        update_ms: T0,
    }
}

/// A fill of `order` (its id and client id): `qty` at `price`, commission in `fee_asset`.
pub fn fill(o: &OrderReport, trade_id: u64, qty: &str, price: &str, fee: &str, fee_asset: &str) -> Fill {
    Fill {
        symbol: o.symbol.clone(),
        trade_id,
        order_id: o.order_id,
        client_order_id: ClientOrderId::new(o.order_client_id()).ok(),
        side: o.side,
        price: p(price),
        qty: q(qty),
        commission: q(fee),
        commission_asset: asset(fee_asset),
        time_ms: o.time_ms,
        is_maker: false,
    }
}

pub fn placed(req: &OrderRequest, draft: Option<TicketDraft>, order: OrderReport, fills: Vec<Fill>) -> Input {
    Input::Answer(Answer::Placed {
        cid: req.client_order_id.clone(),
        draft,
        outcome: Box::new(OrderOutcome::Done(Placed { order, fills })),
    })
}

pub fn placed_unknown(req: &OrderRequest, draft: Option<TicketDraft>) -> Input {
    Input::Answer(Answer::Placed {
        cid: req.client_order_id.clone(),
        draft,
        outcome: Box::new(OrderOutcome::Unknown {
            reason: "timed out after 10 s".into(),
        }),
    })
}

/// The user-data report of `o` (as the stream sends it), with the fill it carries.
pub fn user_report(o: &OrderReport, execution: ExecutionType, last_fill: Option<Fill>) -> Input {
    Input::User(UserEvent::Order(Box::new(OrderUpdate {
        symbol: o.symbol.clone(),
        client_order_id: o.client_order_id.clone(),
        orig_client_order_id: o.orig_client_order_id.clone(),
        order_id: o.order_id,
        order_list_id: o.order_list_id,
        side: o.side,
        order_type: o.order_type,
        execution,
        status: o.status,
        reject_reason: "NONE".into(),
        qty: o.orig_qty,
        price: o.price,
        stop_price: o.stop_price,
        cumulative_qty: o.executed_qty,
        cumulative_quote: o.cumulative_quote_qty,
        fill: last_fill,
        event_ms: o.update_ms,
        transaction_ms: o.update_ms,
    })))
}

/// The two legs of `oco` as the exchange reports them once the list is placed (NEW).
pub fn oco_placed(oco: &OcoRequest, list_id: i64, first_order_id: u64) -> Input {
    let leg =
        |cid: &ClientOrderId, id: u64, t: OrderType, price: Option<Price>, stop: Option<Price>| OrderReport {
            symbol: oco.symbol.clone(),
            order_id: id,
            order_list_id: Some(list_id),
            client_order_id: cid.to_string(),
            orig_client_order_id: None,
            side: Side::Sell,
            order_type: t,
            time_in_force: None,
            status: OrderStatus::New,
            price,
            stop_price: stop,
            orig_qty: oco.qty,
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            time_ms: T0,
            update_ms: T0,
        };
    let tp = leg(
        &oco.take_profit_client_order_id,
        first_order_id,
        OrderType::LimitMaker,
        Some(oco.take_profit),
        None,
    );
    let sl = leg(
        &oco.stop_loss_client_order_id,
        first_order_id + 1,
        OrderType::StopLoss,
        None,
        Some(oco.stop_loss),
    );
    Input::Answer(Answer::OcoPlaced {
        legs: oco_legs(oco),
        outcome: Box::new(OrderOutcome::Done(ListReport {
            order_list_id: list_id,
            list_client_order_id: oco.list_client_order_id.to_string(),
            symbol: oco.symbol.clone(),
            list_status_type: "EXEC_STARTED".into(),
            list_order_status: "EXECUTING".into(),
            legs: vec![
                (first_order_id, tp.client_order_id.clone()),
                (first_order_id + 1, sl.client_order_id.clone()),
            ],
            reports: vec![tp, sl],
        })),
    })
}

pub fn oco_legs(oco: &OcoRequest) -> [ClientOrderId; 2] {
    [
        oco.take_profit_client_order_id.clone(),
        oco.stop_loss_client_order_id.clone(),
    ]
}

pub fn resolved(cid: &ClientOrderId, resolution: Resolution, fills: Vec<Fill>) -> Input {
    Input::Answer(Answer::Resolved {
        cid: cid.clone(),
        resolution,
        fills,
    })
}

/// A BUY LIMIT on BTCUSDT, with a stop-loss and a take-profit.
pub fn buy(amount: &str, price: &str, stop_loss: &str, take_profit: &str) -> TicketDraft {
    TicketDraft {
        symbol: BTC.into(),
        side: "BUY".into(),
        order_type: "LIMIT".into(),
        amount: amount.into(),
        price: price.into(),
        stop_loss: stop_loss.into(),
        take_profit: take_profit.into(),
    }
}

/// A BUY LIMIT of 0.03 ETH resting below an ask of 3 000, stop 2 900, target 3 150.
pub fn resting_eth() -> TicketDraft {
    TicketDraft {
        symbol: ETH.into(),
        ..buy("0.03", "2990", "2900", "3150")
    }
}

/// The usual entry: 0.002 BTC crossing an ask of 50 000, stop 49 000, target 51 500.
pub fn entry_draft() -> TicketDraft {
    buy("0.002", "50100", "49000", "51500")
}

pub fn quote(bid: &str, ask: &str, now: i64) -> Input {
    quote_for(BTC, bid, ask, now)
}

pub fn quote_for(symbol: &str, bid: &str, ask: &str, now: i64) -> Input {
    Input::Market(MarketEvent::BookTicker {
        symbol: sym(symbol),
        bid: p(bid),
        bid_qty: q("1"),
        ask: p(ask),
        ask_qty: q("1"),
        update_id: 1,
        recv_ms: now,
    })
}

/// The effects of one input, with pickers for the kinds the tests look at.
pub struct Effects(pub Vec<Effect>);

impl Effects {
    pub fn places(&self) -> Vec<&OrderRequest> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Place { request, .. } => Some(&**request),
                _ => None,
            })
            .collect()
    }
    /// The one `Place`; panics (with every effect) when there is not exactly one.
    pub fn one_place(&self) -> OrderRequest {
        let v = self.places();
        assert_eq!(v.len(), 1, "expected one Place: {:?}", self.0);
        v[0].clone()
    }
    pub fn ocos(&self) -> Vec<&OcoRequest> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::PlaceOco(o) => Some(&**o),
                _ => None,
            })
            .collect()
    }
    pub fn one_oco(&self) -> OcoRequest {
        let v = self.ocos();
        assert_eq!(v.len(), 1, "expected one PlaceOco: {:?}", self.0);
        v[0].clone()
    }
    pub fn resolves(&self) -> Vec<(&ClientOrderId, std::time::Duration)> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Resolve { cid, delay, .. } => Some((cid, *delay)),
                _ => None,
            })
            .collect()
    }
    pub fn cancels(&self) -> Vec<&ClientOrderId> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Cancel { cid, .. } => Some(cid),
                _ => None,
            })
            .collect()
    }
    pub fn resync(&self) -> Option<&ResyncRequest> {
        self.0.iter().find_map(|e| match e {
            Effect::Resync(r) => Some(r),
            _ => None,
        })
    }
    pub fn sweeps(&self) -> usize {
        self.0.iter().filter(|e| matches!(e, Effect::Sweep(_))).count()
    }
    pub fn backups(&self) -> usize {
        self.0
            .iter()
            .filter(|e| matches!(e, Effect::Backup { .. }))
            .count()
    }
}

/// An engine over a journal in a temporary folder, and the scripted clock.
pub struct Script {
    pub engine: Engine,
    pub now: i64,
    pub dir: tempfile::TempDir,
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal-sim.db")
}

/// A `Core` restored from the journal in `dir` at `now`, as the console restores it.
pub fn restore(dir: &Path, limits: Limits, now: i64) -> Core {
    let journal = Journal::open(&journal_path(dir), Mode::Sim).unwrap();
    Core::restore(journal, Mode::Sim, limits, TicketSource::Tui, now).unwrap()
}

impl Script {
    /// A fresh journal, not started yet.
    pub fn new(limits: Limits, auto_flatten: bool) -> Script {
        let dir = tempfile::tempdir().unwrap();
        let core = restore(dir.path(), limits, T0);
        Script {
            engine: Engine::new(core, auto_flatten, None, T0),
            now: T0,
            dir,
        }
    }

    /// A fresh journal started through the machine: rules, a resync answered with `balances`,
    /// then quotes of 49 999.99 / 50 000 on BTCUSDT and 2 999.99 / 3 000 on ETHUSDT. Reconciled
    /// on return.
    pub fn started(limits: Limits, auto_flatten: bool, balances: Vec<Balance>) -> Script {
        let mut s = Script::new(limits, auto_flatten);
        s.start_up(balances, Vec::new());
        s
    }

    /// `Started`, the rules, the resync (answered with `balances` and `open` orders), a quote.
    /// Returns the resync's request.
    pub fn start_up(&mut self, balances: Vec<Balance>, open: Vec<OrderReport>) -> ResyncRequest {
        self.step(Input::Started);
        let fx = self.answer(Answer::Info(Ok(info())));
        let request = fx.resync().cloned().expect("the rules start the resync");
        self.step(quote("49999.99", "50000", self.now));
        self.step(quote_for(ETH, "2999.99", "3000", self.now));
        self.answer(resynced(balances, open, self.now));
        assert!(self.engine.reconciled(), "reconciled after the resync's answer");
        request
    }

    /// Drops the engine (as a crash or a quit would), then restores the same journal into a
    /// new engine `later_ms` after, not started yet.
    pub fn restarted(self, later_ms: i64, limits: Limits, auto_flatten: bool) -> Script {
        let Script { engine, now, dir } = self;
        drop(engine);
        let now = now + later_ms;
        let core = restore(dir.path(), limits, now);
        Script {
            engine: Engine::new(core, auto_flatten, None, now),
            now,
            dir,
        }
    }

    pub fn step(&mut self, input: Input) -> Effects {
        Effects(self.engine.update(input, self.now))
    }
    pub fn answer(&mut self, a: Answer) -> Effects {
        self.step(Input::Answer(a))
    }
    pub fn command(&mut self, c: Command) -> Effects {
        self.step(Input::Command(c))
    }
    pub fn advance(&mut self, ms: i64) {
        self.now += ms;
    }
    pub fn snapshot(&self) -> Snapshot {
        self.engine.snapshot(self.now)
    }
    pub fn journal(&self) -> &Journal {
        &self.engine.core().journal
    }
    /// An order's journaled state.
    pub fn journaled(&self, cid: &ClientOrderId) -> LocalOrderState {
        self.journal_order(cid).state
    }
    pub fn journal_order(&self, cid: &ClientOrderId) -> Order {
        self.journal().order(cid).unwrap().expect("order journaled")
    }
    pub fn trading_code(&self) -> TradingStateCode {
        self.journal()
            .latest_trading_state()
            .unwrap()
            .expect("a state")
            .record
            .state
    }
    pub fn trading_trigger(&self) -> String {
        self.journal()
            .latest_trading_state()
            .unwrap()
            .expect("a state")
            .record
            .trigger
    }
    /// Journaled events of `kind`, oldest first.
    pub fn events(&self, kind: EventKind) -> Vec<String> {
        let mut v: Vec<String> = self
            .journal()
            .recent_events(500)
            .unwrap()
            .into_iter()
            .filter(|e| e.record.event_kind() == Some(kind))
            .map(|e| e.record.detail)
            .collect();
        v.reverse();
        v
    }
    /// crbot's position on BTCUSDT in the snapshot (zero when none).
    pub fn position(&self) -> Qty {
        self.position_of(BTC)
    }
    /// crbot's position on `symbol` in the snapshot (zero when none).
    pub fn position_of(&self, symbol: &str) -> Qty {
        self.snapshot()
            .positions
            .iter()
            .find(|r| r.symbol.as_str() == symbol && !r.external)
            .map_or(Qty::ZERO, |r| r.qty)
    }
    /// Open orders in the snapshot.
    pub fn open_orders(&self) -> Vec<Order> {
        self.snapshot()
            .orders
            .into_iter()
            .filter(|o| o.state.is_open())
            .collect()
    }
}

/// 10 000 USDT and nothing else.
pub fn usdt_only() -> Vec<Balance> {
    vec![balance("USDT", "10000", "0")]
}
