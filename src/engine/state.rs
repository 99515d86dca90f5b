//! The engine's state: everything the console knows, owned by one task.
//!
//! Owns: quotes, rules, balances, orders, crbot's positions, equity tracking, the trading
//! state, the event log and the screen's view of all that ([`EngineState::snapshot`]).
//! Must not: do I/O or read a clock. Every method takes the time it needs; the runtime
//! (`engine::runtime`) feeds it events and performs the I/O its answers call for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rust_decimal::Decimal;

use crate::domain::{
    Asset, Balance, ClientOrderId, Fill, LocalOrderState, Mode, Money, Order, OrderPurpose, OrderStatus,
    Price, Qty, Quote, Side, Symbol, SymbolRules,
};
use crate::engine::snapshot::{
    AccountBooks, BalanceRow, Candle, CapitalFlowRow, EquityCurves, EquityPoint, EquityStatus, Header,
    KillProgress, LimitChangePending, LimitsUsage, LogKind, LogLevel, LogLine, PositionRow, RateLimitUsage,
    Snapshot, StreamHealth, StreamStatus, TicketPreview, TicketResult, TradingState as ViewState, WatchRow,
};
use crate::journal::CapitalFlowRecord;
use crate::portfolio::equity::{EquityReport, FlowSource, Mark, usdt_market};
use crate::portfolio::{EquityCurve, EquitySample, EquityTracker, Pair, Positions, Window, equity_report};
use crate::risk::{self, DailyCount, Limits, PendingLoosen, RiskContext, TradingState};

/// How long a quote stays fresh: older means STALE and no entries.
pub const STALE_AFTER_MS: i64 = 5_000;
/// Lines kept in the event log.
const LOG_CAP: usize = 500;
/// Candles kept per symbol.
const CANDLE_CAP: usize = 500;
/// Finished orders kept in memory: the newest, as many as a restart reads back from the
/// journal (`Core::restore`), so that a console running for days holds what a restarted one
/// would. Open orders always stay; the journal keeps every order.
pub const FINISHED_ORDERS_KEPT: usize = 5_000;
/// What each fill realized is kept for the fills of today and yesterday (UTC), and at least
/// for the newest this many (the history panel reads the newest 100).
pub const REALIZED_FILLS_KEPT: usize = 5_000;
/// Pruning runs once this many entries are over a bound, not at every insert.
const PRUNE_SLACK: usize = 500;

/// The last trade price and 24 h change of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickerLine {
    pub last: Price,
    pub change_pct: Option<Decimal>,
}

/// Stop-loss and take-profit waiting for their entry to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub stop_loss: Price,
    pub take_profit: Price,
}

/// Everything the console knows.
#[derive(Debug)]
pub struct EngineState {
    pub mode: Mode,
    pub limits: Limits,
    pub trading: TradingState,
    pub rules: BTreeMap<Symbol, SymbolRules>,
    pub quotes: BTreeMap<Symbol, Quote>,
    /// Recent mids, to value a third-asset commission at its fill's time.
    pub quote_trail: crate::portfolio::QuoteTrail,
    pub tickers: BTreeMap<Symbol, TickerLine>,
    pub candles: BTreeMap<Symbol, Vec<Candle>>,
    pub balances: BTreeMap<Asset, Balance>,
    pub orders: BTreeMap<ClientOrderId, Order>,
    pub protection: BTreeMap<ClientOrderId, Protection>,
    pub positions: Positions,
    pub equity: EquityTracker,
    pub curve: EquityCurve,
    pub entries: DailyCount,
    pub watchlist: Vec<Symbol>,
    /// Every symbol of the exchange (the keys of `rules`), shared with each snapshot without
    /// a copy: the watchlist's symbol field checks and completes against it.
    pub symbols: std::sync::Arc<Vec<Symbol>>,
    /// The limits of the configuration, as read at start. A limit loosened past one of them
    /// does not survive a restart (the tighter of the two is taken then): the header says so.
    pub configured_limits: Option<Limits>,
    /// Price alerts, armed and fired (`engine::machine::price_alerts`).
    pub price_alerts: Vec<crate::engine::snapshot::PriceAlert>,
    /// Protection the exchange ended without a fill while the position is still held, per
    /// symbol (`engine::machine::protection`); memory only: a restart reconciles the orders
    /// again, and a position left bare still shows NO STOP.
    pub lost_protection: BTreeMap<Symbol, crate::engine::snapshot::LostProtection>,
    /// Protective legs that just ended (a terminal exchange status), for the protection
    /// workflow to look at after the input that ended them.
    pub ended_protective: Vec<ClientOrderId>,
    pub selected: Option<Symbol>,
    pub kill: Option<KillProgress>,
    pub market_stream: StreamHealth,
    pub user_stream: StreamHealth,
    pub clock_offset_ms: Option<i64>,
    pub rate: RateLimitUsage,
    pub warnings: Vec<String>,
    pub preview: Option<TicketPreview>,
    pub result: Option<TicketResult>,
    pub pending_limit: Option<(PendingLoosen, LimitChangePending)>,
    /// Set when the journal cannot be written (disk full, read-only): new tickets are refused.
    pub storage_error: Option<String>,
    /// False when the last P&L computation failed: the risk check fails closed.
    pub pnl_ok: bool,
    /// The last equity computation: what was priced, held, unpriced or has no market. When it
    /// is incomplete there is no equity (no sample, no P&L, entries refused).
    pub equity_report: Option<EquityReport>,
    /// Last known USDT prices from the journal (a one-shot command, or a restart, starts with
    /// them); live quotes replace them as they arrive.
    pub held_marks: BTreeMap<Asset, Mark>,
    /// Today's capital flows (restored from the journal, then as they are detected).
    pub flows: Vec<CapitalFlowRecord>,
    log: VecDeque<LogLine>,
    log_seq: u64,
    /// What each of crbot's fills realized, with its time: (symbol, trade id, order id) → (time, P&L
    /// in the quote asset, the quote asset). For the history panel and today's realized P&L.
    realized_fills: BTreeMap<(Symbol, u64, u64), (i64, Money)>,
    /// The average fill price of each position, fees left out: (quantity, quote paid at fill
    /// prices). The positions panel's "Entry"; the fee-inclusive figure is its cost.
    fill_avg: BTreeMap<Symbol, (Decimal, Decimal)>,
}

impl EngineState {
    pub fn new(mode: Mode, limits: Limits, trading: TradingState, session_start_ms: i64) -> Self {
        let down = StreamHealth {
            status: StreamStatus::Connecting,
            latency_ms: None,
        };
        EngineState {
            mode,
            limits,
            trading,
            rules: BTreeMap::new(),
            quotes: BTreeMap::new(),
            quote_trail: crate::portfolio::QuoteTrail::default(),
            tickers: BTreeMap::new(),
            candles: BTreeMap::new(),
            balances: BTreeMap::new(),
            orders: BTreeMap::new(),
            protection: BTreeMap::new(),
            positions: Positions::new(),
            equity: EquityTracker::new(),
            curve: EquityCurve::new(session_start_ms, 2_000, 2_000),
            entries: DailyCount::default(),
            watchlist: Vec::new(),
            symbols: std::sync::Arc::default(),
            configured_limits: None,
            lost_protection: BTreeMap::new(),
            ended_protective: Vec::new(),
            price_alerts: Vec::new(),
            selected: None,
            kill: None,
            market_stream: down,
            user_stream: down,
            clock_offset_ms: None,
            rate: RateLimitUsage::default(),
            warnings: Vec::new(),
            preview: None,
            result: None,
            pending_limit: None,
            storage_error: None,
            pnl_ok: true,
            equity_report: None,
            held_marks: BTreeMap::new(),
            flows: Vec::new(),
            log: VecDeque::new(),
            log_seq: 0,
            realized_fills: BTreeMap::new(),
            fill_avg: BTreeMap::new(),
        }
    }

    /// Appends a line to the risk and event log.
    pub fn log(&mut self, now_ms: i64, level: LogLevel, kind: LogKind, text: impl Into<String>) {
        self.log_seq += 1;
        self.log.push_back(LogLine {
            seq: self.log_seq,
            time_ms: now_ms,
            level,
            kind,
            text: text.into(),
        });
        while self.log.len() > LOG_CAP {
            self.log.pop_front();
        }
    }

    pub fn log_lines(&self) -> impl Iterator<Item = &LogLine> {
        self.log.iter()
    }

    /// A new best bid/ask.
    /// A quote. One with a zero bid and a zero ask is no quote: an empty book (a market with
    /// no orders, or the paper exchange before the first real quote) has no price to value an
    /// account or check a ticket on.
    pub fn on_quote(&mut self, symbol: Symbol, quote: Quote) {
        if quote.bid.is_zero() && quote.ask.is_zero() {
            return;
        }
        self.quote_trail.observe(&symbol, &quote);
        self.quotes.insert(symbol, quote);
    }

    /// A 24 h ticker. A zero last price is no price (nothing has traded yet).
    pub fn on_ticker(&mut self, symbol: Symbol, line: TickerLine) {
        if line.last.is_zero() {
            return;
        }
        self.tickers.insert(symbol, line);
    }

    /// A candle: replaces the one with the same open time, or appends.
    pub fn on_candle(&mut self, symbol: Symbol, candle: Candle) {
        // A candle of a market that never traded (all zero) is no chart.
        if candle.close.is_zero() {
            return;
        }
        let list = self.candles.entry(symbol).or_default();
        match list.last_mut() {
            Some(last) if last.open_ms == candle.open_ms => *last = candle,
            // History from REST can arrive after the stream's first live candle: keep order.
            Some(last) if last.open_ms > candle.open_ms => {
                match list.binary_search_by_key(&candle.open_ms, |c| c.open_ms) {
                    Ok(i) => list[i] = candle,
                    Err(i) => list.insert(i, candle),
                }
            }
            _ => list.push(candle),
        }
        if list.len() > CANDLE_CAP {
            let excess = list.len() - CANDLE_CAP;
            list.drain(..excess);
        }
    }

    pub fn is_stale(&self, symbol: &Symbol, now_ms: i64) -> bool {
        self.quotes
            .get(symbol)
            .is_none_or(|q| now_ms - q.time_ms > STALE_AFTER_MS)
    }

    pub fn set_balances(&mut self, balances: impl IntoIterator<Item = Balance>, replace_all: bool) {
        if replace_all {
            self.balances.clear();
        }
        for b in balances {
            self.balances.insert(b.asset.clone(), b);
        }
    }

    /// Records or replaces an order.
    pub fn upsert_order(&mut self, order: Order) {
        self.orders.insert(order.client_order_id.clone(), order);
        if self.orders.len() > FINISHED_ORDERS_KEPT + PRUNE_SLACK {
            self.prune_finished_orders();
        }
    }

    /// Drops the oldest finished orders beyond [`FINISHED_ORDERS_KEPT`] (never an open one, nor
    /// one a protection is recorded for). Without it every order of a long run stayed in memory.
    fn prune_finished_orders(&mut self) {
        let mut finished: Vec<(i64, ClientOrderId)> = self
            .orders
            .values()
            .filter(|o| !o.state.is_open() && !self.protection.contains_key(&o.client_order_id))
            .map(|o| (o.created_ms, o.client_order_id.clone()))
            .collect();
        let excess = finished.len().saturating_sub(FINISHED_ORDERS_KEPT);
        if excess == 0 {
            return;
        }
        finished.sort_unstable();
        for (_, cid) in finished.into_iter().take(excess) {
            self.orders.remove(&cid);
        }
    }

    /// Applies one of crbot's own fills to its positions. Returns the realized P&L text for
    /// the log, or an error message (the fill is journaled either way).
    pub fn apply_own_fill(&mut self, fill: &Fill) -> Result<Option<Money>, String> {
        let fee_price = self.fee_price_at(fill);
        self.apply_own_fill_priced(fill, fee_price)
    }

    /// The quote price of `fill`'s commission asset at the fill's time, from the recent quotes
    /// (`None` when none is close enough in time; the fee is then unpriced).
    pub fn fee_price_at(&self, fill: &Fill) -> Option<Price> {
        let pair = Pair::from(self.rules.get(&fill.symbol)?);
        crate::portfolio::fee_price_at(fill, &pair, &self.quote_trail)
    }

    /// [`EngineState::apply_own_fill`] with the commission price journaled with the fill (a
    /// replayed fill is valued at its fill time, never at today's price).
    pub fn apply_own_fill_priced(
        &mut self,
        fill: &Fill,
        fee_price: Option<Price>,
    ) -> Result<Option<Money>, String> {
        let Some(rules) = self.rules.get(&fill.symbol) else {
            return Err(format!(
                "fill {} on {}: symbol rules unknown",
                fill.trade_id, fill.symbol
            ));
        };
        let pair = Pair::from(rules);
        match self.positions.apply_fill(fill, &pair, fee_price) {
            Ok(crate::portfolio::FillOutcome::Applied {
                realized, qty_after, ..
            }) => {
                self.note_fill(fill, &realized, qty_after);
                Ok(if realized.is_zero() { None } else { Some(realized) })
            }
            Ok(crate::portfolio::FillOutcome::Duplicate) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Keeps what a booked fill realized and the position's average fill price.
    fn note_fill(&mut self, fill: &Fill, realized: &Money, qty_after: Qty) {
        let key = (fill.symbol.clone(), fill.trade_id, fill.order_id);
        self.realized_fills.insert(key, (fill.time_ms, realized.clone()));
        if self.realized_fills.len() > REALIZED_FILLS_KEPT + PRUNE_SLACK {
            self.prune_realized(fill.time_ms);
        }
        let (q, p) = (fill.qty.value(), fill.price.value());
        let slot = self.fill_avg.entry(fill.symbol.clone()).or_default();
        if qty_after.value().is_zero() {
            *slot = (Decimal::ZERO, Decimal::ZERO);
        } else if fill.side == Side::Buy {
            *slot = (slot.0 + q, slot.1 + q * p);
        } else if !slot.0.is_zero() {
            // A sell takes its share of the cost at the average: the average stays.
            let sold = q.min(slot.0);
            let cost = slot.1 - slot.1 * sold / slot.0;
            *slot = (slot.0 - sold, cost);
        }
    }

    /// Forgets what fills before yesterday (UTC, from `now_ms`) realized, keeping at least the
    /// newest [`REALIZED_FILLS_KEPT`]: today's P&L and the history's rows need no more, and the
    /// map otherwise grew by every fill of a long run (and was summed at every publish).
    fn prune_realized(&mut self, now_ms: i64) {
        const DAY_MS: i64 = 86_400_000;
        let yesterday = now_ms - now_ms.rem_euclid(DAY_MS) - DAY_MS;
        let mut times: Vec<i64> = self.realized_fills.values().map(|(t, _)| *t).collect();
        if times.len() <= REALIZED_FILLS_KEPT {
            return;
        }
        let nth = times.len() - REALIZED_FILLS_KEPT;
        let (_, newest_kept, _) = times.select_nth_unstable(nth);
        let cutoff = yesterday.min(*newest_kept);
        self.realized_fills.retain(|_, (t, _)| *t >= cutoff);
    }

    /// What a fill realized (`None` for a buy, or a fill not booked as crbot's).
    pub fn realized_of(&self, fill: &Fill) -> Option<Decimal> {
        let (_, money) = self
            .realized_fills
            .get(&(fill.symbol.clone(), fill.trade_id, fill.order_id))?;
        (fill.side == Side::Sell).then(|| money.amount())
    }

    /// Realized P&L of the UTC day of `now_ms`, in USDT (fills of USDT pairs).
    pub fn realized_on_day(&self, now_ms: i64) -> Option<Decimal> {
        let day = crate::portfolio::utc_date(now_ms).ok()?;
        // Asked at every publish: one asset built, not one per fill.
        let usdt = Asset::usdt();
        let mut total = Decimal::ZERO;
        for (time_ms, money) in self.realized_fills.values() {
            if money.asset() == &usdt && crate::portfolio::utc_date(*time_ms).ok() == Some(day) {
                total += money.amount();
            }
        }
        Some(total)
    }

    /// The average fill price of crbot's position on `symbol`, fees left out.
    pub fn avg_fill_price(&self, symbol: &Symbol) -> Option<Price> {
        let (q, cost) = self.fill_avg.get(symbol)?;
        if q.is_zero() {
            return None;
        }
        cost.checked_div(*q).and_then(|v| Price::try_new(v).ok())
    }

    /// The USDT price of an asset at mid, when a market exists.
    pub fn mark_in_usdt(&self, asset: &Asset) -> Option<Price> {
        if *asset == Asset::usdt() {
            return Price::try_new(Decimal::ONE).ok();
        }
        let symbol = Symbol::new(&format!("{asset}USDT")).ok()?;
        self.quotes.get(&symbol).map(Quote::mid)
    }

    /// The newest known USDT price of every asset: live quotes of `<ASSET>USDT`, or the
    /// journal's last known price when it is newer (or there is no quote).
    pub fn marks(&self) -> BTreeMap<Asset, Mark> {
        let mut marks = self.held_marks.clone();
        for (symbol, q) in &self.quotes {
            let Some(asset) = symbol.as_str().strip_suffix(Asset::usdt().as_str()) else {
                continue;
            };
            let Ok(asset) = Asset::new(asset) else { continue };
            let live = Mark {
                price: q.mid(),
                time_ms: q.time_ms,
                held: false,
            };
            let e = marks.entry(asset).or_insert(live);
            if live.time_ms >= e.time_ms {
                *e = live;
            }
        }
        marks
    }

    /// Whether `<ASSET>USDT` exists. Before the exchange's symbols are known, every asset is
    /// assumed to have one: an unknown price then makes equity incomplete rather than
    /// silently smaller.
    fn has_market(&self, symbol: &Symbol) -> bool {
        self.rules.is_empty() || self.rules.contains_key(symbol)
    }

    /// Equity now, from the balances and the marks (see `portfolio::equity`).
    pub fn equity_now(&self, now_ms: i64) -> EquityReport {
        let balances: Vec<Balance> = self.balances.values().cloned().collect();
        equity_report(&balances, &self.marks(), |s| self.has_market(s), now_ms)
    }

    /// True when the last computation found an asset it could not price: there is no equity.
    pub fn equity_incomplete(&self) -> bool {
        self.equity_report.as_ref().is_some_and(|r| !r.is_complete())
    }

    /// The current equity, when the last computation was complete.
    pub fn current_equity(&self) -> Option<Money> {
        let report = self.equity_report.as_ref()?;
        report.equity()?;
        self.equity.last().map(|s| s.equity.clone())
    }

    /// Recomputes equity from balances and marks and feeds the tracker. Returns the automatic
    /// transition (daily loss, drawdown, P&L unavailable) if one is due.
    ///
    /// An incomplete equity (an asset with a market but no price within the bound) is not fed
    /// anywhere: no tracker sample, no curve point, no rule. It is not a smaller equity but an
    /// unknown one; entries are refused while it lasts (the risk context has no equity), exits
    /// stay allowed, and nothing is triggered automatically by a number that is not real.
    pub fn refresh_equity(&mut self, now_ms: i64) -> Option<risk::Transition> {
        let report = self.equity_now(now_ms);
        let equity = report.equity().cloned();
        self.equity_report = Some(report);
        let equity = equity?;
        let observed = self.equity.observe(now_ms, equity.clone());
        self.pnl_ok = observed.is_ok();
        if observed.is_ok() {
            self.curve.push(EquitySample {
                time_ms: now_ms,
                equity,
            });
        }
        let (day, dd) = if self.pnl_ok {
            (self.equity.day_pnl_pct(), self.equity.drawdown_pct())
        } else {
            (None, None)
        };
        risk::evaluate_automatic(&self.limits, &self.trading, day, dd, now_ms)
    }

    /// A capital flow of `delta` `asset` at `now_ms`. `balances_carry_it` says whether the
    /// balances already include it (a start-up reconciliation) or not yet (a `balanceUpdate`
    /// event, applied here to the free balance so that balances and the restated day start
    /// change together). The day start and the high-water mark are restated by the flow's
    /// value (see `portfolio::equity`). Returns the record to journal.
    pub fn apply_capital_flow(
        &mut self,
        asset: &Asset,
        delta: Decimal,
        source: FlowSource,
        balances_carry_it: bool,
        now_ms: i64,
    ) -> CapitalFlowRecord {
        let price = self
            .equity_now(now_ms)
            .priced
            .iter()
            .find(|p| p.asset == *asset)
            .map(|p| p.mark);
        let price = price.or_else(|| {
            // An asset not held before the flow has no row in the report: its mark alone.
            let mark = self.marks().get(asset).copied();
            let fresh = mark.filter(|m| now_ms - m.time_ms <= crate::portfolio::equity::MAX_MARK_AGE_MS);
            if *asset == Asset::usdt() {
                Price::try_new(Decimal::ONE).ok()
            } else {
                fresh.map(|m| m.price)
            }
        });
        let in_equity = *asset == Asset::usdt() || usdt_market(asset).is_some_and(|s| self.has_market(&s));
        let value = price.and_then(|p| delta.checked_mul(p.value()));
        let before_report = if balances_carry_it {
            None
        } else {
            Some(self.equity_now(now_ms))
        };
        if !balances_carry_it {
            let b = self.balances.entry(asset.clone()).or_insert_with(|| Balance {
                asset: asset.clone(),
                free: Qty::ZERO,
                locked: Qty::ZERO,
            });
            let free = b.free.value().checked_add(delta).unwrap_or(b.free.value());
            b.free = Qty::try_new(free.max(Decimal::ZERO)).unwrap_or(Qty::ZERO);
        }
        let before = match before_report {
            Some(r) => r.equity().cloned(),
            None => {
                let after = self.equity_now(now_ms).equity().cloned();
                match after
                    .zip(value)
                    .map(|(a, v)| a.checked_sub(&Money::new(v, Asset::usdt())))
                {
                    Some(Ok(before)) => Some(before),
                    Some(Err(e)) => {
                        let text = format!("capital flow {delta} {asset}: equity before it unknown ({e})");
                        self.log(now_ms, LogLevel::Error, LogKind::System, text);
                        None
                    }
                    None => None,
                }
            }
        };
        match value {
            Some(v) if in_equity => {
                if let Err(e) = self.equity.apply_flow(now_ms, v, before.as_ref()) {
                    let text = format!("capital flow {delta} {asset}: P&L not restated ({e})");
                    self.log(now_ms, LogLevel::Error, LogKind::System, text);
                }
            }
            Some(_) => {}
            None if in_equity => {
                let text = format!(
                    "capital flow {delta} {asset} could not be valued (no {asset} price): \
                     today's P&L and the drawdown will show it"
                );
                self.log(now_ms, LogLevel::Error, LogKind::System, text);
            }
            None => {}
        }
        let record = CapitalFlowRecord {
            time_ms: now_ms,
            asset: asset.clone(),
            delta,
            value_usdt: value.filter(|_| in_equity),
            source: source.as_code().to_string(),
        };
        let kind = if delta.is_sign_negative() {
            "withdrawal"
        } else {
            "deposit"
        };
        let text = format!(
            "capital flow detected: {kind} {delta} {asset}{} ({}); kept out of today's P&L and the drawdown",
            record
                .value_usdt
                .map(|v| format!(" = {} USDT", crate::domain::display_fixed(v, 2)))
                .unwrap_or_default(),
            source.as_code()
        );
        self.log(now_ms, LogLevel::Warn, LogKind::System, text);
        self.flows
            .retain(|f| risk::utc_day(f.time_ms) == risk::utc_day(now_ms));
        self.flows.push(record.clone());
        record
    }

    /// Today's capital flows, oldest first.
    pub fn flows_today(&self, now_ms: i64) -> Vec<&CapitalFlowRecord> {
        self.flows
            .iter()
            .filter(|f| risk::utc_day(f.time_ms) == risk::utc_day(now_ms))
            .collect()
    }

    /// Symbols with an open entry order (rule 6).
    fn open_entry_symbols(&self) -> BTreeSet<Symbol> {
        self.orders
            .values()
            .filter(|o| o.state.is_open() && o.purpose == OrderPurpose::Entry)
            .map(|o| o.symbol.clone())
            .collect()
    }

    /// The plain data the risk check reads.
    pub fn risk_context(&self, exit_confirmed: bool) -> RiskContext {
        let positions = self
            .positions
            .open()
            .map(|p| (p.symbol.clone(), p.qty()))
            .collect();
        RiskContext {
            state: self.trading.clone(),
            // An incomplete equity is no equity: the P&L rules cannot be evaluated and every
            // entry is refused (PNL_UNAVAILABLE) until all assets are priced again.
            equity: self.current_equity(),
            day_start_equity: self.equity.day_start().map(|d| d.equity.clone()),
            high_water_mark: self.equity.high_water_mark().cloned(),
            pnl_ok: self.pnl_ok && self.storage_error.is_none(),
            entries: self.entries,
            held_by_open_sells: self
                .positions
                .open()
                .map(|p| (p.symbol.clone(), self.held_by_own_sells(&p.symbol)))
                .filter(|(_, q)| !q.is_zero())
                .collect(),
            positions,
            open_entry_orders: self.open_entry_symbols(),
            quotes: self.quotes.clone(),
            rules: self.rules.clone(),
            balances: self.balances.clone(),
            exit_confirmed,
            sell_external: false,
        }
    }

    /// Open orders crbot should show (locally open, any purpose).
    pub fn open_orders(&self) -> Vec<Order> {
        let mut v: Vec<Order> = self
            .orders
            .values()
            .filter(|o| o.state.is_open())
            .cloned()
            .collect();
        v.sort_by_key(|o| o.created_ms);
        v
    }

    /// Symbols with locally open orders.
    pub fn symbols_with_open_orders(&self) -> BTreeSet<Symbol> {
        self.orders
            .values()
            .filter(|o| o.state.is_open())
            .map(|o| o.symbol.clone())
            .collect()
    }

    fn view_state(&self) -> ViewState {
        match &self.trading {
            TradingState::Active => ViewState::Active,
            TradingState::Reducing {
                reason,
                since_ms,
                until_ms,
                ..
            } => ViewState::Reducing {
                reason: reason.clone(),
                since_ms: *since_ms,
                until_ms: *until_ms,
            },
            TradingState::Halted { reason, since_ms } => ViewState::Halted {
                reason: reason.clone(),
                since_ms: *since_ms,
            },
        }
    }

    fn position_rows(&self) -> Vec<PositionRow> {
        let mut rows = Vec::new();
        for p in self.positions.open() {
            let mark = self.quotes.get(&p.symbol).map(Quote::mid);
            let unrealized = mark.and_then(|m| p.unrealized_pnl(m));
            let cost = p.cost_basis();
            let pct = unrealized.as_ref().and_then(|u| u.checked_percent_of(&cost).ok());
            rows.push(PositionRow {
                symbol: p.symbol.clone(),
                qty: p.qty(),
                avg_entry: p.avg_entry(),
                avg_fill: self.avg_fill_price(&p.symbol),
                mark,
                unrealized,
                unrealized_pct: pct,
                external: false,
                dust: self.is_dust(&p.symbol),
            });
        }
        let balances: Vec<Balance> = self.balances.values().cloned().collect();
        for h in crate::portfolio::split_holdings(&balances, &self.positions, &Asset::usdt()) {
            if h.external.is_zero() {
                continue;
            }
            let Ok(symbol) = Symbol::new(&format!("{}USDT", h.asset)) else {
                continue;
            };
            rows.push(PositionRow {
                mark: self.quotes.get(&symbol).map(Quote::mid),
                symbol,
                qty: h.external,
                avg_entry: None,
                avg_fill: None,
                unrealized: None,
                unrealized_pct: None,
                external: true,
                dust: false,
            });
        }
        rows
    }

    fn equity_status(&self) -> EquityStatus {
        match &self.equity_report {
            None => EquityStatus::Pending,
            Some(r) if r.is_complete() => EquityStatus::Complete {
                held: r.held().map(|(a, age)| (a.clone(), age)).collect(),
            },
            Some(r) => EquityStatus::Incomplete {
                unpriced: r.unpriced.clone(),
                partial: r.partial_total.clone(),
            },
        }
    }

    /// The limits in force that are looser than the configuration's, as one header line
    /// (`daily 6% until restart (config 5%)`): a restart keeps the tighter value, so a
    /// loosening past the configuration lasts only until then.
    pub fn limits_until_restart(&self) -> Option<String> {
        let c = self.configured_limits.as_ref()?;
        let l = &self.limits;
        // Built every publish: nothing is formatted unless a limit is looser.
        let mut parts = Vec::new();
        let mut say = |name: &str, now: String, configured: String| {
            parts.push(format!("{name} {now} until restart (config {configured})"));
        };
        let pct = |d: Decimal| format!("{}%", crate::domain::plain(d));
        if l.max_daily_loss_pct > c.max_daily_loss_pct {
            say("daily", pct(l.max_daily_loss_pct), pct(c.max_daily_loss_pct));
        }
        if l.max_drawdown_pct > c.max_drawdown_pct {
            say("drawdown", pct(l.max_drawdown_pct), pct(c.max_drawdown_pct));
        }
        if l.max_trades_per_day > c.max_trades_per_day {
            say(
                "trades",
                l.max_trades_per_day.to_string(),
                c.max_trades_per_day.to_string(),
            );
        }
        if l.max_position_size_pct > c.max_position_size_pct {
            say("size", pct(l.max_position_size_pct), pct(c.max_position_size_pct));
        }
        if l.min_risk_reward < c.min_risk_reward {
            let plain = crate::domain::plain;
            say("min R/R", plain(l.min_risk_reward), plain(c.min_risk_reward));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    fn limits_usage(&self, now_ms: i64) -> LimitsUsage {
        let day_pnl = self
            .equity
            .day_pnl()
            .unwrap_or_else(|| Money::zero(Asset::usdt()));
        LimitsUsage {
            day_pnl,
            day_pnl_pct: self.equity.day_pnl_pct().unwrap_or_default(),
            daily_loss_limit_pct: self.limits.max_daily_loss_pct,
            daily_reset_ms: risk::next_utc_midnight_ms(now_ms),
            drawdown_pct: self.equity.drawdown_pct().unwrap_or_default(),
            drawdown_limit_pct: self.limits.max_drawdown_pct,
            trades_used: self.entries.count_on(now_ms),
            trades_limit: self.limits.max_trades_per_day,
            position_size_limit_pct: self.limits.max_position_size_pct,
            min_risk_reward: self.limits.min_risk_reward,
        }
    }

    fn curves(&self, now_ms: i64) -> EquityCurves {
        let series = |w: Window| -> Vec<EquityPoint> {
            self.curve
                .series(w, now_ms, 300)
                .into_iter()
                .map(|s| EquityPoint {
                    time_ms: s.time_ms,
                    value: s.equity.amount(),
                })
                .collect()
        };
        EquityCurves {
            session: series(Window::Session),
            day: series(Window::Day),
            week: series(Window::Week),
            all: series(Window::All),
        }
    }

    /// The screen's view of the state.
    pub fn snapshot(&self, now_ms: i64) -> Snapshot {
        let watchlist = self
            .watchlist
            .iter()
            .map(|s| {
                let q = self.quotes.get(s);
                let t = self.tickers.get(s);
                WatchRow {
                    symbol: s.clone(),
                    last: t.map(|t| t.last).or(q.map(Quote::mid)),
                    bid: q.map(|q| q.bid),
                    ask: q.map(|q| q.ask),
                    change_24h_pct: t.and_then(|t| t.change_pct),
                    stale: self.is_stale(s, now_ms),
                }
            })
            .collect();
        let mut warnings = self.warnings.clone();
        for f in self.flows_today(now_ms) {
            let kind = if f.delta.is_sign_negative() {
                "withdrawal"
            } else {
                "deposit"
            };
            warnings.push(format!(
                "{kind} {} {}{} at {} UTC: kept out of P&L and drawdown",
                f.delta.normalize(),
                f.asset,
                f.value_usdt
                    .map(|v| format!(" ({} USDT)", crate::domain::display_fixed(v, 2)))
                    .unwrap_or_default(),
                chrono::DateTime::from_timestamp_millis(f.time_ms)
                    .map(|t| t.format("%H:%M").to_string())
                    .unwrap_or_default()
            ));
        }
        if let Some(e) = &self.storage_error {
            warnings.push(format!("journal cannot be written ({e}): new tickets refused"));
        }
        if let Some(line) = self.limits_until_restart() {
            warnings.push(line);
        }
        let positions = self.position_rows();
        let orders = self.open_orders();
        // Ticks of the symbols on the screen only: `rules` holds every symbol of the exchange
        // (thousands on Binance), and a snapshot is built up to 30 times a second.
        let shown = self
            .watchlist
            .iter()
            .chain(&self.selected)
            .chain(positions.iter().map(|p| &p.symbol))
            .chain(orders.iter().map(|o| &o.symbol));
        let price_ticks = shown
            .filter_map(|s| {
                let tick = self.rules.get(s)?.filters.price.as_ref()?.tick_size;
                (!tick.is_zero()).then(|| (s.clone(), tick))
            })
            .collect();
        let market_steps = positions
            .iter()
            .filter_map(|p| {
                let step = self
                    .rules
                    .get(&p.symbol)?
                    .lot_for(crate::domain::OrderType::Market)?
                    .step_size;
                (!step.is_zero()).then(|| (p.symbol.clone(), step))
            })
            .collect();
        let protect_qty = positions
            .iter()
            .filter(|p| !p.external && self.lacks_working_stop(&p.symbol))
            .filter_map(|p| Some((p.symbol.clone(), self.protect_qty(&p.symbol)?)))
            .collect();
        Snapshot {
            symbols: self.symbols.clone(),
            price_alerts: self.price_alerts.clone(),
            market_steps,
            attached_to: None,
            standby: None,
            // Set by the engine, which knows where the keys came from.
            rearm_needs_passphrase: false,
            mode: self.mode,
            now_ms,
            header: Header {
                market_stream: self.market_stream,
                user_stream: self.user_stream,
                clock_offset_ms: self.clock_offset_ms,
                rate_limits: self.rate,
                trading: self.view_state(),
                warnings,
            },
            watchlist,
            selected_symbol: self.selected.clone(),
            positions,
            orders,
            limits: self.limits_usage(now_ms),
            equity: self.current_equity(),
            equity_status: self.equity_status(),
            equity_curves: self.curves(now_ms),
            candles: self
                .selected
                .as_ref()
                .and_then(|s| self.candles.get(s))
                .cloned()
                .unwrap_or_default(),
            log: self.log.iter().cloned().collect(),
            ticket_preview: self.preview.clone(),
            ticket_result: self.result.clone(),
            kill: self.kill.clone(),
            unpriced_assets: self
                .equity_report
                .as_ref()
                .map(|r| r.no_market.clone())
                .unwrap_or_default(),
            fees_today: crate::portfolio::utc_date(now_ms)
                .ok()
                .and_then(|d| self.positions.fees_by_day().get(&d).cloned())
                .unwrap_or_default(),
            limit_change_pending: self.pending_limit.as_ref().map(|(_, v)| v.clone()),
            price_ticks,
            books: self.books(now_ms),
            // Filled by the engine, which keeps the selected symbol's detail and the history.
            focus: Default::default(),
            history: Default::default(),
            protect_qty,
            lost_protection: self
                .lost_protection
                .values()
                .map(|l| crate::engine::snapshot::LostProtection {
                    qty: self.protect_qty(&l.symbol),
                    ..l.clone()
                })
                .collect(),
        }
    }

    /// Balances with their marks, and the figures of the P&L document.
    fn books(&self, now_ms: i64) -> AccountBooks {
        let report = self.equity_report.as_ref();
        let balances = self
            .balances
            .values()
            .map(|b| {
                let priced = report.and_then(|r| r.priced.iter().find(|p| p.asset == b.asset));
                BalanceRow {
                    asset: b.asset.clone(),
                    free: b.free,
                    locked: b.locked,
                    mark: priced.map(|p| p.mark),
                    value: priced.map(|p| p.value.clone()),
                    mark_age_ms: priced.and_then(|p| p.held_age_ms),
                }
            })
            .collect();
        AccountBooks {
            balances,
            day_start_equity: self.equity.day_start().map(|d| d.equity.clone()),
            high_water_mark: self.equity.high_water_mark().cloned(),
            realized: self
                .positions
                .iter()
                .map(|p| (p.symbol.clone(), p.realized_pnl()))
                .collect(),
            capital_flows: self
                .flows_today(now_ms)
                .into_iter()
                .map(|f| CapitalFlowRow {
                    time_ms: f.time_ms,
                    asset: f.asset.clone(),
                    delta: f.delta,
                    value_usdt: f.value_usdt,
                    source: f.source.clone(),
                })
                .collect(),
            fees_by_position: self
                .positions
                .iter()
                .map(|p| (p.symbol.clone(), p.fees().clone()))
                .collect(),
            fees_by_day: self
                .positions
                .fees_by_day()
                .iter()
                .map(|(d, t)| (*d, t.clone()))
                .collect(),
            fees_total: self.positions.fees_total().unwrap_or_default(),
        }
    }

    /// Base quantity that crbot's own open sells on `symbol` still hold or may still sell: the
    /// unfilled rest of every open exit, flatten and protective order. An order whose outcome
    /// is unknown counts: it may be resting on the exchange.
    ///
    /// Both legs of one OCO hold the same quantity and at most one of them trades, so a list
    /// counts once (its legs are journaled together and share their creation time). A list
    /// with a CANCELED leg holds nothing: cancelling one leg cancels the list, and the other
    /// leg's own report may not have arrived yet. (An EXPIRED leg says nothing of the kind: it
    /// expires when its sibling trades, and the sibling may still be working.)
    pub fn held_by_own_sells(&self, symbol: &Symbol) -> Qty {
        let mut lists: BTreeMap<i64, Option<Qty>> = BTreeMap::new();
        let mut total = Qty::ZERO;
        for o in self
            .orders
            .values()
            .filter(|o| &o.symbol == symbol && o.side == Side::Sell && o.purpose != OrderPurpose::External)
        {
            let rest = o.qty.saturating_sub(o.executed_qty);
            if o.purpose.is_protective() {
                let list = lists.entry(o.created_ms).or_insert(Some(Qty::ZERO));
                if o.state == LocalOrderState::Exchange(OrderStatus::Canceled) {
                    *list = None;
                } else if o.state.is_open()
                    && let Some(held) = list
                {
                    *held = (*held).max(rest);
                }
            } else if o.state.is_open() {
                total = total.checked_add(rest).unwrap_or(total);
            }
        }
        lists
            .into_values()
            .flatten()
            .fold(total, |acc, q| acc.checked_add(q).unwrap_or(acc))
    }

    /// crbot's position on `symbol` that none of its own open sells holds yet: the most that
    /// new protection may cover. Derived from crbot's fills and orders only, never from the
    /// balance, so it never reaches the user's own holdings of the asset. It is not capped by
    /// the free balance either: right after a fill the balance may not show it yet, and an
    /// order beyond the free balance is refused by the exchange, which cannot sell what the
    /// account does not hold.
    pub fn unheld_position(&self, symbol: &Symbol) -> Qty {
        self.positions
            .qty(symbol)
            .saturating_sub(self.held_by_own_sells(symbol))
    }

    /// Quantity crbot may sell of a symbol now: its position less what its own open sells
    /// hold, bounded by the free base balance (which also holds the user's own coins, so it is
    /// only ever a bound, never the size).
    pub fn sellable(&self, symbol: &Symbol) -> Qty {
        let free = self
            .rules
            .get(symbol)
            .and_then(|r| self.balances.get(&r.base_asset))
            .map(|b| b.free)
            .unwrap_or(Qty::ZERO);
        self.unheld_position(symbol).min(free)
    }

    /// What a new protective OCO on `symbol` would cover: crbot's position less what its own
    /// open sells hold, rounded down to the lot step (as a re-protection sizes it). `None`
    /// when that is nothing or the symbol's rules are not known.
    pub fn protect_qty(&self, symbol: &Symbol) -> Option<Qty> {
        let rules = self.rules.get(symbol)?;
        let qty = rules.round_qty(crate::domain::OrderType::Limit, self.unheld_position(symbol));
        (!qty.is_zero()).then_some(qty)
    }

    /// crbot holds a position on `symbol` (not dust) with no stop-loss sell working on the
    /// exchange: the "NO STOP" of the screen ([`Snapshot::unprotected`]), except that a leg
    /// still being sent or of unknown outcome does not count here as working.
    pub fn lacks_working_stop(&self, symbol: &Symbol) -> bool {
        let held = !self.positions.qty(symbol).is_zero() && !self.is_dust(symbol);
        held && !self.orders.values().any(|o| {
            &o.symbol == symbol
                && o.side == crate::domain::Side::Sell
                && o.purpose == crate::domain::OrderPurpose::StopLoss
                && matches!(o.state, LocalOrderState::Exchange(s) if !s.is_terminal())
        })
    }

    /// True when crbot's position on `symbol` is dust at the current mid
    /// ([`crate::portfolio::is_dust`]).
    pub fn is_dust(&self, symbol: &Symbol) -> bool {
        let qty = self.positions.qty(symbol);
        match self.rules.get(symbol) {
            Some(r) => crate::portfolio::is_dust(qty, r, self.quotes.get(symbol).map(Quote::mid)),
            None => qty.is_zero(),
        }
    }

    /// Marks an order's local state (keeps every other field).
    pub fn set_order_state(&mut self, cid: &ClientOrderId, state: LocalOrderState, now_ms: i64) {
        if let Some(o) = self.orders.get_mut(cid) {
            o.state = state;
            o.updated_ms = now_ms;
        }
    }

    /// Side of the order that would close a long position.
    pub fn exit_side() -> Side {
        Side::Sell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(open_ms: i64, close: &str) -> Candle {
        let p: Price = close.parse().expect("literal");
        Candle {
            open_ms,
            open: p,
            high: p,
            low: p,
            close: p,
            volume: None,
        }
    }

    fn state() -> EngineState {
        EngineState::new(Mode::Sim, Limits::default(), TradingState::Active, 0)
    }

    fn market_order(i: i64, status: OrderStatus) -> Order {
        let qty: Qty = "1".parse().expect("literal");
        Order {
            client_order_id: ClientOrderId::generate(i, i as u64),
            order_id: Some(i as u64),
            order_list_id: None,
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            side: Side::Buy,
            order_type: crate::domain::OrderType::Market,
            price: None,
            stop_price: None,
            qty,
            executed_qty: qty,
            cumulative_quote_qty: crate::domain::Notional::ZERO,
            state: crate::domain::LocalOrderState::Exchange(status),
            purpose: crate::domain::OrderPurpose::External,
            created_ms: i,
            updated_ms: i,
        }
    }

    #[test]
    fn a_long_run_keeps_the_newest_finished_orders_and_every_open_one() {
        let mut s = state();
        let open = market_order(0, OrderStatus::New);
        s.upsert_order(open.clone());
        let n = (FINISHED_ORDERS_KEPT + PRUNE_SLACK + 10) as i64;
        for i in 1..=n {
            s.upsert_order(market_order(i, OrderStatus::Filled));
        }
        assert!(
            s.orders.len() <= FINISHED_ORDERS_KEPT + PRUNE_SLACK + 1,
            "{}",
            s.orders.len()
        );
        assert!(
            s.orders.contains_key(&open.client_order_id),
            "an open order is never dropped"
        );
        assert!(
            s.orders
                .contains_key(&market_order(n, OrderStatus::Filled).client_order_id)
        );
        assert!(
            !s.orders
                .contains_key(&market_order(1, OrderStatus::Filled).client_order_id)
        );
    }

    #[test]
    fn what_fills_realized_is_kept_for_today_and_yesterday_and_the_newest() {
        const DAY: i64 = 86_400_000;
        let mut s = state();
        let sym = Symbol::new("BTCUSDT").expect("ok");
        let one = Money::new(Decimal::ONE, Asset::usdt());
        // Old fills, one a second on the first day, more than the bound alone keeps.
        let old = (REALIZED_FILLS_KEPT + 100) as u64;
        for i in 0..old {
            s.realized_fills
                .insert((sym.clone(), i, i), (i as i64 * 1_000, one.clone()));
        }
        let today = 3 * DAY;
        s.realized_fills
            .insert((sym.clone(), old, old), (today - DAY + 1, one.clone()));
        s.realized_fills
            .insert((sym.clone(), old + 1, old + 1), (today + 5, one.clone()));
        s.prune_realized(today + 10);
        assert_eq!(
            s.realized_fills.len(),
            REALIZED_FILLS_KEPT,
            "the newest kept, the rest dropped"
        );
        assert!(
            s.realized_fills.contains_key(&(sym.clone(), old, old)),
            "yesterday's stays"
        );
        assert!(
            !s.realized_fills.contains_key(&(sym.clone(), 0, 0)),
            "the oldest goes"
        );
        assert_eq!(s.realized_on_day(today + 10), Some(Decimal::ONE));
        // A busy day: every fill of today and yesterday stays, however many.
        let mut busy = state();
        for i in 0..(2 * REALIZED_FILLS_KEPT) as u64 {
            busy.realized_fills
                .insert((sym.clone(), i, i), (today - DAY + i as i64, one.clone()));
        }
        busy.realized_fills
            .insert((sym.clone(), u64::MAX, u64::MAX), (DAY, one.clone()));
        busy.prune_realized(today + 10);
        assert_eq!(busy.realized_fills.len(), 2 * REALIZED_FILLS_KEPT);
    }

    #[test]
    fn history_arriving_after_a_live_candle_is_kept_in_order() {
        let mut s = state();
        let sym = Symbol::new("BTCUSDT").expect("ok");
        s.on_candle(sym.clone(), candle(300, "3"));
        for (t, c) in [(0, "0.5"), (100, "1"), (200, "2")] {
            s.on_candle(sym.clone(), candle(t, c));
        }
        s.on_candle(sym.clone(), candle(300, "3.5"));
        let times: Vec<i64> = s.candles[&sym].iter().map(|c| c.open_ms).collect();
        assert_eq!(times, vec![0, 100, 200, 300]);
        assert_eq!(s.candles[&sym][3].close.to_string(), "3.5");
    }

    #[test]
    fn a_symbol_without_a_recent_quote_is_stale() {
        let mut s = state();
        let sym = Symbol::new("ETHUSDT").expect("ok");
        assert!(s.is_stale(&sym, 10_000), "no quote at all is stale");
        let q = Quote {
            bid: "1".parse().expect("ok"),
            ask: "2".parse().expect("ok"),
            time_ms: 10_000,
        };
        s.on_quote(sym.clone(), q);
        assert!(!s.is_stale(&sym, 10_000 + STALE_AFTER_MS));
        assert!(s.is_stale(&sym, 10_001 + STALE_AFTER_MS));
    }

    fn sell(cid: &str, purpose: OrderPurpose, qty: &str, state: LocalOrderState, created_ms: i64) -> Order {
        Order {
            client_order_id: ClientOrderId::new(cid).expect("ok"),
            order_id: None,
            order_list_id: None,
            symbol: Symbol::new("BNBUSDT").expect("ok"),
            side: Side::Sell,
            order_type: crate::domain::OrderType::Limit,
            price: None,
            stop_price: None,
            qty: qty.parse().expect("ok"),
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: crate::domain::Notional::ZERO,
            state,
            purpose,
            created_ms,
            updated_ms: created_ms,
        }
    }

    #[test]
    fn an_ocos_legs_hold_once_and_nothing_once_one_is_cancelled() {
        let mut s = state();
        let bnb = Symbol::new("BNBUSDT").expect("ok");
        let new = LocalOrderState::Exchange(OrderStatus::New);
        s.upsert_order(sell("tp", OrderPurpose::TakeProfit, "0.999", new, 5));
        s.upsert_order(sell("sl", OrderPurpose::StopLoss, "0.999", new, 5));
        s.upsert_order(sell("exit", OrderPurpose::Exit, "0.2", new, 9));
        s.upsert_order(sell("theirs", OrderPurpose::External, "0.5", new, 9));
        assert_eq!(s.held_by_own_sells(&bnb).to_string(), "1.199");
        // The cancel answer names one leg; the list is gone with it.
        s.set_order_state(
            &ClientOrderId::new("tp").expect("ok"),
            LocalOrderState::Exchange(OrderStatus::Canceled),
            10,
        );
        assert_eq!(s.held_by_own_sells(&bnb).to_string(), "0.2");
    }

    #[test]
    fn the_log_is_bounded_and_sequence_numbers_only_grow() {
        let mut s = state();
        for i in 0..(LOG_CAP + 10) {
            s.log(i as i64, LogLevel::Info, LogKind::System, format!("line {i}"));
        }
        let seqs: Vec<u64> = s.log_lines().map(|l| l.seq).collect();
        assert_eq!(seqs.len(), LOG_CAP);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(*seqs.last().expect("non-empty"), (LOG_CAP + 10) as u64);
    }

    fn bal(a: &str, total: &str) -> Balance {
        Balance {
            asset: Asset::new(a).expect("ok"),
            free: total.parse().expect("ok"),
            locked: Qty::ZERO,
        }
    }

    fn quote_at(mid: &str, time_ms: i64) -> Quote {
        Quote {
            bid: mid.parse().expect("ok"),
            ask: mid.parse().expect("ok"),
            time_ms,
        }
    }

    /// 2026-11-28 00:00:00 UTC.
    const DAY: i64 = 1_795_824_000_000;

    #[test]
    fn an_incomplete_equity_never_reaches_the_tracker_the_curve_or_a_rule() {
        let mut s = state();
        s.set_balances([bal("USDT", "1000"), bal("ETH", "1")], true);
        let eth = Symbol::new("ETHUSDT").expect("ok");
        s.on_quote(eth.clone(), quote_at("3000", DAY));
        assert!(s.refresh_equity(DAY).is_none());
        assert_eq!(s.curve.len(), 1);
        assert_eq!(
            s.risk_context(false).equity.map(|m| m.amount()),
            Some(Decimal::from(4000))
        );
        // The ETH price is gone past the bound (a dead stream, refused requests): a sum of the
        // USDT alone would be a 75 % loss and trip both rules. It must be no equity at all.
        let later = DAY + crate::portfolio::equity::MAX_MARK_AGE_MS + 1;
        assert!(
            s.refresh_equity(later).is_none(),
            "nothing triggers on an unknown equity"
        );
        assert!(s.equity_incomplete());
        assert_eq!(s.curve.len(), 1, "an incomplete equity reached the curve");
        assert_eq!(s.equity.last().map(|l| l.time_ms), Some(DAY));
        assert_eq!(s.risk_context(false).equity, None, "entries must fail closed");
        assert_eq!(s.trading, TradingState::Active);
        let snap = s.snapshot(later);
        assert_eq!(snap.equity, None);
        assert!(snap.equity_status.is_incomplete());
        // A fresh price makes it whole again.
        s.on_quote(eth, quote_at("3000", later));
        s.refresh_equity(later);
        assert!(!s.equity_incomplete());
        assert_eq!(s.curve.len(), 2);
    }

    #[test]
    fn a_balance_update_moves_the_balance_and_the_baselines_together() {
        let mut s = state();
        s.set_balances([bal("USDT", "1000")], true);
        s.refresh_equity(DAY);
        s.set_balances([bal("USDT", "950")], true);
        s.refresh_equity(DAY + 1);
        let pct = s.equity.day_pnl_pct();
        let usdt = Asset::usdt();
        let flow = s.apply_capital_flow(&usdt, Decimal::from(250), FlowSource::Stream, false, DAY + 2);
        assert_eq!(flow.value_usdt, Some(Decimal::from(250)));
        assert_eq!(s.balances[&usdt].free.value(), Decimal::from(1200));
        s.refresh_equity(DAY + 3);
        assert_eq!(
            s.equity.last().map(|l| l.equity.amount()),
            Some(Decimal::from(1200))
        );
        let diff = s.equity.day_pnl_pct().zip(pct).map(|(a, b)| (a - b).abs());
        assert!(diff.is_some_and(|d| d < Decimal::new(1, 12)), "{diff:?}");
        assert_eq!(s.flows_today(DAY + 3).len(), 1);
        assert!(
            s.snapshot(DAY + 3)
                .header
                .warnings
                .iter()
                .any(|w| w.contains("deposit 250 USDT"))
        );
    }
}
