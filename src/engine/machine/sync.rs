//! Keeping in step with the exchange: the start-up loads, the REST resync (at start-up, after
//! every user-stream subscription and after a kill), settling orders whose outcome is unknown,
//! and the market and user-data streams.
//!
//! Owns: whether the start-up reconciliation is done (tickets wait for it), whether a resync is
//! running, and the journal's trading-state row last seen. Must not: resend an order whose
//! outcome is unknown — it is settled by query of its client order id only.

use std::collections::BTreeSet;
use std::time::Duration;

use rust_decimal::Decimal;

use super::{Answer, Effect, Engine};
use crate::domain::{ClientOrderId, LocalOrderState, OrderPurpose, OrderStatus, Quote, Symbol};
use crate::engine::kill::Halted;
use crate::engine::snapshot::{Candle, LogKind, LogLevel, StreamHealth, StreamStatus as ViewStreamStatus};
use crate::engine::state::TickerLine;
use crate::exchange::binance::events::{MarketEvent, StreamStatus, UserEvent};
use crate::exchange::binance::reconcile::{Resolution, ResyncReport};
use crate::exchange::binance::wire::Kline;

/// A failed rules read is tried again after this.
const INFO_RETRY: Duration = Duration::from_secs(2);
/// A failed resync is tried again after this.
const RESYNC_RETRY: Duration = Duration::from_secs(2);
/// An order still unknown after a query is queried again after this.
const RESOLVE_RETRY: Duration = Duration::from_secs(5);

/// The state keeping in step owns.
#[derive(Debug)]
pub(super) struct SyncState {
    /// Start-up reconciliation done: tickets are refused before it.
    pub(super) reconciled: bool,
    resync_running: bool,
    /// The journal's trading-state row id last seen (ours or another process's).
    pub(super) state_row: i64,
}

impl SyncState {
    pub(super) fn new(state_row: i64) -> SyncState {
        SyncState {
            reconciled: false,
            resync_running: false,
            state_row,
        }
    }
}

impl Engine {
    /// Rules, clock, candles, 24 h tickers, books; the start-up reconciliation follows the
    /// rules (a fill is booked against its symbol's filters).
    pub(super) fn start(&mut self, _now: i64) {
        let watchlist = self.core.state.watchlist.clone();
        self.emit(Effect::SyncClock);
        self.emit(Effect::LoadRules {
            delay: Duration::ZERO,
        });
        for s in &watchlist {
            self.load_symbol(s.clone());
        }
        self.emit(Effect::LoadTickers(watchlist));
    }

    fn load_symbol(&mut self, s: Symbol) {
        self.emit(Effect::LoadCandles(s.clone()));
        self.emit(Effect::LoadBook(s));
    }

    pub(super) fn add_symbol(&mut self, s: Symbol, now: i64) {
        // A name the exchange does not list is never watched: every load of it would be
        // refused (HTTP 400), again at each refresh.
        if !self.core.state.rules.contains_key(&s) {
            let text = if self.core.state.rules.is_empty() {
                format!("{s} not added: the exchange's symbols are not loaded yet; add it again in a moment")
            } else {
                format!("{s} not added: the exchange has no such symbol")
            };
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
            return;
        }
        if !self.core.state.watchlist.contains(&s) {
            self.core.state.watchlist.push(s.clone());
            self.save_watchlist(now);
            self.load_symbol(s);
            self.push_watchlist();
        }
    }

    /// Once the exchange's symbols are known, a watched name it does not list (saved before
    /// symbols were checked, or delisted since) leaves the watchlist, saying so.
    fn drop_unknown_watched(&mut self, now: i64) {
        let state = &self.core.state;
        let unknown: Vec<Symbol> = state
            .watchlist
            .iter()
            .filter(|s| !state.rules.contains_key(*s))
            .cloned()
            .collect();
        if unknown.is_empty() || state.rules.is_empty() {
            return;
        }
        for s in &unknown {
            self.core.state.watchlist.retain(|x| x != s);
            let text = format!("{s} left the watchlist: the exchange has no such symbol");
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
        }
        self.save_watchlist(now);
        self.push_watchlist();
    }

    pub(super) fn remove_symbol(&mut self, s: &Symbol, now: i64) {
        self.core.state.watchlist.retain(|x| x != s);
        self.save_watchlist(now);
        self.push_watchlist();
    }

    fn save_watchlist(&mut self, now: i64) {
        if let Err(e) = self.core.save_watchlist() {
            let text = format!("watchlist not saved ({e}); it will not survive a restart");
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
        }
    }

    fn push_watchlist(&mut self) {
        let list = self.core.state.watchlist.clone();
        self.emit(Effect::SetWatchlist(list));
    }

    /// REST resync: at start-up and after every user-stream (re)subscription.
    pub(super) fn start_resync(&mut self) {
        if self.sync.resync_running {
            return;
        }
        self.sync.resync_running = true;
        let mut symbols: BTreeSet<Symbol> = self.core.state.watchlist.iter().cloned().collect();
        symbols.extend(self.core.state.orders.values().map(|o| o.symbol.clone()));
        let request = self.core.resync_request(symbols);
        self.emit(Effect::Resync(request));
    }

    /// Settles an order whose outcome is unknown by query (never a resend).
    pub(super) fn resolve(&mut self, symbol: Symbol, cid: ClientOrderId) {
        self.emit(Effect::Resolve {
            symbol,
            cid,
            delay: Duration::ZERO,
        });
    }

    /// [`Engine::resolve`] for an order crbot knows (its symbol from the books).
    pub(super) fn resolve_known(&mut self, cid: &ClientOrderId) {
        if let Some(o) = self.core.state.orders.get(cid) {
            let symbol = o.symbol.clone();
            self.resolve(symbol, cid.clone());
        }
    }

    /// The answers of the loads, the resync and order resolution.
    pub(super) fn on_sync_answer(&mut self, answer: Answer, now: i64) {
        match answer {
            Answer::Info(Ok(rules)) => {
                for r in rules {
                    self.core.state.rules.insert(r.symbol.clone(), r);
                }
                self.core.state.symbols =
                    std::sync::Arc::new(self.core.state.rules.keys().cloned().collect());
                self.drop_unknown_watched(now);
                self.core.replay_fills();
                self.start_resync();
            }
            Answer::Info(Err(e)) => {
                self.core.state.log(
                    now,
                    LogLevel::Error,
                    LogKind::Connection,
                    format!("exchange info: {e}; retrying"),
                );
                self.emit(Effect::LoadRules { delay: INFO_RETRY });
            }
            Answer::Clock(Ok(offset)) => self.core.state.clock_offset_ms = Some(offset),
            Answer::Clock(Err(e)) => self.core.state.log(
                now,
                LogLevel::Warn,
                LogKind::Connection,
                format!("clock sync: {e}"),
            ),
            Answer::Klines(s, candles) => {
                for c in candles {
                    self.core.state.on_candle(s.clone(), c);
                }
            }
            Answer::Tickers(list) => {
                for (symbol, line) in list {
                    self.core.state.on_ticker(symbol, line);
                }
            }
            // An empty book (zero prices) is no quote.
            Answer::Book(_, b) if b.bid.is_zero() && b.ask.is_zero() => {}
            Answer::Book(s, b) => {
                let quote = Quote {
                    bid: b.bid,
                    ask: b.ask,
                    time_ms: now,
                };
                self.core.state.quotes.entry(s).or_insert(quote);
            }
            Answer::Resynced(report) => {
                self.sync.resync_running = false;
                match *report {
                    Ok(r) => self.apply_resync(r, now),
                    Err(e) => {
                        self.core.state.log(
                            now,
                            LogLevel::Error,
                            LogKind::Connection,
                            format!("resync failed: {e}; retrying in 2 s"),
                        );
                        self.emit(Effect::RetryResyncAfter(RESYNC_RETRY));
                    }
                }
            }
            Answer::RetryResync => self.start_resync(),
            Answer::Resolved {
                cid,
                resolution,
                fills,
            } => match resolution {
                Resolution::Found(o) => {
                    // As with a placement answer: the order (its id), then its fills, then the
                    // protective OCO, which is sized from the journaled fills.
                    let f = self.core.on_exchange_order(&o, now);
                    for fill in &fills {
                        self.core.on_fill(fill, now);
                    }
                    self.follow(f, now);
                    self.refresh_ticket_result(&cid);
                }
                Resolution::NotFound => {
                    self.core
                        .mark_not_sent(&cid, "never reached the exchange (confirmed not found)", now);
                    self.refresh_ticket_result(&cid);
                }
                Resolution::StillUnknown { reason } => {
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Order,
                        format!("order {cid} still unknown: {reason}; will retry"),
                    );
                    let sym = self.core.state.orders.get(&cid).map(|o| o.symbol.clone());
                    if let Some(symbol) = sym {
                        self.emit(Effect::Resolve {
                            symbol,
                            cid,
                            delay: RESOLVE_RETRY,
                        });
                    }
                }
            },
            Answer::LoadFailed { what, error } => {
                let text = format!("could not load {what}: {error}");
                self.core
                    .state
                    .log(now, LogLevel::Warn, LogKind::Connection, text);
            }
            Answer::UserStreamFailed(e) => {
                self.core.state.log(
                    now,
                    LogLevel::Error,
                    LogKind::Connection,
                    format!("user-data stream: {e}"),
                );
                self.core.state.user_stream = StreamHealth {
                    status: ViewStreamStatus::Down,
                    latency_ms: None,
                };
            }
            // The other answers belong to the workflows `Engine::on_answer` sends them to.
            other => tracing::error!("engine: answer routed to the wrong workflow: {other:?}"),
        }
    }

    pub(super) fn apply_resync(&mut self, r: ResyncReport, now: i64) {
        let account_time_ms = r.account.update_time_ms;
        self.core.state.set_balances(r.account.balances, true);
        // Follow-ups (a protective OCO) wait until the fills below are journaled: the OCO is
        // sized from an entry's journaled fills, and orders first give the fills their ids.
        let mut follow = Vec::new();
        for (cid, res) in r.orders {
            let Ok(cid) = ClientOrderId::new(&cid) else {
                continue;
            };
            match res {
                Resolution::Found(o) => follow.extend(self.core.on_exchange_order(&o, now)),
                Resolution::NotFound => {
                    let sending = self.core.state.orders.get(&cid).is_some_and(|o| {
                        matches!(
                            o.state,
                            LocalOrderState::Sending | LocalOrderState::Unknown | LocalOrderState::Pending
                        )
                    });
                    if sending {
                        self.core.mark_not_sent(
                            &cid,
                            "never reached the exchange (confirmed not found)",
                            now,
                        );
                    }
                }
                Resolution::StillUnknown { reason } => {
                    self.core.mark_unknown(&cid, &reason, now);
                }
            }
        }
        for o in &r.open_orders {
            follow.extend(self.core.on_exchange_order(o, now));
        }
        // Orders we think open that the exchange no longer lists were finished while we were away:
        // query them (resync did for crbot's own; external ones are simply closed).
        let open_ids: BTreeSet<String> = r
            .open_orders
            .iter()
            .map(|o| o.order_client_id().to_string())
            .collect();
        let stale_external: Vec<ClientOrderId> = self
            .core
            .state
            .orders
            .values()
            .filter(|o| {
                o.purpose == OrderPurpose::External
                    && o.state.is_open()
                    && !open_ids.contains(o.client_order_id.as_str())
            })
            .map(|o| o.client_order_id.clone())
            .collect();
        for cid in stale_external {
            self.core.apply_status(
                &cid,
                OrderStatus::Canceled,
                None,
                None,
                crate::domain::Qty::ZERO,
                crate::domain::Notional::ZERO,
                None,
                now,
            );
        }
        for fill in &r.fills {
            self.core.on_fill(fill, now);
        }
        // With every fill journaled, what they do not explain in the balances happened while
        // no stream was watching: deposits, withdrawals, transfers (kept out of P&L).
        self.core.reconcile_capital_flows(account_time_ms, true, now);
        self.follow(follow, now);
        if !self.sync.reconciled {
            self.sync.reconciled = true;
            if self.core.kill_sweep_pending() {
                // Halted, but the sweep never finished (crbot died mid-kill): finish it now.
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Kill,
                    "an interrupted kill switch is being finished",
                );
                self.sweep(Halted::interrupted(&self.core), now);
            }
            self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::System,
                "reconciled with the exchange: tickets accepted",
            );
        } else {
            self.core.state.log(
                now,
                LogLevel::Info,
                LogKind::Connection,
                "resynced with the exchange",
            );
        }
        // A breach first seen here (a loss made while the console was closed) must act too.
        if let Some(t) = self.core.sample_equity(now, true) {
            self.on_transition(t, now);
        }
        if self.core.state.kill.as_ref().is_some_and(|k| k.done)
            && let Some(percent) = self.halts.flatten_after_kill.take()
        {
            self.flatten(percent, now);
        }
    }

    pub(super) fn on_user(&mut self, ev: UserEvent, now: i64) {
        match ev {
            UserEvent::Order(u) => {
                if let Some(fill) = &u.fill {
                    self.core.on_fill(fill, now);
                }
                let cid = u.order_client_id().to_string();
                if let Ok(cid) = ClientOrderId::new(&cid)
                    && self.core.state.orders.contains_key(&cid)
                {
                    let f = self.core.apply_status(
                        &cid,
                        u.status,
                        Some(u.order_id),
                        u.order_list_id,
                        u.cumulative_qty,
                        u.cumulative_quote,
                        None,
                        now,
                    );
                    self.follow(f, now);
                    self.refresh_ticket_result(&cid);
                } else {
                    // An order crbot did not place: recorded as external.
                    self.core.on_exchange_order(&u.report(), now);
                }
            }
            UserEvent::AccountPosition { balances, .. } => self.core.state.set_balances(balances, false),
            // A deposit, withdrawal or transfer: not performance. The balance and the P&L
            // baselines change together, and the flow is journaled and shown.
            UserEvent::BalanceDelta { asset, delta, .. } => self.core.on_balance_update(&asset, delta, now),
            UserEvent::ListStatus(_) => {}
            UserEvent::Subscribed { .. } => {
                self.core.state.user_stream = StreamHealth {
                    status: ViewStreamStatus::Connected,
                    latency_ms: None,
                };
                self.core.state.log(
                    now,
                    LogLevel::Info,
                    LogKind::Connection,
                    "user-data stream subscribed",
                );
                if !self.core.state.rules.is_empty() {
                    self.start_resync();
                }
            }
            UserEvent::Disconnected { reason } => {
                self.core.state.user_stream = StreamHealth {
                    status: ViewStreamStatus::Reconnecting { attempt: 1 },
                    latency_ms: None,
                };
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Connection,
                    format!("user-data stream lost: {reason}"),
                );
            }
            UserEvent::Terminated => {}
            UserEvent::Malformed { total } => {
                self.core.state.log(
                    now,
                    LogLevel::Warn,
                    LogKind::Connection,
                    format!("malformed user-data frame ({total} so far)"),
                );
            }
        }
    }

    pub(super) fn on_market(&mut self, ev: MarketEvent, now: i64) {
        match ev {
            MarketEvent::BookTicker { symbol, bid, ask, .. } => self.core.state.on_quote(
                symbol,
                Quote {
                    bid,
                    ask,
                    time_ms: now,
                },
            ),
            MarketEvent::MiniTicker {
                symbol, open, close, ..
            } => {
                let change = if open.is_zero() {
                    None
                } else {
                    Some((close.value() - open.value()) * Decimal::ONE_HUNDRED / open.value())
                };
                self.core.state.on_ticker(
                    symbol,
                    TickerLine {
                        last: close,
                        change_pct: change,
                    },
                );
            }
            MarketEvent::Kline {
                symbol,
                interval,
                kline,
                ..
            } => {
                let candle = candle(&kline);
                self.on_focus_kline(&symbol, &interval, candle);
                // Only 1m candles are kept per symbol; another timeframe is the focus's.
                if interval == "1m" {
                    self.core.state.on_candle(symbol, candle);
                }
            }
            MarketEvent::Depth { .. } => {}
            MarketEvent::DepthDiff { symbol, diff, .. } => self.on_depth_diff(symbol, diff, now),
            MarketEvent::Trade { symbol, trade, .. } => self.on_stream_trade(symbol, trade),
            MarketEvent::Status(s) => match s {
                StreamStatus::Connected { .. } => {
                    self.core.state.market_stream.status = ViewStreamStatus::Connected;
                    self.core.state.log(
                        now,
                        LogLevel::Info,
                        LogKind::Connection,
                        "market stream connected",
                    );
                }
                StreamStatus::Disconnected { reason } => {
                    self.on_focus_stream_lost();
                    let attempt = match self.core.state.market_stream.status {
                        ViewStreamStatus::Reconnecting { attempt } => attempt + 1,
                        _ => 1,
                    };
                    self.core.state.market_stream.status = ViewStreamStatus::Reconnecting { attempt };
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Connection,
                        format!("market stream lost: {reason}"),
                    );
                }
                StreamStatus::Latency { ms } => {
                    self.core.state.market_stream.latency_ms = u32::try_from(ms.max(0)).ok()
                }
                StreamStatus::Stale { symbol } => {
                    self.core.state.log(
                        now,
                        LogLevel::Warn,
                        LogKind::Connection,
                        format!("{symbol}: no market data, STALE (entries refused)"),
                    );
                }
                StreamStatus::Fresh { .. } | StreamStatus::ServerShutdown => {}
                StreamStatus::Malformed { total } => {
                    if total == 1 || total % 100 == 0 {
                        self.core.state.log(
                            now,
                            LogLevel::Warn,
                            LogKind::Connection,
                            format!("malformed market frames: {total}"),
                        );
                    }
                }
            },
        }
    }
}

/// A candle from the stream's or the REST kline.
pub fn candle(k: &Kline) -> Candle {
    Candle {
        open_ms: k.open_time_ms,
        open: k.open,
        high: k.high,
        low: k.low,
        close: k.close,
        volume: Some(k.volume),
    }
}
