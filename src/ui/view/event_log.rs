//! The risk and event log panel: the engine's log, fills green, rejections, kills and errors
//! red, warnings yellow — the newest lines, or, scrolled back (Up/PgUp/`g` with the log
//! focused), the lines up to the one scrolled to, which new lines do not move.
//!
//! Owns: the log panel. Must not: drop the newest line while following the log; when the
//! lines wrap, the oldest ones scroll out of view first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::common::{clock, panel, record_region, wrapped_rows};
use crate::engine::snapshot::{LogKind, LogLevel, Snapshot};
use crate::ui::app::{App, Focus};

pub(super) fn draw_log(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    // A click focuses the panel; the wheel scrolls it where it scrolls.
    record_region(app, Focus::Log, area, 0);
    // Scrolled back: the lines up to the anchor, or the first screenful when the anchor is
    // nearer the top than that.
    let rows = usize::from(area.height.saturating_sub(2)).max(1);
    let end = match app.log_anchor {
        Some(seq) => snap
            .log
            .iter()
            .position(|l| l.seq > seq)
            .unwrap_or(snap.log.len())
            .max(rows.min(snap.log.len())),
        None => snap.log.len(),
    };
    let newer = snap.log.len() - end;
    // Only the newest lines can be visible; wrapping needs at most one row per line anyway.
    let skip = end.saturating_sub(usize::from(area.height));
    let lines: Vec<Line> = snap.log[..end]
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
    let title = if app.log_anchor.is_some() {
        format!(" Risk & event log: scrolled back, {newer} newer lines (G follows) ")
    } else {
        " Risk & event log ".to_string()
    };
    let block = panel(theme, title, app.focus == Focus::Log);
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
