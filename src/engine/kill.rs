//! The kill switch: one sequence for the console and `crbot kill` ([`halt`], then
//! [`Halted::sweep`], progress journaled by [`record`]), stage one's exchange part ([`sweep`]:
//! cancel everything, then verify nothing is left open), and the pure plan for stage two
//! ([`flatten_plan`]).
//!
//! Owns: the order of the sweep — every locally known symbol cancelled concurrently with
//! `DELETE /api/v3/openOrders` (order lists included), then the exchange's own list of open
//! orders to catch symbols the journal did not know, then queries until the exchange shows
//! none open, retrying stragglers a bounded number of times; a 429, and a ban that ends
//! within the same bound, are waited out (with a countdown) before cancelling again. Every
//! line and event says what happened, never more: a cancel the client did not send is
//! reported as not sent, and "all orders cancelled" only follows a verified empty book.
//! The sweep speaks to the exchange only through [`Broker`], in domain values, so it runs the
//! same against Binance, the local exchange and a scripted broker in tests.
//! Must not: let [`sweep`] change the trading state or touch the journal (the sequence in
//! `switch` halts, durably, BEFORE it starts, and journals its progress), place any order
//! (stage two's plan is only a plan; the caller sends it through the risk gate), or need the
//! market stream.

mod outcome;
mod switch;

pub use outcome::{FlattenOutcome, FlattenSell, KillOutcome, refusal_text};
pub use switch::{Halted, Running, automatic_trigger, halt, record};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::mpsc::UnboundedSender;

use crate::domain::broker::{BrokerError, CODE_CANCEL_REJECTED, Cancelled, OrderOutcome};
use crate::domain::plural::count;
use crate::domain::{Asset, OrderType, Qty, Side, Symbol, Ticket, TicketKind};
use crate::engine::snapshot::{KillLine, KillStage};
use crate::engine::state::EngineState;
use crate::risk::Broker;

/// The exchange's answer to a cancel-all when the symbol has nothing open (`Unknown order
/// sent.`).
const CODE_NOTHING_OPEN: i64 = CODE_CANCEL_REJECTED;

/// Progress of a sweep, for the screen or the terminal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KillEvent {
    Stage(KillStage),
    /// The latest outcome for one symbol (`ok: None` while still in progress).
    Line {
        symbol: Symbol,
        ok: Option<bool>,
        outcome: String,
    },
    /// Rate limited: cancels resume in `secs` seconds.
    Countdown {
        secs: u64,
    },
    Done {
        ok: bool,
        summary: String,
    },
}

/// Bounds of the sweep.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Verification rounds (query, cancel stragglers) before giving up.
    pub max_rounds: u32,
    /// Pause between verification rounds.
    pub round_delay: Duration,
    /// Cancel attempts per symbol per round (429 waits and unknown outcomes retry).
    pub cancel_attempts: u32,
    /// The longest `Retry-After` the sweep waits out; beyond it the symbol is reported failed.
    pub max_retry_after: Duration,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            max_rounds: 10,
            round_delay: Duration::from_millis(200),
            cancel_attempts: 3,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// What stage one achieved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KillReport {
    /// True when the exchange confirmed nothing is open.
    pub ok: bool,
    /// The final outcome per symbol.
    pub lines: Vec<KillLine>,
    /// Orders (client ids) the cancels reported as cancelled.
    pub cancelled: usize,
    /// Symbols still showing open orders at the end (empty when `ok`).
    pub still_open: Vec<Symbol>,
    pub summary: String,
}

struct Progress<'a> {
    events: &'a UnboundedSender<KillEvent>,
    lines: BTreeMap<Symbol, KillLine>,
    cancelled: usize,
}

impl Progress<'_> {
    fn line(&mut self, symbol: &Symbol, ok: Option<bool>, outcome: String) {
        // The receiver may be gone (a closed screen); the sweep goes on regardless.
        let _ = self.events.send(KillEvent::Line {
            symbol: symbol.clone(),
            ok,
            outcome: outcome.clone(),
        });
        self.lines.insert(
            symbol.clone(),
            KillLine {
                symbol: symbol.clone(),
                ok,
                outcome,
            },
        );
    }

    fn stage(&self, stage: KillStage) {
        let _ = self.events.send(KillEvent::Stage(stage));
    }
}

/// The outcome of cancelling one symbol.
enum CancelResult {
    /// Cancelled `orders` orders and `lists` order lists (both zero: nothing was open).
    Done {
        orders: usize,
        lists: usize,
    },
    Failed(String),
    /// The answer never came: the next verification round decides.
    Unknown(String),
}

async fn cancel_symbol<B: Broker>(
    broker: &B,
    symbol: &Symbol,
    config: &SweepConfig,
    events: &UnboundedSender<KillEvent>,
) -> CancelResult {
    let mut last = CancelResult::Failed("not cancelled: not attempted".into());
    for _ in 0..config.cancel_attempts.max(1) {
        wait_hold(broker, config, events).await;
        match broker.cancel_all(symbol).await {
            OrderOutcome::Done(items) => {
                crate::failpoint::hit("kill_mid_sweep");
                let lists = items.iter().filter(|i| matches!(i, Cancelled::List(_))).count();
                let orders = items
                    .iter()
                    .map(|i| match i {
                        Cancelled::Order(_) => 1,
                        Cancelled::List(l) => l.reports.len().max(l.legs.len()),
                    })
                    .sum();
                return CancelResult::Done { orders, lists };
            }
            OrderOutcome::Rejected(BrokerError::Api { code, .. }) if code == CODE_NOTHING_OPEN => {
                return CancelResult::Done { orders: 0, lists: 0 };
            }
            OrderOutcome::Rejected(BrokerError::RateLimited { retry_after }) => {
                if retry_after > config.max_retry_after {
                    return CancelResult::Failed(format!(
                        "not cancelled: rate limited for {} s",
                        retry_after.as_secs()
                    ));
                }
                wait_out(retry_after, events).await;
                last = CancelResult::Unknown("rate limited; retried".into());
            }
            OrderOutcome::Rejected(BrokerError::Banned { until_ms }) => {
                // The ban has passed by then (or a stored one is probed): try again.
                let left = ms_until(until_ms);
                if left > config.max_retry_after {
                    return CancelResult::Failed(format!(
                        "not cancelled: {}",
                        BrokerError::Banned { until_ms }
                    ));
                }
                wait_out(left, events).await;
                last = CancelResult::Failed(format!("not cancelled: {}", BrokerError::Banned { until_ms }));
            }
            OrderOutcome::Rejected(e) => return CancelResult::Failed(format!("not cancelled: {e}")),
            OrderOutcome::Unknown { reason } => last = CancelResult::Unknown(reason),
        }
    }
    last
}

/// How long until an epoch-ms time, on the local clock (zero when it has passed).
fn ms_until(until_ms: i64) -> Duration {
    let now = crate::exchange::binance::clock::local_now_ms();
    Duration::from_millis(u64::try_from(until_ms.saturating_sub(now)).unwrap_or(0))
}

/// While a 429 hold is in force, anything sent (even a cancel) risks a 418 ban: wait it out
/// first. Concurrent cancels share the client's hold, so one 429 pauses them all.
async fn wait_hold<B: Broker>(broker: &B, config: &SweepConfig, events: &UnboundedSender<KillEvent>) {
    let now = crate::exchange::binance::clock::local_now_ms();
    if let Some(until) = broker.cancel_hold_until_ms()
        && until > now
    {
        let left = Duration::from_millis((until - now) as u64);
        if left <= config.max_retry_after {
            wait_out(left, events).await;
        }
    }
}

/// Waits out a `Retry-After`, announcing the seconds left once a second.
async fn wait_out(retry_after: Duration, events: &UnboundedSender<KillEvent>) {
    let mut left = retry_after;
    while !left.is_zero() {
        let _ = events.send(KillEvent::Countdown {
            secs: left.as_secs_f64().ceil() as u64,
        });
        let step = left.min(Duration::from_secs(1));
        tokio::time::sleep(step).await;
        left = left.saturating_sub(step);
    }
    let _ = events.send(KillEvent::Countdown { secs: 0 });
}

async fn cancel_many<B: Broker>(
    broker: &B,
    symbols: &BTreeSet<Symbol>,
    config: &SweepConfig,
    progress: &mut Progress<'_>,
) {
    for s in symbols {
        progress.line(s, None, "cancelling".into());
    }
    let futures = symbols.iter().map(|s| {
        let events = progress.events.clone();
        async move { (s, cancel_symbol(broker, s, config, &events).await) }
    });
    for (symbol, result) in futures_util::future::join_all(futures).await {
        match result {
            CancelResult::Done { orders, lists } => {
                progress.cancelled += orders;
                let text = match (orders, lists) {
                    (0, _) => "nothing open".to_string(),
                    (n, 0) => format!("{} cancelled", count(n, "order", "orders")),
                    (n, l) => format!(
                        "{} cancelled ({})",
                        count(n, "order", "orders"),
                        count(l, "order list", "order lists")
                    ),
                };
                progress.line(symbol, Some(true), text);
            }
            CancelResult::Failed(why) => progress.line(symbol, Some(false), why),
            CancelResult::Unknown(why) => {
                progress.line(symbol, None, format!("outcome unknown ({why}); verifying"))
            }
        }
    }
}

/// Stage one on the exchange. The caller has already made the halt durable. `known` holds the
/// symbols with locally open orders; the exchange's own list adds the rest.
pub async fn sweep<B: Broker>(
    broker: &B,
    known: &BTreeSet<Symbol>,
    config: &SweepConfig,
    events: &UnboundedSender<KillEvent>,
) -> KillReport {
    let mut progress = Progress {
        events,
        lines: BTreeMap::new(),
        cancelled: 0,
    };
    progress.stage(KillStage::Cancelling);
    // The locally known symbols first, without waiting for a list from the exchange.
    cancel_many(broker, known, config, &mut progress).await;

    progress.stage(KillStage::Verifying);
    let mut attempted: BTreeSet<Symbol> = known.clone();
    let mut still_open: Vec<Symbol> = Vec::new();
    let mut verified = false;
    let mut last_error = None;
    for round in 0..config.max_rounds.max(1) {
        wait_hold(broker, config, events).await;
        match broker.open_orders(None).await {
            Ok(open) => {
                let symbols: BTreeSet<Symbol> = open.iter().map(|o| o.symbol.clone()).collect();
                if symbols.is_empty() {
                    verified = true;
                    still_open.clear();
                    break;
                }
                for s in &symbols {
                    let n = open.iter().filter(|o| &o.symbol == s).count();
                    let what = if attempted.contains(s) {
                        format!("{n} still open; retrying")
                    } else {
                        format!("{n} open, unknown to the journal; cancelling")
                    };
                    progress.line(s, None, what);
                }
                attempted.extend(symbols.iter().cloned());
                still_open = symbols.iter().cloned().collect();
                cancel_many(broker, &symbols, config, &mut progress).await;
            }
            Err(BrokerError::RateLimited { retry_after }) if retry_after <= config.max_retry_after => {
                wait_out(retry_after, events).await;
            }
            Err(BrokerError::Banned { until_ms }) if ms_until(until_ms) <= config.max_retry_after => {
                last_error = Some(BrokerError::Banned { until_ms }.to_string());
                wait_out(ms_until(until_ms), events).await;
            }
            Err(e) => last_error = Some(e.to_string()),
        }
        if round + 1 < config.max_rounds {
            tokio::time::sleep(config.round_delay).await;
        }
    }
    if verified {
        // Every symbol touched is now confirmed clear.
        let done: Vec<(Symbol, String)> = progress
            .lines
            .values()
            .filter(|l| l.ok != Some(true))
            .map(|l| {
                (
                    l.symbol.clone(),
                    "cancelled; exchange shows none open".to_string(),
                )
            })
            .collect();
        for (s, text) in done {
            progress.line(&s, Some(true), text);
        }
    } else {
        for s in &still_open {
            progress.line(s, Some(false), "orders still open after every retry".into());
        }
    }
    if verified {
        // Only now is "all orders cancelled" true; otherwise `Done { ok: false }` says why.
        progress.stage(KillStage::Cancelled);
    }
    let summary = if verified {
        format!(
            "{} cancelled on {}; the exchange shows nothing open",
            count(progress.cancelled, "order", "orders"),
            count(progress.lines.len(), "symbol", "symbols")
        )
    } else if still_open.is_empty() {
        format!(
            "could not confirm that nothing is open: {}",
            last_error.unwrap_or_else(|| "no answer".into())
        )
    } else {
        let names: Vec<&str> = still_open.iter().map(|s| s.as_str()).collect();
        format!("orders still open on {}", names.join(", "))
    };
    let _ = events.send(KillEvent::Done {
        ok: verified,
        summary: summary.clone(),
    });
    KillReport {
        ok: verified,
        lines: progress.lines.into_values().collect(),
        cancelled: progress.cancelled,
        still_open,
        summary,
    }
}

/// Quantity too small to sell, reported per asset (never silently kept).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dust {
    pub symbol: Symbol,
    pub asset: Asset,
    pub qty: Qty,
    pub reason: String,
}

/// Stage two's orders: one MARKET sell per crbot position, and what is left as dust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlattenPlan {
    pub tickets: Vec<Ticket>,
    pub dust: Vec<Dust>,
}

/// Market sells for `percent` (1–100; the screen offers 25/50/75/100) of each of crbot's
/// positions (`only`: a subset of symbols), bounded by the free balance, rounded DOWN to the
/// MARKET_LOT_SIZE step (LOT_SIZE when the symbol has none). What the rounding leaves, and a
/// whole sell below the minimum quantity or minimum notional, is reported as dust. External
/// holdings are never included. Each ticket still passes the risk gate, and then, like every
/// sell, `risk::approve_reduction` (at most crbot's unheld position), before it is sent.
pub fn flatten_plan(state: &EngineState, percent: u8, only: Option<&BTreeSet<Symbol>>) -> FlattenPlan {
    let mut plan = FlattenPlan::default();
    let share = Decimal::from(percent.clamp(1, 100)) / Decimal::ONE_HUNDRED;
    let positions: Vec<Symbol> = state.positions.open().map(|p| p.symbol.clone()).collect();
    for symbol in positions {
        if only.is_some_and(|o| !o.contains(&symbol)) {
            continue;
        }
        let Some(rules) = state.rules.get(&symbol) else {
            continue;
        };
        let asset = rules.base_asset.clone();
        let wanted = state.sellable(&symbol).checked_scale(share).unwrap_or(Qty::ZERO);
        if wanted.is_zero() {
            continue;
        }
        let qty = rules.round_qty(OrderType::Market, wanted);
        let min_qty = rules
            .lot_for(OrderType::Market)
            .map(|l| l.min_qty)
            .unwrap_or_default();
        let mark = state.quotes.get(&symbol).map(|q| q.bid.value());
        let min_notional = rules
            .filters
            .notional
            .as_ref()
            .filter(|n| n.apply_min_to_market)
            .map(|n| n.min_notional)
            .unwrap_or_default();
        let below_notional = mark.is_some_and(|m| qty.value() * m < min_notional);
        if qty.is_zero() || qty.value() < min_qty || below_notional {
            let reason = if qty.value() < min_qty || qty.is_zero() {
                format!("below the minimum quantity {}", min_qty.normalize())
            } else {
                format!(
                    "below the minimum notional {} {}",
                    min_notional.normalize(),
                    rules.quote_asset
                )
            };
            plan.dust.push(Dust {
                symbol: symbol.clone(),
                asset,
                qty: wanted,
                reason,
            });
            continue;
        }
        let rest = wanted.checked_sub(qty).unwrap_or(Qty::ZERO);
        if !rest.is_zero() {
            plan.dust.push(Dust {
                symbol: symbol.clone(),
                asset,
                qty: rest,
                reason: "left by rounding down to the lot step".into(),
            });
        }
        plan.tickets.push(Ticket {
            symbol,
            side: Side::Sell,
            kind: TicketKind::Market,
            qty,
            stop_loss: None,
            take_profit: None,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Balance, ClientOrderId, Fill, Filters, LotSize, Mode, NotionalFilter, Price, Quote, SymbolRules,
        SymbolStatus,
    };
    use crate::risk::{Limits, TradingState};

    fn d(s: &str) -> Decimal {
        s.parse().expect("test literal")
    }
    fn sym(s: &str) -> Symbol {
        Symbol::new(s).expect("test symbol")
    }
    fn asset(s: &str) -> Asset {
        Asset::new(s).expect("test asset")
    }

    fn rules(symbol: &str, base: &str, step: &str, min_notional: &str) -> SymbolRules {
        let lot = LotSize {
            min_qty: d(step),
            max_qty: d("1000"),
            step_size: d(step),
        };
        SymbolRules {
            symbol: sym(symbol),
            status: SymbolStatus::Trading,
            base_asset: asset(base),
            quote_asset: Asset::usdt(),
            order_types: vec![OrderType::Market, OrderType::Limit],
            oco_allowed: true,
            filters: Filters {
                price: None,
                // LOT_SIZE finer than MARKET_LOT_SIZE: the market step must win.
                lot_size: Some(LotSize {
                    step_size: d("0.00001"),
                    min_qty: d("0.00001"),
                    ..lot.clone()
                }),
                market_lot_size: Some(lot),
                notional: Some(NotionalFilter {
                    min_notional: d(min_notional),
                    apply_min_to_market: true,
                    max_notional: None,
                    apply_max_to_market: false,
                }),
                percent_price_by_side: None,
                max_num_orders: None,
            },
        }
    }

    /// crbot bought `qty` of `symbol` at `price`; the free balance holds it; bid = `price`.
    fn state_with(positions: &[(&str, &str, &str, &str)]) -> EngineState {
        let mut st = EngineState::new(Mode::Sim, Limits::default(), TradingState::Active, 0);
        st.rules
            .insert(sym("BTCUSDT"), rules("BTCUSDT", "BTC", "0.001", "5"));
        st.rules
            .insert(sym("ETHUSDT"), rules("ETHUSDT", "ETH", "0.0001", "5"));
        let mut balances = vec![];
        for (i, (symbol, base, qty, price)) in positions.iter().enumerate() {
            let p: Price = price.parse().expect("price");
            st.on_quote(
                sym(symbol),
                Quote {
                    bid: p,
                    ask: p,
                    time_ms: 0,
                },
            );
            let fill = Fill {
                symbol: sym(symbol),
                trade_id: i as u64 + 1,
                order_id: i as u64 + 1,
                client_order_id: Some(ClientOrderId::new(&format!("own-{i}")).expect("cid")),
                side: Side::Buy,
                price: p,
                qty: qty.parse().expect("qty"),
                commission: Qty::ZERO,
                commission_asset: Asset::usdt(),
                time_ms: 0,
                is_maker: false,
            };
            st.apply_own_fill(&fill).expect("fill booked");
            balances.push(Balance {
                asset: asset(base),
                free: qty.parse().expect("qty"),
                locked: Qty::ZERO,
            });
        }
        // An external holding with no position: never part of a flatten.
        balances.push(Balance {
            asset: asset("SOL"),
            free: "3".parse().expect("qty"),
            locked: Qty::ZERO,
        });
        st.set_balances(balances, true);
        st
    }

    #[test]
    fn flatten_all_rounds_down_to_the_market_lot_step_and_reports_the_rest_as_dust() {
        let st = state_with(&[("BTCUSDT", "BTC", "0.0555", "50000")]);
        let plan = flatten_plan(&st, 100, None);
        assert_eq!(plan.tickets.len(), 1);
        let t = &plan.tickets[0];
        assert_eq!((t.side, t.kind), (Side::Sell, TicketKind::Market));
        assert_eq!(t.qty.value(), d("0.055"));
        assert_eq!(plan.dust.len(), 1);
        assert_eq!(plan.dust[0].asset, asset("BTC"));
        assert_eq!(plan.dust[0].qty.value(), d("0.0005"));
    }

    #[test]
    fn flatten_half_sells_half_of_each_position_rounded_down() {
        let st = state_with(&[
            ("BTCUSDT", "BTC", "0.0555", "50000"),
            ("ETHUSDT", "ETH", "1", "3000"),
        ]);
        let plan = flatten_plan(&st, 50, None);
        let qty: Vec<(String, Decimal)> = plan
            .tickets
            .iter()
            .map(|t| (t.symbol.to_string(), t.qty.value()))
            .collect();
        assert_eq!(
            qty,
            [
                ("BTCUSDT".to_string(), d("0.027")),
                ("ETHUSDT".to_string(), d("0.5"))
            ]
        );
        assert!(
            plan.tickets
                .iter()
                .all(|t| t.stop_loss.is_none() && t.take_profit.is_none())
        );
    }

    #[test]
    fn a_position_below_the_minimum_notional_is_dust_not_an_order() {
        // 0.001 ETH at 3000 = 3 USDT, under the 5 USDT minimum.
        let st = state_with(&[("ETHUSDT", "ETH", "0.001", "3000")]);
        let plan = flatten_plan(&st, 100, None);
        assert!(plan.tickets.is_empty());
        assert_eq!(plan.dust.len(), 1);
        assert!(
            plan.dust[0].reason.contains("minimum notional"),
            "{:?}",
            plan.dust
        );
        assert_eq!(plan.dust[0].qty.value(), d("0.001"));
    }

    #[test]
    fn flatten_leaves_external_holdings_and_unselected_symbols_alone() {
        let st = state_with(&[
            ("BTCUSDT", "BTC", "0.01", "50000"),
            ("ETHUSDT", "ETH", "1", "3000"),
        ]);
        let only: BTreeSet<Symbol> = [sym("ETHUSDT")].into_iter().collect();
        let plan = flatten_plan(&st, 100, Some(&only));
        let symbols: Vec<&str> = plan.tickets.iter().map(|t| t.symbol.as_str()).collect();
        assert_eq!(symbols, ["ETHUSDT"]);
        let all = flatten_plan(&st, 100, None);
        assert!(all.tickets.iter().all(|t| t.symbol.as_str() != "SOLUSDT"));
        assert!(all.dust.iter().all(|d| d.asset.as_str() != "SOL"));
    }
}
