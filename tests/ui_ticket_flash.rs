//! The footer flash of a confirmed ticket follows what the engine says of it: the risk
//! verdict and then the exchange's answer, never "sent" before anything was. Pure: `App` +
//! `update` with scripted snapshots.

mod support {
    pub mod demo;
}

use crbot::domain::ClientOrderId;
use crbot::engine::snapshot::{RuleLine, Snapshot, TicketOutcome, TicketResult};
use crbot::ui::{Action, App, Dialog, KeyPress, UiConfig, update};
use crossterm::event::KeyCode;
use support::demo;

const NOW: i64 = 1_764_333_296_000;

fn press(app: &mut App, snap: &Snapshot, key: KeyPress) {
    if let Some(action) = app.action_for(key) {
        update(app, action, snap);
    }
}

/// A ticket typed, previewed as approved, and confirmed with `y`.
fn confirmed_ticket() -> (App, Snapshot) {
    let mut snap = demo::snapshot(NOW);
    snap.ticket_result = None;
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    for c in "0.15".chars() {
        press(&mut app, &snap, KeyPress::ch(c));
    }
    let draft = app.ticket.as_ref().map(|t| t.draft()).expect("ticket open");
    if let Some(p) = snap.ticket_preview.as_mut() {
        p.draft = draft;
    }
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    assert!(matches!(app.dialog, Some(Dialog::ConfirmSubmit { .. })));
    press(&mut app, &snap, KeyPress::ch('y'));
    (app, snap)
}

fn arrives(app: &mut App, snap: &mut Snapshot, outcome: TicketOutcome) {
    let draft = app
        .ticket
        .as_ref()
        .and_then(|t| t.submitted.clone())
        .expect("a submitted draft");
    snap.ticket_result = Some(TicketResult { draft, outcome });
    update(app, Action::SnapshotArrived, snap);
}

fn status(app: &App) -> String {
    app.status.clone().unwrap_or_default()
}

fn cid() -> ClientOrderId {
    ClientOrderId::new("cr-test-1").expect("valid id")
}

#[test]
fn confirming_a_ticket_does_not_flash_sent_before_the_risk_check() {
    let (app, _) = confirmed_ticket();
    assert!(!status(&app).contains("sent"), "{}", status(&app));
    assert!(
        status(&app).contains("waiting for the risk check"),
        "{}",
        status(&app)
    );
}

#[test]
fn a_ticket_refused_by_the_engine_flashes_refused_not_sent() {
    let (mut app, mut snap) = confirmed_ticket();
    arrives(
        &mut app,
        &mut snap,
        TicketOutcome::RiskRejected {
            reasons: vec![RuleLine {
                code: "STATE_HALTED".into(),
                passed: false,
                detail: "STATE_HALTED: trading is halted".into(),
            }],
        },
    );
    assert!(status(&app).contains("REFUSED"), "{}", status(&app));
    assert!(status(&app).contains("STATE_HALTED"), "{}", status(&app));
    assert!(!status(&app).contains("sent"), "{}", status(&app));
}

#[test]
fn the_flash_follows_the_ticket_from_sent_to_the_exchanges_answer() {
    let (mut app, mut snap) = confirmed_ticket();
    arrives(
        &mut app,
        &mut snap,
        TicketOutcome::Sent {
            client_order_id: cid(),
        },
    );
    assert!(
        status(&app).contains("waiting for the exchange"),
        "{}",
        status(&app)
    );
    arrives(
        &mut app,
        &mut snap,
        TicketOutcome::Rejected {
            code: Some(-2010),
            message: "Account has insufficient balance for requested action.".into(),
        },
    );
    assert!(status(&app).contains("not placed"), "{}", status(&app));
    assert!(status(&app).contains("insufficient balance"), "{}", status(&app));
}

#[test]
fn an_accepted_order_flashes_accepted_once_the_exchange_says_so() {
    let (mut app, mut snap) = confirmed_ticket();
    arrives(
        &mut app,
        &mut snap,
        TicketOutcome::Sent {
            client_order_id: cid(),
        },
    );
    arrives(
        &mut app,
        &mut snap,
        TicketOutcome::Accepted {
            client_order_id: cid(),
            detail: "FILLED BTCUSDT executed 0.15".into(),
        },
    );
    assert!(status(&app).contains("accepted"), "{}", status(&app));
}
