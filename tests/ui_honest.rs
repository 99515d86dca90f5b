//! Numbers that say what they are: a limit loosened until the next restart is shown as such in
//! the header, at every size.

mod support {
    pub mod demo;
    pub mod screen;
}

use crbot::ui::{App, UiConfig};
use support::screen::{draw, text};

const NOW: i64 = 1_764_333_296_000;

#[test]
fn a_limit_loosened_until_restart_is_said_in_the_header() {
    let mut snap = support::demo::snapshot(NOW);
    snap.header.warnings = vec!["daily 7% until restart (config 5%)".into()];
    let app = App::new(UiConfig::default(), &snap);
    for (w, h, name) in [
        (80, 24, "until_restart_80x24"),
        (160, 48, "until_restart_160x48"),
        (60, 20, "until_restart_60x20"),
    ] {
        let t = draw(&app, &snap, w, h);
        assert!(
            text(&t).contains("daily 7% until restart"),
            "{w}x{h}:\n{}",
            text(&t)
        );
        insta::assert_snapshot!(name, t.backend());
    }
}
