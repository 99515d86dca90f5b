//! The screen of a standby `crbot serve` (`Snapshot::standby`, built by
//! `api::standby::standby_snapshot`): a STANDBY badge, the leader instead of the limits row, the
//! trading state only once it was read from the shared journal (never ACTIVE by default), and
//! no account figure drawn as zero.

mod support {
    pub mod screen;
}

use crbot::api::standby::{StandbyView, standby_snapshot};
use crbot::domain::Mode;
use crbot::engine::snapshot::TradingState;
use crbot::journal::lease::Leader;
use crbot::risk::Limits;
use crbot::ui::{App, UiConfig};
use support::screen::{draw, text};

const NOW: i64 = 1_764_333_296_000;

fn view() -> StandbyView {
    StandbyView {
        leader: Some(Leader {
            epoch: 3,
            holder: "crbot-a pid 812".into(),
            address: Some("https://crbot-a.example.com:8002".into()),
            since_ms: NOW - 3_600_000,
        }),
        lost: None,
    }
}

fn header(snap: &crbot::engine::snapshot::Snapshot, w: u16, h: u16) -> String {
    let app = App::new(UiConfig::default(), snap);
    let screen = text(&draw(&app, snap, w, h));
    screen.lines().take(4).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_standby_s_screen_names_the_leader_and_draws_no_figure_it_does_not_know() {
    let active = standby_snapshot(
        Mode::Sim,
        &Limits::default(),
        &view(),
        Some(TradingState::Active),
        NOW,
    );
    for (w, h) in [(160, 48), (80, 24)] {
        let top = header(&active, w, h);
        assert!(
            top.contains("STANDBY") && top.contains("ACTIVE"),
            "{w}x{h}:\n{top}"
        );
        assert!(top.contains("leader crbot-a pid 812"), "{w}x{h}:\n{top}");
        assert!(!top.contains("0.00"), "no figure drawn as zero:\n{top}");
        assert!(
            !top.contains("trades 0/"),
            "no trade count it does not know:\n{top}"
        );
        assert!(
            !top.contains("wt 0/0") && !top.contains("ord 0/0"),
            "no rate limits:\n{top}"
        );
    }
    let top = header(&active, 200, 48);
    assert!(top.contains("https://crbot-a.example.com:8002"), "{top}");

    let halted = standby_snapshot(
        Mode::Sim,
        &Limits::default(),
        &view(),
        Some(TradingState::Halted {
            reason: "kill key on a screen attached to a standby".into(),
            since_ms: NOW,
        }),
        NOW,
    );
    let top = header(&halted, 160, 48);
    assert!(top.contains("HALTED"), "{top}");

    // Not read from the journal (yet): unknown, neither ACTIVE nor HALTED.
    let unknown = standby_snapshot(Mode::Sim, &Limits::default(), &StandbyView::default(), None, NOW);
    let top = header(&unknown, 160, 48);
    assert!(top.contains("state unknown"), "{top}");
    assert!(!top.contains("ACTIVE") && !top.contains("HALTED"), "{top}");
    assert!(top.contains("leader unknown"), "{top}");
}

#[test]
fn a_standby_s_limits_panel_leaves_the_trade_count_to_the_leader() {
    let snap = standby_snapshot(
        Mode::Sim,
        &Limits::default(),
        &view(),
        Some(TradingState::Active),
        NOW,
    );
    let app = App::new(UiConfig::default(), &snap);
    let screen = text(&draw(&app, &snap, 160, 48));
    let trades = screen
        .lines()
        .find(|l| l.contains("Trades"))
        .unwrap_or_else(|| panic!("no Trades line:\n{screen}"));
    assert!(trades.contains("– / 10 today"), "{trades}");
    assert!(!trades.contains(" 0 / "), "a count it does not know: {trades}");
    // No watchlist, so no symbol to offer a ticket on (not "a ticket on .").
    assert!(screen.contains("Press t for a ticket."), "{screen}");
}
