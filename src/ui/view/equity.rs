//! The equity chart: the account's equity over the chosen window (session, day, week, all),
//! green when it ended up, red when down.
//!
//! Owns: the equity chart. Must not: label the value axis with anything but the padded bounds
//! at two decimals; the floats behind the line only place points.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use rust_decimal::Decimal;

use super::common::{chart_axis, hm, panel, to_f64};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::App;

pub(super) fn draw_equity(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
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
