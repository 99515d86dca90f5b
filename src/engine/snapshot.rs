//! The contract between the engine and the screen: what the engine publishes ([`Snapshot`]) and
//! what the screen asks for ([`Command`]).
//!
//! Owns: plain, owned, `Clone + Debug` data in domain types, and [`Snapshot::demo`], a
//! realistic fake snapshot for developing and testing the screen without an engine. Must not:
//! hold behaviour, read a clock, or reference the exchange client; the engine fills a
//! `Snapshot` and the UI only reads it. Numbers that are money stay exact decimals here; the UI
//! converts to floats only to place points on a chart.
//!
//! Publishing rules the engine is expected to follow (the UI relies on them):
//! - publish on every state change, and at least once a second (the header clock and the
//!   spinner of an order in state UNKNOWN are drawn from [`Snapshot::now_ms`]);
//! - log every fill with [`LogKind::Fill`] and every rejection (exchange or risk) with
//!   [`LogKind::Rejection`]; the UI rings the bell on new lines of those kinds (by `seq`);
//! - `ticket_preview` answers the last [`Command::PreviewTicket`] and carries the draft it was
//!   computed for, so the UI can tell a stale preview from a current one.

use rust_decimal::Decimal;

use crate::domain::{
    Asset, ClientOrderId, LocalOrderState, Mode, Money, Notional, Order, OrderPurpose, OrderStatus,
    OrderType, Price, Qty, Side, Symbol, TimeInForce,
};

/// Everything the screen draws, as of `now_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub mode: Mode,
    /// The engine's clock (ms since the epoch, UTC). The UI never reads a clock of its own.
    pub now_ms: i64,
    pub header: Header,
    pub watchlist: Vec<WatchRow>,
    /// The symbol whose candles are in `candles` and that a new ticket is prefilled with.
    pub selected_symbol: Option<Symbol>,
    pub positions: Vec<PositionRow>,
    /// Open orders, protective OCO legs included (`purpose` says which).
    pub orders: Vec<Order>,
    pub limits: LimitsUsage,
    /// Current equity in the quote asset; `None` when it is not known (see `equity_status`).
    pub equity: Option<Money>,
    /// Whether `equity` is complete, priced in part from last known prices, or unknown.
    pub equity_status: EquityStatus,
    pub equity_curves: EquityCurves,
    /// Candles of `selected_symbol`, oldest first.
    pub candles: Vec<Candle>,
    /// The risk and event log, oldest first (the engine keeps a bounded ring).
    pub log: Vec<LogLine>,
    pub ticket_preview: Option<TicketPreview>,
    pub ticket_result: Option<TicketResult>,
    pub kill: Option<KillProgress>,
    /// Assets held that have no market to the quote asset: listed, left out of equity.
    pub unpriced_assets: Vec<Asset>,
    /// Fees of today's fills (UTC day): paid per asset, quote value, unpriced part.
    pub fees_today: crate::portfolio::FeeTally,
    /// A loosening of a limit that waits for its typed confirmation.
    pub limit_change_pending: Option<LimitChangePending>,
    /// Each known symbol's price tick (`PRICE_FILTER.tickSize`): prices on the screen are shown
    /// at their tick's decimals, by the one display rounding rule.
    pub price_ticks: std::collections::BTreeMap<Symbol, Decimal>,
}

impl Snapshot {
    /// `symbol`'s price tick, when its rules are known.
    pub fn tick(&self, symbol: &Symbol) -> Option<Decimal> {
        self.price_ticks.get(symbol).copied()
    }
}

/// How complete the equity is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EquityStatus {
    /// Not computed yet (start-up, before balances and prices).
    Pending,
    /// Every asset with a market is priced; `held` lists those priced from a last known price,
    /// with its age in ms.
    Complete { held: Vec<(Asset, i64)> },
    /// An asset with a market has no price within the bound (with the age of its last known
    /// price, if any): equity, today's P&L and the drawdown are unknown, and entries are
    /// refused. `partial` is the sum of what could be priced: for display, never a figure.
    Incomplete {
        unpriced: Vec<(Asset, Option<i64>)>,
        partial: Money,
    },
}

impl EquityStatus {
    pub fn is_incomplete(&self) -> bool {
        matches!(self, EquityStatus::Incomplete { .. })
    }
}

/// The header line: connections, clock, rate limits, trading state, warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub market_stream: StreamHealth,
    pub user_stream: StreamHealth,
    /// Exchange clock minus local clock, when known.
    pub clock_offset_ms: Option<i64>,
    pub rate_limits: RateLimitUsage,
    pub trading: TradingState,
    /// Loud, persistent notes: posture warnings, "journal read-only: new tickets refused".
    pub warnings: Vec<String>,
}

/// One stream's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHealth {
    pub status: StreamStatus,
    /// Last measured event latency.
    pub latency_ms: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Connected,
    Connecting,
    Reconnecting { attempt: u32 },
    Down,
}

/// Request-weight and order-count usage as the exchange's headers last reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitUsage {
    pub weight_used: u32,
    pub weight_limit: u32,
    pub orders_10s: u32,
    pub orders_10s_limit: u32,
}

/// The trading states (active, reducing, halted), with why and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradingState {
    Active,
    /// Only orders that shrink a position. `until_ms` is the next UTC day for the daily-loss
    /// auto-stop; `None` when a person must re-arm (drawdown).
    Reducing {
        reason: String,
        since_ms: i64,
        until_ms: Option<i64>,
    },
    /// No new entries; only kill-switch actions and confirmed exits.
    Halted {
        reason: String,
        since_ms: i64,
    },
}

impl TradingState {
    pub fn is_halted(&self) -> bool {
        matches!(self, TradingState::Halted { .. })
    }
}

/// One watchlist row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub symbol: Symbol,
    pub last: Option<Price>,
    pub bid: Option<Price>,
    pub ask: Option<Price>,
    /// 24 h change in percent (signed).
    pub change_24h_pct: Option<Decimal>,
    /// No quote for longer than the freshness limit: entries on it are refused.
    pub stale: bool,
}

/// One position (crbot's own, or an external holding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRow {
    pub symbol: Symbol,
    pub qty: Qty,
    pub avg_entry: Option<Price>,
    pub mark: Option<Price>,
    /// Unrealized P&L in the quote asset.
    pub unrealized: Option<Money>,
    pub unrealized_pct: Option<Decimal>,
    /// Holdings crbot did not build: never sold unless the user selects them.
    pub external: bool,
    /// crbot's position is too small for any order to sell (below the lot step or minimum,
    /// or the minimum notional at the mark): shown, but no longer a position for rule 6.
    pub dust: bool,
}

/// Usage of every risk limit, percentages signed where they can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsUsage {
    pub day_pnl: Money,
    /// Today's P&L in percent of the day-start equity (negative is a loss).
    pub day_pnl_pct: Decimal,
    /// The daily-loss limit in percent (positive, e.g. 5.0).
    pub daily_loss_limit_pct: Decimal,
    /// When the daily limit resets (next 00:00 UTC).
    pub daily_reset_ms: i64,
    /// Current drawdown below the high-water mark, in percent (positive).
    pub drawdown_pct: Decimal,
    pub drawdown_limit_pct: Decimal,
    pub trades_used: u32,
    pub trades_limit: u32,
    pub position_size_limit_pct: Decimal,
    pub min_risk_reward: Decimal,
}

impl LimitsUsage {
    /// How much of each limit is used, as `(limit, used/limit)`; the UI rings at 80%.
    pub fn usage(&self) -> [(LimitName, Decimal); 3] {
        let ratio = |used: Decimal, limit: Decimal| {
            if limit.is_zero() {
                Decimal::ZERO
            } else {
                (used / limit).max(Decimal::ZERO)
            }
        };
        [
            (
                LimitName::DailyLoss,
                ratio(-self.day_pnl_pct, self.daily_loss_limit_pct),
            ),
            (
                LimitName::Drawdown,
                ratio(self.drawdown_pct, self.drawdown_limit_pct),
            ),
            (
                LimitName::TradesPerDay,
                ratio(Decimal::from(self.trades_used), Decimal::from(self.trades_limit)),
            ),
        ]
    }

    /// The current value of a limit, as the limit dialog shows it.
    pub fn value_of(&self, name: LimitName) -> Decimal {
        match name {
            LimitName::DailyLoss => self.daily_loss_limit_pct,
            LimitName::Drawdown => self.drawdown_limit_pct,
            LimitName::TradesPerDay => Decimal::from(self.trades_limit),
            LimitName::PositionSize => self.position_size_limit_pct,
            LimitName::MinRiskReward => self.min_risk_reward,
        }
    }
}

/// The limits a trader may change from the screen (the seed's variable names in `env_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitName {
    DailyLoss,
    Drawdown,
    TradesPerDay,
    PositionSize,
    MinRiskReward,
}

impl LimitName {
    pub const ALL: [LimitName; 5] = [
        LimitName::DailyLoss,
        LimitName::Drawdown,
        LimitName::TradesPerDay,
        LimitName::PositionSize,
        LimitName::MinRiskReward,
    ];

    pub fn env_name(self) -> &'static str {
        match self {
            LimitName::DailyLoss => "MAX_DAILY_LOSS_PERCENT",
            LimitName::Drawdown => "MAX_DRAWDOWN_PERCENT",
            LimitName::TradesPerDay => "MAX_TRADES_PER_DAY",
            LimitName::PositionSize => "MAX_POSITION_SIZE_PERCENT",
            LimitName::MinRiskReward => "MIN_RISK_REWARD",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            LimitName::DailyLoss => "daily loss %",
            LimitName::Drawdown => "drawdown %",
            LimitName::TradesPerDay => "trades per day",
            LimitName::PositionSize => "position size %",
            LimitName::MinRiskReward => "min reward/risk",
        }
    }
}

/// A loosening that takes effect only when `phrase` is typed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitChangePending {
    pub name: LimitName,
    pub from: Decimal,
    pub to: Decimal,
    /// What the trader must type, e.g. `LOOSEN MAX_DAILY_LOSS_PERCENT 8`.
    pub phrase: String,
}

/// Equity-curve windows the chart cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EquityWindow {
    #[default]
    Session,
    Day,
    Week,
    All,
}

impl EquityWindow {
    pub fn next(self) -> Self {
        match self {
            EquityWindow::Session => EquityWindow::Day,
            EquityWindow::Day => EquityWindow::Week,
            EquityWindow::Week => EquityWindow::All,
            EquityWindow::All => EquityWindow::Session,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EquityWindow::Session => "session",
            EquityWindow::Day => "day",
            EquityWindow::Week => "week",
            EquityWindow::All => "all",
        }
    }
}

/// One sample of equity in the quote asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EquityPoint {
    pub time_ms: i64,
    pub value: Decimal,
}

/// Equity samples per window, oldest first (the engine downsamples longer windows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EquityCurves {
    pub session: Vec<EquityPoint>,
    pub day: Vec<EquityPoint>,
    pub week: Vec<EquityPoint>,
    pub all: Vec<EquityPoint>,
}

impl EquityCurves {
    pub fn window(&self, window: EquityWindow) -> &[EquityPoint] {
        match window {
            EquityWindow::Session => &self.session,
            EquityWindow::Day => &self.day,
            EquityWindow::Week => &self.week,
            EquityWindow::All => &self.all,
        }
    }
}

/// One candle of the selected symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candle {
    pub open_ms: i64,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// What a log line is about; `Fill` and `Rejection` ring the bell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Risk,
    Order,
    Fill,
    Rejection,
    Connection,
    Kill,
    Limit,
    System,
}

/// One line of the risk and event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Increasing, never reused within a run: the UI remembers the last one it has seen.
    pub seq: u64,
    pub time_ms: i64,
    pub level: LogLevel,
    pub kind: LogKind,
    pub text: String,
}

/// The ticket fields, as typed. The engine parses them and reports errors per field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TicketDraft {
    pub symbol: String,
    /// `BUY` or `SELL` (case-insensitive; `b`/`s` accepted).
    pub side: String,
    /// `MARKET` or `LIMIT` (case-insensitive; `m`/`l` accepted).
    pub order_type: String,
    /// A base quantity (`0.05`) or a quote amount with its asset (`250 USDT`).
    pub amount: String,
    /// Limit price; empty for MARKET.
    pub price: String,
    pub stop_loss: String,
    pub take_profit: String,
}

/// The ticket's fields, in screen order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketField {
    Symbol,
    Side,
    OrderType,
    Amount,
    Price,
    StopLoss,
    TakeProfit,
}

impl TicketField {
    pub const ALL: [TicketField; 7] = [
        TicketField::Symbol,
        TicketField::Side,
        TicketField::OrderType,
        TicketField::Amount,
        TicketField::Price,
        TicketField::StopLoss,
        TicketField::TakeProfit,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TicketField::Symbol => "symbol",
            TicketField::Side => "side",
            TicketField::OrderType => "type",
            TicketField::Amount => "qty/amount",
            TicketField::Price => "price",
            TicketField::StopLoss => "stop-loss",
            TicketField::TakeProfit => "take-profit",
        }
    }
}

/// One risk rule or exchange filter, checked against the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLine {
    /// Stable `SCREAMING_CODE` (the same code the journal stores).
    pub code: String,
    pub passed: bool,
    /// The numbers: `notional 412.50 ≤ 500.00 (5% of 10 000)`.
    pub detail: String,
}

/// The verdict on a draft, computed by the engine as the trader types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPreview {
    /// The draft this preview answers.
    pub draft: TicketDraft,
    /// Fields that did not parse, with the reason.
    pub field_errors: Vec<(TicketField, String)>,
    /// Every rule and filter, passed or not.
    pub rules: Vec<RuleLine>,
    /// True when every rule passed and the ticket may be sent.
    pub approved: bool,
    /// Notional of the entry after rounding.
    pub notional: Option<Notional>,
    pub fee_estimate: Option<Money>,
    /// How much more may be lost today before the daily-loss limit.
    pub daily_loss_headroom: Option<Money>,
    /// Exactly the orders that would leave, rounded: the entry, then the protective OCO legs.
    pub orders: Vec<OutgoingOrder>,
}

/// One order as it would be sent (after rounding to the symbol's filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingOrder {
    pub purpose: OrderPurpose,
    pub symbol: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: Option<TimeInForce>,
    pub qty: Qty,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
}

/// What became of the last submitted ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketResult {
    pub draft: TicketDraft,
    pub outcome: TicketOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketOutcome {
    /// Sent and acknowledged by the exchange.
    Accepted {
        client_order_id: ClientOrderId,
        detail: String,
    },
    /// The exchange refused it: Binance's code and message, verbatim.
    Rejected { code: Option<i64>, message: String },
    /// The risk engine refused it before anything left.
    RiskRejected { reasons: Vec<RuleLine> },
    /// Sent, outcome unknown (timeout, 5xx): being reconciled.
    Unknown { client_order_id: ClientOrderId },
    /// Approved by the risk check, journaled and sent: the exchange has not answered yet.
    Sent { client_order_id: ClientOrderId },
}

/// Kill-switch stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillStage {
    /// Stage one: cancelling every open order, symbol by symbol.
    Cancelling,
    /// Querying the exchange until nothing is left open.
    Verifying,
    /// Stage one finished; flatten may be offered.
    Cancelled,
    /// Stage two: selling positions.
    Flattening,
    Flattened,
}

impl KillStage {
    pub fn label(self) -> &'static str {
        match self {
            KillStage::Cancelling => "cancelling open orders",
            KillStage::Verifying => "verifying nothing is open",
            KillStage::Cancelled => "all orders cancelled",
            KillStage::Flattening => "flattening positions",
            KillStage::Flattened => "positions flattened",
        }
    }
}

/// Kill-switch progress, per symbol, as results come in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillProgress {
    pub started_ms: i64,
    pub stage: KillStage,
    pub lines: Vec<KillLine>,
    /// The current stage is finished (nothing left open, or flatten done).
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillLine {
    pub symbol: Symbol,
    /// `None` while in progress, then whether it succeeded.
    pub ok: Option<bool>,
    /// `2 orders cancelled`, `retrying (429)`, `dust 0.00001 left`.
    pub outcome: String,
}

/// What the screen asks the engine to do. Sent on an mpsc channel; the engine answers through
/// the next snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check a draft and publish a [`TicketPreview`]; sends nothing.
    PreviewTicket(TicketDraft),
    /// Send a ticket; the UI sends this only after the trader confirmed the listed orders.
    SubmitTicket(TicketDraft),
    CancelOrder(ClientOrderId),
    /// Sell `percent` (25, 50, 75 or 100) of a position, after confirmation.
    ClosePosition {
        symbol: Symbol,
        percent: u8,
    },
    /// Stage one of the kill switch.
    Kill,
    /// Stage two of the kill switch, confirmed: flatten `percent` of crbot's positions.
    Flatten {
        percent: u8,
    },
    /// Leave HALTED/REDUCING, confirmed. In a mode with keys the screen asks the vault
    /// passphrase and the engine checks it before re-arming; `None` in modes without keys.
    Rearm {
        passphrase: Option<crate::secret::SecretString>,
    },
    AddSymbol(Symbol),
    RemoveSymbol(Symbol),
    SelectSymbol(Symbol),
    /// Change a limit: tightening applies at once; loosening sets `limit_change_pending`.
    ProposeLimit {
        name: LimitName,
        value: Decimal,
    },
    /// The typed confirmation of a pending loosening.
    ConfirmLimit {
        typed: String,
    },
    /// Drop a pending loosening.
    CancelLimitChange,
    /// The screen is closing (open orders stay on the exchange).
    Quit,
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap_or_default()
}

fn price(text: &str) -> Price {
    Price::try_new(dec(text)).unwrap_or_default()
}

fn qty(text: &str) -> Qty {
    Qty::try_new(dec(text)).unwrap_or_default()
}

fn sym(text: &str) -> Symbol {
    // Only called with the demo's literal symbols, which are plain upper-case letters.
    Symbol::new(text).expect("demo symbols are valid literals")
}

fn usdt(text: &str) -> Money {
    Money::new(dec(text), Asset::usdt())
}

fn coid(text: &str) -> ClientOrderId {
    ClientOrderId::new(text).unwrap_or_else(|_| ClientOrderId::generate(0, 0))
}

/// A tiny deterministic wobble so demo curves look alive without a random source.
fn wobble(i: i64, seed: i64) -> i64 {
    let x = (i * 7919 + seed * 104_729) % 1000;
    let tri = if x < 500 { x } else { 1000 - x };
    tri - 250
}

fn curve(now_ms: i64, points: i64, step_ms: i64, start: i64, drift: i64, seed: i64) -> Vec<EquityPoint> {
    (0..points)
        .map(|i| {
            let cents = start * 100 + drift * i + wobble(i, seed) * 3;
            EquityPoint {
                time_ms: now_ms - (points - 1 - i) * step_ms,
                value: Decimal::new(cents, 2),
            }
        })
        .collect()
}

impl Snapshot {
    /// A realistic, deterministic snapshot in `sim` mode at `now_ms`: four symbols, two
    /// positions (one external), an entry with its OCO legs and one order in state UNKNOWN, a
    /// day slightly in loss, a live ticket preview and a busy log.
    pub fn demo(now_ms: i64) -> Snapshot {
        let day_ms = 86_400_000;
        let next_midnight = (now_ms.div_euclid(day_ms) + 1) * day_ms;
        let btc = sym("BTCUSDT");
        let eth = sym("ETHUSDT");
        let sol = sym("SOLUSDT");
        let bnb = sym("BNBUSDT");
        let ticked = (btc.clone(), eth.clone(), sol.clone(), bnb.clone());
        let order = |id: &str,
                     symbol: &Symbol,
                     side: Side,
                     order_type: OrderType,
                     px: Option<&str>,
                     stop: Option<&str>,
                     q: &str,
                     state: LocalOrderState,
                     purpose: OrderPurpose,
                     list: Option<i64>| Order {
            client_order_id: coid(id),
            order_id: None,
            order_list_id: list,
            symbol: symbol.clone(),
            side,
            order_type,
            price: px.map(price),
            stop_price: stop.map(price),
            qty: qty(q),
            executed_qty: Qty::ZERO,
            cumulative_quote_qty: Notional::ZERO,
            state,
            purpose,
            created_ms: now_ms - 600_000,
            updated_ms: now_ms - 600_000,
        };
        let new = LocalOrderState::Exchange(OrderStatus::New);
        let draft = TicketDraft {
            symbol: "ETHUSDT".into(),
            side: "BUY".into(),
            order_type: "LIMIT".into(),
            amount: "0.15".into(),
            price: "3120.50".into(),
            stop_loss: "3050".into(),
            take_profit: "3280".into(),
        };
        let rule = |code: &str, passed: bool, detail: &str| RuleLine {
            code: code.into(),
            passed,
            detail: detail.into(),
        };
        let log_line = |seq: u64, ago_s: i64, level: LogLevel, kind: LogKind, text: &str| LogLine {
            seq,
            time_ms: now_ms - ago_s * 1000,
            level,
            kind,
            text: text.into(),
        };
        Snapshot {
            mode: Mode::Sim,
            now_ms,
            header: Header {
                market_stream: StreamHealth {
                    status: StreamStatus::Connected,
                    latency_ms: Some(12),
                },
                user_stream: StreamHealth {
                    status: StreamStatus::Connected,
                    latency_ms: Some(18),
                },
                clock_offset_ms: Some(-3),
                rate_limits: RateLimitUsage {
                    weight_used: 84,
                    weight_limit: 6000,
                    orders_10s: 2,
                    orders_10s_limit: 100,
                },
                trading: TradingState::Active,
                warnings: vec![],
            },
            watchlist: vec![
                WatchRow {
                    symbol: btc.clone(),
                    last: Some(price("96432.15")),
                    bid: Some(price("96432.14")),
                    ask: Some(price("96432.16")),
                    change_24h_pct: Some(dec("1.84")),
                    stale: false,
                },
                WatchRow {
                    symbol: eth.clone(),
                    last: Some(price("3118.42")),
                    bid: Some(price("3118.41")),
                    ask: Some(price("3118.43")),
                    change_24h_pct: Some(dec("-2.31")),
                    stale: false,
                },
                WatchRow {
                    symbol: sol.clone(),
                    last: Some(price("241.07")),
                    bid: Some(price("241.06")),
                    ask: Some(price("241.08")),
                    change_24h_pct: Some(dec("4.02")),
                    stale: false,
                },
                WatchRow {
                    symbol: bnb.clone(),
                    last: Some(price("702.3")),
                    bid: Some(price("702.2")),
                    ask: Some(price("702.4")),
                    change_24h_pct: Some(dec("0.12")),
                    stale: true,
                },
            ],
            selected_symbol: Some(eth.clone()),
            positions: vec![
                PositionRow {
                    symbol: btc.clone(),
                    qty: qty("0.0052"),
                    avg_entry: Some(price("95210.00")),
                    mark: Some(price("96432.15")),
                    unrealized: Some(usdt("6.36")),
                    unrealized_pct: Some(dec("1.28")),
                    external: false,
                    dust: false,
                },
                PositionRow {
                    symbol: sol.clone(),
                    qty: qty("2.5"),
                    avg_entry: Some(price("248.90")),
                    mark: Some(price("241.07")),
                    unrealized: Some(usdt("-19.58")),
                    unrealized_pct: Some(dec("-3.15")),
                    external: false,
                    dust: false,
                },
                PositionRow {
                    symbol: bnb.clone(),
                    qty: qty("0.4"),
                    avg_entry: None,
                    mark: Some(price("702.3")),
                    unrealized: None,
                    unrealized_pct: None,
                    external: true,
                    dust: false,
                },
            ],
            orders: vec![
                order(
                    "crb-btc-sl-0001",
                    &btc,
                    Side::Sell,
                    OrderType::StopLossLimit,
                    Some("93400"),
                    Some("93500"),
                    "0.0052",
                    new,
                    OrderPurpose::StopLoss,
                    Some(7),
                ),
                order(
                    "crb-btc-tp-0001",
                    &btc,
                    Side::Sell,
                    OrderType::LimitMaker,
                    Some("99000"),
                    None,
                    "0.0052",
                    new,
                    OrderPurpose::TakeProfit,
                    Some(7),
                ),
                order(
                    "crb-sol-en-0002",
                    &sol,
                    Side::Buy,
                    OrderType::Limit,
                    Some("236.50"),
                    None,
                    "1.2",
                    LocalOrderState::Unknown,
                    OrderPurpose::Entry,
                    None,
                ),
            ],
            limits: LimitsUsage {
                day_pnl: usdt("-212.40"),
                day_pnl_pct: dec("-2.11"),
                daily_loss_limit_pct: dec("5.0"),
                daily_reset_ms: next_midnight,
                drawdown_pct: dec("3.40"),
                drawdown_limit_pct: dec("10.0"),
                trades_used: 4,
                trades_limit: 10,
                position_size_limit_pct: dec("5.0"),
                min_risk_reward: dec("1.0"),
            },
            equity: Some(usdt("9852.61")),
            equity_status: EquityStatus::Complete { held: vec![] },
            equity_curves: EquityCurves {
                session: curve(now_ms, 60, 60_000, 9_930, -12, 1),
                day: curve(now_ms, 96, 900_000, 10_065, -22, 2),
                week: curve(now_ms, 84, 7_200_000, 9_700, 2, 3),
                all: curve(now_ms, 90, 86_400_000, 8_000, 22, 4),
            },
            candles: (0..48)
                .map(|i: i64| {
                    let base = 310_000 + wobble(i, 5) * 8 - i * 20;
                    let open = base;
                    let close = base + wobble(i + 1, 6) * 4;
                    let high = open.max(close) + 300 + wobble(i, 7).abs();
                    let low = open.min(close) - 300 - wobble(i, 8).abs();
                    Candle {
                        open_ms: now_ms - (48 - i) * 60_000,
                        open: Price::try_new(Decimal::new(open, 2)).unwrap_or_default(),
                        high: Price::try_new(Decimal::new(high, 2)).unwrap_or_default(),
                        low: Price::try_new(Decimal::new(low, 2)).unwrap_or_default(),
                        close: Price::try_new(Decimal::new(close, 2)).unwrap_or_default(),
                    }
                })
                .collect(),
            log: vec![
                log_line(
                    1,
                    3600,
                    LogLevel::Info,
                    LogKind::System,
                    "session started in sim mode",
                ),
                log_line(
                    2,
                    3300,
                    LogLevel::Info,
                    LogKind::Risk,
                    "APPROVED BUY 0.0052 BTCUSDT: all 9 rules passed",
                ),
                log_line(
                    3,
                    3299,
                    LogLevel::Info,
                    LogKind::Fill,
                    "FILL BUY 0.0052 BTCUSDT @ 95210.00 (fee 0.49 USDT)",
                ),
                log_line(
                    4,
                    3298,
                    LogLevel::Info,
                    LogKind::Order,
                    "OCO placed: SL 93500/93400, TP 99000",
                ),
                log_line(
                    5,
                    1800,
                    LogLevel::Warn,
                    LogKind::Rejection,
                    "REFUSED BUY 1 SOLUSDT: POSITION_SIZE notional 241.07 > 196.10 (2% of equity)",
                ),
                log_line(
                    6,
                    900,
                    LogLevel::Warn,
                    LogKind::Connection,
                    "market stream reconnected after 2.1 s",
                ),
                log_line(
                    7,
                    600,
                    LogLevel::Warn,
                    LogKind::Order,
                    "SOLUSDT entry crb-sol-en-0002: timeout, reconciling",
                ),
                log_line(
                    8,
                    30,
                    LogLevel::Warn,
                    LogKind::Connection,
                    "BNBUSDT quote stale for 6 s: entries refused",
                ),
            ],
            ticket_preview: Some(TicketPreview {
                draft,
                field_errors: vec![],
                rules: vec![
                    rule("POSITION_SIZE", true, "notional 468.08 <= 492.63 (5% of 9852.61)"),
                    rule("DAILY_LOSS", true, "day -2.11% > -5.00%, headroom 280.23 USDT"),
                    rule("DRAWDOWN", true, "3.40% < 10.00%"),
                    rule("TRADES_PER_DAY", true, "4 used < 10"),
                    rule("RISK_REWARD", true, "reward 159.50 / risk 70.50 = 2.26 >= 1.0"),
                    rule("DUPLICATE_POSITION", true, "no position or entry on ETHUSDT"),
                    rule("FAT_FINGER", true, "3120.50 within 5% of ask 3118.43"),
                    rule("FILTERS", true, "tick 0.01, step 0.0001, min notional 5"),
                    rule("BALANCE", true, "468.08 <= 2410.55 USDT free"),
                ],
                approved: true,
                notional: Notional::try_new(dec("468.075")).ok(),
                fee_estimate: Some(usdt("0.47")),
                daily_loss_headroom: Some(usdt("280.23")),
                orders: vec![
                    OutgoingOrder {
                        purpose: OrderPurpose::Entry,
                        symbol: eth.clone(),
                        side: Side::Buy,
                        order_type: OrderType::Limit,
                        time_in_force: Some(TimeInForce::Gtc),
                        qty: qty("0.15"),
                        price: Some(price("3120.50")),
                        stop_price: None,
                    },
                    OutgoingOrder {
                        purpose: OrderPurpose::TakeProfit,
                        symbol: eth.clone(),
                        side: Side::Sell,
                        order_type: OrderType::LimitMaker,
                        time_in_force: None,
                        qty: qty("0.15"),
                        price: Some(price("3280")),
                        stop_price: None,
                    },
                    OutgoingOrder {
                        purpose: OrderPurpose::StopLoss,
                        symbol: eth,
                        side: Side::Sell,
                        order_type: OrderType::StopLossLimit,
                        time_in_force: Some(TimeInForce::Gtc),
                        qty: qty("0.15"),
                        price: Some(price("3045")),
                        stop_price: Some(price("3050")),
                    },
                ],
            }),
            ticket_result: None,
            kill: None,
            unpriced_assets: vec![],
            fees_today: crate::portfolio::FeeTally::default(),
            limit_change_pending: None,
            price_ticks: [
                (ticked.0, dec("0.01")),
                (ticked.1, dec("0.01")),
                (ticked.2, dec("0.01")),
                (ticked.3, dec("0.1")),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// The demo after the kill key: HALTED, cancels in flight per symbol.
    pub fn demo_killing(now_ms: i64) -> Snapshot {
        let mut s = Snapshot::demo(now_ms);
        s.header.trading = TradingState::Halted {
            reason: "kill switch (key)".into(),
            since_ms: now_ms - 800,
        };
        s.kill = Some(KillProgress {
            started_ms: now_ms - 800,
            stage: KillStage::Cancelling,
            lines: vec![
                KillLine {
                    symbol: sym("BTCUSDT"),
                    ok: Some(true),
                    outcome: "OCO list 7 cancelled (2 orders)".into(),
                },
                KillLine {
                    symbol: sym("SOLUSDT"),
                    ok: None,
                    outcome: "retrying: outcome unknown".into(),
                },
            ],
            done: false,
        });
        s
    }
}
