//! The market-detail and history panels — the order book, the trades, the candles with their
//! timeframe, the history, the scrolled log — drawn at 80×24, 160×48 and 60×20, and the keys
//! that reach and drive them: Tab round every panel at every size, the timeframe keys, the
//! selection the book follows, the history's `/` filter, the log's scroll.

mod support {
    pub mod demo;
    pub mod keys;
    pub mod screen;
}

use crbot::domain::Symbol;
use crbot::engine::snapshot::{BookStatus, ChartInterval, Command, LogKind, LogLevel, LogLine, Snapshot};
use crbot::ui::{App, Effect, Focus, KeyPress, Tab, update};
use crossterm::event::KeyCode;
use support::demo;
use support::keys::{press, sent, type_text};

/// 2025-11-28 12:34:56 UTC: fixed, so every snapshot is deterministic.
const NOW: i64 = 1_764_333_296_000;

fn app(snap: &Snapshot) -> App {
    support::screen::unicode_app(snap)
}

fn draw(app: &App, snap: &Snapshot, w: u16, h: u16) -> String {
    format!("{}", support::screen::draw(app, snap, w, h).backend())
}

fn type_line(app: &mut App, snap: &Snapshot, text: &str) -> Vec<Effect> {
    let mut fx = type_text(app, snap, text);
    fx.extend(press(app, snap, KeyPress::plain(KeyCode::Enter)));
    fx
}

#[test]
fn book_tab_at_three_sizes() {
    let snap = demo::snapshot(NOW);
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('6'));
    assert_eq!(a.tab, Tab::Book);
    assert_eq!(a.focus, Focus::Depth);
    let wide = draw(&a, &snap, 160, 48);
    assert!(wide.contains("Book ETHUSDT (live, 0.5 s)") && wide.contains("Trades ETHUSDT"));
    insta::assert_snapshot!("book_80x24", draw(&a, &snap, 80, 24));
    insta::assert_snapshot!("book_160x48", wide);
    insta::assert_snapshot!("book_60x20", draw(&a, &snap, 60, 20));
}

#[test]
fn the_book_aligns_prices_at_the_tick_and_cumulates_sizes_from_the_touch() {
    let snap = demo::snapshot(NOW);
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('6'));
    let text = draw(&a, &snap, 80, 24);
    let lines: Vec<&str> = text.lines().collect();
    let spread = lines
        .iter()
        .position(|l| l.contains("spread 0.02"))
        .expect("the spread line");
    // The best ask just above the spread, the best bid just below, each cumulated from itself.
    assert!(lines[spread - 1].contains("3118.43") && lines[spread - 1].contains("1.2000"));
    assert!(lines[spread + 1].contains("3118.41") && lines[spread + 1].contains("2.5000"));
    assert!(
        lines[spread + 2].contains("2.5312"),
        "2.5 + 0.0312: {}",
        lines[spread + 2]
    );
    // Every price of the book ends in the same column (aligned on the decimal point).
    let ends: Vec<usize> = lines
        .iter()
        .filter_map(|l| {
            let i = l.find("311")?;
            Some(i + 7)
        })
        .filter(|e| *e < 40)
        .collect();
    assert!(ends.len() >= 8, "{text}");
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text}");
}

#[test]
fn a_book_being_synchronised_shows_no_levels() {
    let mut snap = demo::snapshot(NOW);
    snap.focus.book.status = BookStatus::Syncing;
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('6'));
    let text = draw(&a, &snap, 80, 24);
    assert!(
        text.contains("(syncing)") && text.contains("synchronising"),
        "{text}"
    );
    assert!(!text.contains("spread") && !text.contains("Cum"), "{text}");
}

#[test]
fn history_tab_at_three_sizes() {
    let snap = demo::snapshot(NOW);
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('7'));
    assert_eq!((a.tab, a.focus), (Tab::History, Focus::History));
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("realized today +3.25 USDT"), "{text}");
    assert!(
        text.contains("11-27 "),
        "an earlier day's row carries its date:\n{text}"
    );
    insta::assert_snapshot!("history_80x24", text);
    insta::assert_snapshot!("history_160x48", draw(&a, &snap, 160, 48));
    insta::assert_snapshot!("history_60x20", draw(&a, &snap, 60, 20));
}

#[test]
fn candles_at_5m_with_volume_and_a_loading_timeframe_that_is_not_drawn_flat() {
    let mut snap = demo::snapshot(NOW);
    snap.focus.interval = ChartInterval::M5;
    let a = app(&snap);
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("ETHUSDT 5m: close"), "{text}");
    insta::assert_snapshot!("candles_5m_80x24", text);
    insta::assert_snapshot!("candles_5m_160x48", draw(&a, &snap, 160, 48));
    snap.candles.clear();
    snap.focus.interval = ChartInterval::H1;
    snap.focus.candles_loading = true;
    let text = draw(&a, &snap, 60, 20);
    assert!(text.contains("loading 1h candles..."), "{text}");
    insta::assert_snapshot!("candles_loading_60x20", text);
}

#[test]
fn the_timeframe_keys_cycle_1m_5m_1h_1d_and_ask_the_engine() {
    let snap = demo::snapshot(NOW);
    let mut a = app(&snap);
    let mut asked = vec![];
    for _ in 0..4 {
        asked.extend(sent(&press(&mut a, &snap, KeyPress::ch(']'))));
    }
    assert_eq!(
        asked,
        [
            ChartInterval::M5,
            ChartInterval::H1,
            ChartInterval::D1,
            ChartInterval::M1
        ]
        .map(Command::SetChartInterval)
    );
    let back = sent(&press(&mut a, &snap, KeyPress::ch('[')));
    assert_eq!(back, vec![Command::SetChartInterval(ChartInterval::D1)]);
}

#[test]
fn the_tape_never_cuts_the_side_where_prices_and_sizes_are_wide() {
    let mut snap = demo::snapshot(NOW);
    // BTC-wide prices and sizes of eight decimals: the time gives way, never the side.
    for t in &mut snap.focus.trades {
        t.price = crbot::domain::Price::try_new(rust_decimal::Decimal::new(9_643_215, 2)).unwrap();
        t.qty = crbot::domain::Qty::try_new(rust_decimal::Decimal::new(123, 8)).unwrap();
    }
    let a = app(&snap);
    let wide = draw(&a, &snap, 160, 48);
    let rows: Vec<&str> = wide
        .lines()
        .filter_map(|l| l.split("││").last())
        .filter(|cell| cell.contains("96432.15"))
        .collect();
    assert_eq!(rows.len(), snap.focus.trades.len(), "{wide}");
    for row in rows {
        let side = row.trim_end_matches(['│', '"', ' ']).rsplit(' ').next();
        assert!(matches!(side, Some("buy" | "sell")), "{row}\n{wide}");
    }
}

#[test]
fn the_book_follows_the_watchlist_selection() {
    let snap = demo::snapshot(NOW);
    let mut a = app(&snap);
    // ETHUSDT is selected; Down selects SOLUSDT and the engine is asked to follow it.
    let fx = press(&mut a, &snap, KeyPress::plain(KeyCode::Down));
    assert_eq!(
        sent(&fx),
        vec![Command::SelectSymbol(Symbol::new("SOLUSDT").unwrap())]
    );
}

#[test]
fn tab_reaches_every_panel_at_every_size_and_each_is_drawn_focused() {
    let snap = demo::snapshot(NOW);
    for (w, h) in [(60, 20), (80, 24), (160, 48)] {
        let mut a = app(&snap);
        let mut seen = vec![a.focus];
        for _ in 1..Focus::ALL.len() {
            press(&mut a, &snap, KeyPress::plain(KeyCode::Tab));
            seen.push(a.focus);
            // The focused panel is on screen: its tab is the one shown.
            let text = draw(&a, &snap, w, h);
            let title = match a.focus {
                Focus::Watchlist => "Watchlist",
                Focus::Positions => "Positions",
                Focus::Orders => "Open orders",
                Focus::Depth => "Book ETHUSDT",
                Focus::Trades => "Trades ETHUSDT",
                Focus::Candles => "ETHUSDT 1m",
                Focus::History => "History",
                Focus::Log => "Risk & event log",
            };
            assert!(text.contains(title), "{:?} at {w}x{h}:\n{text}", a.focus);
        }
        assert_eq!(seen, Focus::ALL.to_vec(), "at {w}x{h}");
        press(&mut a, &snap, KeyPress::plain(KeyCode::Tab));
        assert_eq!(a.focus, Focus::Watchlist, "round again");
        press(&mut a, &snap, KeyPress::plain(KeyCode::BackTab));
        assert_eq!(a.focus, Focus::Log);
    }
}

#[test]
fn the_history_filter_keeps_one_symbol_and_says_so() {
    let snap = demo::snapshot(NOW);
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('7'));
    press(&mut a, &snap, KeyPress::ch('/'));
    type_line(&mut a, &snap, "sol");
    assert_eq!(a.filters[Focus::History.index()], "SOL");
    assert_eq!(a.visible(Focus::History, &snap).len(), 4);
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("History: fills & orders (4) /SOL"), "{text}");
    assert!(!text.contains("BTCUSDT  "), "{text}");
    // The watchlist's filter is its own.
    assert!(a.filters[Focus::Watchlist.index()].is_empty());
    // A panel with no rows takes no filter.
    press(&mut a, &snap, KeyPress::ch('6'));
    press(&mut a, &snap, KeyPress::ch('/'));
    assert!(a.dialog.is_none());
    assert!(a.status.as_deref().unwrap_or("").contains("no rows to filter"));
}

fn with_log(n: u64) -> Snapshot {
    let mut snap = demo::snapshot(NOW);
    snap.log = (1..=n)
        .map(|seq| LogLine {
            seq,
            time_ms: NOW - 100_000 + seq as i64 * 1000,
            level: LogLevel::Info,
            kind: LogKind::System,
            text: format!("line {seq}"),
        })
        .collect();
    snap
}

#[test]
fn the_log_scrolls_back_and_new_lines_do_not_move_it() {
    let mut snap = with_log(40);
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('4'));
    assert_eq!(a.focus, Focus::Log);
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("line 40"), "follows the newest:\n{text}");
    press(&mut a, &snap, KeyPress::plain(KeyCode::PageUp));
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("line 30") && !text.contains("line 31 "), "{text}");
    assert!(text.contains("scrolled back, 10 newer lines"), "{text}");
    insta::assert_snapshot!("log_scrolled_80x24", text);
    // Five new lines arrive: the view stays on line 30.
    snap = with_log(45);
    update(&mut a, crbot::ui::Action::SnapshotArrived, &snap);
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("line 30") && !text.contains("line 31 "), "{text}");
    assert!(text.contains("15 newer lines"), "{text}");
    // g: the oldest lines; G: following again.
    press(&mut a, &snap, KeyPress::ch('g'));
    let text = draw(&a, &snap, 80, 24);
    assert!(text.contains("line 1 ") && !text.contains("line 45"), "{text}");
    press(&mut a, &snap, KeyPress::ch('G'));
    assert_eq!(a.log_anchor, None);
    let text = draw(&a, &snap, 80, 24);
    assert!(
        text.contains("line 45") && !text.contains("scrolled back"),
        "{text}"
    );
    // Down past the newest line follows too.
    press(&mut a, &snap, KeyPress::plain(KeyCode::Up));
    assert!(a.log_anchor.is_some());
    press(&mut a, &snap, KeyPress::plain(KeyCode::Down));
    assert_eq!(a.log_anchor, None);
}

#[test]
fn the_wheel_scrolls_the_log_and_a_click_focuses_the_book() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let at = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    let snap = with_log(40);
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('4'));
    press(&mut a, &snap, KeyPress::plain(KeyCode::Tab));
    assert_eq!(a.focus, Focus::Watchlist, "Tab left the log");
    a.tab = Tab::Log;
    draw(&a, &snap, 80, 24);
    crbot::ui::app::mouse(&mut a, at(MouseEventKind::ScrollUp, 10, 12), &snap);
    assert_eq!(a.focus, Focus::Log);
    assert_eq!(a.log_anchor, Some(39), "one line back");

    press(&mut a, &snap, KeyPress::ch('6'));
    assert_eq!(a.focus, Focus::Depth);
    draw(&a, &snap, 80, 24);
    crbot::ui::app::mouse(&mut a, at(MouseEventKind::Down(MouseButton::Left), 60, 10), &snap);
    assert_eq!(a.focus, Focus::Trades);
    crbot::ui::app::mouse(&mut a, at(MouseEventKind::Down(MouseButton::Left), 10, 10), &snap);
    assert_eq!(a.focus, Focus::Depth);
    assert!(
        a.status.is_none() && a.dialog.is_none(),
        "a click does nothing else"
    );
}
