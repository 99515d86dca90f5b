//! The screen's side of lost protection: the dialog that pops once when the engine reports a
//! position's protection lost (insta at 80×24 and 60×20), `p` on the position and
//! `:protect SYMBOL [SL TP]` offering it again, `y` sending the re-protection to the engine and
//! `n`/Esc leaving the position bare, the kill key still working with the dialog open, and the
//! help listing the key and the command.

mod support {
    pub mod demo;
}

use crbot::domain::{OrderPurpose, OrderStatus, Price, Qty};
use crbot::engine::snapshot::{Command, LostProtection, Snapshot};
use crbot::ui::{Action, App, Dialog, Effect, KeyPress, Theme, UiConfig, update, view};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::demo;

const NOW: i64 = 1_764_333_296_000;

fn config() -> UiConfig {
    UiConfig {
        theme: Theme {
            color: true,
            ascii: false,
            ..Theme::DEFAULT
        },
        ..UiConfig::default()
    }
}

fn price(s: &str) -> Price {
    s.parse().unwrap()
}

fn draw(app: &App, snap: &Snapshot, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view(app, snap, f)).unwrap();
    t
}

fn press(app: &mut App, snap: &Snapshot, key: KeyPress) -> Vec<Effect> {
    match app.action_for(key) {
        Some(action) => update(app, action, snap),
        None => vec![],
    }
}

fn type_line(app: &mut App, snap: &Snapshot, text: &str) -> Vec<Effect> {
    press(app, snap, KeyPress::ch(':'));
    for c in text.chars() {
        press(app, snap, KeyPress::ch(c));
    }
    press(app, snap, KeyPress::plain(KeyCode::Enter))
}

/// The demo account, whose SOL position (2.5, no stop on the exchange) lost its OCO: the
/// take-profit expired by self-trade prevention.
fn lost_sol() -> Snapshot {
    let mut snap = demo::snapshot(NOW);
    let sol = "SOLUSDT".parse().unwrap();
    assert!(snap.unprotected().contains(&&sol), "the demo's SOL has no stop");
    snap.lost_protection = vec![LostProtection {
        symbol: sol.clone(),
        stop_loss: price("236.5"),
        take_profit: price("262"),
        leg: OrderPurpose::TakeProfit,
        status: OrderStatus::ExpiredInMatch,
        reason: "expired by self-trade prevention: another order of this account crossed it".into(),
        since_ms: NOW - 1_000,
        qty: Some("2.5".parse::<Qty>().unwrap()),
    }];
    snap.protect_qty = [(sol, "2.5".parse::<Qty>().unwrap())].into_iter().collect();
    snap
}

fn reprotect_sent(fx: &[Effect]) -> Option<(String, Price, Price)> {
    fx.iter().find_map(|e| match e {
        Effect::Send(Command::Reprotect {
            symbol,
            stop_loss,
            take_profit,
        }) => Some((symbol.to_string(), *stop_loss, *take_profit)),
        _ => None,
    })
}

#[test]
fn the_dialog_pops_once_when_the_loss_is_seen_at_80x24_and_60x20() {
    let plain = demo::snapshot(NOW);
    let mut app = App::new(config(), &plain);
    let snap = lost_sol();
    let fx = update(&mut app, Action::SnapshotArrived, &snap);
    assert!(fx.contains(&Effect::Bell), "it rings: {fx:?}");
    assert!(
        matches!(&app.dialog, Some(Dialog::Reprotect { symbol, cause: Some((OrderPurpose::TakeProfit, OrderStatus::ExpiredInMatch)), .. }) if symbol.as_str() == "SOLUSDT"),
        "{:?}",
        app.dialog
    );
    let t = draw(&app, &snap, 80, 24);
    let text = format!("{:?}", t.backend());
    for words in [
        "SOLUSDT protection lost: take-profit leg EXPIRED_IN_MATCH",
        "(self-trade",
        "Re-place stop 236.50 / take-profit 262.00 for 2.5 SOL?",
        "[y] re-protect   [n/Esc] leave unprotected",
    ] {
        assert!(text.contains(words), "{words:?} not on screen:\n{text}");
    }
    insta::assert_snapshot!("lost_protection_80x24", t.backend());
    insta::assert_snapshot!("lost_protection_60x20", draw(&app, &snap, 60, 20).backend());

    // Answered, it does not pop again for the same loss.
    let fx = press(&mut app, &snap, KeyPress::ch('n'));
    assert!(reprotect_sent(&fx).is_none());
    assert!(app.dialog.is_none());
    assert!(
        app.status
            .as_deref()
            .unwrap_or("")
            .contains("SOLUSDT left UNPROTECTED")
    );
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(app.dialog.is_none(), "popped twice");
}

#[test]
fn y_sends_the_re_protection_and_the_engines_verdict_shows() {
    let mut snap = lost_sol();
    let mut app = App::new(config(), &demo::snapshot(NOW));
    update(&mut app, Action::SnapshotArrived, &snap);
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(
        reprotect_sent(&fx),
        Some(("SOLUSDT".into(), price("236.5"), price("262")))
    );
    assert!(app.dialog.is_none());
    // The engine refuses it (halted): its reason reaches the status line.
    let seq = snap.log.iter().map(|l| l.seq).max().unwrap_or(0) + 1;
    snap.log.push(crbot::engine::snapshot::LogLine {
        seq,
        time_ms: NOW,
        level: crbot::engine::snapshot::LogLevel::Warn,
        kind: crbot::engine::snapshot::LogKind::Rejection,
        text: "risk REJECTED re-protection of SOLUSDT: STATE_HALTED: no entries while halted (kill)".into(),
    });
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(
        app.status.as_deref().unwrap_or("").contains("STATE_HALTED"),
        "{:?}",
        app.status
    );
}

#[test]
fn it_never_pops_over_a_ticket_being_typed_and_waits_for_it_to_close() {
    let plain = demo::snapshot(NOW);
    let mut app = App::new(config(), &plain);
    press(&mut app, &plain, KeyPress::ch('t'));
    let snap = lost_sol();
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(
        app.dialog.is_none(),
        "a y or Enter meant for the ticket must not answer it"
    );
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(matches!(app.dialog, Some(Dialog::Reprotect { .. })));
}

#[test]
fn the_kill_key_works_with_the_dialog_open_and_closes_it() {
    let snap = lost_sol();
    let mut app = App::new(config(), &demo::snapshot(NOW));
    update(&mut app, Action::SnapshotArrived, &snap);
    let fx = press(&mut app, &snap, KeyPress::ctrl('k'));
    assert!(fx.contains(&Effect::Send(Command::Kill)), "{fx:?}");
    assert!(
        app.dialog.is_none(),
        "no re-protection can follow the kill from this dialog"
    );
}

#[test]
fn p_on_the_position_and_the_protect_command_offer_it_again() {
    let snap = lost_sol();
    let mut app = App::new(config(), &snap);
    update(&mut app, Action::SnapshotArrived, &snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    assert!(app.dialog.is_none());

    // The positions panel, the SOL row (the second).
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    press(&mut app, &snap, KeyPress::ch('p'));
    assert!(
        matches!(&app.dialog, Some(Dialog::Reprotect { symbol, stop_loss, .. }) if symbol.as_str() == "SOLUSDT" && *stop_loss == price("236.5")),
        "{:?}",
        app.dialog
    );
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));

    // `p` on BTC, which has its stop: nothing to offer.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Up));
    press(&mut app, &snap, KeyPress::ch('p'));
    assert!(app.dialog.is_none());
    assert!(
        app.status
            .as_deref()
            .unwrap_or("")
            .contains("already has a stop-loss")
    );

    // The command, at the lost prices or at the prices typed.
    type_line(&mut app, &snap, "protect solusdt");
    assert!(
        matches!(&app.dialog, Some(Dialog::Reprotect { take_profit, .. }) if *take_profit == price("262"))
    );
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    type_line(&mut app, &snap, "protect SOLUSDT 230 270");
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(
        reprotect_sent(&fx),
        Some(("SOLUSDT".into(), price("230"), price("270")))
    );

    // A position with no lost protection known needs the prices.
    let mut bare = lost_sol();
    bare.lost_protection.clear();
    type_line(&mut app, &bare, "protect SOLUSDT");
    match &app.dialog {
        Some(Dialog::CommandLine { error: Some(e), .. }) => {
            assert!(e.contains(":protect SOLUSDT SL TP"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn help_lists_the_protect_key_and_command() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(), &snap);
    press(&mut app, &snap, KeyPress::ch('?'));
    let text = format!("{:?}", draw(&app, &snap, 160, 48).backend());
    assert!(text.contains("re-protect position (:protect)"), "{text}");
    let line = app
        .config
        .keymap
        .help_lines(false)
        .into_iter()
        .find(|(_, _, help)| help.contains(":protect"))
        .unwrap();
    assert_eq!(line.1, "p");
    assert!(crbot::ui::command::COMMANDS.contains("protect"));
}
