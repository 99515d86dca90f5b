//! The demo snapshot: a realistic, deterministic [`Snapshot`] for testing the screen without an
//! engine, shared by the `ui_*` tests (their insta snapshots are drawn from it, so any change
//! here shows up as a snapshot diff).
//!
//! Owns: fake data only. Must not: be reached from the library; the binary never shows it.

// Each test file includes this module and uses a different part of it.
#![allow(dead_code)]

use crbot::domain::{
    Asset, ClientOrderId, LocalOrderState, Mode, Money, Notional, Order, OrderPurpose, OrderStatus,
    OrderType, Price, Qty, Side, Symbol, TimeInForce,
};
use crbot::engine::snapshot::{
    BookLevel, BookStatus, BookView, Candle, ChartInterval, EquityCurves, EquityPoint, EquityStatus,
    FocusView, Header, HistoryFill, HistoryView, KillLine, KillProgress, KillStage, LimitsUsage, LogKind,
    LogLevel, LogLine, OutgoingOrder, PositionRow, RateLimitUsage, RuleLine, Snapshot, StreamHealth,
    StreamStatus, TapeTrade, TicketDraft, TicketPreview, TradingState, WatchRow,
};
use crbot::portfolio::FeeTally;
use rust_decimal::Decimal;

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

/// A realistic, deterministic snapshot in `sim` mode at `now_ms`: four symbols, two
/// positions (one external), an entry with its OCO legs and one order in state UNKNOWN, a
/// day slightly in loss, a live ticket preview and a busy log.
pub fn snapshot(now_ms: i64) -> Snapshot {
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
        market_steps: [(sol.clone(), dec("0.01")), (btc.clone(), dec("0.00001"))]
            .into_iter()
            .collect(),
        attached_to: None,
        standby: None,
        rearm_needs_passphrase: false,
        // Not sent over the stream: a test that needs the exchange's symbols sets them.
        symbols: Default::default(),
        price_alerts: Vec::new(),
        lost_protection: Vec::new(),
        protect_qty: Default::default(),
        focus: focus(now_ms, &eth),
        history: history(now_ms),
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
                avg_entry: Some(price("95305.21")),
                avg_fill: Some(price("95210.00")),
                mark: Some(price("96432.15")),
                unrealized: Some(usdt("6.36")),
                unrealized_pct: Some(dec("1.28")),
                external: false,
                dust: false,
            },
            PositionRow {
                symbol: sol.clone(),
                qty: qty("2.5"),
                avg_entry: Some(price("249.15")),
                avg_fill: Some(price("248.90")),
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
                avg_fill: None,
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
                    volume: Some(qty(&format!("{}.{}", 40 + wobble(i, 9).abs() / 5, i % 10))),
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
        fees_today: FeeTally::default(),
        limit_change_pending: None,
        price_ticks: [
            (ticked.0, dec("0.01")),
            (ticked.1, dec("0.01")),
            (ticked.2, dec("0.01")),
            (ticked.3, dec("0.1")),
        ]
        .into_iter()
        .collect(),
        books: crbot::engine::snapshot::AccountBooks {
            realized: vec![(sym("BTCUSDT"), usdt("0")), (sym("SOLUSDT"), usdt("3.25"))],
            ..Default::default()
        },
    }
}

/// The selected symbol's detail: a live book around 3118.42 and a short tape.
pub fn focus(now_ms: i64, symbol: &Symbol) -> FocusView {
    let level = |p: &str, q: &str| BookLevel {
        price: price(p),
        qty: qty(q),
    };
    let trade = |ago_ms: i64, p: &str, q: &str, buyer_maker: bool| TapeTrade {
        time_ms: now_ms - ago_ms,
        price: price(p),
        qty: qty(q),
        buyer_maker,
    };
    FocusView {
        symbol: Some(symbol.clone()),
        interval: ChartInterval::M1,
        candles_loading: false,
        book: BookView {
            status: BookStatus::Live,
            bids: vec![
                level("3118.41", "2.5"),
                level("3118.40", "0.0312"),
                level("3118.10", "12"),
                level("3117.95", "0.5"),
                level("3117.50", "7.25"),
                level("3117.00", "30.1"),
                level("3116.80", "0.004"),
                level("3116.10", "1.5"),
            ],
            asks: vec![
                level("3118.43", "1.2"),
                level("3118.50", "0.75"),
                level("3118.90", "4"),
                level("3119.00", "18.6"),
                level("3119.45", "0.0521"),
                level("3120.00", "22"),
                level("3120.75", "3.3"),
                level("3121.20", "0.9"),
            ],
        },
        trades: vec![
            trade(400, "3118.43", "0.12", false),
            trade(1_900, "3118.41", "1.05", true),
            trade(2_300, "3118.41", "0.0042", true),
            trade(5_100, "3118.50", "0.3", false),
            trade(9_800, "3118.40", "2.2", true),
            trade(12_000, "3118.45", "0.05", false),
            trade(15_500, "3118.39", "0.8", true),
            trade(21_000, "3118.60", "0.015", false),
        ],
    }
}

/// The journal's history: a BTC entry and its OCO today, a SOL round trip yesterday.
pub fn history(now_ms: i64) -> HistoryView {
    let fill =
        |symbol: &str, id: u64, side: Side, p: &str, q: &str, fee: &str, fee_asset: &str, ago_s: i64| {
            crbot::domain::Fill {
                symbol: sym(symbol),
                trade_id: id,
                order_id: id * 10,
                client_order_id: None,
                side,
                price: price(p),
                qty: qty(q),
                commission: qty(fee),
                commission_asset: Asset::new(fee_asset).expect("demo asset"),
                time_ms: now_ms - ago_s * 1000,
                is_maker: false,
            }
        };
    let order = |id: &str,
                 symbol: &str,
                 side: Side,
                 t: OrderType,
                 p: Option<&str>,
                 q: &str,
                 state: OrderStatus,
                 purpose: OrderPurpose,
                 ago_s: i64| Order {
        client_order_id: coid(id),
        order_id: None,
        order_list_id: None,
        symbol: sym(symbol),
        side,
        order_type: t,
        price: p.map(price),
        stop_price: None,
        qty: qty(q),
        executed_qty: qty(q),
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Exchange(state),
        purpose,
        created_ms: now_ms - ago_s * 1000,
        updated_ms: now_ms - ago_s * 1000,
    };
    HistoryView {
        loaded: true,
        error: None,
        fills: vec![
            HistoryFill {
                fill: fill(
                    "BTCUSDT",
                    71,
                    Side::Buy,
                    "95210.00",
                    "0.0052",
                    "0.49",
                    "USDT",
                    3299,
                ),
                realized: None,
            },
            HistoryFill {
                fill: fill("SOLUSDT", 42, Side::Sell, "252.40", "1", "0.25", "USDT", 7_200),
                realized: Some(dec("3.25")),
            },
            HistoryFill {
                fill: fill("SOLUSDT", 41, Side::Buy, "248.90", "1", "0.001", "SOL", 95_000),
                realized: None,
            },
        ]
        .into(),
        orders: vec![
            order(
                "crb-btc-en-0001",
                "BTCUSDT",
                Side::Buy,
                OrderType::Limit,
                Some("95210.00"),
                "0.0052",
                OrderStatus::Filled,
                OrderPurpose::Entry,
                3300,
            ),
            order(
                "crb-sol-ex-0001",
                "SOLUSDT",
                Side::Sell,
                OrderType::Market,
                None,
                "1",
                OrderStatus::Filled,
                OrderPurpose::Exit,
                7_201,
            ),
            order(
                "crb-sol-en-0001",
                "SOLUSDT",
                Side::Buy,
                OrderType::Limit,
                Some("248.90"),
                "1",
                OrderStatus::Filled,
                OrderPurpose::Entry,
                95_001,
            ),
        ]
        .into(),
        day_realized: Some(dec("3.25")),
    }
}

/// A long journal: `fills` fills and a fifth as many orders over the demo's four symbols, one
/// every 37 s back from `now_ms` (so today's and earlier days'), every other sell realizing
/// something. For the history panel's tests and its render bench.
pub fn long_history(now_ms: i64, fills: usize) -> HistoryView {
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"];
    let prices = ["97250.00", "3420.50", "252.40", "905.10"];
    let at = |i: usize| now_ms - i64::try_from(i).unwrap_or(0) * 37_000;
    let fill_rows = (0..fills)
        .map(|i| {
            let k = i % symbols.len();
            let side = if i % 3 == 0 { Side::Sell } else { Side::Buy };
            HistoryFill {
                fill: crbot::domain::Fill {
                    symbol: sym(symbols[k]),
                    trade_id: 1_000_000 + i as u64,
                    order_id: 2_000_000 + (i / 5) as u64,
                    client_order_id: None,
                    side,
                    price: price(prices[k]),
                    qty: Qty::try_new(Decimal::new(1 + (i % 97) as i64, 3)).unwrap_or_default(),
                    commission: Qty::try_new(Decimal::new(1 + (i % 13) as i64, 4)).unwrap_or_default(),
                    commission_asset: Asset::usdt(),
                    time_ms: at(i),
                    is_maker: i % 2 == 0,
                },
                realized: (side == Side::Sell && i % 2 == 0)
                    .then(|| Decimal::new(i64::try_from(i % 401).unwrap_or(0) - 200, 2)),
            }
        })
        .collect::<Vec<_>>();
    let orders = (0..fills / 5)
        .map(|j| {
            let i = j * 5;
            let k = i % symbols.len();
            Order {
                client_order_id: coid(&format!("crb-long-{j:06}")),
                order_id: Some(2_000_000 + j as u64),
                order_list_id: None,
                symbol: sym(symbols[k]),
                side: if j % 2 == 0 { Side::Buy } else { Side::Sell },
                order_type: if j % 3 == 0 {
                    OrderType::Market
                } else {
                    OrderType::Limit
                },
                price: (j % 3 != 0).then(|| price(prices[k])),
                stop_price: None,
                qty: qty("0.05"),
                executed_qty: qty("0.05"),
                cumulative_quote_qty: Notional::ZERO,
                state: LocalOrderState::Exchange(if j % 7 == 0 {
                    OrderStatus::Canceled
                } else {
                    OrderStatus::Filled
                }),
                purpose: if j % 2 == 0 {
                    OrderPurpose::Entry
                } else {
                    OrderPurpose::Exit
                },
                created_ms: at(i),
                updated_ms: at(i),
            }
        })
        .collect::<Vec<_>>();
    HistoryView {
        loaded: true,
        error: None,
        fills: fill_rows.into(),
        orders: orders.into(),
        day_realized: Some(dec("12.34")),
    }
}

/// The demo after the kill key: HALTED, cancels in flight per symbol.
pub fn killing(now_ms: i64) -> Snapshot {
    let mut s = snapshot(now_ms);
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
