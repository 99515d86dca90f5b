//! The one-row bars around the panels: the tab strip of the narrow layout and the footer,
//! which shows the status message or else the key hints of the current context.
//!
//! Owns: those two rows. Must not: cut a key hint in half (a cut one reads as a different
//! key) or ever leave out the kill key's hint, which comes first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::app::{App, Tab};

pub(super) fn draw_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let mut spans = Vec::new();
    let sep = if theme.ascii { "|" } else { "│" };
    let full: usize = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!(" {} {} ", i + 1, t.title()).chars().count() + 1)
        .sum();
    // Short titles when the full ones do not fit on the row.
    let short = full > usize::from(area.width);
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let title = if short { tab.short_title() } else { tab.title() };
        let text = format!(" {} {title} ", i + 1);
        let style = if *tab == app.tab {
            theme.selected().add_modifier(Modifier::BOLD)
        } else {
            theme.plain()
        };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(sep));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub(super) fn draw_footer(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let line = match &app.status {
        Some(s) => Line::from(Span::styled(s.clone(), theme.accent())),
        None => {
            let mut spans = Vec::new();
            let mut used = 0usize;
            for (key, hint) in app.config.keymap.hints(app.context(), theme.ascii) {
                // Whole hints only: a cut one ("c close positi") reads as a different key. The
                // first (the kill key) is always drawn.
                let width = key.chars().count() + hint.chars().count() + 1;
                if used > 0 && used + width > usize::from(area.width) {
                    break;
                }
                used += width + 2;
                let style = if hint == "KILL" {
                    theme.negative().add_modifier(Modifier::BOLD)
                } else {
                    theme.title()
                };
                spans.push(Span::styled(key, style));
                spans.push(Span::raw(format!(" {hint}  ")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}
