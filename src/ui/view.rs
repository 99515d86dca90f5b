//! Drawing: the whole screen as a function of the [`App`] and the engine's [`Snapshot`].
//!
//! Owns: layout (every panel at once from 120×36 up — the order book and trades where the
//! ticket is while no ticket is open — tabs below that) and the order in which
//! panels, overlays and dialogs are drawn; each panel lives in a submodule of its own, and the
//! helpers they share (panel frames, fitted tables, number formatting, chart axes) in
//! `common`. Must not: change state, read a clock or do I/O; the same inputs always draw the
//! same cells. Exact decimals are formatted here; they become `f64` only as chart coordinates,
//! which place points and never carry an amount anyone acts on.

mod bars;
mod candles;
mod common;
mod depth;
mod dialogs;
mod equity;
mod event_log;
mod header;
mod history;
mod limits;
mod orders;
mod positions;
mod ticket;
mod trades;
mod watchlist;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

pub use self::common::order_line;
use super::app::{App, Tab};
use crate::engine::snapshot::Snapshot;

/// The smallest size that shows every panel at once.
pub const WIDE_MIN: (u16, u16) = (120, 36);

/// Draws the screen.
pub fn view(app: &App, snap: &Snapshot, frame: &mut Frame) {
    let area = frame.area();
    // Only what this frame draws can be clicked.
    app.regions.borrow_mut().clear();
    let theme = &app.config.theme;
    let warnings = !snap.header.warnings.is_empty()
        || !snap.unpriced_assets.is_empty()
        || snap.equity_status.is_incomplete()
        || !snap.unprotected().is_empty();
    let header_h = 3 + u16::from(warnings);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw_header(app, snap, frame, header);
    if area.width >= WIDE_MIN.0 && area.height >= WIDE_MIN.1 {
        draw_wide(app, snap, frame, body);
    } else {
        let [tabs, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        bars::draw_tabs(app, frame, tabs);
        draw_tab(app, snap, frame, rest);
    }
    bars::draw_footer(app, frame, footer);
    if app.kill_panel_visible(snap) && app.dialog.is_none() && !app.help {
        dialogs::draw_kill_panel(app, snap, frame, body);
    }
    if app.help {
        dialogs::draw_help(app, frame, body);
    }
    if let Some(dialog) = &app.dialog {
        dialogs::draw_dialog(app, snap, dialog, frame, body);
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
// Layouts

fn draw_wide(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let [left, side] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(60)]).areas(area);
    let [top, orders, charts, bottom] = Layout::vertical([
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
    let [log, history] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let [limits, ticket] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(side);
    watchlist::draw_watchlist(app, snap, frame, watch);
    positions::draw_positions(app, snap, frame, positions);
    orders::draw_orders(app, snap, frame, orders);
    equity::draw_equity(app, snap, frame, equity);
    candles::draw_candles(app, snap, frame, candles);
    event_log::draw_log(app, snap, frame, log);
    history::draw_history(app, snap, frame, history);
    limits::draw_limits(app, snap, frame, limits);
    if app.ticket.is_some() {
        ticket::draw_ticket(app, snap, frame, ticket, false);
    } else {
        // No ticket open: its hint, then the book and the tape of the selected symbol.
        let [hint, book] = Layout::vertical([Constraint::Length(3), Constraint::Fill(1)]).areas(ticket);
        ticket::draw_ticket(app, snap, frame, hint, false);
        draw_book(app, snap, frame, book);
    }
}

/// The order book and the trades, side by side.
fn draw_book(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let [depth, trades] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    depth::draw_depth(app, snap, frame, depth);
    trades::draw_trades(app, snap, frame, trades);
}

fn draw_tab(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    match app.tab {
        Tab::Market => {
            let rows = (snap.watchlist.len() as u16 + 3).min(area.height / 2);
            let [a, b] = Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(area);
            watchlist::draw_watchlist(app, snap, frame, a);
            candles::draw_candles(app, snap, frame, b);
        }
        Tab::Positions => {
            let rows = (snap.positions.len() as u16 + 3).min(area.height / 2);
            let [a, b] = Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(area);
            positions::draw_positions(app, snap, frame, a);
            orders::draw_orders(app, snap, frame, b);
        }
        Tab::Risk => {
            let [a, b] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(area);
            limits::draw_limits(app, snap, frame, a);
            equity::draw_equity(app, snap, frame, b);
        }
        Tab::Log => event_log::draw_log(app, snap, frame, area),
        Tab::Ticket => ticket::draw_ticket(app, snap, frame, area, true),
        Tab::Book => draw_book(app, snap, frame, area),
        Tab::History => history::draw_history(app, snap, frame, area),
    }
}
