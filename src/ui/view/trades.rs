//! The recent trades panel: the selected symbol's tape, newest on top — time, price at the
//! tick, size, and the taker's side (a buy green, a sell red, and said in words for a screen
//! without colour).
//!
//! Owns: the trades panel. Must not: keep trades of its own (the engine's tape is bounded).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::common::{panel, record_region};
use crate::domain::{display_fixed, display_price};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};

pub(super) fn draw_trades(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    // A click focuses the panel; the wheel scrolls it where it scrolls.
    record_region(app, Focus::Trades, area, 0);
    let symbol = snap
        .focus
        .symbol
        .as_ref()
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    let block = panel(theme, format!(" Trades {symbol} "), app.focus == Focus::Trades);
    let inner = block.inner(area);
    let trades = &snap.focus.trades;
    if trades.is_empty() {
        frame.render_widget(
            Paragraph::new("no trades seen yet")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    let rows = usize::from(inner.height.saturating_sub(1));
    let shown = &trades[..trades.len().min(rows)];
    let tick = snap.focus.symbol.as_ref().and_then(|s| snap.tick(s));
    let dp = shown
        .iter()
        .map(|t| t.qty.value().normalize().scale())
        .max()
        .unwrap_or(0)
        .min(8);
    let prices: Vec<String> = shown
        .iter()
        .map(|t| display_price(t.price.value(), tick))
        .collect();
    let sizes: Vec<String> = shown.iter().map(|t| display_fixed(t.qty.value(), dp)).collect();
    let pw = prices.iter().map(String::len).max().unwrap_or(5).max(5);
    let sw = sizes.iter().map(String::len).max().unwrap_or(4).max(4);
    // The side is never cut: where the row is too wide, the time loses its hour, then goes.
    let fixed = pw + 1 + sw + 1 + "sell".len();
    let time = TIME_FORMATS
        .into_iter()
        .find(|(w, _)| w + 1 + fixed <= usize::from(inner.width));
    let mut header = String::new();
    if let Some((w, _)) = time {
        header.push_str(&format!("{:<w$} ", "Time"));
    }
    header.push_str(&format!("{:>pw$} {:>sw$} Side", "Price", "Size"));
    let mut lines = vec![Line::from(Span::styled(header, theme.title()))];
    for ((t, p), q) in shown.iter().zip(&prices).zip(&sizes) {
        // The buyer was the maker: the taker sold into the bid.
        let (side, style) = if t.buyer_maker {
            ("sell", theme.negative())
        } else {
            ("buy", theme.positive())
        };
        let mut spans = Vec::with_capacity(7);
        if let Some((_, format)) = time {
            spans.push(Span::styled(utc_time(t.time_ms, format), theme.dim()));
            spans.push(Span::raw(" "));
        }
        spans.extend([
            Span::styled(format!("{p:>pw$}"), style),
            Span::raw(" "),
            Span::styled(format!("{q:>sw$}"), theme.plain()),
            Span::raw(" "),
            Span::styled(side, style),
        ]);
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The time column's widths and formats, widest first: `HH:MM:SS`, then `MM:SS`.
const TIME_FORMATS: [(usize, &str); 2] = [(8, "%H:%M:%S"), (5, "%M:%S")];

/// A trade's UTC time in `format`.
fn utc_time(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| "-".into(), |t| t.format(format).to_string())
}
