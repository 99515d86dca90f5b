//! The history panel: the journal's fills and orders, today's and earlier, newest first, with
//! the P&L each sell realized; above them, today's realized P&L and each position's.
//!
//! Owns: the history table and its summary line. Must not: read the journal (the engine
//! publishes a bounded read) or round a price other than at its symbol's tick.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, TableState};

use super::common::{Col, filter_note, fitted_table, panel, purpose_label, record_region, signed2};
use crate::domain::{display_price, plain};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};
use crate::ui::history::{HistoryRow, history_rows};

/// `HH:MM:SS` for a time of the snapshot's UTC day, `MM-DD HH:MM` for an earlier one.
fn when(ms: i64, now_ms: i64) -> String {
    let (Some(t), Some(now)) = (
        chrono::DateTime::from_timestamp_millis(ms),
        chrono::DateTime::from_timestamp_millis(now_ms),
    ) else {
        return "-".into();
    };
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

/// Today's realized P&L and each position's, on one line.
fn summary(app: &App, snap: &Snapshot) -> Line<'static> {
    let theme = &app.config.theme;
    let mut spans = vec![Span::styled("realized today ", theme.dim())];
    match snap.history.day_realized {
        Some(d) => spans.push(Span::styled(
            format!("{} USDT", signed2(d)),
            theme.signed(d.is_sign_negative(), d.is_zero()),
        )),
        None => spans.push(Span::raw("unknown")),
    }
    if !snap.books.realized.is_empty() {
        spans.push(Span::styled("  by position: ", theme.dim()));
        for (i, (symbol, money)) in snap.books.realized.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw(", "));
            }
            let d = money.amount();
            spans.push(Span::raw(format!("{symbol} ")));
            spans.push(Span::styled(
                signed2(d),
                theme.signed(d.is_sign_negative(), d.is_zero()),
            ));
        }
    }
    if let Some(e) = &snap.history.error {
        spans.push(Span::styled(format!("  read failed: {e}"), theme.warning()));
    }
    Line::from(spans)
}

pub(super) fn draw_history(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let all = history_rows(snap);
    let shown = app.visible(Focus::History, snap);
    let focused = app.focus == Focus::History;
    let block = panel(
        theme,
        format!(
            " History: fills & orders ({}){} ",
            shown.len(),
            filter_note(app, Focus::History)
        ),
        focused,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [top, table_area] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(summary(app, snap)), top);
    if !snap.history.loaded {
        frame.render_widget(
            Paragraph::new("reading the journal...").style(theme.dim()),
            table_area,
        );
        return;
    }
    if shown.is_empty() {
        frame.render_widget(
            Paragraph::new(if all.is_empty() {
                "no fills or orders in the journal".to_string()
            } else {
                format!(
                    "no row of {} matches /{}",
                    all.len(),
                    app.filters[Focus::History.index()]
                )
            })
            .style(theme.dim()),
            table_area,
        );
        return;
    }
    let cols = [
        Col {
            header: "When",
            right: false,
            drop: 0,
        },
        Col {
            header: "Symbol",
            right: false,
            drop: 0,
        },
        Col {
            header: "What",
            right: false,
            drop: 0,
        },
        Col {
            header: "Side",
            right: false,
            drop: 0,
        },
        Col {
            header: "Qty",
            right: true,
            drop: 0,
        },
        Col {
            header: "Price",
            right: true,
            drop: 0,
        },
        Col {
            header: "Detail",
            right: false,
            drop: 2,
        },
        Col {
            header: "Realized",
            right: true,
            drop: 1,
        },
    ];
    let rows = shown
        .iter()
        .filter_map(|i| all.get(*i))
        .map(|row| row_cells(app, snap, row))
        .collect();
    let table = fitted_table(theme, &cols, rows, table_area.width).row_highlight_style(if focused {
        theme.selected()
    } else {
        theme.plain()
    });
    let mut state = TableState::default().with_selected(app.shown_selection(Focus::History, snap));
    frame.render_stateful_widget(table, table_area, &mut state);
    // The region's first data row is two below its top: here the summary line is the first.
    record_region(
        app,
        Focus::History,
        Rect {
            y: table_area.y.saturating_sub(1),
            ..table_area
        },
        state.offset(),
    );
}

/// One row's cells: a fill with its fee and what it realized, or an order with its type,
/// state and purpose.
fn row_cells(
    app: &App,
    snap: &Snapshot,
    row: &HistoryRow,
) -> (Vec<(String, ratatui::style::Style)>, ratatui::style::Style) {
    let theme = &app.config.theme;
    let tick = snap.tick(row.symbol());
    let p = theme.plain();
    match row {
        HistoryRow::Fill { fill, realized } => {
            let (pnl, pnl_style) = match realized {
                Some(d) => (signed2(*d), theme.signed(d.is_sign_negative(), d.is_zero())),
                None => ("".into(), p),
            };
            let cells = vec![
                (when(fill.time_ms, snap.now_ms), theme.dim()),
                (fill.symbol.to_string(), p),
                ("fill".into(), theme.positive()),
                (fill.side.to_string(), p),
                (plain(fill.qty.value()), p),
                (display_price(fill.price.value(), tick), p),
                (
                    format!("fee {} {}", plain(fill.commission.value()), fill.commission_asset),
                    theme.dim(),
                ),
                (pnl, pnl_style),
            ];
            (cells, p)
        }
        HistoryRow::Order(o) => {
            let price = o
                .price
                .map_or_else(|| "-".into(), |v| display_price(v.value(), tick));
            let cells = vec![
                (when(o.created_ms, snap.now_ms), theme.dim()),
                (o.symbol.to_string(), p),
                ("order".into(), p),
                (o.side.to_string(), p),
                (plain(o.qty.value()), p),
                (price, p),
                (
                    format!(
                        "{} {} {}",
                        o.order_type,
                        o.state.as_code(),
                        purpose_label(o.purpose)
                    ),
                    theme.dim(),
                ),
                (String::new(), p),
            ];
            (cells, p)
        }
    }
}
