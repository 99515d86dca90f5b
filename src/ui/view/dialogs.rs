//! Everything drawn over the panels: the kill-switch progress panel, the help overlay, and
//! the modal dialogs (confirm a ticket, quit, close a position, re-protect one whose
//! protection was lost, flatten, re-arm, add a symbol, change a risk limit and confirm
//! loosening it).
//!
//! Owns: those overlays and their text. Must not: draw a secret (the re-arm passphrase is one
//! mark per character), or a dialog in live mode without the "LIVE: real money" banner.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui_textarea::TextArea;
use rust_decimal::Decimal;

use super::common::{opt, order_line, panel, px, wrapped_rows};
use crate::domain::{Mode, OrderPurpose, OrderStatus, Price, Qty, Symbol, plain};
use crate::engine::snapshot::{
    EquityStatus, KillStage, LimitChangePending, LimitName, Snapshot, TradingState,
};
use crate::secret::SecretString;
use crate::ui::app::{App, Dialog, PERCENTS};
use crate::ui::keymap::Context;
use crate::ui::theme::Theme;

/// A rectangle of at most `width` × `height` centred in `area`.
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

pub(super) fn draw_kill_panel(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
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

pub(super) fn draw_help(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let entries = app.config.keymap.help_lines(theme.ascii);
    let key_w = entries
        .iter()
        .map(|(_, k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let help_w = entries
        .iter()
        .map(|(_, _, h)| h.chars().count())
        .max()
        .unwrap_or(0);
    // The entries of each section (context), in the keymap's order.
    let mut sections: Vec<(Context, Vec<Line>)> = Vec::new();
    for (ctx, keys, help) in entries {
        let line = Line::from(vec![
            Span::styled(format!(" {keys:<key_w$} "), theme.accent()),
            Span::raw(help),
        ]);
        match sections.last_mut() {
            Some((last, lines)) if *last == ctx => lines.push(line),
            _ => sections.push((ctx, vec![line])),
        }
    }
    let sizes: Vec<usize> = sections.iter().map(|(_, lines)| lines.len()).collect();
    frame.render_widget(Clear, area);
    let inner = Block::bordered().inner(area);
    // Whole entries in as many columns as fit; what does not fit below scrolls, never cut.
    let col_w = (key_w + help_w + 3) as u16;
    let cols = usize::from((inner.width / col_w.max(1)).max(1));
    let height = usize::from(inner.height.max(1));
    // Columns as tall as the panel (as few as needed); taller only when even all of them are
    // not enough, and then the rows scroll.
    let mut per_col = height.max(2);
    while help_columns(&sizes, per_col).len() > cols {
        per_col += 1;
    }
    let max_scroll = per_col.saturating_sub(height);
    let scroll = app.help_scroll.min(max_scroll);
    let title = if max_scroll > 0 {
        let arrows = if theme.ascii { "Up/Down" } else { "↑↓" };
        let end = (scroll + height).min(per_col);
        format!(
            " Keys ({}-{end} of {per_col} rows; {arrows} scroll, Esc closes) ",
            scroll + 1
        )
    } else {
        " Keys (generated from the keymap; Esc closes) ".to_string()
    };
    let block = panel(theme, title, true);
    frame.render_widget(block, area);
    let constraints: Vec<Constraint> = (0..cols).map(|_| Constraint::Length(col_w)).collect();
    let rects = Layout::horizontal(constraints).split(inner);
    let heading = |ctx: Context, again: bool| {
        let text = if again {
            format!("{} (cont.)", ctx.title())
        } else {
            ctx.title().to_string()
        };
        Line::from(Span::styled(
            text,
            theme.title().add_modifier(Modifier::UNDERLINED),
        ))
    };
    for (column, r) in help_columns(&sizes, per_col).into_iter().zip(rects.iter()) {
        let shown: Vec<Line> = column
            .into_iter()
            .skip(scroll)
            .take(height)
            .map(|slot| match slot {
                HelpSlot::Title { section, again } => heading(sections[section].0, again),
                HelpSlot::Entry { section, entry } => sections[section].1[entry].clone(),
            })
            .collect();
        frame.render_widget(Paragraph::new(Text::from(shown)), *r);
    }
}

/// One row of a help column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelpSlot {
    /// A section's title; `again` where a column goes on with a section begun in the one
    /// before.
    Title {
        section: usize,
        again: bool,
    },
    Entry {
        section: usize,
        entry: usize,
    },
}

/// The help's sections (`sizes`: entries of each) laid in columns of `per_col` rows (at least
/// 2): a section that fits in a column is never split; one that does not goes on in the next
/// column under its title again. A title never ends a column alone, nor does an entry start
/// one without its title.
fn help_columns(sizes: &[usize], per_col: usize) -> Vec<Vec<HelpSlot>> {
    let per_col = per_col.max(2);
    let mut columns: Vec<Vec<HelpSlot>> = Vec::new();
    let mut column: Vec<HelpSlot> = Vec::new();
    for (section, &size) in sizes.iter().enumerate() {
        let left = per_col - column.len();
        let fits_whole = size < per_col;
        if !column.is_empty() && ((fits_whole && size + 1 > left) || left < 2) {
            columns.push(std::mem::take(&mut column));
        }
        column.push(HelpSlot::Title {
            section,
            again: false,
        });
        for entry in 0..size {
            if column.len() == per_col {
                columns.push(std::mem::take(&mut column));
                column.push(HelpSlot::Title { section, again: true });
            }
            column.push(HelpSlot::Entry { section, entry });
        }
    }
    if !column.is_empty() {
        columns.push(column);
    }
    columns
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

// ---------------------------------------------------------------------------------------------
// Modal dialogs

/// A dialog's text field and the error its last entry got.
type Field<'a> = (&'a TextArea<'static>, &'a Option<String>);

pub(super) fn draw_dialog(app: &App, snap: &Snapshot, dialog: &Dialog, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let live = snap.mode == Mode::Live;
    let mut lines: Vec<Line<'static>> = Vec::new();
    if live {
        lines.push(Line::from(Span::styled(
            " LIVE: real money ",
            theme.mode_badge(Mode::Live),
        )));
    }
    let (title, field) = dialog_body(theme, snap, dialog, &mut lines);
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
    if let Some(field) = field {
        let y = inner.y + wrapped_rows(&lines, inner.width);
        draw_field(theme, field, frame, inner, y);
    }
}

/// Appends the dialog's own lines and returns its title and its text field, if it has one.
fn dialog_body<'a>(
    theme: &Theme,
    snap: &Snapshot,
    dialog: &'a Dialog,
    lines: &mut Vec<Line<'static>>,
) -> (&'static str, Option<Field<'a>>) {
    match dialog {
        Dialog::ConfirmSubmit { orders, .. } => {
            lines.push(Line::from(match orders.len() {
                1 => "This order will leave, exactly:".to_string(),
                n => format!("These {n} orders will leave, exactly:"),
            }));
            for o in orders {
                lines.push(Line::from(Span::styled(
                    format!("  {}", order_line(o)),
                    theme.title(),
                )));
            }
            lines.push(Line::from(""));
            lines.push(Line::from("y / Enter: send    n / Esc: back to the ticket"));
            (" Send this ticket? ", None)
        }
        Dialog::ConfirmQuit { open_orders } => {
            // Before the account is loaded from the exchange, what stays there is not known:
            // "0 open orders" would be a guess.
            let orders = if matches!(snap.equity_status, EquityStatus::Pending) && *open_orders == 0 {
                "whatever orders are open (not loaded yet) stay".to_string()
            } else if *open_orders == 1 {
                "1 open order stays".to_string()
            } else {
                format!("{open_orders} open orders stay")
            };
            match &snap.attached_to {
                // An attached screen: quitting closes this screen only.
                Some(engine) => {
                    lines.push(Line::from(format!(
                        "Only this screen closes: the engine keeps running ({engine})."
                    )));
                    lines.push(Line::from(format!(
                        "Its protection goes on; {orders} on the exchange."
                    )));
                }
                None => {
                    lines.push(Line::from(format!("{orders} on the exchange after crbot quits.")));
                    lines.push(Line::from(
                        "Protective stop-loss/take-profit legs keep working there.",
                    ));
                }
            }
            lines.push(Line::from("To cancel everything first, use the kill key."));
            lines.push(Line::from(""));
            lines.push(Line::from("y / Enter: quit    n / Esc: stay"));
            (" Quit crbot? ", None)
        }
        Dialog::CancelProtection { symbol, purpose, .. } => {
            cancel_protection_lines(theme, symbol, *purpose, lines);
            (" Cancel the protection? ", None)
        }
        Dialog::CancelOrder { order, line } => {
            lines.push(Line::from(format!("Cancel {line}?")));
            lines.push(Line::from(Span::styled(format!("({order})"), theme.dim())));
            lines.push(Line::from(""));
            lines.push(Line::from("y / Enter: cancel it    n / Esc: keep it"));
            (" Cancel the order? ", None)
        }
        Dialog::ClosePosition {
            symbol,
            percent,
            external,
        } => {
            close_position_lines(theme, snap, symbol, *percent, *external, lines);
            (" Close position ", None)
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
            (" Flatten (kill switch, stage two) ", None)
        }
        Dialog::Reprotect {
            symbol,
            stop_loss,
            take_profit,
            cause,
        } => (
            reprotect_lines(theme, snap, symbol, (*stop_loss, *take_profit), *cause, lines),
            None,
        ),
        Dialog::Rearm { passphrase, error } => {
            rearm_lines(theme, snap, passphrase.as_ref(), error.as_deref(), lines);
            (" Re-arm trading? ", None)
        }
        Dialog::AddSymbol { input, error } => {
            lines.push(Line::from(
                "Symbol to add to the watchlist (e.g. ADAUSDT; Tab completes):",
            ));
            (" Add symbol ", Some((input, error)))
        }
        Dialog::Filter { input, error, .. } => {
            lines.push(Line::from(
                "Show the rows whose symbol contains (empty: every row):",
            ));
            (" / filter ", Some((input, error)))
        }
        Dialog::CommandLine { input, error } => {
            lines.push(Line::from(
                "buy/sell SYMBOL QTY [--limit P | --market] [--stop-loss P] [--take-profit P]",
            ));
            lines.push(Line::from(Span::styled(
                format!(
                    "{}  (an order fills the ticket: nothing is sent from here)",
                    crate::ui::command::COMMANDS
                ),
                theme.dim(),
            )));
            (" : command ", Some((input, error)))
        }
        Dialog::Limit { choice, input, error } => {
            limit_lines(theme, snap, *choice, lines);
            (" Change a risk limit ", Some((input, error)))
        }
        Dialog::ConfirmLimit {
            pending,
            input,
            error,
        } => {
            confirm_limit_lines(theme, pending, lines);
            (" Confirm loosening a limit ", Some((input, error)))
        }
    }
}

fn close_position_lines(
    theme: &Theme,
    snap: &Snapshot,
    symbol: &Symbol,
    percent: u8,
    external: bool,
    lines: &mut Vec<Line<'static>>,
) {
    let held = snap.positions.iter().find(|p| &p.symbol == symbol).map(|p| p.qty);
    let step = snap.market_steps.get(symbol).copied();
    // What will be sent: the share, rounded down to the market lot step when it is known.
    let amount = held
        .and_then(|q| q.checked_scale(Decimal::from(percent) / Decimal::ONE_HUNDRED))
        .map(|q: Qty| match step {
            Some(s) if s > Decimal::ZERO => ((q.value() / s).floor() * s).normalize().to_string(),
            _ => q.to_string(),
        })
        .unwrap_or_else(|| "?".into());
    lines.push(Line::from(format!(
        "Sell {percent}% of {} {symbol} at market: {amount}",
        opt(held)
    )));
    lines.push(Line::from(match step {
        Some(s) => format!(
            "(rounded down to the lot step {}; a remainder below it stays as dust)",
            s.normalize()
        ),
        None => "(rounded down to the lot size; a remainder below it stays as dust)".to_string(),
    }));
    lines.push(Line::from(percent_spans(theme, percent)));
    if external {
        lines.push(Line::from(Span::styled(
            "External holding: crbot did not buy this. Selling it is your explicit choice.",
            theme.warning(),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(
        "1-4 or Left/Right: choose   y / Enter: sell   n / Esc: back",
    ));
}

fn cancel_protection_lines(
    theme: &Theme,
    symbol: &Symbol,
    purpose: OrderPurpose,
    lines: &mut Vec<Line<'static>>,
) {
    let leg = if purpose == OrderPurpose::StopLoss {
        "stop-loss"
    } else {
        "take-profit"
    };
    lines.push(Line::from(format!(
        "This {leg} is one leg of {symbol}'s protective OCO: the exchange cancels both legs."
    )));
    lines.push(Line::from(Span::styled(
        format!("The {symbol} position is then UNPROTECTED on the exchange."),
        theme.negative(),
    )));
    lines.push(Line::from(""));
    lines.push(Line::from("y / Enter: cancel both legs    n / Esc: keep them"));
}

/// The re-protect offer: what was lost and why (when the engine saw it end), then exactly
/// what would be placed, for the quantity the engine would send. Returns the title.
fn reprotect_lines(
    theme: &Theme,
    snap: &Snapshot,
    symbol: &Symbol,
    (stop_loss, take_profit): (Price, Price),
    cause: Option<(OrderPurpose, OrderStatus)>,
    lines: &mut Vec<Line<'static>>,
) -> &'static str {
    match cause {
        Some((leg, status)) => {
            let leg = crate::ui::format::purpose_label(leg);
            let why = match status {
                OrderStatus::ExpiredInMatch => "self-trade prevention",
                OrderStatus::Canceled => "cancelled outside crbot",
                OrderStatus::Expired => "expired by the exchange",
                _ => "ended on the exchange",
            };
            lines.push(Line::from(Span::styled(
                format!("{symbol} protection lost: {leg} leg {status} ({why})."),
                theme.negative().add_modifier(Modifier::BOLD),
            )));
        }
        None => lines.push(Line::from(Span::styled(
            format!("{symbol}: no stop-loss on the exchange."),
            theme.negative().add_modifier(Modifier::BOLD),
        ))),
    }
    let tick = snap.tick(symbol);
    let amount = match snap.protect_qty.get(symbol) {
        Some(q) => {
            let base = symbol.as_str().strip_suffix("USDT").unwrap_or(symbol.as_str());
            format!("{q} {base}")
        }
        None => "nothing (no position left to cover)".to_string(),
    };
    lines.push(Line::from(format!(
        "Re-place stop {} / take-profit {} for {amount}?",
        px(Some(stop_loss), tick),
        px(Some(take_profit), tick)
    )));
    lines.push(Line::from(Span::styled(
        "An OCO sell; the risk check decides and the journal records it.",
        theme.dim(),
    )));
    lines.push(Line::from(""));
    lines.push(Line::from("[y] re-protect   [n/Esc] leave unprotected"));
    if cause.is_some() {
        " Protection lost "
    } else {
        " Re-protect the position? "
    }
}

/// `passphrase` is `Some` in a mode with keys: re-arming then needs the vault passphrase.
fn rearm_lines(
    theme: &Theme,
    snap: &Snapshot,
    passphrase: Option<&SecretString>,
    error: Option<&str>,
    lines: &mut Vec<Line<'static>>,
) {
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
                lines.push(Line::from(Span::styled(e.to_string(), theme.negative())));
            }
            lines.push(Line::from(""));
            lines.push(Line::from("Enter: re-arm    Esc: stay halted"));
        }
        None => lines.push(Line::from("y / Enter: re-arm    n / Esc: stay halted")),
    }
}

fn limit_lines(theme: &Theme, snap: &Snapshot, choice: usize, lines: &mut Vec<Line<'static>>) {
    for (i, name) in LimitName::ALL.iter().enumerate() {
        let text = format!(
            " {:<16} {:>6}  {}",
            name.label(),
            plain(snap.limits.value_of(*name)),
            name.env_name()
        );
        let style = if i == choice {
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
}

fn confirm_limit_lines(theme: &Theme, pending: &LimitChangePending, lines: &mut Vec<Line<'static>>) {
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
}

/// The text field at row `y` of the dialog's `inner` area (if it still fits), then its error
/// and the keys that submit or cancel it.
fn draw_field(theme: &Theme, (input, error): Field<'_>, frame: &mut Frame, inner: Rect, y: u16) {
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

#[cfg(test)]
mod tests {
    use super::{HelpSlot, help_columns};

    fn starts(columns: &[Vec<HelpSlot>]) -> Vec<HelpSlot> {
        columns.iter().map(|c| c[0]).collect()
    }

    #[test]
    fn a_help_column_starts_with_a_title_and_never_ends_on_one() {
        // Sections of 2, 3 and 2 entries in columns of 5 rows: the second would not fit
        // after the first (3 rows used), so it opens the next column whole.
        let columns = help_columns(&[2, 3, 2], 5);
        assert_eq!(columns.len(), 3);
        for c in &columns {
            assert!(matches!(c[0], HelpSlot::Title { .. }), "{c:?}");
            assert!(matches!(c.last(), Some(HelpSlot::Entry { .. })), "{c:?}");
            assert!(c.len() <= 5);
        }
        // A section longer than a column goes on under its title again.
        let columns = help_columns(&[6], 4);
        assert_eq!(
            starts(&columns),
            vec![
                HelpSlot::Title {
                    section: 0,
                    again: false
                },
                HelpSlot::Title {
                    section: 0,
                    again: true
                },
            ]
        );
        let entries: usize = columns
            .iter()
            .flatten()
            .filter(|s| matches!(s, HelpSlot::Entry { .. }))
            .count();
        assert_eq!(entries, 6, "every entry once");
    }
}
