//! The risk and event log panel: the newest lines of the engine's log, fills green,
//! rejections, kills and errors red, warnings yellow, scrolled to the bottom.
//!
//! Owns: the log panel. Must not: drop the newest line; when the lines wrap, the oldest ones
//! scroll out of view first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::common::{clock, panel, wrapped_rows};
use crate::engine::snapshot::{LogKind, LogLevel, Snapshot};
use crate::ui::app::App;

pub(super) fn draw_log(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    // Only the newest lines can be visible; wrapping needs at most one row per line anyway.
    let skip = snap.log.len().saturating_sub(usize::from(area.height));
    let lines: Vec<Line> = snap
        .log
        .iter()
        .skip(skip)
        .map(|l| {
            let style = match (l.level, l.kind) {
                (LogLevel::Error, _) | (_, LogKind::Rejection) | (_, LogKind::Kill) => theme.negative(),
                (_, LogKind::Fill) => theme.positive(),
                (LogLevel::Warn, _) => theme.warning(),
                _ => theme.plain(),
            };
            let level = match l.level {
                LogLevel::Info => "INFO ",
                LogLevel::Warn => "WARN ",
                LogLevel::Error => "ERROR",
            };
            Line::from(vec![
                Span::styled(format!("{} {level} ", clock(l.time_ms)), theme.dim()),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    let block = panel(theme, " Risk & event log ", false);
    let inner = block.inner(area);
    let scroll = wrapped_rows(&lines, inner.width).saturating_sub(inner.height);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block),
        area,
    );
}
