//! The candles chart: the selected symbol's one-minute closes as a line, highs and lows as
//! dots, on a value axis at the symbol's tick.
//!
//! Owns: the candles chart. Must not: label prices other than at the symbol's tick; the
//! floats behind the line only place points.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use rust_decimal::Decimal;

use super::common::{chart_axis, hm, panel, px, to_f64};
use crate::domain::decimals_of;
use crate::engine::snapshot::Snapshot;
use crate::ui::app::App;

pub(super) fn draw_candles(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
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
    let dp = tick.map_or(2, decimals_of);
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
