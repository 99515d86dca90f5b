//! The selected symbol's market detail and the history panel's rows: the local order book
//! (kept from the `@depth@100ms` diffs by `exchange::binance::book`), the tape of recent
//! trades, the chart at the chosen timeframe with its REST backfill, and the journal's fills
//! and orders read off the loop.
//!
//! Owns: which symbol and timeframe the market stream follows for the screen, that symbol's
//! book, tape and chart, and the last history read. Must not: follow more than one symbol
//! (six watched symbols never cost six books), show a book that is not in step with the
//! stream (levels only while live), or read the journal on the loop (a bounded read runs as
//! an effect, at most every [`HISTORY_EVERY_MS`] after something changed).

use std::collections::VecDeque;
use std::time::Duration;

use super::{Answer, Effect, Engine, Input};
use crate::domain::{Fill, Mode, Order, Symbol};
use crate::engine::snapshot::{
    BookLevel, BookStatus, BookView, Candle, ChartInterval, Command, FocusView, HistoryFill, HistoryView,
    LogKind, LogLevel, TapeTrade,
};
use crate::exchange::binance::book::{DepthDiff, Failed, Feed, Loaded, LocalBook, Resync};
use crate::exchange::binance::events::StreamTrade;
use crate::exchange::binance::wire::Depth;

/// Levels of each side in the snapshot.
pub const BOOK_LEVELS: usize = 20;
/// Trades kept on the tape.
pub const TAPE_CAP: usize = 60;
/// Candles kept for a timeframe other than 1m (its backfill asks for as many).
pub const CHART_CAP: usize = 500;
/// Rows of each history list read from the journal.
pub const HISTORY_ROWS: usize = 100;
/// The shortest time between two history reads.
pub const HISTORY_EVERY_MS: i64 = 1_000;
/// A refused snapshot (older than the buffered diffs) is fetched again after this. A read
/// that failed is tried again after [`Resync`]'s doubling wait instead.
const DEPTH_RETRY: Duration = Duration::from_millis(500);

/// What the focus asks the executor to do.
#[derive(Debug)]
pub enum FocusEffect {
    /// The market stream follows this symbol (its book's diffs, trades, the chart's klines at
    /// this interval), or none.
    Follow(Option<(Symbol, ChartInterval)>),
    /// `GET /api/v3/depth` of the symbol, after `delay` → [`FocusAnswer::Depth`].
    LoadDepth { symbol: Symbol, delay: Duration },
    /// `GET /api/v3/klines` at the interval → [`FocusAnswer::Chart`].
    LoadChart { symbol: Symbol, interval: ChartInterval },
    /// The newest fills and orders, on a journal connection of its own → [`FocusAnswer::History`].
    LoadHistory {
        journal: crate::journal::Location,
        mode: Mode,
        rows: usize,
    },
}

/// The answers to [`FocusEffect`]s.
#[derive(Debug)]
pub enum FocusAnswer {
    Depth {
        symbol: Symbol,
        depth: Result<Depth, String>,
    },
    Chart {
        symbol: Symbol,
        interval: ChartInterval,
        candles: Result<Vec<Candle>, String>,
    },
    /// Fills and orders, newest first.
    History(Result<(Vec<Fill>, Vec<Order>), String>),
}

/// The focus's state.
#[derive(Debug, Default)]
pub(super) struct FocusState {
    /// What the market stream was last asked to follow.
    followed: Option<(Symbol, ChartInterval)>,
    interval: ChartInterval,
    book: LocalBook,
    depth_loading: bool,
    /// The snapshot reads that failed since the last one that did not.
    resync: Resync,
    tape: VecDeque<TapeTrade>,
    /// The chart at `interval` when it is not 1m (1m candles are the state's own).
    chart: Vec<Candle>,
    chart_loading: bool,
    history: HistoryView,
    history_loading: bool,
    history_dirty: bool,
    history_read_ms: Option<i64>,
}

impl FocusState {
    pub(super) fn new() -> FocusState {
        FocusState {
            history_dirty: true,
            ..FocusState::default()
        }
    }
}

/// Whether an input may have written fills or orders to the journal.
pub(super) fn touches_history(input: &Input) -> bool {
    match input {
        Input::User(_) => true,
        Input::Command(c) => !matches!(
            c,
            Command::PreviewTicket(_)
                | Command::SelectSymbol(_)
                | Command::SetChartInterval(_)
                | Command::Report { .. }
                | Command::Trades { .. }
        ),
        Input::Answer(a) => !matches!(
            a,
            Answer::Focus(_)
                | Answer::Klines(..)
                | Answer::Tickers(_)
                | Answer::Book(..)
                | Answer::Clock(_)
                | Answer::AlertDelivered(_)
        ),
        Input::Started | Input::Market(_) | Input::Tick(_) | Input::TradingStateNotice => false,
    }
}

impl Engine {
    /// After every input: the stream follows the selected symbol and timeframe, and the
    /// history is read again when something changed (not more often than every second).
    pub(super) fn follow_focus(&mut self, now: i64) {
        let wanted = self.core.state.selected.clone().map(|s| (s, self.focus.interval));
        if wanted != self.focus.followed {
            let symbol_changed = wanted.as_ref().map(|w| &w.0) != self.focus.followed.as_ref().map(|f| &f.0);
            if symbol_changed {
                self.focus.book.reset();
                self.focus.depth_loading = false;
                self.focus.resync = Resync::default();
                self.focus.tape.clear();
            }
            self.focus.chart.clear();
            self.focus.chart_loading = false;
            if let Some((symbol, interval)) = &wanted
                && *interval != ChartInterval::M1
            {
                self.focus.chart_loading = true;
                self.emit(Effect::Focus(FocusEffect::LoadChart {
                    symbol: symbol.clone(),
                    interval: *interval,
                }));
            }
            self.focus.followed = wanted.clone();
            self.emit(Effect::Focus(FocusEffect::Follow(wanted)));
        }
        let due = self
            .focus
            .history_read_ms
            .is_none_or(|t| now - t >= HISTORY_EVERY_MS);
        if self.focus.history_dirty && !self.focus.history_loading && due {
            self.focus.history_dirty = false;
            self.focus.history_loading = true;
            self.focus.history_read_ms = Some(now);
            self.emit(Effect::Focus(FocusEffect::LoadHistory {
                journal: self.core.journal.location().clone(),
                mode: self.core.state.mode,
                rows: HISTORY_ROWS,
            }));
        }
    }

    pub(super) fn mark_history_dirty(&mut self) {
        self.focus.history_dirty = true;
    }

    pub(super) fn set_chart_interval(&mut self, interval: ChartInterval) {
        self.focus.interval = interval;
    }

    fn is_followed(&self, symbol: &Symbol) -> bool {
        self.focus.followed.as_ref().is_some_and(|(s, _)| s == symbol)
    }

    pub(super) fn on_depth_diff(&mut self, symbol: Symbol, diff: DepthDiff, now: i64) {
        if !self.is_followed(&symbol) {
            return;
        }
        // After failed reads, a new resync waits its turn like a retry would.
        let wait = self.focus.resync.wait();
        match self.focus.book.on_diff(diff) {
            Feed::NeedSnapshot => self.load_depth(symbol, wait),
            Feed::Gap { expected, got } => {
                self.core.state.log(
                    now,
                    LogLevel::Info,
                    LogKind::Connection,
                    format!("{symbol} book: update {got} after {expected} was due; resynchronising"),
                );
                self.load_depth(symbol, wait);
            }
            Feed::Buffered | Feed::Applied | Feed::Ignored => {}
        }
    }

    fn load_depth(&mut self, symbol: Symbol, delay: Duration) {
        if self.focus.depth_loading {
            return;
        }
        self.focus.depth_loading = true;
        self.emit(Effect::Focus(FocusEffect::LoadDepth { symbol, delay }));
    }

    /// A snapshot read failed: read again after a doubling wait; the first failure is a
    /// warning in the log, the next ones only a debug line (the count comes with the success).
    fn depth_failed(&mut self, symbol: Symbol, error: &str, now: i64) {
        let failed = self.focus.resync.on_failure(error);
        match &failed {
            Failed::First { wait } => self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Connection,
                format!(
                    "{symbol} book snapshot: {error}; retrying in {} s, then less often",
                    wait.as_secs()
                ),
            ),
            Failed::Again { failures, wait } => {
                tracing::debug!(%symbol, failures, wait_ms = wait.as_millis(), error, "book snapshot failed again");
            }
        }
        self.load_depth(symbol, failed.wait());
    }

    pub(super) fn on_stream_trade(&mut self, symbol: Symbol, trade: StreamTrade) {
        if !self.is_followed(&symbol) {
            return;
        }
        self.focus.tape.push_front(TapeTrade {
            time_ms: trade.time_ms,
            price: trade.price,
            qty: trade.qty,
            buyer_maker: trade.buyer_maker,
        });
        self.focus.tape.truncate(TAPE_CAP);
    }

    /// A streamed kline: kept when it is the followed symbol's at a timeframe other than 1m
    /// (1m candles are kept for every watched symbol by the state).
    pub(super) fn on_focus_kline(&mut self, symbol: &Symbol, interval: &str, candle: Candle) {
        let Some((s, i)) = &self.focus.followed else {
            return;
        };
        if s != symbol || i.wire() != interval || *i == ChartInterval::M1 {
            return;
        }
        merge_candle(&mut self.focus.chart, candle);
    }

    /// The market stream dropped: the book is no longer in step.
    pub(super) fn on_focus_stream_lost(&mut self) {
        self.focus.book.reset();
        self.focus.depth_loading = false;
    }

    pub(super) fn on_focus_answer(&mut self, answer: FocusAnswer, now: i64) {
        match answer {
            FocusAnswer::Depth { symbol, depth } => {
                // Not asked any more: another symbol is followed, or the book was thrown away
                // since (the stream dropped) — a snapshot from before must not make it live.
                if !self.is_followed(&symbol) || !self.focus.depth_loading {
                    return;
                }
                self.focus.depth_loading = false;
                match depth {
                    Ok(depth) => {
                        if let Some(r) = self.focus.resync.on_success() {
                            self.core.state.log(
                                now,
                                LogLevel::Info,
                                LogKind::Connection,
                                format!(
                                    "{symbol} book snapshot read after {} (the first: {})",
                                    crate::domain::plural::count(
                                        usize::try_from(r.failures).unwrap_or(usize::MAX),
                                        "failed read",
                                        "failed reads"
                                    ),
                                    r.first_error
                                ),
                            );
                        }
                        match self.focus.book.on_snapshot(&depth) {
                            Loaded::Live | Loaded::Unneeded => {}
                            Loaded::Again => self.load_depth(symbol, DEPTH_RETRY),
                        }
                    }
                    Err(e) => self.depth_failed(symbol, &e, now),
                }
            }
            FocusAnswer::Chart {
                symbol,
                interval,
                candles,
            } => {
                if self.focus.followed != Some((symbol.clone(), interval)) {
                    return;
                }
                self.focus.chart_loading = false;
                match candles {
                    Ok(list) => {
                        for c in list {
                            merge_candle(&mut self.focus.chart, c);
                        }
                    }
                    Err(e) => self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Connection,
                        format!("{symbol} {} candles: {e}", interval.wire()),
                    ),
                }
            }
            FocusAnswer::History(read) => {
                self.focus.history_loading = false;
                match read {
                    Ok((fills, orders)) => {
                        let fills = fills
                            .into_iter()
                            .map(|fill| HistoryFill {
                                realized: self.core.state.realized_of(&fill),
                                fill,
                            })
                            .collect();
                        self.focus.history.fills = std::sync::Arc::new(fills);
                        self.focus.history.orders = std::sync::Arc::new(orders);
                        self.focus.history.error = None;
                        self.focus.history.loaded = true;
                    }
                    Err(e) => self.focus.history.error = Some(e),
                }
            }
        }
    }

    /// The focus's part of the snapshot.
    pub(super) fn fill_focus(&self, snap: &mut crate::engine::snapshot::Snapshot, now: i64) {
        let level = |(p, q): (rust_decimal::Decimal, rust_decimal::Decimal)| {
            Some(BookLevel {
                price: crate::domain::Price::try_new(p).ok()?,
                qty: crate::domain::Qty::try_new(q).ok()?,
            })
        };
        let followed = self.focus.followed.as_ref();
        let book = &self.focus.book;
        snap.focus = FocusView {
            symbol: followed.map(|f| f.0.clone()),
            interval: self.focus.interval,
            candles_loading: self.focus.chart_loading,
            book: BookView {
                status: match (followed, book.is_live()) {
                    (None, _) => BookStatus::Off,
                    (Some(_), false) => BookStatus::Syncing,
                    (Some(_), true) => BookStatus::Live,
                },
                bids: book.bids(BOOK_LEVELS).into_iter().filter_map(level).collect(),
                asks: book.asks(BOOK_LEVELS).into_iter().filter_map(level).collect(),
            },
            trades: self.focus.tape.iter().copied().collect(),
        };
        if self.focus.interval != ChartInterval::M1 {
            snap.candles = self.focus.chart.clone();
        }
        snap.history = self.focus.history.clone();
        snap.history.day_realized = self.core.state.realized_on_day(now);
    }
}

/// Replaces the candle with the same open time, or inserts it in order; keeps the newest
/// [`CHART_CAP`].
fn merge_candle(list: &mut Vec<Candle>, candle: Candle) {
    match list.binary_search_by_key(&candle.open_ms, |c| c.open_ms) {
        Ok(i) => list[i] = candle,
        Err(i) => list.insert(i, candle),
    }
    if list.len() > CHART_CAP {
        let excess = list.len() - CHART_CAP;
        list.drain(..excess);
    }
}
