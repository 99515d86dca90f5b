//! The history panel: the journal's fills and orders, today's and earlier, newest first, with
//! the P&L each sell realized; above them, today's realized P&L and each position's.
//!
//! Owns: the history table and its summary line. Must not: read the journal (the engine
//! publishes a bounded read) or round a price other than at its symbol's tick.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, TableState};

use super::common::{Col, filter_note, panel, record_region, signed2, sized_table};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};
use crate::ui::history::{COLUMNS, Tone};

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
    let table = app.history_table(snap);
    let shown = table.shown();
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
            Paragraph::new(if table.is_empty() {
                "no fills or orders in the journal".to_string()
            } else {
                format!(
                    "no row of {} matches /{}",
                    table.len(),
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
    // Only the rows that can be on screen are built: the table scrolls the selection into
    // view from its first row, so a window from one screenful above the selection to two
    // below its start scrolls to where the whole list would.
    let selected = table.shown_position(app.history_sel);
    let screenful = usize::from(table_area.height);
    let start = selected.map_or(0, |s| s.saturating_sub(screenful));
    let end = shown.len().min(start + 2 * screenful + 1);
    let style = |tone: Tone| match tone {
        Tone::Plain => theme.plain(),
        Tone::Dim => theme.dim(),
        Tone::Positive => theme.positive(),
        Tone::Signed { negative, zero } => theme.signed(negative, zero),
    };
    let rows = shown[start..end]
        .iter()
        .filter_map(|i| table.line(*i))
        .map(|line| {
            let cells = line
                .cells
                .iter()
                .map(|(text, tone)| (text.clone(), style(*tone)))
                .collect();
            (cells, theme.plain())
        })
        .collect();
    let widths: [usize; COLUMNS] = *table.widths();
    let ratatui_table = sized_table(theme, &cols, &widths, rows, table_area.width)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state = TableState::default().with_selected(selected.map(|s| s - start));
    frame.render_stateful_widget(ratatui_table, table_area, &mut state);
    // The region's first data row is two below its top: here the summary line is the first.
    record_region(
        app,
        Focus::History,
        Rect {
            y: table_area.y.saturating_sub(1),
            ..table_area
        },
        start + state.offset(),
    );
}
