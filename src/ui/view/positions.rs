//! The positions panel: quantity, entry (the average fill price), the fee-inclusive cost per
//! unit ("Cost+fee", the break-even), mark and unrealized P&L of every position,
//! external holdings tagged `ext`, dust dimmed, and a position with no stop-loss open on the
//! exchange tagged `NO STOP`.
//!
//! Owns: the positions table and how an average entry is rounded for it. Must not: hide a
//! position; a narrow panel drops columns, never rows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::TableState;
use rust_decimal::Decimal;

use super::common::{Col, filter_note, fitted_table, panel, px, record_region, signed2};
use crate::domain::{Money, Price, decimals_of, display_fixed, money::display_trimmed};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};

pub(super) fn draw_positions(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
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
        // Fees included: what the position cost per unit, its break-even price.
        Col {
            header: "Cost+fee",
            right: true,
            drop: 4,
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
            drop: 5,
        },
    ];
    let unprotected = snap.unprotected();
    let shown = app.visible(Focus::Positions, snap);
    let rows = shown
        .iter()
        .filter_map(|i| snap.positions.get(*i))
        .map(|p| {
            let no_stop = unprotected.contains(&&p.symbol);
            let neg = p.unrealized.as_ref().is_some_and(Money::is_negative);
            let zero = p.unrealized.as_ref().is_none_or(Money::is_zero);
            let pnl_style = theme.signed(neg, zero);
            // Dust (too small for any order to sell) is shown dimmed: still crbot's, but it
            // neither blocks a new entry nor gets protection.
            let plain_style = if p.dust { theme.dim() } else { theme.plain() };
            let tag = if p.external {
                " ext"
            } else if p.dust {
                " dust"
            } else if no_stop {
                " NO STOP"
            } else {
                ""
            };
            let symbol_style = if no_stop { theme.warning() } else { plain_style };
            let cells = vec![
                (format!("{}{tag}", p.symbol), symbol_style),
                (p.qty.to_string(), plain_style),
                (entry_price(p.avg_fill, p.mark, snap.tick(&p.symbol)), plain_style),
                (
                    entry_price(p.avg_entry, p.mark, snap.tick(&p.symbol)),
                    plain_style,
                ),
                (px(p.mark, snap.tick(&p.symbol)), plain_style),
                (
                    p.unrealized
                        .as_ref()
                        .map_or_else(|| "-".into(), |m| signed2(m.amount())),
                    pnl_style,
                ),
                (p.unrealized_pct.map_or_else(|| "-".into(), signed2), pnl_style),
            ];
            (cells, plain_style)
        })
        .collect();
    let focused = app.focus == Focus::Positions;
    let block = panel(
        theme,
        format!(
            " Positions (ext = external){} ",
            filter_note(app, Focus::Positions)
        ),
        focused,
    );
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state = TableState::default().with_selected(app.shown_selection(Focus::Positions, snap));
    frame.render_stateful_widget(table, area, &mut state);
    record_region(app, Focus::Positions, area, state.offset());
}

/// The average entry at the mark's precision (at least 2, at most 8 decimals). The entry is a
/// quotient (cost / quantity after a fee taken in the base asset) with up to 28 decimals; drawn
/// in full it was wide enough to push Entry and Mark out of the positions panel.
fn entry_price(entry: Option<Price>, mark: Option<Price>, tick: Option<Decimal>) -> String {
    let Some(entry) = entry else {
        return "-".into();
    };
    if let Some(t) = tick {
        return display_fixed(entry.value(), decimals_of(t));
    }
    let dp = mark.map_or(8, |m| m.value().normalize().scale().clamp(2, 8));
    display_trimmed(entry.value(), dp)
}
