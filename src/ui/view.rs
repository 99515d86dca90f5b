//! Drawing: the whole screen as a function of the [`App`] and the engine's [`Snapshot`].
//!
//! Owns: layout (every panel at once from 120×36 up, tabs below that), panels, dialogs and
//! overlays. Must not: change state, read a clock or do I/O; the same inputs always draw the
//! same cells. Exact decimals are formatted here; they become `f64` only as chart coordinates,
//! which place points and never carry an amount anyone acts on.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::app::{App, Dialog, Focus, PERCENTS, Tab, TicketForm};
use super::keymap::Context;
use super::theme::Theme;
use crate::domain::{
    LocalOrderState, Mode, Money, OrderPurpose, OrderStatus, OrderType, Qty, display_fixed, plain,
};
use crate::engine::snapshot::{
    EquityStatus, KillStage, LimitName, LogKind, LogLevel, OutgoingOrder, Snapshot, StreamHealth,
    StreamStatus, TicketField, TicketOutcome, TicketPreview, TradingState,
};

/// The smallest size that shows every panel at once.
pub const WIDE_MIN: (u16, u16) = (120, 36);

/// Draws the screen.
pub fn view(app: &App, snap: &Snapshot, frame: &mut Frame) {
    let area = frame.area();
    let theme = &app.config.theme;
    let warnings = !snap.header.warnings.is_empty()
        || !snap.unpriced_assets.is_empty()
        || snap.equity_status.is_incomplete();
    let header_h = 3 + u16::from(warnings);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(app, snap, frame, header);
    if area.width >= WIDE_MIN.0 && area.height >= WIDE_MIN.1 {
        draw_wide(app, snap, frame, body);
    } else {
        let [tabs, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        draw_tabs(app, frame, tabs);
        draw_tab(app, snap, frame, rest);
    }
    draw_footer(app, frame, footer);
    if app.kill_panel_visible(snap) && app.dialog.is_none() && !app.help {
        draw_kill_panel(app, snap, frame, body);
    }
    if app.help {
        draw_help(app, frame, body);
    }
    if let Some(dialog) = &app.dialog {
        draw_dialog(app, snap, dialog, frame, body);
    }
    if theme.ascii {
        asciify(frame);
    }
}

/// The `--ascii` safety net: widgets that draw box characters of their own (chart axes)
/// get them replaced, so no cell outside ASCII reaches a terminal that cannot show it.
fn asciify(frame: &mut Frame) {
    for cell in &mut frame.buffer_mut().content {
        let replacement = match cell.symbol() {
            "│" | "┃" | "║" => "|",
            "─" | "━" | "═" => "-",
            "└" | "┘" | "┌" | "┐" | "├" | "┤" | "┬" | "┴" | "┼" => "+",
            "•" => "*",
            s if !s.is_ascii() => "?",
            _ => continue,
        };
        cell.set_symbol(replacement);
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "--:--:--".into(), |t| t.format("%H:%M:%S").to_string())
}

fn hm(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "--:--".into(), |t| t.format("%H:%M").to_string())
}

fn duration(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

fn dp2(d: Decimal) -> String {
    display_fixed(d, 2)
}

fn signed2(d: Decimal) -> String {
    let text = display_fixed(d, 2);
    if text.starts_with('-') || text.trim_start_matches(['0', '.']).is_empty() {
        text
    } else {
        format!("+{text}")
    }
}

/// `  fees today 0.33 USDT +0.00030000 BNB unpriced`: today's fees at their fill-time value,
/// and loudly what had no price then. Nothing when no fee was paid today.
fn fee_spans(theme: &Theme, fees: &crate::portfolio::FeeTally) -> Vec<Span<'static>> {
    if fees.paid.is_empty() {
        return Vec::new();
    }
    let value: Vec<String> = fees
        .value
        .iter()
        .map(|(a, v)| Money::new(*v, a.clone()).display())
        .collect();
    let mut spans = vec![Span::raw(format!(
        "  fees today {}",
        if value.is_empty() {
            "0".to_string()
        } else {
            value.join(" + ")
        }
    ))];
    if !fees.complete() {
        let unpriced: Vec<String> = fees
            .unpriced
            .iter()
            .map(|(a, v)| Money::new(*v, a.clone()).display())
            .collect();
        spans.push(Span::styled(
            format!(" +{} unpriced", unpriced.join(" +")),
            theme.warning(),
        ));
    }
    spans
}

fn money2(m: &Money) -> String {
    format!("{} {}", signed2(m.amount), m.asset)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A price at its symbol's tick (`display_price`: the display rounding rule), `-` when none.
fn px(v: Option<crate::domain::Price>, tick: Option<Decimal>) -> String {
    v.map_or_else(|| "-".into(), |v| crate::domain::display_price(v.value(), tick))
}

fn short_type(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "MKT",
        OrderType::Limit => "LMT",
        OrderType::LimitMaker => "LMT_MKR",
        OrderType::StopLoss => "STOP",
        OrderType::StopLossLimit => "STOP_LMT",
        OrderType::TakeProfit => "TP",
        OrderType::TakeProfitLimit => "TP_LMT",
    }
}

fn purpose_label(p: OrderPurpose) -> &'static str {
    match p {
        OrderPurpose::Entry => "entry",
        OrderPurpose::StopLoss => "stop-loss",
        OrderPurpose::TakeProfit => "take-profit",
        OrderPurpose::Exit => "exit",
        OrderPurpose::Flatten => "flatten",
        OrderPurpose::External => "external",
    }
}

fn to_f64(d: Decimal) -> f64 {
    // Chart coordinates only (see the module doc).
    d.to_f64().unwrap_or(0.0)
}

fn panel<'a>(theme: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_set(theme.border_set())
        .title(title);
    if focused {
        block.border_style(theme.focused_border())
    } else {
        block
    }
}

/// An outgoing order as one line: `BUY LIMIT 0.15 ETHUSDT @ 3120.5 GTC  (entry)`.
pub fn order_line(o: &OutgoingOrder) -> String {
    let mut s = format!("{} {} {} {}", o.side, o.order_type, o.qty, o.symbol);
    if let Some(stop) = o.stop_price {
        s.push_str(&format!(" stop {stop}"));
    }
    if let Some(p) = o.price {
        s.push_str(&format!(
            " {} {p}",
            if o.stop_price.is_some() { "limit" } else { "@" }
        ));
    }
    if let Some(tif) = o.time_in_force {
        s.push_str(&format!(" {tif}"));
    }
    let oco = if o.purpose.is_protective() { ", OCO" } else { "" };
    s.push_str(&format!("  ({}{oco})", purpose_label(o.purpose)));
    s
}

/// A text gauge `[█████░░░░░]` filled to `ratio` (0..=1).
fn gauge(theme: &Theme, ratio: Decimal, width: usize) -> String {
    let (full, empty) = theme.gauge_chars();
    let r = ratio.clamp(Decimal::ZERO, Decimal::ONE);
    let filled = (r * Decimal::from(width as u64))
        .round()
        .to_usize()
        .unwrap_or(0)
        .min(width);
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    s.extend(std::iter::repeat_n(full, filled));
    s.extend(std::iter::repeat_n(empty, width - filled));
    s.push(']');
    s
}

fn usage_style(theme: &Theme, ratio: Decimal) -> Style {
    if ratio >= Decimal::new(8, 1) {
        theme.negative()
    } else if ratio >= Decimal::new(5, 1) {
        theme.warning()
    } else {
        theme.positive()
    }
}

// ---------------------------------------------------------------------------------------------
// Header, tabs, footer

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => " LIVE ",
        Mode::Testnet => " TESTNET ",
        Mode::Demo => " DEMO ",
        Mode::Paper => " PAPER ",
        Mode::Sim => " SIM ",
    }
}

fn stream_spans(theme: &Theme, name: &'static str, h: StreamHealth) -> Vec<Span<'static>> {
    let (text, style) = match h.status {
        StreamStatus::Connected => ("ok".to_string(), theme.positive()),
        StreamStatus::Connecting => ("connecting".to_string(), theme.warning()),
        StreamStatus::Reconnecting { attempt } => (format!("retry#{attempt}"), theme.warning()),
        StreamStatus::Down => ("DOWN".to_string(), theme.negative().add_modifier(Modifier::BOLD)),
    };
    let mut v = vec![Span::raw(format!("{name} ")), Span::styled(text, style)];
    if let (StreamStatus::Connected, Some(ms)) = (h.status, h.latency_ms) {
        v.push(Span::raw(format!(" {ms}ms")));
    }
    v.push(Span::raw("  "));
    v
}

fn draw_header(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let h = &snap.header;
    let mut state: Vec<Span> = Vec::new();
    match &h.trading {
        TradingState::Halted { reason, since_ms } => {
            state.push(Span::styled(" HALTED ", theme.halted_badge()));
            state.push(Span::styled(
                format!(" {reason} since {}", clock(*since_ms)),
                theme.negative(),
            ));
        }
        _ if app.kill_sent => {
            state.push(Span::styled(" HALTED ", theme.halted_badge()));
            state.push(Span::styled(" kill sent, confirming...", theme.negative()));
        }
        TradingState::Reducing { reason, until_ms, .. } => {
            state.push(Span::styled(" REDUCING ", theme.reducing_badge()));
            let until = until_ms.map_or_else(
                || "until re-armed".to_string(),
                |t| format!("until {} UTC", hm(t)),
            );
            state.push(Span::styled(format!(" {reason}, {until}"), theme.warning()));
        }
        TradingState::Active => state.push(Span::styled(" ACTIVE ", theme.active_badge())),
    }
    let kill = app
        .config
        .keymap
        .kill_key()
        .map_or_else(|| "none".into(), |k| k.label(theme.ascii));
    let right_text = format!("{} UTC  {kill} KILL ", clock(snap.now_ms));
    let mut line1 = vec![
        Span::styled(mode_label(snap.mode), theme.mode_badge(snap.mode)),
        Span::raw(" "),
    ];
    line1.extend(state);
    let [left, right_area] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(right_text.chars().count() as u16),
    ])
    .areas(Rect { height: 1, ..area });
    frame.render_widget(Paragraph::new(Line::from(line1)), left);
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(right_text, theme.title())).right_aligned()),
        right_area,
    );

    let mut line2: Vec<Span> = Vec::new();
    line2.extend(stream_spans(theme, "mkt", h.market_stream));
    line2.extend(stream_spans(theme, "usr", h.user_stream));
    line2.push(Span::raw(format!(
        "clk {}  ",
        h.clock_offset_ms
            .map_or_else(|| "?".into(), |o| format!("{o:+}ms"))
    )));
    let r = h.rate_limits;
    line2.push(Span::raw(format!(
        "wt {}/{}  ord {}/{}  ",
        r.weight_used, r.weight_limit, r.orders_10s, r.orders_10s_limit
    )));
    let incomplete = snap.equity_status.is_incomplete();
    match (&snap.equity_status, &snap.equity) {
        (EquityStatus::Incomplete { .. }, _) => line2.push(Span::styled(
            "eq UNKNOWN (unpriced)",
            theme.warning().add_modifier(Modifier::BOLD),
        )),
        (EquityStatus::Complete { held }, Some(eq)) if !held.is_empty() => {
            let oldest = held.iter().map(|(_, age)| *age).max().unwrap_or(0);
            line2.push(Span::raw(format!("eq {} ", eq.display_2dp())));
            line2.push(Span::styled(
                format!("(held prices, {}s)", oldest / 1000),
                theme.warning(),
            ));
        }
        (_, Some(eq)) => line2.push(Span::raw(format!("eq {}", eq.display_2dp()))),
        (_, None) => {}
    }
    let l = &snap.limits;
    let day_ratio = l.usage()[0].1;
    let day_text = if incomplete {
        "? (equity incomplete)".to_string()
    } else {
        format!("{} {}%", money2(&l.day_pnl), signed2(l.day_pnl_pct))
    };
    let dd_text = if incomplete {
        format!("DD ?/{}%", plain(l.drawdown_limit_pct))
    } else {
        format!("DD {}/{}%", dp2(l.drawdown_pct), plain(l.drawdown_limit_pct))
    };
    let line3 = vec![
        Span::raw("day "),
        Span::styled(
            day_text,
            theme.signed(l.day_pnl.amount < Decimal::ZERO, l.day_pnl.amount.is_zero()),
        ),
        Span::styled(
            format!("/-{}%", plain(l.daily_loss_limit_pct)),
            usage_style(theme, day_ratio),
        ),
        Span::raw(format!(
            " resets {}Z ({})  ",
            hm(l.daily_reset_ms),
            duration(l.daily_reset_ms - snap.now_ms)
        )),
        Span::styled(dd_text, usage_style(theme, l.usage()[1].1)),
        Span::raw("  "),
        Span::styled(
            format!("trades {}/{}", l.trades_used, l.trades_limit),
            usage_style(theme, l.usage()[2].1),
        ),
    ];
    let mut line3 = line3;
    line3.extend(fee_spans(theme, &snap.fees_today));
    let mut lines = vec![Line::from(line2), Line::from(line3)];
    if area.height > 3 {
        let mut w: Vec<String> = h.warnings.clone();
        if let EquityStatus::Incomplete { unpriced, .. } = &snap.equity_status {
            let names: Vec<String> = unpriced.iter().map(|(a, _)| a.to_string()).collect();
            w.insert(
                0,
                format!(
                    "equity INCOMPLETE, no price for {}: P&L and drawdown unknown, entries refused",
                    names.join(", ")
                ),
            );
        }
        if !snap.unpriced_assets.is_empty() {
            let names: Vec<String> = snap.unpriced_assets.iter().map(|a| a.to_string()).collect();
            w.push(format!("not in equity (no USDT market): {}", names.join(", ")));
        }
        lines.push(Line::from(Span::styled(
            format!("! {}", w.join("  ! ")),
            theme.warning().add_modifier(Modifier::BOLD),
        )));
    }
    let rest = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    frame.render_widget(Paragraph::new(lines), rest);
}

fn draw_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let mut spans = Vec::new();
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let text = format!(" {} {} ", i + 1, tab.title());
        let style = if *tab == app.tab {
            theme.selected().add_modifier(Modifier::BOLD)
        } else {
            theme.plain()
        };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(if theme.ascii { "|" } else { "│" }));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let line = match &app.status {
        Some(s) => Line::from(Span::styled(s.clone(), theme.accent())),
        None => {
            let mut spans = Vec::new();
            let mut used = 0usize;
            for (key, hint) in app.config.keymap.hints(app.context(), theme.ascii) {
                // Whole hints only: a cut one ("c close positi") reads as a different key. The
                // first (the kill key) is always drawn.
                let width = key.chars().count() + hint.chars().count() + 1;
                if used > 0 && used + width > usize::from(area.width) {
                    break;
                }
                used += width + 2;
                let style = if hint == "KILL" {
                    theme.negative().add_modifier(Modifier::BOLD)
                } else {
                    theme.title()
                };
                spans.push(Span::styled(key, style));
                spans.push(Span::raw(format!(" {hint}  ")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

// ---------------------------------------------------------------------------------------------
// Layouts

fn draw_wide(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let [left, side] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(60)]).areas(area);
    let [top, orders, charts, log] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Fill(1),
        Constraint::Length(10),
    ])
    .areas(left);
    let [watch, positions] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [equity, candles] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let [limits, ticket] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(side);
    draw_watchlist(app, snap, frame, watch);
    draw_positions(app, snap, frame, positions);
    draw_orders(app, snap, frame, orders);
    draw_equity(app, snap, frame, equity);
    draw_candles(app, snap, frame, candles);
    draw_log(app, snap, frame, log);
    draw_limits(app, snap, frame, limits);
    draw_ticket(app, snap, frame, ticket, false);
}

fn draw_tab(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    match app.tab {
        Tab::Market => {
            let rows = (snap.watchlist.len() as u16 + 3).min(area.height / 2);
            let [a, b] = Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(area);
            draw_watchlist(app, snap, frame, a);
            draw_candles(app, snap, frame, b);
        }
        Tab::Positions => {
            let rows = (snap.positions.len() as u16 + 3).min(area.height / 2);
            let [a, b] = Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(area);
            draw_positions(app, snap, frame, a);
            draw_orders(app, snap, frame, b);
        }
        Tab::Risk => {
            let [a, b] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(area);
            draw_limits(app, snap, frame, a);
            draw_equity(app, snap, frame, b);
        }
        Tab::Log => draw_log(app, snap, frame, area),
        Tab::Ticket => draw_ticket(app, snap, frame, area, true),
    }
}

// ---------------------------------------------------------------------------------------------
// Panels

/// A table column: header, alignment, and when to drop it if the panel is too narrow
/// (0 = never; higher numbers go first). Numbers are never truncated: a column that does not
/// fit is left out whole.
struct Col {
    header: &'static str,
    right: bool,
    drop: u8,
}

type CellText = (String, Style);

/// A table whose columns are as wide as their content, dropping low-priority columns until
/// the rest fits in `width`.
fn fitted_table(
    theme: &Theme,
    cols: &[Col],
    rows: Vec<(Vec<CellText>, Style)>,
    width: u16,
) -> Table<'static> {
    let mut widths: Vec<u16> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let content = rows
                .iter()
                .filter_map(|(cells, _)| cells.get(i))
                .map(|(t, _)| t.chars().count());
            content.chain(std::iter::once(c.header.len())).max().unwrap_or(0) as u16
        })
        .collect();
    let mut keep: Vec<bool> = vec![true; cols.len()];
    let total = |widths: &[u16], keep: &[bool]| -> u16 {
        let n = keep.iter().filter(|k| **k).count() as u16;
        widths
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| *w)
            .sum::<u16>()
            + n.saturating_sub(1)
    };
    while total(&widths, &keep) > width {
        let victim = (0..cols.len())
            .filter(|i| keep[*i] && cols[*i].drop > 0)
            .max_by_key(|i| (cols[*i].drop, *i));
        match victim {
            Some(i) => keep[i] = false,
            None => break,
        }
    }
    let cell = |text: String, style: Style, right_align: bool| {
        let line = if right_align {
            Line::from(text).right_aligned()
        } else {
            Line::from(text)
        };
        Cell::from(line).style(style)
    };
    let header = Row::new(
        cols.iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| cell(c.header.to_string(), theme.title(), c.right)),
    );
    let body: Vec<Row> = rows
        .into_iter()
        .map(|(cells, style)| {
            Row::new(
                cells
                    .into_iter()
                    .zip(cols.iter().zip(&keep))
                    .filter(|(_, (_, k))| **k)
                    .map(|((t, st), (c, _))| cell(t, st, c.right)),
            )
            .style(style)
        })
        .collect();
    for (w, k) in widths.iter_mut().zip(&keep) {
        if !*k {
            *w = 0;
        }
    }
    let constraints: Vec<Constraint> = widths
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(w, _)| Constraint::Length(*w))
        .collect();
    Table::new(body, constraints)
        .header(header)
        .flex(ratatui::layout::Flex::SpaceBetween)
}

fn draw_watchlist(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let cols = [
        Col {
            header: "Symbol",
            right: false,
            drop: 0,
        },
        Col {
            header: "Last",
            right: true,
            drop: 0,
        },
        Col {
            header: "Bid",
            right: true,
            drop: 2,
        },
        Col {
            header: "Ask",
            right: true,
            drop: 2,
        },
        Col {
            header: "24h%",
            right: true,
            drop: 1,
        },
    ];
    let rows = snap
        .watchlist
        .iter()
        .map(|w| {
            let selected = snap.selected_symbol.as_ref() == Some(&w.symbol);
            let tick = snap.tick(&w.symbol);
            let name = format!(
                "{}{}{}",
                if selected { ">" } else { " " },
                w.symbol,
                if w.stale { " ~" } else { "" }
            );
            let change = w.change_24h_pct.map_or_else(|| "-".into(), signed2);
            let change_style = w
                .change_24h_pct
                .map_or_else(|| theme.plain(), |c| theme.signed(c < Decimal::ZERO, c.is_zero()));
            let p = theme.plain();
            let cells = vec![
                (name, p),
                (px(w.last, tick), p),
                (px(w.bid, tick), p),
                (px(w.ask, tick), p),
                (change, change_style),
            ];
            (cells, if w.stale { theme.dim() } else { p })
        })
        .collect();
    let focused = app.focus == Focus::Watchlist;
    let block = panel(theme, " Watchlist (~ stale) ", focused);
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state =
        TableState::default().with_selected((!snap.watchlist.is_empty()).then_some(app.watch_sel));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_positions(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let cols = [
        Col {
            header: "Symbol",
            right: false,
            drop: 0,
        },
        Col {
            header: "Qty",
            right: true,
            drop: 0,
        },
        Col {
            header: "Entry",
            right: true,
            drop: 2,
        },
        Col {
            header: "Mark",
            right: true,
            drop: 3,
        },
        Col {
            header: "uP&L",
            right: true,
            drop: 0,
        },
        // The percentage repeats uP&L: it goes first when the panel is narrow, so that
        // prices at their tick's decimals keep the Mark column.
        Col {
            header: "%",
            right: true,
            drop: 4,
        },
    ];
    let rows = snap
        .positions
        .iter()
        .map(|p| {
            let neg = p.unrealized.as_ref().is_some_and(|m| m.amount < Decimal::ZERO);
            let zero = p.unrealized.as_ref().is_none_or(|m| m.amount.is_zero());
            let pnl_style = theme.signed(neg, zero);
            // Dust (too small for any order to sell) is shown dimmed: still crbot's, but it
            // neither blocks a new entry nor gets protection.
            let plain_style = if p.dust { theme.dim() } else { theme.plain() };
            let tag = if p.external {
                " ext"
            } else if p.dust {
                " dust"
            } else {
                ""
            };
            let cells = vec![
                (format!("{}{tag}", p.symbol), plain_style),
                (p.qty.to_string(), plain_style),
                (
                    entry_price(p.avg_entry, p.mark, snap.tick(&p.symbol)),
                    plain_style,
                ),
                (px(p.mark, snap.tick(&p.symbol)), plain_style),
                (
                    p.unrealized
                        .as_ref()
                        .map_or_else(|| "-".into(), |m| signed2(m.amount)),
                    pnl_style,
                ),
                (p.unrealized_pct.map_or_else(|| "-".into(), signed2), pnl_style),
            ];
            (cells, plain_style)
        })
        .collect();
    let focused = app.focus == Focus::Positions;
    let block = panel(theme, " Positions (ext = external) ", focused);
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state =
        TableState::default().with_selected((!snap.positions.is_empty()).then_some(app.position_sel));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The average entry at the mark's precision (at least 2, at most 8 decimals). The entry is a
/// quotient (cost / quantity after a fee taken in the base asset) with up to 28 decimals; drawn
/// in full it was wide enough to push Entry and Mark out of the positions panel.
fn entry_price(
    entry: Option<crate::domain::Price>,
    mark: Option<crate::domain::Price>,
    tick: Option<Decimal>,
) -> String {
    let Some(entry) = entry else {
        return "-".into();
    };
    if let Some(t) = tick {
        return display_fixed(entry.value(), crate::domain::decimals_of(t));
    }
    let dp = mark.map_or(8, |m| m.value().normalize().scale().clamp(2, 8));
    crate::domain::money::display_trimmed(entry.value(), dp)
}

fn order_state(theme: &Theme, state: LocalOrderState, now_ms: i64) -> (String, Style) {
    match state {
        LocalOrderState::Unknown => (format!("{} UNKNOWN", theme.spinner(now_ms)), theme.warning()),
        LocalOrderState::Pending | LocalOrderState::Sending => (
            format!("{} {}", theme.spinner(now_ms), state.as_code()),
            theme.accent(),
        ),
        LocalOrderState::Exchange(OrderStatus::Rejected) => ("REJECTED".into(), theme.warning()),
        LocalOrderState::Exchange(s) => (s.as_wire().to_string(), theme.plain()),
        LocalOrderState::NotSent => ("NOT_SENT".into(), theme.dim()),
    }
}

fn draw_orders(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let cols = [
        Col {
            header: "Client id",
            right: false,
            drop: 3,
        },
        Col {
            header: "Symbol",
            right: false,
            drop: 0,
        },
        Col {
            header: "Side",
            right: false,
            drop: 0,
        },
        Col {
            header: "Type",
            right: false,
            drop: 0,
        },
        Col {
            header: "Price",
            right: true,
            drop: 0,
        },
        Col {
            header: "Stop",
            right: true,
            drop: 0,
        },
        Col {
            header: "Qty",
            right: true,
            drop: 0,
        },
        // Which order protects what matters more than how much of it filled (the state says
        // PARTIALLY_FILLED): on a narrow screen Filled goes first.
        Col {
            header: "Filled",
            right: true,
            drop: 2,
        },
        Col {
            header: "State",
            right: false,
            drop: 0,
        },
        Col {
            header: "Purpose",
            right: false,
            drop: 1,
        },
    ];
    let rows = snap
        .orders
        .iter()
        .map(|o| {
            let (state, state_style) = order_state(theme, o.state, snap.now_ms);
            let oco = if o.order_list_id.is_some() { " OCO" } else { "" };
            let p = theme.plain();
            let side_style = theme.signed(o.side == crate::domain::Side::Sell, false);
            let cells = vec![
                (o.client_order_id.to_string(), p),
                (o.symbol.to_string(), p),
                (o.side.as_wire().to_string(), side_style),
                (short_type(o.order_type).to_string(), p),
                (px(o.price, snap.tick(&o.symbol)), p),
                (px(o.stop_price, snap.tick(&o.symbol)), p),
                (o.qty.to_string(), p),
                (o.executed_qty.to_string(), p),
                (state, state_style),
                (format!("{}{oco}", purpose_label(o.purpose)), p),
            ];
            (cells, p)
        })
        .collect();
    let focused = app.focus == Focus::Orders;
    let block = panel(theme, format!(" Open orders ({}) ", snap.orders.len()), focused);
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state = TableState::default().with_selected((!snap.orders.is_empty()).then_some(app.order_sel));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_limits(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let l = &snap.limits;
    let usage = l.usage();
    let bar_w = 16;
    let gauge_line = |label: &'static str, ratio: Decimal, text: String, text_style: Style| {
        Line::from(vec![
            Span::raw(format!("{label:<9}")),
            Span::styled(gauge(theme, ratio, bar_w), usage_style(theme, ratio)),
            Span::raw(" "),
            Span::styled(text, text_style),
        ])
    };
    let day_style = theme.signed(l.day_pnl.amount < Decimal::ZERO, l.day_pnl.amount.is_zero());
    // With an incomplete equity there is no P&L: say so rather than draw a stale figure.
    let incomplete = snap.equity_status.is_incomplete();
    let (day_text, dd_text) = if incomplete {
        (
            format!("unknown (equity incomplete) / -{}%", dp2(l.daily_loss_limit_pct)),
            format!("unknown / {}%", dp2(l.drawdown_limit_pct)),
        )
    } else {
        (
            format!(
                "{} {}% / -{}%",
                money2(&l.day_pnl),
                signed2(l.day_pnl_pct),
                dp2(l.daily_loss_limit_pct)
            ),
            format!("{}% / {}%", dp2(l.drawdown_pct), dp2(l.drawdown_limit_pct)),
        )
    };
    let (day_style, dd_style) = if incomplete {
        (theme.warning(), theme.warning())
    } else {
        (day_style, theme.plain())
    };
    let lines = vec![
        gauge_line("Day P&L", usage[0].1, day_text, day_style),
        gauge_line("Drawdown", usage[1].1, dd_text, dd_style),
        gauge_line(
            "Trades",
            usage[2].1,
            format!("{} / {} today", l.trades_used, l.trades_limit),
            theme.plain(),
        ),
        Line::from(Span::styled(
            format!(
                "resets {} UTC (in {}) size<={}% R/R>={}",
                hm(l.daily_reset_ms),
                duration(l.daily_reset_ms - snap.now_ms),
                plain(l.position_size_limit_pct),
                plain(l.min_risk_reward)
            ),
            theme.dim(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(panel(theme, " Risk limits (L change) ", false)),
        area,
    );
}

/// A chart's value axis: the data's range padded by 5 % (at least 0.05 % of the top and at
/// least `min_pad`), computed in decimals so that the two labels are the bounds themselves,
/// shown by the display rounding rule at `dp` decimals. Returns the bounds for the chart and
/// their labels.
fn chart_axis(values: &[Decimal], min_pad: Decimal, dp: u32) -> ([f64; 2], [String; 2]) {
    let (Some(min), Some(max)) = (values.iter().min().copied(), values.iter().max().copied()) else {
        return ([0.0, 1.0], ["0".into(), "1".into()]);
    };
    let pad = max
        .checked_sub(min)
        .and_then(|r| r.checked_mul(Decimal::new(5, 2)))
        .unwrap_or(Decimal::ZERO)
        .max(max.abs() * Decimal::new(5, 4))
        .max(min_pad);
    let lo = min.checked_sub(pad).unwrap_or(min);
    let hi = max.checked_add(pad).unwrap_or(max);
    (
        [to_f64(lo), to_f64(hi)],
        [display_fixed(lo, dp), display_fixed(hi, dp)],
    )
}

fn draw_equity(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let points = snap.equity_curves.window(app.equity_window);
    let title = format!(" Equity: {} (w cycles) ", app.equity_window.label());
    let block = panel(theme, title, false);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        frame.render_widget(Paragraph::new("no equity samples yet").block(block), area);
        return;
    };
    let data: Vec<(f64, f64)> = points
        .iter()
        .map(|p| ((p.time_ms - first.time_ms) as f64 / 1000.0, to_f64(p.value)))
        .collect();
    let values: Vec<Decimal> = points.iter().map(|p| p.value).collect();
    let (y, y_labels) = chart_axis(&values, Decimal::new(1, 2), 2);
    let x_max = ((last.time_ms - first.time_ms) as f64 / 1000.0).max(1.0);
    let up = last.value >= first.value;
    let dataset = Dataset::default()
        .marker(theme.chart_marker())
        .graph_type(GraphType::Line)
        .style(if up { theme.positive() } else { theme.negative() })
        .data(&data);
    let chart = Chart::new(vec![dataset])
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels([hm(first.time_ms), hm(last.time_ms)])
                .style(theme.dim()),
        )
        .y_axis(Axis::default().bounds(y).labels(y_labels).style(theme.dim()));
    frame.render_widget(chart, area);
}

fn draw_candles(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let symbol = snap
        .selected_symbol
        .as_ref()
        .map_or_else(|| "-".into(), |s| s.to_string());
    let tick = snap.selected_symbol.as_ref().and_then(|s| snap.tick(s));
    let last = px(snap.candles.last().map(|c| c.close), tick);
    let block = panel(theme, format!(" {symbol} 1m: close, high/low  {last} "), false);
    let (Some(first), Some(end)) = (snap.candles.first(), snap.candles.last()) else {
        frame.render_widget(Paragraph::new("no candles yet").block(block), area);
        return;
    };
    let t = |ms: i64| (ms - first.open_ms) as f64 / 1000.0;
    let close: Vec<(f64, f64)> = snap
        .candles
        .iter()
        .map(|c| (t(c.open_ms), to_f64(c.close.value())))
        .collect();
    let high: Vec<(f64, f64)> = snap
        .candles
        .iter()
        .map(|c| (t(c.open_ms), to_f64(c.high.value())))
        .collect();
    let low: Vec<(f64, f64)> = snap
        .candles
        .iter()
        .map(|c| (t(c.open_ms), to_f64(c.low.value())))
        .collect();
    let extremes: Vec<Decimal> = snap
        .candles
        .iter()
        .flat_map(|c| [c.high.value(), c.low.value()])
        .collect();
    let dp = tick.map_or(2, crate::domain::decimals_of);
    let (y, y_labels) = chart_axis(&extremes, tick.unwrap_or(Decimal::new(1, 2)), dp);
    let x_max = t(end.open_ms).max(1.0);
    let up = end.close >= first.open;
    let dot = if theme.ascii {
        ratatui::symbols::Marker::Custom('.')
    } else {
        ratatui::symbols::Marker::Dot
    };
    let datasets = vec![
        Dataset::default()
            .marker(dot)
            .graph_type(GraphType::Scatter)
            .style(theme.dim())
            .data(&high),
        Dataset::default()
            .marker(dot)
            .graph_type(GraphType::Scatter)
            .style(theme.dim())
            .data(&low),
        Dataset::default()
            .marker(theme.chart_marker())
            .graph_type(GraphType::Line)
            .style(if up { theme.positive() } else { theme.negative() })
            .data(&close),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels([hm(first.open_ms), hm(end.open_ms)])
                .style(theme.dim()),
        )
        .y_axis(Axis::default().bounds(y).labels(y_labels).style(theme.dim()));
    frame.render_widget(chart, area);
}

fn draw_log(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    // Only the newest lines can be visible; wrapping needs at most one row per line anyway.
    let skip = snap.log.len().saturating_sub(usize::from(area.height));
    let lines: Vec<Line> = snap
        .log
        .iter()
        .skip(skip)
        .map(|l| {
            let style = match (l.level, l.kind) {
                (LogLevel::Error, _) | (_, LogKind::Rejection) | (_, LogKind::Kill) => theme.negative(),
                (_, LogKind::Fill) => theme.positive(),
                (LogLevel::Warn, _) => theme.warning(),
                _ => theme.plain(),
            };
            let level = match l.level {
                LogLevel::Info => "INFO ",
                LogLevel::Warn => "WARN ",
                LogLevel::Error => "ERROR",
            };
            Line::from(vec![
                Span::styled(format!("{} {level} ", clock(l.time_ms)), theme.dim()),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    let block = panel(theme, " Risk & event log ", false);
    let inner = block.inner(area);
    let scroll = wrapped_rows(&lines, inner.width).saturating_sub(inner.height);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block),
        area,
    );
}

// ---------------------------------------------------------------------------------------------
// Ticket

/// The preview lines for the current draft: verdict, every rule, numbers, outgoing orders.
fn preview_lines(
    theme: &Theme,
    preview: Option<&TicketPreview>,
    form: &TicketForm,
    compact: bool,
) -> Vec<Line<'static>> {
    let draft = form.draft();
    let Some(p) = preview.filter(|p| p.draft == draft) else {
        return vec![Line::from(Span::styled("checking the ticket...", theme.dim()))];
    };
    let mut lines = Vec::new();
    let failed = p.rules.iter().filter(|r| !r.passed).count();
    if p.approved {
        lines.push(Line::from(Span::styled(
            format!("APPROVED: all {} checks pass", p.rules.len()),
            theme.positive().add_modifier(Modifier::BOLD),
        )));
    } else if p.rules.is_empty() {
        // No rule ran: a field is empty or does not parse. "REFUSED: 0 of 0 checks fail" would
        // read as a verdict on an order nobody has finished typing.
        lines.push(Line::from(Span::styled(
            format!("NOT READY: {} field(s) to fill or fix", p.field_errors.len()),
            theme.warning().add_modifier(Modifier::BOLD),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            format!("REFUSED: {failed} of {} checks fail", p.rules.len()),
            theme.negative().add_modifier(Modifier::BOLD),
        )));
    }
    for (field, err) in &p.field_errors {
        lines.push(Line::from(Span::styled(
            format!("{}: {err}", field.label()),
            theme.negative(),
        )));
    }
    let (ok, no) = theme.marks();
    let code_w = if compact { 0 } else { 18 };
    for r in p.rules.iter().filter(|r| !compact || !r.passed) {
        let (mark, style) = if r.passed {
            (ok, theme.positive())
        } else {
            (no, theme.negative())
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), style),
            Span::styled(
                format!("{:<code_w$} ", r.code),
                if r.passed { theme.plain() } else { style },
            ),
            Span::raw(rule_detail(&r.code, &r.detail).to_string()),
        ]));
    }
    if compact {
        let passed: Vec<&str> = p
            .rules
            .iter()
            .filter(|r| r.passed)
            .map(|r| r.code.as_str())
            .collect();
        if !passed.is_empty() {
            lines.push(Line::from(vec![
                Span::styled(format!("{ok} "), theme.positive()),
                Span::raw(format!("passed: {}", passed.join(" "))),
            ]));
        }
    }
    let mut nums = Vec::new();
    if let Some(n) = p.notional {
        nums.push(format!("notional {}", n.display_dp(2)));
    }
    if let Some(f) = &p.fee_estimate {
        nums.push(format!("fee ~{}", f.display_2dp()));
    }
    if let Some(h) = &p.daily_loss_headroom {
        nums.push(format!("loss headroom {}", h.display_2dp()));
    }
    if !nums.is_empty() {
        lines.push(Line::from(nums.join("  ")));
    }
    if !p.orders.is_empty() {
        lines.push(Line::from(Span::styled("would send:", theme.title())));
        for o in &p.orders {
            lines.push(Line::from(format!("  {}", order_line(o))));
        }
    }
    lines
}

/// A rule's detail without a leading `CODE: `: the code is drawn in its own column, and the
/// risk engine's reasons start with it (`FAT_FINGER: limit price ...`), which drew it twice.
fn rule_detail<'a>(code: &str, detail: &'a str) -> &'a str {
    detail
        .strip_prefix(code)
        .and_then(|rest| rest.strip_prefix(':'))
        .map_or(detail, str::trim_start)
}

fn result_lines(theme: &Theme, snap: &Snapshot, form: Option<&TicketForm>) -> Vec<Line<'static>> {
    let Some(result) = &snap.ticket_result else {
        return vec![];
    };
    if let Some(f) = form
        && f.submitted.as_ref() != Some(&result.draft)
    {
        return vec![];
    }
    match &result.outcome {
        TicketOutcome::Accepted {
            client_order_id,
            detail,
        } => vec![Line::from(Span::styled(
            format!("ACCEPTED {client_order_id}: {detail}"),
            theme.positive().add_modifier(Modifier::BOLD),
        ))],
        TicketOutcome::Rejected { code, message } => vec![Line::from(Span::styled(
            format!(
                "REJECTED by Binance{}: {message}",
                code.map_or_else(String::new, |c| format!(" ({c})"))
            ),
            theme.negative().add_modifier(Modifier::BOLD),
        ))],
        TicketOutcome::RiskRejected { reasons } => {
            let mut v = vec![Line::from(Span::styled(
                "REFUSED by risk:",
                theme.negative().add_modifier(Modifier::BOLD),
            ))];
            v.extend(reasons.iter().map(|r| {
                Line::from(Span::styled(
                    format!("  {} {}", r.code, rule_detail(&r.code, &r.detail)),
                    theme.negative(),
                ))
            }));
            v
        }
        TicketOutcome::Sent { client_order_id } => vec![Line::from(Span::styled(
            format!("SENT {client_order_id}: waiting for the exchange's answer"),
            theme.warning(),
        ))],
        TicketOutcome::Unknown { client_order_id } => vec![Line::from(Span::styled(
            format!(
                "{} UNKNOWN {client_order_id}: being reconciled with the exchange",
                theme.spinner(snap.now_ms)
            ),
            theme.warning().add_modifier(Modifier::BOLD),
        ))],
    }
}

fn draw_ticket(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect, side_by_side: bool) {
    let theme = &app.config.theme;
    let focused = app.context() == Context::Ticket;
    let block = panel(theme, " Order ticket (t) ", focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(form) = &app.ticket else {
        let symbol = snap
            .watchlist
            .get(app.watch_sel)
            .map(|w| w.symbol.to_string())
            .unwrap_or_default();
        let mut lines = vec![Line::from(format!(
            "No ticket open. Press t for a ticket on {symbol}."
        ))];
        lines.extend(result_lines(theme, snap, None));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    };
    // Narrow: the fields in a grid of three columns above the verdict, so the verdict gets
    // the full width. Wide (the side panel): one field per row.
    let cols: u16 = if side_by_side && inner.width >= 66 { 3 } else { 1 };
    let field_rows = (TicketField::ALL.len() as u16).div_ceil(cols);
    let [fields_area, preview_area] =
        Layout::vertical([Constraint::Length(field_rows + 1), Constraint::Fill(1)]).areas(inner);
    let col_w = fields_area.width / cols;
    let preview = snap.ticket_preview.as_ref().filter(|p| p.draft == form.draft());
    for (i, field) in TicketField::ALL.iter().enumerate() {
        let (row, col) = (i as u16 / cols, i as u16 % cols);
        let y = fields_area.y + row;
        let x = fields_area.x + col * col_w;
        let is_focused = i == form.focused && focused;
        let has_error = preview.is_some_and(|p| p.field_errors.iter().any(|(f, _)| f == field));
        let label_style = if has_error {
            theme.negative().add_modifier(Modifier::BOLD)
        } else if is_focused {
            theme.accent().add_modifier(Modifier::BOLD)
        } else {
            theme.plain()
        };
        let marker = if is_focused { ">" } else { " " };
        let label = Rect {
            x,
            y,
            width: 13.min(col_w),
            height: 1,
        };
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!("{marker}{:<12}", field.label()),
                label_style,
            )),
            label,
        );
        let value = Rect {
            x: label.right(),
            y,
            width: col_w.saturating_sub(label.width + 1),
            height: 1,
        };
        if let Some(ta) = form.fields.get(i) {
            let mut ta = ta.clone();
            let underline = Style::default().add_modifier(Modifier::UNDERLINED);
            ta.set_style(underline);
            ta.set_cursor_style(if is_focused { theme.selected() } else { underline });
            frame.render_widget(&ta, value);
        }
    }
    let mut lines = result_lines(theme, snap, Some(form));
    let full = preview_lines(theme, snap.ticket_preview.as_ref(), form, false);
    let fits = wrapped_rows(&lines, preview_area.width) + wrapped_rows(&full, preview_area.width)
        <= preview_area.height;
    if fits {
        lines.extend(full);
    } else {
        lines.extend(preview_lines(theme, snap.ticket_preview.as_ref(), form, true));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), preview_area);
}

// ---------------------------------------------------------------------------------------------
// Overlays

/// Rows that `lines` take when wrapped at `width` (exact for lines that fit, an estimate for
/// word-wrapped ones).
fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines.iter().map(|l| l.width().max(1).div_ceil(w) as u16).sum()
}

fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_kill_panel(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let Some(kill) = &snap.kill else { return };
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{}{}",
            kill.stage.label(),
            if kill.done { " - done" } else { "..." }
        ),
        theme.title(),
    ))];
    let (ok, no) = theme.marks();
    for l in &kill.lines {
        let (mark, style) = match l.ok {
            Some(true) => (ok.to_string(), theme.positive()),
            Some(false) => (no.to_string(), theme.negative()),
            None => (theme.spinner(snap.now_ms).to_string(), theme.warning()),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} {:<10} ", l.symbol.as_str()), style),
            Span::raw(l.outcome.clone()),
        ]));
    }
    if kill.done && kill.stage == KillStage::Cancelled {
        lines.push(Line::from(Span::styled(
            "F flatten positions (asks first)   R re-arm   Esc hide",
            theme.accent(),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            "Esc hide (the kill continues)",
            theme.dim(),
        )));
    }
    let height = lines.len() as u16 + 2;
    let rect = popup(area, 64, height);
    let rect = Rect {
        y: area.bottom().saturating_sub(height),
        ..rect
    };
    frame.render_widget(Clear, rect);
    let block = panel(theme, Span::styled(" KILL SWITCH ", theme.halted_badge()), true);
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: false }),
        rect,
    );
}

fn draw_help(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let mut lines: Vec<Line> = Vec::new();
    let mut last = None;
    for (ctx, keys, help) in app.config.keymap.help_lines(theme.ascii) {
        if last != Some(ctx) {
            lines.push(Line::from(Span::styled(
                ctx.title(),
                theme.title().add_modifier(Modifier::UNDERLINED),
            )));
            last = Some(ctx);
        }
        lines.push(Line::from(vec![
            Span::styled(format!(" {keys:<10} "), theme.accent()),
            Span::raw(help),
        ]));
    }
    frame.render_widget(Clear, area);
    let block = panel(theme, " Keys (generated from the keymap; Esc closes) ", true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let per_col = usize::from(inner.height.max(1));
    let cols = lines.len().div_ceil(per_col).max(1);
    let constraints: Vec<Constraint> = (0..cols).map(|_| Constraint::Fill(1)).collect();
    let rects = Layout::horizontal(constraints).split(inner);
    for (i, chunk) in lines.chunks(per_col).enumerate() {
        if let Some(r) = rects.get(i) {
            frame.render_widget(Paragraph::new(Text::from(chunk.to_vec())), *r);
        }
    }
}

fn percent_spans(theme: &Theme, chosen: u8) -> Vec<Span<'static>> {
    let mut v = Vec::new();
    for (i, p) in PERCENTS.iter().enumerate() {
        let text = format!("[{} {p}%]", i + 1);
        v.push(Span::styled(
            text,
            if *p == chosen {
                theme.selected().add_modifier(Modifier::BOLD)
            } else {
                theme.plain()
            },
        ));
        v.push(Span::raw(" "));
    }
    v
}

fn draw_dialog(app: &App, snap: &Snapshot, dialog: &Dialog, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let live = snap.mode == Mode::Live;
    let mut lines: Vec<Line> = Vec::new();
    if live {
        lines.push(Line::from(Span::styled(
            " LIVE: real money ",
            theme.mode_badge(Mode::Live),
        )));
    }
    let mut field: Option<(&ratatui_textarea::TextArea<'static>, &Option<String>)> = None;
    let title = match dialog {
        Dialog::ConfirmSubmit { orders, .. } => {
            lines.push(Line::from(format!(
                "These {} orders will leave, exactly:",
                orders.len()
            )));
            for o in orders {
                lines.push(Line::from(Span::styled(
                    format!("  {}", order_line(o)),
                    theme.title(),
                )));
            }
            lines.push(Line::from(""));
            lines.push(Line::from("y / Enter: send    n / Esc: back to the ticket"));
            " Send this ticket? "
        }
        Dialog::ConfirmQuit { open_orders } => {
            lines.push(Line::from(format!(
                "{open_orders} open order{} stay on the exchange after crbot quits.",
                if *open_orders == 1 { "" } else { "s" }
            )));
            lines.push(Line::from(
                "Protective stop-loss/take-profit legs keep working there.",
            ));
            lines.push(Line::from("To cancel everything first, use the kill key."));
            lines.push(Line::from(""));
            lines.push(Line::from("y / Enter: quit    n / Esc: stay"));
            " Quit crbot? "
        }
        Dialog::ClosePosition {
            symbol,
            percent,
            external,
        } => {
            let held = snap.positions.iter().find(|p| &p.symbol == symbol).map(|p| p.qty);
            let amount = held
                .and_then(|q| q.checked_scale(Decimal::from(*percent) / Decimal::ONE_HUNDRED))
                .map_or_else(|| "?".into(), |q: Qty| q.to_string());
            lines.push(Line::from(format!(
                "Sell {percent}% of {} {symbol} at market: {amount}",
                opt(held)
            )));
            lines.push(Line::from(
                "(rounded down to the lot size; a remainder below it stays as dust)",
            ));
            lines.push(Line::from(percent_spans(theme, *percent)));
            if *external {
                lines.push(Line::from(Span::styled(
                    "External holding: crbot did not buy this. Selling it is your explicit choice.",
                    theme.warning(),
                )));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(
                "1-4 or Left/Right: choose   y / Enter: sell   n / Esc: back",
            ));
            " Close position "
        }
        Dialog::Flatten { percent } => {
            lines.push(Line::from(format!(
                "Sell {percent}% of every position crbot built, at market."
            )));
            lines.push(Line::from(
                "Lot sizes are respected and dust is reported. External holdings stay.",
            ));
            lines.push(Line::from(percent_spans(theme, *percent)));
            lines.push(Line::from(""));
            lines.push(Line::from(
                "1-4 or Left/Right: choose   y / Enter: flatten   n / Esc: back",
            ));
            " Flatten (kill switch, stage two) "
        }
        Dialog::Rearm { passphrase, error } => {
            let state = match &snap.header.trading {
                TradingState::Halted { reason, .. } => format!("HALTED: {reason}"),
                TradingState::Reducing { reason, .. } => format!("REDUCING: {reason}"),
                TradingState::Active => "HALTED: kill sent".into(),
            };
            lines.push(Line::from(format!("Trading is {state}.")));
            lines.push(Line::from("Re-arming allows new entries again. It is journaled."));
            lines.push(Line::from(""));
            match passphrase {
                Some(p) => {
                    // One mark per character typed, never the characters.
                    let mark = if theme.ascii { "*" } else { "•" };
                    lines.push(Line::from(vec![
                        Span::raw("Vault passphrase: "),
                        Span::styled(mark.repeat(p.expose().chars().count()), theme.title()),
                    ]));
                    if let Some(e) = error {
                        lines.push(Line::from(Span::styled(e.clone(), theme.negative())));
                    }
                    lines.push(Line::from(""));
                    lines.push(Line::from("Enter: re-arm    Esc: stay halted"));
                }
                None => lines.push(Line::from("y / Enter: re-arm    n / Esc: stay halted")),
            }
            " Re-arm trading? "
        }
        Dialog::AddSymbol { input, error } => {
            lines.push(Line::from("Symbol to add to the watchlist (e.g. ADAUSDT):"));
            field = Some((input, error));
            " Add symbol "
        }
        Dialog::Limit { choice, input, error } => {
            for (i, name) in LimitName::ALL.iter().enumerate() {
                let text = format!(
                    " {:<16} {:>6}  {}",
                    name.label(),
                    plain(snap.limits.value_of(*name)),
                    name.env_name()
                );
                let style = if i == *choice {
                    theme.selected()
                } else {
                    theme.plain()
                };
                lines.push(Line::from(Span::styled(text, style)));
            }
            lines.push(Line::from(Span::styled(
                "Up/Down choose. Tightening applies at once;",
                theme.dim(),
            )));
            lines.push(Line::from(Span::styled(
                "loosening asks you to type a confirmation.",
                theme.dim(),
            )));
            lines.push(Line::from("New value:"));
            field = Some((input, error));
            " Change a risk limit "
        }
        Dialog::ConfirmLimit {
            pending,
            input,
            error,
        } => {
            lines.push(Line::from(Span::styled(
                format!(
                    "Loosen {}: {} -> {}",
                    pending.name.env_name(),
                    plain(pending.from),
                    plain(pending.to)
                ),
                theme.warning().add_modifier(Modifier::BOLD),
            )));
            lines.push(Line::from("This allows more risk. Type exactly:"));
            lines.push(Line::from(Span::styled(
                format!("  {}", pending.phrase),
                theme.title(),
            )));
            field = Some((input, error));
            " Confirm loosening a limit "
        }
    };
    let extra = if field.is_some() { 4 } else { 0 };
    let width =
        (lines.iter().map(|l| l.width() as u16).max().unwrap_or(40) + 2).clamp(46, area.width.min(100));
    let height = wrapped_rows(&lines, width.saturating_sub(2)) + 2 + extra;
    let rect = popup(area, width, height);
    frame.render_widget(Clear, rect);
    let title_style = if live {
        theme.mode_badge(Mode::Live)
    } else {
        theme.title()
    };
    let block = panel(theme, Span::styled(title, title_style), true);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    frame.render_widget(Paragraph::new(lines.clone()).wrap(Wrap { trim: false }), inner);
    if let Some((input, error)) = field {
        let y = inner.y + wrapped_rows(&lines, inner.width);
        if y < inner.bottom() {
            let r = Rect {
                x: inner.x + 2,
                y,
                width: inner.width.saturating_sub(4),
                height: 1,
            };
            let mut ta = input.clone();
            ta.set_style(Style::default().add_modifier(Modifier::UNDERLINED));
            ta.set_cursor_style(theme.selected());
            frame.render_widget(&ta, r);
        }
        let mut tail = Vec::new();
        if let Some(e) = error {
            tail.push(Line::from(Span::styled(e.clone(), theme.negative())));
        }
        tail.push(Line::from("Enter: submit    Esc: cancel"));
        let r = Rect {
            x: inner.x,
            y: y + 2,
            width: inner.width,
            height: inner.bottom().saturating_sub(y + 2),
        };
        if r.height > 0 {
            frame.render_widget(Paragraph::new(tail).wrap(Wrap { trim: false }), r);
        }
    }
}
