//! What the panels share: the framed block every panel sits in, tables that fit their width,
//! chart value axes, and the formatting of times, amounts and prices on the screen.
//!
//! Owns: pure helpers that turn exact values into text, styles and widgets. Must not: draw
//! into a frame or know about any one panel; a helper used by a single panel lives with it.

use ratatui::layout::Constraint;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::domain::{Money, Price, display_fixed, display_price};
use crate::engine::snapshot::OutgoingOrder;
pub(super) use crate::ui::format::{purpose_label, signed2};
use crate::ui::theme::Theme;

/// `HH:MM:SS` (UTC) of an epoch time in ms.
pub(super) fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "--:--:--".into(), |t| t.format("%H:%M:%S").to_string())
}

/// `HH:MM` (UTC) of an epoch time in ms.
pub(super) fn hm(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "--:--".into(), |t| t.format("%H:%M").to_string())
}

/// A span of time in whole minutes: `45m`, `3h05m` (a negative one is `0m`).
pub(super) fn duration(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

pub(super) fn dp2(d: Decimal) -> String {
    display_fixed(d, 2)
}

pub(super) fn money2(m: &Money) -> String {
    format!("{} {}", signed2(m.amount()), m.asset())
}

pub(super) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A price at its symbol's tick (`display_price`: the display rounding rule), `-` when none.
pub(super) fn px(v: Option<Price>, tick: Option<Decimal>) -> String {
    v.map_or_else(|| "-".into(), |v| display_price(v.value(), tick))
}

pub(super) fn to_f64(d: Decimal) -> f64 {
    // Chart coordinates only (see the module doc of `view`).
    d.to_f64().unwrap_or(0.0)
}

/// The bordered block a panel is drawn in; a focused panel's border is highlighted.
pub(super) fn panel<'a>(theme: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
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

/// How close a limit is: green below half, yellow from half, red from 80 %.
pub(super) fn usage_style(theme: &Theme, ratio: Decimal) -> Style {
    if ratio >= Decimal::new(8, 1) {
        theme.negative()
    } else if ratio >= Decimal::new(5, 1) {
        theme.warning()
    } else {
        theme.positive()
    }
}

/// Rows that `lines` take when wrapped at `width` (exact for lines that fit, an estimate for
/// word-wrapped ones).
pub(super) fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines.iter().map(|l| l.width().max(1).div_ceil(w) as u16).sum()
}

// ---------------------------------------------------------------------------------------------
// Tables

/// A table column: header, alignment, and when to drop it if the panel is too narrow
/// (0 = never; higher numbers go first). Numbers are never truncated: a column that does not
/// fit is left out whole.
pub(super) struct Col {
    pub(super) header: &'static str,
    pub(super) right: bool,
    pub(super) drop: u8,
}

/// One cell's text and style.
pub(super) type CellText = (String, Style);

/// A table whose columns are as wide as their content, dropping low-priority columns until
/// the rest fits in `width`.
pub(super) fn fitted_table(
    theme: &Theme,
    cols: &[Col],
    rows: Vec<(Vec<CellText>, Style)>,
    width: u16,
) -> Table<'static> {
    let content: Vec<usize> = (0..cols.len())
        .map(|i| {
            rows.iter()
                .filter_map(|(cells, _)| cells.get(i))
                .map(|(t, _)| t.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    sized_table(theme, cols, &content, rows, width)
}

/// [`fitted_table`] with each column's widest cell (in characters) already known, so that
/// `rows` may be only the rows that can be on screen of a longer list (the history's).
pub(super) fn sized_table(
    theme: &Theme,
    cols: &[Col],
    content: &[usize],
    rows: Vec<(Vec<CellText>, Style)>,
    width: u16,
) -> Table<'static> {
    let mut widths: Vec<u16> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = content.get(i).copied().unwrap_or(0).max(c.header.len());
            u16::try_from(widest).unwrap_or(u16::MAX)
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

// ---------------------------------------------------------------------------------------------
// Charts

/// A chart's value axis: the data's range padded by 5 % (at least 0.05 % of the top and at
/// least `min_pad`), computed in decimals so that the two labels are the bounds themselves,
/// shown by the display rounding rule at `dp` decimals. Returns the bounds for the chart and
/// their labels.
pub(super) fn chart_axis(values: &[Decimal], min_pad: Decimal, dp: u32) -> ([f64; 2], [String; 2]) {
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

/// ` /BTC` after a list's title when a `/` filter hides rows of it.
pub(super) fn filter_note(app: &crate::ui::app::App, focus: crate::ui::app::Focus) -> String {
    let f = &app.filters[focus.index()];
    if f.is_empty() {
        String::new()
    } else {
        format!(" /{f}")
    }
}

/// Notes where a list was drawn, for the mouse: inside the border, below the header row.
pub(super) fn record_region(
    app: &crate::ui::app::App,
    focus: crate::ui::app::Focus,
    area: ratatui::layout::Rect,
    offset: usize,
) {
    let mut regions = app.regions.borrow_mut();
    regions.retain(|r| r.focus != focus);
    regions.push(crate::ui::app::ListRegion {
        focus,
        area,
        first_row: area.y + 2,
        offset,
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::widgets::Widget;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn signed2_marks_gains_with_plus_and_leaves_zero_unsigned() {
        assert_eq!(signed2(d("1.5")), "+1.50");
        assert_eq!(signed2(d("-2.311")), "-2.31");
        assert_eq!(signed2(Decimal::ZERO), "0.00");
        assert_eq!(signed2(d("0.001")), "0.00");
    }

    #[test]
    fn duration_counts_whole_minutes_and_never_goes_negative() {
        assert_eq!(duration(59 * 60_000 + 59_999), "59m");
        assert_eq!(duration(3 * 3_600_000 + 5 * 60_000), "3h05m");
        assert_eq!(duration(-1), "0m");
    }

    #[test]
    fn chart_axis_labels_are_the_padded_bounds_at_the_given_decimals() {
        // Range 10: 5 % is 0.5, more than 0.05 % of the top (0.055) and than the minimum.
        let (bounds, labels) = chart_axis(&[d("100"), d("110"), d("104")], d("0.01"), 2);
        assert_eq!(labels, ["99.50".to_string(), "110.50".to_string()]);
        assert_eq!(bounds, [99.5, 110.5]);
    }

    #[test]
    fn chart_axis_pads_a_flat_series_by_at_least_the_minimum() {
        let (_, labels) = chart_axis(&[d("2"), d("2")], d("0.1"), 1);
        assert_eq!(labels, ["1.9".to_string(), "2.1".to_string()]);
    }

    #[test]
    fn chart_axis_of_nothing_is_the_unit_range() {
        let (bounds, labels) = chart_axis(&[], d("0.01"), 2);
        assert_eq!(bounds, [0.0, 1.0]);
        assert_eq!(labels, ["0".to_string(), "1".to_string()]);
    }

    fn rendered(table: Table<'static>, width: u16) -> String {
        let area = Rect::new(0, 0, width, 2);
        let mut buf = Buffer::empty(area);
        Widget::render(table, area, &mut buf);
        buf.content.iter().map(|c| c.symbol()).collect()
    }

    #[test]
    fn fitted_table_drops_the_highest_drop_column_first_and_keeps_numbers_whole() {
        let theme = Theme {
            color: false,
            ascii: true,
            ..Theme::DEFAULT
        };
        let cols = [
            Col {
                header: "Symbol",
                right: false,
                drop: 0,
            },
            Col {
                header: "Bid",
                right: true,
                drop: 2,
            },
            Col {
                header: "24h%",
                right: true,
                drop: 1,
            },
        ];
        let row = || {
            let p = Style::default();
            vec![(
                vec![
                    ("BTCUSDT".to_string(), p),
                    ("96432.14".to_string(), p),
                    ("+1.84".to_string(), p),
                ],
                p,
            )]
        };
        // 7 + 8 + 5 and two gaps: 22 fits, 21 does not.
        let wide = rendered(fitted_table(&theme, &cols, row(), 22), 22);
        assert!(wide.contains("96432.14") && wide.contains("+1.84"), "{wide}");
        let narrow = rendered(fitted_table(&theme, &cols, row(), 21), 21);
        assert!(!narrow.contains("Bid") && !narrow.contains("9643"), "{narrow}");
        assert!(narrow.contains("BTCUSDT") && narrow.contains("+1.84"), "{narrow}");
    }

    #[test]
    fn wrapped_rows_counts_an_empty_line_as_one_row() {
        let lines = [Line::from(""), Line::from("abcdef"), Line::from("abc")];
        assert_eq!(wrapped_rows(&lines, 4), 1 + 2 + 1);
    }
}
