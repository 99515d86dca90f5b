//! The contract between the engine and the screen: what the engine publishes ([`Snapshot`]) and
//! what the screen asks for ([`Command`]).
//!
//! Owns: plain, owned, `Clone + Debug` data in domain types. Must not: hold behaviour, read a
//! clock, or reference the exchange client; the engine fills a `Snapshot` and the UI only reads
//! it. Numbers that are money stay exact decimals here; the UI converts to floats only to place
//! points on a chart.
//!
//! Publishing rules the engine is expected to follow (the UI relies on them):
//! - publish on every state change, and at least once a second (the header clock and the
//!   spinner of an order in state UNKNOWN are drawn from [`Snapshot::now_ms`]);
//! - log every fill with [`LogKind::Fill`] and every rejection (exchange or risk) with
//!   [`LogKind::Rejection`]; the UI rings the bell on new lines of those kinds (by `seq`);
//! - `ticket_preview` answers the last [`Command::PreviewTicket`] and carries the draft it was
//!   computed for, so the UI can tell a stale preview from a current one.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Asset, ClientOrderId, Mode, Money, Notional, Order, OrderPurpose, OrderType, Price, Qty, Side, Symbol,
    TimeInForce,
};

/// Everything the screen draws, as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Each position's market-order quantity step (`MARKET_LOT_SIZE`, else `LOT_SIZE`): a close
    /// dialog shows the quantity that will be sent, rounded down to it.
    #[serde(default)]
    pub market_steps: std::collections::BTreeMap<Symbol, Decimal>,
    /// Balances and the equity figures behind the P&L, for the control API's documents (the
    /// screen does not draw them).
    pub books: AccountBooks,
    /// Set by an attached screen's bridge, never by the engine: where the engine this screen
    /// shows runs (quitting closes the screen only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<String>,
    /// Set by a standby `crbot serve` (waiting for the account's lease on PostgreSQL while
    /// another engine leads), never by an engine: this snapshot is the standby's, and of the
    /// account it knows only the trading state read from the shared journal. Everything else is
    /// empty or unknown (the header says so, and whose figures they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyBanner>,
    /// A re-arm must give the vault passphrase (a mode whose keys came from the vault). With
    /// keys from a secrets service the engine fetches them again instead, and asks nothing.
    #[serde(default)]
    pub rearm_needs_passphrase: bool,
    /// Every symbol of the exchange, sorted; empty until its rules are loaded. Not sent to an
    /// attached screen (thousands of names in every frame): there the engine alone checks a
    /// symbol added to the watchlist.
    #[serde(skip)]
    pub symbols: std::sync::Arc<Vec<Symbol>>,
    /// Price alerts, armed and fired, in the order they were set.
    #[serde(default)]
    pub price_alerts: Vec<PriceAlert>,
    /// The selected symbol's book, recent trades and chart timeframe.
    #[serde(default)]
    pub focus: FocusView,
    /// Fills and orders from the journal, newest first, with realized P&L.
    #[serde(default)]
    pub history: HistoryView,
    /// Protection the exchange ended without a fill while crbot still holds the position (a
    /// leg expired by self-trade prevention, or the OCO cancelled outside crbot): what it was,
    /// so that the trader can be offered the same stop-loss and take-profit again. crbot never
    /// re-places it by itself. One entry per symbol, until the position has a working stop
    /// again or is gone.
    #[serde(default)]
    pub lost_protection: Vec<LostProtection>,
    /// For each of crbot's positions without a working stop: what a new protective OCO would
    /// cover (the quantity a re-protection sends), for the screen's re-protect dialog.
    #[serde(default)]
    pub protect_qty: std::collections::BTreeMap<Symbol, Qty>,
}

/// A protective OCO that ended with no leg filled while crbot still holds its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostProtection {
    pub symbol: Symbol,
    /// The lost OCO's stop-loss trigger and take-profit price (what a re-protection offers).
    pub stop_loss: Price,
    pub take_profit: Price,
    /// The leg whose end took the protection (`StopLoss` or `TakeProfit`), with its status.
    pub leg: OrderPurpose,
    pub status: crate::domain::OrderStatus,
    /// The status in words ("expired by self-trade prevention: another order of this account
    /// crossed it").
    pub reason: String,
    /// When crbot saw the list end: with the symbol, what the screen offers once.
    pub since_ms: i64,
    /// What a new OCO would cover now: crbot's position less its own open sells, rounded down
    /// to the lot step ([`crate::engine::core::Core::prepare_reprotection`]'s quantity); `None`
    /// when that is nothing.
    pub qty: Option<Qty>,
}

impl LostProtection {
    /// `stop-loss` or `take-profit`: the leg in words.
    pub fn leg_name(&self) -> &'static str {
        if self.leg == OrderPurpose::StopLoss {
            "stop-loss"
        } else {
            "take-profit"
        }
    }
}

/// What a standby knows of the account's leader, for the screen attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StandbyBanner {
    /// The leader (`host pid N`), when its row could be read.
    pub leader: Option<String>,
    /// The leader's control API, when it advertises one.
    pub leader_address: Option<String>,
    /// When the leader took the lease (ms since the epoch).
    pub leader_since_ms: Option<i64>,
    /// Whether `header.trading` was read from the shared journal; false: not read (yet), and
    /// the screen shows the state as unknown, never as ACTIVE.
    pub trading_known: bool,
    /// Why this process is a standby again after leading, when it lost the lease.
    pub lost: Option<String>,
}

/// Which way a price alert waits for the last price to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crossing {
    /// At or above the price.
    Above,
    /// At or below the price.
    Below,
}

impl Crossing {
    /// Whether `last` has reached `price` this way.
    pub fn reached(self, last: Price, price: Price) -> bool {
        match self {
            Crossing::Above => last >= price,
            Crossing::Below => last <= price,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Crossing::Above => "above",
            Crossing::Below => "below",
        }
    }
}

/// "Tell me when SYMBOL goes above/below PRICE": fired once, then kept as fired (when, and the
/// last price that crossed) until cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceAlert {
    pub symbol: Symbol,
    pub crossing: Crossing,
    pub price: Price,
    #[serde(default)]
    pub fired: Option<(i64, Price)>,
}

impl Snapshot {
    /// `symbol`'s price tick, when its rules are known.
    pub fn tick(&self, symbol: &Symbol) -> Option<Decimal> {
        self.price_ticks.get(symbol).copied()
    }

    /// crbot's positions (not external holdings, not dust) that have no stop-loss order open on
    /// the exchange: nothing sells them if the market falls through the stop the trader meant.
    /// An order whose state is unknown or still being sent counts as open: it may be live.
    pub fn unprotected(&self) -> Vec<&Symbol> {
        self.positions
            .iter()
            .filter(|p| !p.external && !p.dust && p.qty.value() > Decimal::ZERO)
            .filter(|p| {
                !self.orders.iter().any(|o| {
                    o.symbol == p.symbol
                        && o.side == Side::Sell
                        && o.purpose == OrderPurpose::StopLoss
                        && o.state.is_open()
                })
            })
            .map(|p| &p.symbol)
            .collect()
    }
}

/// The account's balances, marked, and the equity figures the P&L is measured against.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountBooks {
    pub balances: Vec<BalanceRow>,
    /// Equity at 00:00 UTC, restated for capital flows.
    pub day_start_equity: Option<Money>,
    pub high_water_mark: Option<Money>,
    /// Realized P&L of each of crbot's positions.
    pub realized: Vec<(Symbol, Money)>,
    /// Today's deposits and withdrawals (UTC day), kept out of P&L and drawdown.
    pub capital_flows: Vec<CapitalFlowRow>,
    /// Fees of each of crbot's positions, of each UTC day, and in all.
    pub fees_by_position: Vec<(Symbol, crate::portfolio::FeeTally)>,
    pub fees_by_day: Vec<(chrono::NaiveDate, crate::portfolio::FeeTally)>,
    pub fees_total: crate::portfolio::FeeTally,
}

/// One deposit or withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapitalFlowRow {
    pub time_ms: i64,
    pub asset: Asset,
    /// Signed: positive in, negative out.
    pub delta: Decimal,
    /// The flow's USDT value at its time, when the asset could be priced then.
    pub value_usdt: Option<Decimal>,
    /// Where it was seen: `STREAM` or `RECONCILE`.
    pub source: String,
}

/// One asset's balance with its USDT mark, when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub asset: Asset,
    pub free: Qty,
    pub locked: Qty,
    pub mark: Option<Price>,
    pub value: Option<Money>,
    /// Age of the mark when it is a last known price rather than a fresh one.
    pub mark_age_ms: Option<i64>,
}

/// How complete the equity is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHealth {
    pub status: StreamStatus,
    /// Last measured event latency.
    pub latency_ms: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Connected,
    Connecting,
    Reconnecting { attempt: u32 },
    Down,
}

/// Request-weight and order-count usage as the exchange's headers last reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RateLimitUsage {
    pub weight_used: u32,
    pub weight_limit: u32,
    pub orders_10s: u32,
    pub orders_10s_limit: u32,
}

/// The trading states (active, reducing, halted), with why and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionRow {
    pub symbol: Symbol,
    pub qty: Qty,
    /// Fee-inclusive average cost per unit (the break-even price).
    pub avg_entry: Option<Price>,
    /// Average fill price, fees left out: what the screen calls "Entry".
    #[serde(default)]
    pub avg_fill: Option<Price>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitChangePending {
    pub name: LimitName,
    pub from: Decimal,
    pub to: Decimal,
    /// What the trader must type, e.g. `LOOSEN MAX_DAILY_LOSS_PERCENT 8`.
    pub phrase: String,
}

/// Equity-curve windows the chart cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityPoint {
    pub time_ms: i64,
    pub value: Decimal,
}

/// Equity samples per window, oldest first (the engine downsamples longer windows).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub open_ms: i64,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    /// Base volume traded in the candle, when the source gave it.
    #[serde(default)]
    pub volume: Option<Qty>,
}

/// The chart's timeframes, cycled on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ChartInterval {
    #[default]
    M1,
    M5,
    H1,
    D1,
}

impl ChartInterval {
    pub const ALL: [ChartInterval; 4] = [
        ChartInterval::M1,
        ChartInterval::M5,
        ChartInterval::H1,
        ChartInterval::D1,
    ];

    /// Binance's interval name (`@kline_<i>`, `klines?interval=`).
    pub fn wire(self) -> &'static str {
        match self {
            ChartInterval::M1 => "1m",
            ChartInterval::M5 => "5m",
            ChartInterval::H1 => "1h",
            ChartInterval::D1 => "1d",
        }
    }

    pub fn from_wire(text: &str) -> Option<ChartInterval> {
        ChartInterval::ALL.into_iter().find(|i| i.wire() == text)
    }

    /// The next (or previous) timeframe, wrapping round.
    pub fn step(self, forward: bool) -> ChartInterval {
        let n = ChartInterval::ALL.len();
        let i = ChartInterval::ALL.iter().position(|x| *x == self).unwrap_or(0);
        ChartInterval::ALL[if forward { (i + 1) % n } else { (i + n - 1) % n }]
    }
}

/// The selected symbol's market detail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FocusView {
    /// The symbol the book and the trades are of (the selected one, once followed).
    pub symbol: Option<Symbol>,
    /// The chart's timeframe; `candles` are of it.
    pub interval: ChartInterval,
    /// The chart's history is being read (a timeframe just switched): not drawn as empty.
    pub candles_loading: bool,
    pub book: BookView,
    /// Recent trades, newest first (bounded).
    pub trades: Vec<TapeTrade>,
}

/// The local order book's best levels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BookView {
    pub status: BookStatus,
    /// Best first: highest bid, lowest ask.
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
}

/// Whether the levels can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BookStatus {
    /// No symbol followed.
    #[default]
    Off,
    /// Waiting for the snapshot (at first, or after a gap): no levels are shown.
    Syncing,
    Live,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLevel {
    pub price: Price,
    pub qty: Qty,
}

/// One printed trade of the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeTrade {
    pub time_ms: i64,
    pub price: Price,
    pub qty: Qty,
    /// The buyer was the maker: the taker sold (drawn red); otherwise the taker bought.
    pub buyer_maker: bool,
}

/// The journal's fills and orders, newest first (bounded reads, off the engine's loop).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HistoryView {
    /// False until the first read answered.
    pub loaded: bool,
    /// The last read failed (shown; the rows are those of the read before).
    pub error: Option<String>,
    /// Shared by every snapshot until the next read: a publish copies no row.
    #[serde(with = "shared")]
    pub fills: Arc<Vec<HistoryFill>>,
    #[serde(with = "shared")]
    pub orders: Arc<Vec<Order>>,
    /// Realized P&L of today's sells (UTC day), in the quote asset; `None` when unknown.
    pub day_realized: Option<Decimal>,
}

/// Serde for a part of the snapshot shared between snapshots (an `Arc`): written as its
/// value, read into an `Arc` of its own.
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize(value, s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}

/// A fill with the P&L its sell realized (`None` for a buy, or when it was not booked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryFill {
    pub fill: crate::domain::Fill,
    pub realized: Option<Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// What a log line is about; `Fill` and `Rejection` ring the bell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increasing, never reused within a run: the UI remembers the last one it has seen.
    pub seq: u64,
    pub time_ms: i64,
    pub level: LogLevel,
    pub kind: LogKind,
    pub text: String,
}

/// The ticket fields, as typed. The engine parses them and reports errors per field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLine {
    /// Stable `SCREAMING_CODE` (the same code the journal stores).
    pub code: String,
    pub passed: bool,
    /// The numbers: `notional 412.50 ≤ 500.00 (5% of 10 000)`.
    pub detail: String,
}

/// The verdict on a draft, computed by the engine as the trader types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResult {
    pub draft: TicketDraft,
    pub outcome: TicketOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillProgress {
    pub started_ms: i64,
    pub stage: KillStage,
    pub lines: Vec<KillLine>,
    /// The current stage is finished (nothing left open, or flatten done).
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillLine {
    pub symbol: Symbol,
    /// `None` while in progress, then whether it succeeded.
    pub ok: Option<bool>,
    /// `2 orders cancelled`, `retrying (429)`, `dust 0.00001 left`.
    pub outcome: String,
}

/// What the screen asks the engine to do. Sent on an mpsc channel; the engine answers through
/// the next snapshot.
/// Who asked a kill through the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillSource {
    /// `crbot kill` in another shell (over the account's unix socket).
    Shell,
    /// `POST /api/kill` over TCP.
    Api,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Stage one of the kill switch, asked by a client of the control API rather than a
    /// screen's key: the journal records who stopped trading.
    KillFrom(KillSource),
    /// Stage two of the kill switch, confirmed: flatten `percent` of crbot's positions.
    Flatten {
        percent: u8,
    },
    /// Leave HALTED/REDUCING, confirmed. In a mode with keys the screen asks the vault
    /// passphrase and the engine checks it before re-arming; `None` in modes without keys.
    Rearm {
        /// Never serialised: a command's wire form carries no secret (`api::stream` sends the
        /// passphrase in a field of its own, and only over the unix socket or TLS).
        #[serde(skip)]
        passphrase: Option<crate::secret::SecretString>,
    },
    AddSymbol(Symbol),
    RemoveSymbol(Symbol),
    /// Set a price alert on a symbol of the exchange (it joins the watchlist).
    SetPriceAlert {
        symbol: Symbol,
        crossing: Crossing,
        price: Price,
    },
    /// Clear a symbol's price alerts, or (`None`) every one that fired.
    ClearPriceAlerts(Option<Symbol>),
    /// Place a protective OCO (stop-loss, take-profit) on crbot's unprotected position in
    /// `symbol`, after the trader confirmed it: the risk gate decides and journals it as every
    /// order (refused while halted), for the quantity a re-protection covers.
    Reprotect {
        symbol: Symbol,
        stop_loss: Price,
        take_profit: Price,
    },
    SelectSymbol(Symbol),
    /// The chart's timeframe for the selected symbol.
    SetChartInterval(ChartInterval),
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
    /// A ticket from a client of the engine (the control API: `POST /api/orders`, which
    /// `crbot order` uses while an engine runs). The same gate as a screen ticket; the engine
    /// answers with an `Effect::Reply` carrying `request` once the risk decision is made and,
    /// when approved, once the exchange answered the placement (or its outcome is unknown).
    /// `dry_run`: the verdict and the exact orders, nothing sent.
    Order {
        request: RequestId,
        ticket: crate::domain::Ticket,
        dry_run: bool,
    },
    /// The journal's fills at or after `since_ms` (`GET /api/trades?since=MS`), answered with
    /// an `Effect::Reply` carrying `request`.
    Trades {
        request: RequestId,
        since_ms: i64,
    },
    /// An online backup of the journal to `dest` (`crbot backup PATH` while an engine runs),
    /// journaled as the command's own would be; answered when the copy is done.
    Backup {
        request: RequestId,
        dest: std::path::PathBuf,
    },
    /// A read command's report (`crbot orders`, `positions`, `pnl`, `balance` through the
    /// engine), built from the engine's state and answered with an `Effect::Reply`.
    Report {
        request: RequestId,
        kind: ReportKind,
    },
    /// The journal exported as CSV files into `dir` (`crbot journal export --csv DIR` while an
    /// engine runs), answered with the files written.
    Export {
        request: RequestId,
        dir: std::path::PathBuf,
    },
    /// A kill switch whose whole outcome is answered (`crbot kill` through the engine): as
    /// `KillFrom(source)`, with `flatten` stage two once the sweep is done and the balances
    /// re-read; answered when the sweep, its backup and the flatten's sells are done.
    KillReport {
        request: RequestId,
        source: KillSource,
        flatten: bool,
    },
}

/// A read command (`engine::reports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Orders,
    Positions,
    Pnl,
    Balance,
    /// Needs the exchange client's gauges and the journal's check too.
    Health,
    /// Asks the exchange (round trip, clock, the market stream).
    Ping,
}

impl ReportKind {
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Orders => "orders",
            ReportKind::Positions => "positions",
            ReportKind::Pnl => "pnl",
            ReportKind::Balance => "balance",
            ReportKind::Health => "health",
            ReportKind::Ping => "ping",
        }
    }

    pub fn from_name(name: &str) -> Option<ReportKind> {
        [
            ReportKind::Orders,
            ReportKind::Positions,
            ReportKind::Pnl,
            ReportKind::Balance,
            ReportKind::Health,
            ReportKind::Ping,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// Names a command that needs an answer; the executor keeps who waits for it.
pub type RequestId = u64;
