//! The watchlist panel: last, bid, ask and 24 h change of every watched symbol, the selected
//! one marked, a stale quote dimmed and tagged `~`.
//!
//! Owns: the watchlist table. Must not: round a price other than at its symbol's tick.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::TableState;
use rust_decimal::Decimal;

use super::common::{Col, filter_note, fitted_table, panel, px, record_region, signed2};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};

pub(super) fn draw_watchlist(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
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
    let shown = app.visible(Focus::Watchlist, snap);
    let rows = shown
        .iter()
        .filter_map(|i| snap.watchlist.get(*i))
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
    let block = panel(
        theme,
        format!(" Watchlist (~ stale){} ", filter_note(app, Focus::Watchlist)),
        focused,
    );
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state = TableState::default().with_selected(app.shown_selection(Focus::Watchlist, snap));
    frame.render_stateful_widget(table, area, &mut state);
    record_region(app, Focus::Watchlist, area, state.offset());
}
