//! The watchlist panel: last, bid, ask and 24 h change of every watched symbol, the selected
//! one marked, a stale quote dimmed and tagged `~`, a symbol with an armed price alert tagged
//! `*` and one whose alert fired `!`; the alerts themselves listed under the symbols.
//!
//! Owns: the watchlist table. Must not: round a price other than at its symbol's tick.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::TableState;
use rust_decimal::Decimal;

use super::common::{CellText, Col, filter_note, fitted_table, hm, panel, px, record_region, signed2};
use crate::domain::{Symbol, display_price};
use crate::engine::snapshot::{Crossing, Snapshot};
use crate::ui::app::{App, Focus};
use crate::ui::theme::Theme;

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
                "{}{}{}{}",
                if selected { ">" } else { " " },
                w.symbol,
                alert_mark(snap, &w.symbol),
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
        .chain(alert_rows(theme, snap))
        .collect();
    let focused = app.focus == Focus::Watchlist;
    let legend = if snap.price_alerts.is_empty() {
        "~ = stale"
    } else {
        "~ = stale, * = alert, ! = fired"
    };
    let block = panel(
        theme,
        format!(" Watchlist ({legend}){} ", filter_note(app, Focus::Watchlist)),
        focused,
    );
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state = TableState::default().with_selected(app.shown_selection(Focus::Watchlist, snap));
    frame.render_stateful_widget(table, area, &mut state);
    record_region(app, Focus::Watchlist, area, state.offset());
}

/// ` !` when an alert on the symbol fired, ` *` when one is armed, else nothing.
fn alert_mark(snap: &Snapshot, symbol: &Symbol) -> &'static str {
    let mut mark = "";
    for a in snap.price_alerts.iter().filter(|a| &a.symbol == symbol) {
        if a.fired.is_some() {
            return " !";
        }
        mark = " *";
    }
    mark
}

/// The price alerts, after the symbols: what each waits for, armed or when it fired and at
/// what price. A fired one stands out until it is cleared (`:alert clear`).
fn alert_rows<'a>(
    theme: &'a Theme,
    snap: &'a Snapshot,
) -> impl Iterator<Item = (Vec<CellText>, ratatui::style::Style)> + 'a {
    snap.price_alerts.iter().map(move |a| {
        let tick = snap.tick(&a.symbol);
        let way = match (a.crossing, theme.ascii) {
            (Crossing::Above, false) => "≥",
            (Crossing::Below, false) => "≤",
            (Crossing::Above, true) => ">=",
            (Crossing::Below, true) => "<=",
        };
        let target = format!("{way}{}", display_price(a.price.value(), tick));
        let (mark, style, state, at) = match a.fired {
            Some((ms, last)) => (
                "!",
                theme.warning().add_modifier(ratatui::style::Modifier::BOLD),
                format!("FIRED {}", hm(ms)),
                display_price(last.value(), tick),
            ),
            None => ("*", theme.dim(), "armed".to_string(), String::new()),
        };
        let cells = vec![
            (format!(" {mark}{}", a.symbol), style),
            (target, style),
            (state, style),
            (at, style),
            (String::new(), style),
        ];
        (cells, style)
    })
}
