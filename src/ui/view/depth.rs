//! The order book panel: the selected symbol's best asks above the spread and best bids below
//! it, each level with its size and the size cumulated from the touch, prices at the symbol's
//! tick and every column aligned on its decimal point.
//!
//! Owns: the depth panel. Must not: show levels of a book that is not in step with the stream
//! (while it synchronises the panel says so and shows none), or round a price other than at
//! its tick.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use rust_decimal::Decimal;

use super::common::{panel, record_region};
use crate::domain::{display_fixed, display_price};
use crate::engine::snapshot::{BookLevel, BookStatus, Snapshot};
use crate::ui::app::{App, Focus};

/// Decimals shown for sizes: enough for the finest level on screen, at most 8.
fn size_decimals(levels: &[&BookLevel]) -> u32 {
    levels
        .iter()
        .map(|l| l.qty.value().normalize().scale())
        .max()
        .unwrap_or(0)
        .min(8)
}

pub(super) fn draw_depth(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    // A click focuses the panel; the wheel scrolls it where it scrolls.
    record_region(app, Focus::Depth, area, 0);
    let book = &snap.focus.book;
    let symbol = snap
        .focus
        .symbol
        .as_ref()
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    let state = match book.status {
        BookStatus::Off => "no symbol".to_string(),
        BookStatus::Syncing => "syncing".to_string(),
        // Shown anew at most this often (`ui::pace`): said, so a book a step behind the
        // watchlist's quote is not taken for the current one.
        BookStatus::Live if !app.config.detail_interval.is_zero() => {
            let ms = i64::try_from(app.config.detail_interval.as_millis()).unwrap_or(i64::MAX);
            format!("live, {} s", Decimal::new(ms, 3).normalize())
        }
        BookStatus::Live => "live".to_string(),
    };
    let block = panel(
        theme,
        format!(" Book {symbol} ({state}) "),
        app.focus == Focus::Depth,
    );
    let inner = block.inner(area);
    if book.status != BookStatus::Live || (book.bids.is_empty() && book.asks.is_empty()) {
        let text = match book.status {
            BookStatus::Off => "select a symbol in the watchlist",
            BookStatus::Syncing => "synchronising: no levels until the snapshot and the diffs agree",
            BookStatus::Live => "the book is empty",
        };
        frame.render_widget(
            Paragraph::new(text)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    // Header, the spread line, then as many levels as fit on each side.
    let side_rows = usize::from(inner.height.saturating_sub(2)) / 2;
    let asks: Vec<&BookLevel> = book.asks.iter().take(side_rows).collect();
    let bids: Vec<&BookLevel> = book.bids.iter().take(side_rows).collect();
    let tick = snap.focus.symbol.as_ref().and_then(|s| snap.tick(s));
    let price_text = |l: &BookLevel| display_price(l.price.value(), tick);
    let dp = size_decimals(&asks.iter().chain(&bids).copied().collect::<Vec<_>>());
    let size = |d: Decimal| display_fixed(d, dp);
    let cumulate = |levels: &[&BookLevel]| -> Vec<Decimal> {
        levels
            .iter()
            .scan(Decimal::ZERO, |sum, l| {
                *sum += l.qty.value();
                Some(*sum)
            })
            .collect()
    };
    let ask_cum = cumulate(&asks);
    let bid_cum = cumulate(&bids);
    let all_prices: Vec<String> = asks.iter().chain(&bids).map(|l| price_text(l)).collect();
    let pw = all_prices.iter().map(String::len).max().unwrap_or(5).max(5);
    let cum_texts: Vec<String> = ask_cum.iter().chain(&bid_cum).map(|d| size(*d)).collect();
    let sw = cum_texts.iter().map(String::len).max().unwrap_or(4).max(4);
    let row = |l: &BookLevel, cum: Decimal, style| {
        Line::from(vec![
            Span::styled(format!("{:>pw$}", price_text(l)), style),
            Span::raw(" "),
            Span::styled(format!("{:>sw$}", size(l.qty.value())), theme.plain()),
            Span::raw(" "),
            Span::styled(format!("{:>sw$}", size(cum)), theme.dim()),
        ])
    };
    let mut lines = vec![Line::from(Span::styled(
        format!("{:>pw$} {:>sw$} {:>sw$}", "Price", "Size", "Cum"),
        theme.title(),
    ))];
    // Asks from the farthest down to the best, so the best ask sits on the spread.
    for (l, cum) in asks.iter().zip(&ask_cum).rev() {
        lines.push(row(l, *cum, theme.negative()));
    }
    let spread = match (book.asks.first(), book.bids.first()) {
        (Some(a), Some(b)) => {
            let s = a.price.value() - b.price.value();
            let pct = if b.price.value().is_zero() {
                String::new()
            } else {
                format!(
                    " ({}%)",
                    display_fixed(s * Decimal::ONE_HUNDRED / b.price.value(), 3)
                )
            };
            format!("spread {}{pct}", display_price(s, tick))
        }
        _ => "spread -".to_string(),
    };
    lines.push(Line::from(Span::styled(spread, theme.accent())));
    for (l, cum) in bids.iter().zip(&bid_cum) {
        lines.push(row(l, *cum, theme.positive()));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
