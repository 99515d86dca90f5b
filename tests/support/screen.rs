//! The screen drawn into a test terminal, and its text: for the `ui_*` tests that look for
//! words on the screen (the insta snapshots take the terminal itself).

// Each test file includes this module and uses a different part of it.
#![allow(dead_code)]

use crbot::engine::snapshot::Snapshot;
use crbot::ui::{App, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// One frame of the screen at `w`×`h`.
pub fn draw(app: &App, snap: &Snapshot, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| view(app, snap, f)).expect("draw");
    t
}

/// The frame's text, its rows joined by newlines.
pub fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The screen as the snapshot tests draw it: colour on, Unicode (not the ASCII fallback),
/// whatever the terminal running the tests says.
pub fn unicode_app(snap: &Snapshot) -> App {
    App::new(
        crbot::ui::UiConfig {
            theme: crbot::ui::Theme {
                color: true,
                ascii: false,
                ..crbot::ui::Theme::DEFAULT
            },
            ..crbot::ui::UiConfig::default()
        },
        snap,
    )
}
