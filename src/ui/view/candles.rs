//! The candles chart: the selected symbol's closes at the chosen timeframe (1m, 5m, 1h, 1d;
//! `[`/`]`, named in the title) as a line, highs and lows as dots, on a value axis at the
//! symbol's tick, with the candles' volumes as bars below.
//!
//! Owns: the candles chart. Must not: label prices other than at the symbol's tick (the
//! floats behind the line only place points), or draw a history it does not have: while a
//! timeframe's candles load the panel says so.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Sparkline};
use rust_decimal::Decimal;

use super::common::{chart_axis, hm, panel, px, record_region, to_f64};
use crate::domain::decimals_of;
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};

pub(super) fn draw_candles(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    // A click focuses the panel; the wheel scrolls it where it scrolls.
    record_region(app, Focus::Candles, area, 0);
    let symbol = snap
        .selected_symbol
        .as_ref()
        .map_or_else(|| "-".into(), |s| s.to_string());
    let tick = snap.selected_symbol.as_ref().and_then(|s| snap.tick(s));
    let last = px(snap.candles.last().map(|c| c.close), tick);
    let interval = snap.focus.interval.wire();
    let block = panel(
        theme,
        format!(" {symbol} {interval}: close, high/low  {last} [ ] "),
        app.focus == Focus::Candles,
    );
    let (Some(first), Some(end)) = (snap.candles.first(), snap.candles.last()) else {
        let text = if snap.focus.candles_loading {
            format!("loading {interval} candles...")
        } else {
            "no candles yet".to_string()
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    };
    // Volumes below the chart when there is room and the candles carry them.
    let inner = block.inner(area);
    let has_volume = snap.candles.iter().all(|c| c.volume.is_some());
    // Two rows of bars where there is room, one on a small screen, none below 8 rows.
    let volume_rows = match inner.height {
        h if h >= 14 => 2,
        h if h >= 8 => 1,
        _ => 0,
    };
    let (area, volume_area) = if volume_rows > 0 && has_volume {
        frame.render_widget(block.clone(), area);
        let [chart, vol] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(volume_rows)]).areas(inner);
        (chart, Some(vol))
    } else {
        (area, None)
    };
    let block = if volume_area.is_some() {
        ratatui::widgets::Block::default()
    } else {
        block
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
    if let Some(vol) = volume_area {
        // Under the plot, right of the value axis's labels and line.
        let label = y_labels.iter().map(|l| l.len()).max().unwrap_or(0) as u16 + 1;
        let bars = Rect {
            x: vol.x + label.min(vol.width),
            width: vol.width.saturating_sub(label),
            ..vol
        };
        let volumes = volume_bars(snap, usize::from(bars.width));
        let mut spark = Sparkline::default().data(&volumes).style(theme.dim());
        if theme.ascii {
            spark = spark.bar_set(ASCII_BARS);
        }
        frame.render_widget(spark, bars);
    }
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

/// Volume bars in ASCII (`--ascii`): heights in four steps.
const ASCII_BARS: ratatui::symbols::bar::Set = ratatui::symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

/// One bar per column of `width`, spread over the candles as the chart spreads them: a column
/// covering several candles sums their volumes; a candle wider than a column repeats. Scaled
/// to whole numbers (bar heights only).
fn volume_bars(snap: &Snapshot, width: usize) -> Vec<u64> {
    let n = snap.candles.len();
    if n == 0 || width == 0 {
        return vec![];
    }
    let volume = |i: usize| snap.candles[i].volume.map_or(Decimal::ZERO, |v| v.value());
    let columns: Vec<Decimal> = (0..width)
        .map(|j| {
            let from = j * n / width;
            let to = ((j + 1) * n / width).max(from + 1).min(n);
            (from..to).map(volume).sum()
        })
        .collect();
    let max = columns.iter().copied().max().unwrap_or_default();
    if max.is_zero() {
        return vec![0; width];
    }
    columns
        .iter()
        .map(|v| to_f64(*v * Decimal::from(1000) / max).round() as u64)
        .collect()
}
