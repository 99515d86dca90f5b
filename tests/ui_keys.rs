//! Scripted sessions: press keys, assert the commands the screen emits and the state it is in.
//! Pure: `App` + `update` with fixed snapshots, no terminal and no clock.

mod support {
    pub mod demo;
    pub mod keys;
}

use crbot::domain::{Mode, Symbol};
use crbot::engine::snapshot::{
    Command, LimitChangePending, LimitName, LogKind, LogLevel, LogLine, Snapshot, TicketDraft, TicketField,
    TradingState,
};
use crbot::secret::SecretString;
use crbot::ui::{Action, App, Context, Dialog, Effect, Focus, KeyPress, Keymap, Tab, UiConfig, update};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rust_decimal::Decimal;
use support::demo;
use support::keys::{press, sent, type_text};

const NOW: i64 = 1_764_333_296_000;

fn enter() -> KeyPress {
    KeyPress::plain(KeyCode::Enter)
}

fn esc() -> KeyPress {
    KeyPress::plain(KeyCode::Esc)
}

fn new_app(snap: &Snapshot) -> App {
    App::new(UiConfig::default(), snap)
}

fn draft(app: &App) -> TicketDraft {
    app.ticket.as_ref().unwrap().draft()
}

#[test]
fn kill_key_while_typing_in_a_ticket_field_sends_kill_and_leaves_the_text_alone() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    type_text(&mut app, &snap, "0.1");
    let before = draft(&app);
    assert_eq!(before.amount, "0.1");

    let fx = press(&mut app, &snap, KeyPress::ctrl('k'));

    assert_eq!(sent(&fx), vec![Command::Kill]);
    assert_eq!(draft(&app), before, "the kill key must not edit the field");
    assert!(
        app.kill_sent,
        "the header shows HALTED before the engine confirms"
    );
}

#[test]
fn kill_key_works_in_every_context_and_closes_a_pending_submit() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    // Help overlay.
    press(&mut app, &snap, KeyPress::ch('?'));
    assert_eq!(app.context(), Context::Help);
    assert_eq!(
        sent(&press(&mut app, &snap, KeyPress::ctrl('k'))),
        vec![Command::Kill]
    );
    press(&mut app, &snap, esc());
    // A text prompt.
    press(&mut app, &snap, KeyPress::ch('a'));
    assert_eq!(app.context(), Context::Prompt);
    assert_eq!(
        sent(&press(&mut app, &snap, KeyPress::ctrl('k'))),
        vec![Command::Kill]
    );
    press(&mut app, &snap, esc());
    // The confirm-submit dialog: the kill closes it so the ticket cannot be sent after it.
    press(&mut app, &snap, KeyPress::ch('t'));
    type_text(&mut app, &snap, "0.15");
    snap.ticket_preview.as_mut().unwrap().draft = draft(&app);
    press(&mut app, &snap, enter());
    assert!(matches!(app.dialog, Some(Dialog::ConfirmSubmit { .. })));
    assert_eq!(
        sent(&press(&mut app, &snap, KeyPress::ctrl('k'))),
        vec![Command::Kill]
    );
    assert!(app.dialog.is_none());
    assert!(
        sent(&press(&mut app, &snap, KeyPress::ch('y')))
            .iter()
            .all(|c| !matches!(c, Command::SubmitTicket(_)))
    );
}

#[test]
fn kill_key_sends_kill_even_when_capitalised_or_shifted() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let ev = KeyEvent::new(KeyCode::Char('K'), KeyModifiers::CONTROL | KeyModifiers::SHIFT);
    assert_eq!(
        sent(&press(&mut app, &snap, KeyPress::from_event(&ev))),
        vec![Command::Kill]
    );
}

#[test]
fn configured_kill_key_replaces_ctrl_k() {
    let snap = demo::snapshot(NOW);
    let config = UiConfig {
        keymap: Keymap::with_kill_key(KeyPress::parse_kill_key("f12").unwrap()),
        ..UiConfig::default()
    };
    let mut app = App::new(config, &snap);
    assert_eq!(
        sent(&press(&mut app, &snap, KeyPress::plain(KeyCode::F(12)))),
        vec![Command::Kill]
    );
    assert!(sent(&press(&mut app, &snap, KeyPress::ctrl('k'))).is_empty());
}

#[test]
fn a_typable_kill_key_is_refused() {
    assert!(KeyPress::parse_kill_key("k").is_err());
    assert!(KeyPress::parse_kill_key("ctrl-k").is_ok());
    assert!(KeyPress::parse_kill_key("alt-x").is_ok());
    assert!(KeyPress::parse("hyper-q").is_err());
}

#[test]
fn q_asks_first_and_only_yes_quits() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let fx = press(&mut app, &snap, KeyPress::ch('q'));
    assert!(fx.is_empty(), "q alone must not quit");
    assert!(matches!(app.dialog, Some(Dialog::ConfirmQuit { open_orders: 3 })));
    assert!(press(&mut app, &snap, KeyPress::ch('n')).is_empty());
    assert!(app.dialog.is_none());
    press(&mut app, &snap, KeyPress::ch('q'));
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(fx, vec![Effect::Send(Command::Quit), Effect::Quit]);
}

#[test]
fn ticket_opens_prefilled_and_typing_sends_previews() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let fx = press(&mut app, &snap, KeyPress::ch('t'));
    let d = draft(&app);
    assert_eq!(d.symbol, "ETHUSDT");
    assert_eq!(d.side, "BUY");
    assert_eq!(d.order_type, "LIMIT");
    assert_eq!(d.price, "3118.43", "a BUY LIMIT prefilled at the ask");
    assert_eq!(sent(&fx), vec![Command::PreviewTicket(d)]);
    assert_eq!(app.tab, Tab::Ticket);
    assert_eq!(app.ticket.as_ref().unwrap().focused_field(), TicketField::Amount);

    let fx = type_text(&mut app, &snap, "0.2");
    let previews: Vec<String> = sent(&fx)
        .into_iter()
        .map(|c| match c {
            Command::PreviewTicket(d) => d.amount,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(previews, vec!["0", "0.", "0.2"]);
    // Moving between fields changes nothing, so nothing is sent.
    assert!(press(&mut app, &snap, KeyPress::plain(KeyCode::Tab)).is_empty());
    assert_eq!(app.ticket.as_ref().unwrap().focused_field(), TicketField::Price);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    type_text(&mut app, &snap, "3050");
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    type_text(&mut app, &snap, "3300");
    let d = draft(&app);
    assert_eq!((d.stop_loss.as_str(), d.take_profit.as_str()), ("3050", "3300"));
    // Backspace edits; letters that are keys elsewhere (q, t, x) are text here.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    type_text(&mut app, &snap, "q");
    assert_eq!(draft(&app).take_profit, "330q");
    assert!(app.dialog.is_none());
}

#[test]
fn enter_opens_the_confirm_listing_the_orders_and_yes_submits() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    type_text(&mut app, &snap, "0.15");

    // No verdict for this draft yet: Enter refuses and rings.
    let fx = press(&mut app, &snap, enter());
    assert_eq!(fx, vec![Effect::Bell]);
    assert!(app.dialog.is_none());

    // The engine answers; now Enter opens the confirm step with exactly the preview's orders.
    snap.ticket_preview.as_mut().unwrap().draft = draft(&app);
    assert!(press(&mut app, &snap, enter()).is_empty());
    let Some(Dialog::ConfirmSubmit { orders, .. }) = &app.dialog else {
        panic!("no confirm dialog")
    };
    assert_eq!(orders, &snap.ticket_preview.as_ref().unwrap().orders);
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(sent(&fx), vec![Command::SubmitTicket(draft(&app))]);
    assert!(app.dialog.is_none());
}

#[test]
fn enter_on_a_refused_preview_does_not_offer_to_send() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    type_text(&mut app, &snap, "9");
    let p = snap.ticket_preview.as_mut().unwrap();
    p.draft = draft(&app);
    p.approved = false;
    assert_eq!(press(&mut app, &snap, enter()), vec![Effect::Bell]);
    assert!(app.dialog.is_none());
}

#[test]
fn the_limit_dialog_says_whether_a_change_tightens_or_needs_confirmation() {
    let snap = demo::snapshot(NOW);
    for (typed, expect) in [
        ("3", "tighter: in force at once"),
        ("8", "looser: type the confirmation"),
    ] {
        let mut app = new_app(&snap);
        press(&mut app, &snap, KeyPress::ch('L'));
        for _ in 0..3 {
            press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
        }
        type_text(&mut app, &snap, typed);
        press(&mut app, &snap, enter());
        let status = app.status.clone().unwrap_or_default();
        assert!(status.contains(expect), "{typed}: {status}");
    }
}

#[test]
fn loosening_a_limit_needs_the_typed_phrase() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('L'));
    // The field starts with the current value (5.0); replace it with 8.
    for _ in 0..3 {
        press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    }
    type_text(&mut app, &snap, "8");
    let fx = press(&mut app, &snap, enter());
    assert_eq!(
        sent(&fx),
        vec![Command::ProposeLimit {
            name: LimitName::DailyLoss,
            value: Decimal::new(8, 0)
        }]
    );
    assert!(app.dialog.is_none());

    // The engine says: a loosening, waiting for the phrase.
    let phrase = "LOOSEN MAX_DAILY_LOSS_PERCENT 8";
    snap.limit_change_pending = Some(LimitChangePending {
        name: LimitName::DailyLoss,
        from: Decimal::new(5, 0),
        to: Decimal::new(8, 0),
        phrase: phrase.into(),
    });
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(matches!(app.dialog, Some(Dialog::ConfirmLimit { .. })));

    // A wrong phrase sends nothing and keeps the dialog open.
    type_text(&mut app, &snap, "yes");
    let fx = press(&mut app, &snap, enter());
    assert_eq!(fx, vec![Effect::Bell]);
    assert!(matches!(
        app.dialog,
        Some(Dialog::ConfirmLimit { error: Some(_), .. })
    ));

    for _ in 0..3 {
        press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    }
    type_text(&mut app, &snap, phrase);
    let fx = press(&mut app, &snap, enter());
    assert_eq!(sent(&fx), vec![Command::ConfirmLimit { typed: phrase.into() }]);
}

#[test]
fn escaping_a_pending_loosening_cancels_it() {
    let mut snap = demo::snapshot(NOW);
    snap.limit_change_pending = Some(LimitChangePending {
        name: LimitName::Drawdown,
        from: Decimal::new(10, 0),
        to: Decimal::new(20, 0),
        phrase: "LOOSEN MAX_DRAWDOWN_PERCENT 20".into(),
    });
    let mut app = new_app(&snap);
    update(&mut app, Action::SnapshotArrived, &snap);
    assert_eq!(
        sent(&press(&mut app, &snap, esc())),
        vec![Command::CancelLimitChange]
    );
    assert!(app.dialog.is_none());
    // The engine has not caught up yet: the same pending change is not asked again.
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(app.dialog.is_none());
}

#[test]
fn a_bad_limit_value_is_refused_in_the_dialog() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('L'));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    type_text(&mut app, &snap, "x");
    assert_eq!(press(&mut app, &snap, enter()), vec![Effect::Bell]);
    assert!(matches!(
        app.dialog,
        Some(Dialog::Limit {
            choice: 1,
            error: Some(_),
            ..
        })
    ));
}

#[test]
fn close_position_asks_for_a_percentage_then_sends_it() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab)); // to positions
    press(&mut app, &snap, KeyPress::ch('j')); // SOLUSDT
    assert!(press(&mut app, &snap, KeyPress::ch('c')).is_empty());
    press(&mut app, &snap, KeyPress::plain(KeyCode::Left));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Left));
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(
        sent(&fx),
        vec![Command::ClosePosition {
            symbol: Symbol::new("SOLUSDT").unwrap(),
            percent: 50
        }]
    );
}

#[test]
fn cancel_order_sends_the_selected_client_id() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab)); // to orders
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    let fx = press(&mut app, &snap, KeyPress::ch('x'));
    // A cancel is destructive: it asks first, naming the order.
    assert!(sent(&fx).is_empty(), "{fx:?}");
    let Some(Dialog::CancelOrder { order, line }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(order, &snap.orders[2].client_order_id);
    assert_eq!(line, "BUY LIMIT 1.2 SOLUSDT @ 236.50");
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(
        sent(&fx),
        vec![Command::CancelOrder(snap.orders[2].client_order_id.clone())]
    );
    assert!(app.dialog.is_none());
}

#[test]
fn keys_act_on_the_focused_panel_only() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    // Select the external BNBUSDT holding in the positions panel, then go back to the market.
    press(&mut app, &snap, KeyPress::ch('2'));
    press(&mut app, &snap, KeyPress::plain(KeyCode::End));
    assert_eq!(snap.positions[app.position_sel].symbol.as_str(), "BNBUSDT");
    press(&mut app, &snap, KeyPress::ch('1'));
    // The watchlist's second row is ETHUSDT, which is not held: `c` must not offer BNBUSDT.
    press(&mut app, &snap, KeyPress::ch('g'));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    assert_eq!(snap.watchlist[app.watch_sel].symbol.as_str(), "ETHUSDT");
    let fx = press(&mut app, &snap, KeyPress::ch('c'));
    assert!(sent(&fx).is_empty() && app.dialog.is_none(), "{:?}", app.dialog);
    assert_eq!(app.status.as_deref(), Some("no ETHUSDT position to close"));
    // On a held symbol the dialog names that symbol.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    assert_eq!(snap.watchlist[app.watch_sel].symbol.as_str(), "SOLUSDT");
    press(&mut app, &snap, KeyPress::ch('c'));
    assert!(
        matches!(&app.dialog, Some(Dialog::ClosePosition { symbol, .. }) if symbol.as_str() == "SOLUSDT"),
        "{:?}",
        app.dialog
    );
    press(&mut app, &snap, KeyPress::ch('n'));
    // `x` away from the orders panel cancels nothing.
    let fx = press(&mut app, &snap, KeyPress::ch('x'));
    assert!(sent(&fx).is_empty() && app.dialog.is_none());
    assert_eq!(
        app.status.as_deref(),
        Some("select an order first: Tab to the orders panel")
    );
}

#[test]
fn list_keys_jump_page_and_move_between_panels() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let last = snap.watchlist.len() - 1;
    press(&mut app, &snap, KeyPress::ch('G'));
    assert_eq!(app.watch_sel, last);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Home));
    assert_eq!(app.watch_sel, 0);
    press(&mut app, &snap, KeyPress::plain(KeyCode::PageDown));
    assert_eq!(app.watch_sel, last, "a page down stops at the last row");
    press(&mut app, &snap, KeyPress::plain(KeyCode::PageUp));
    assert_eq!(app.watch_sel, 0);
    press(&mut app, &snap, KeyPress::ch('l'));
    assert_eq!(app.focus, Focus::Positions);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Right));
    assert_eq!(app.focus, Focus::Orders);
    press(&mut app, &snap, KeyPress::ch('h'));
    assert_eq!(app.focus, Focus::Positions);
}

#[test]
fn an_unbound_key_says_so_and_does_nothing() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let fx = press(&mut app, &snap, KeyPress::ch('z'));
    assert!(sent(&fx).is_empty() && app.dialog.is_none());
    assert_eq!(
        app.status.as_deref(),
        Some("z: no action here (? lists every key)")
    );
    // The next key clears it.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    assert_eq!(app.status, None);
}

#[test]
fn cancelling_a_protective_leg_asks_first_and_n_keeps_it() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab)); // to orders: the stop-loss leg
    assert_eq!(snap.orders[0].purpose, crbot::domain::OrderPurpose::StopLoss);
    let fx = press(&mut app, &snap, KeyPress::ch('x'));
    assert!(
        sent(&fx).is_empty(),
        "one key must not unprotect a position: {fx:?}"
    );
    assert!(
        matches!(app.dialog, Some(Dialog::CancelProtection { .. })),
        "{:?}",
        app.dialog
    );
    let fx = press(&mut app, &snap, KeyPress::ch('n'));
    assert!(sent(&fx).is_empty() && app.dialog.is_none(), "{fx:?}");

    press(&mut app, &snap, KeyPress::ch('x'));
    let fx = press(&mut app, &snap, KeyPress::ch('y'));
    assert_eq!(
        sent(&fx),
        vec![Command::CancelOrder(snap.orders[0].client_order_id.clone())]
    );
    assert!(app.dialog.is_none());
}

#[test]
fn watchlist_moves_select_symbols_and_add_remove_send_commands() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let fx = press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    assert_eq!(
        sent(&fx),
        vec![Command::SelectSymbol(Symbol::new("SOLUSDT").unwrap())]
    );
    let fx = press(&mut app, &snap, KeyPress::ch('d'));
    assert_eq!(
        sent(&fx),
        vec![Command::RemoveSymbol(Symbol::new("SOLUSDT").unwrap())]
    );
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "adausdt");
    let fx = press(&mut app, &snap, enter());
    assert_eq!(
        sent(&fx),
        vec![Command::AddSymbol(Symbol::new("ADAUSDT").unwrap())]
    );
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "no-such");
    assert_eq!(press(&mut app, &snap, enter()), vec![Effect::Bell]);
    assert!(matches!(
        app.dialog,
        Some(Dialog::AddSymbol { error: Some(_), .. })
    ));
}

#[test]
fn flatten_needs_a_kill_first_then_a_confirmation() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    assert_eq!(press(&mut app, &snap, KeyPress::ch('F')), vec![Effect::Bell]);
    assert!(app.dialog.is_none());
    let halted = demo::killing(NOW);
    update(&mut app, Action::SnapshotArrived, &halted);
    press(&mut app, &halted, KeyPress::ch('F'));
    press(&mut app, &halted, KeyPress::ch('1'));
    let fx = press(&mut app, &halted, enter());
    assert_eq!(sent(&fx), vec![Command::Flatten { percent: 25 }]);
}

#[test]
fn rearm_is_a_confirmed_action() {
    let snap = demo::killing(NOW);
    let mut app = new_app(&snap);
    assert!(press(&mut app, &snap, KeyPress::ch('R')).is_empty());
    assert!(matches!(app.dialog, Some(Dialog::Rearm { passphrase: None, .. })));
    assert_eq!(
        sent(&press(&mut app, &snap, KeyPress::ch('y'))),
        vec![Command::Rearm { passphrase: None }]
    );
}

/// A halted snapshot in a mode that trades with keys from the vault.
fn halted_with_keys() -> Snapshot {
    let mut snap = demo::killing(NOW);
    snap.mode = Mode::Demo;
    snap.rearm_needs_passphrase = true;
    snap
}

#[test]
fn rearm_with_keys_from_a_secrets_service_asks_no_passphrase() {
    let mut snap = halted_with_keys();
    // SECRETS_BACKEND=aws/hashicorp: the engine fetches the keys again on re-arm.
    snap.rearm_needs_passphrase = false;
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('R'));
    assert!(matches!(app.dialog, Some(Dialog::Rearm { passphrase: None, .. })));
    let fx = press(&mut app, &snap, enter());
    assert_eq!(sent(&fx), vec![Command::Rearm { passphrase: None }]);
}

#[test]
fn rearm_in_a_mode_with_keys_sends_the_typed_passphrase() {
    let snap = halted_with_keys();
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('R'));
    assert_eq!(app.context(), Context::Prompt);
    // `y` and `n` are characters of the passphrase here, not yes/no; Backspace removes one.
    assert!(type_text(&mut app, &snap, "yes nox").is_empty());
    press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    type_text(&mut app, &snap, "w");
    let fx = press(&mut app, &snap, enter());
    assert_eq!(
        sent(&fx),
        vec![Command::Rearm {
            passphrase: Some(SecretString::from("yes now"))
        }]
    );
    assert!(app.dialog.is_none());
}

#[test]
fn rearm_with_an_empty_passphrase_rings_and_sends_nothing() {
    let snap = halted_with_keys();
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('R'));
    let fx = press(&mut app, &snap, enter());
    assert_eq!(fx, vec![Effect::Bell]);
    assert!(matches!(
        app.dialog,
        Some(Dialog::Rearm {
            passphrase: Some(_),
            error: Some(_)
        })
    ));
    press(&mut app, &snap, esc());
    assert!(app.dialog.is_none(), "Esc stays halted");
}

#[test]
fn kill_key_in_the_passphrase_dialog_kills_and_drops_the_rearm() {
    let snap = halted_with_keys();
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('R'));
    type_text(&mut app, &snap, "half a pass");
    let fx = press(&mut app, &snap, KeyPress::ctrl('k'));
    assert_eq!(sent(&fx), vec![Command::Kill]);
    assert!(app.dialog.is_none());
}

#[test]
fn optimistic_halt_clears_once_the_engine_confirms() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ctrl('k'));
    assert!(app.kill_sent);
    update(&mut app, Action::SnapshotArrived, &demo::killing(NOW + 100));
    assert!(!app.kill_sent);
}

#[test]
fn bell_rings_once_for_a_new_fill_or_rejection_and_not_for_old_lines() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    assert!(
        update(&mut app, Action::SnapshotArrived, &snap).is_empty(),
        "start-up lines are old news"
    );
    let line = |seq, kind| LogLine {
        seq,
        time_ms: NOW,
        level: LogLevel::Info,
        kind,
        text: "x".into(),
    };
    snap.log.push(line(100, LogKind::Connection));
    assert!(update(&mut app, Action::SnapshotArrived, &snap).is_empty());
    snap.log.push(line(101, LogKind::Fill));
    snap.log.push(line(102, LogKind::Rejection));
    assert_eq!(
        update(&mut app, Action::SnapshotArrived, &snap),
        vec![Effect::Bell]
    );
    assert!(
        update(&mut app, Action::SnapshotArrived, &snap).is_empty(),
        "seen lines do not ring again"
    );
}

#[test]
fn bell_rings_when_a_limit_crosses_80_percent_and_again_only_after_it_drops() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    snap.limits.trades_used = 8; // 8 of 10
    assert_eq!(
        update(&mut app, Action::SnapshotArrived, &snap),
        vec![Effect::Bell]
    );
    snap.limits.trades_used = 9;
    assert!(update(&mut app, Action::SnapshotArrived, &snap).is_empty());
    snap.limits.trades_used = 0;
    update(&mut app, Action::SnapshotArrived, &snap);
    snap.limits.day_pnl_pct = Decimal::new(-41, 1); // -4.1% of a 5% limit
    assert_eq!(
        update(&mut app, Action::SnapshotArrived, &snap),
        vec![Effect::Bell]
    );
}

#[test]
fn help_is_generated_from_the_keymap_and_names_every_action() {
    let keymap = Keymap::default();
    let lines = keymap.help_lines(false);
    for b in &keymap.bindings {
        assert!(
            lines.iter().any(|(ctx, keys, help)| *ctx == b.context
                && *help == b.help
                && keys.contains(&b.key.label(false))),
            "{:?} missing from help",
            b
        );
    }
    assert!(
        lines
            .iter()
            .any(|(ctx, keys, _)| *ctx == Context::Global && keys == "Ctrl-K")
    );
}

#[test]
fn number_keys_switch_tabs_and_tab_cycles_focus() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    for (key, tab) in [
        ('2', Tab::Positions),
        ('3', Tab::Risk),
        ('4', Tab::Log),
        ('1', Tab::Market),
    ] {
        press(&mut app, &snap, KeyPress::ch(key));
        assert_eq!(app.tab, tab);
    }
    press(&mut app, &snap, KeyPress::ch('5'));
    assert_eq!(app.tab, Tab::Ticket);
    assert!(app.ticket.is_some(), "the ticket tab opens a ticket");
    press(&mut app, &snap, esc());
    assert!(app.ticket.is_none());
    assert_eq!(app.tab, Tab::Market);
    assert!(matches!(snap.header.trading, TradingState::Active));
}

#[test]
fn equity_window_cycles() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let labels: Vec<&str> = (0..4)
        .map(|_| {
            press(&mut app, &snap, KeyPress::ch('w'));
            app.equity_window.label()
        })
        .collect();
    assert_eq!(labels, vec!["day", "week", "all", "session"]);
}

#[test]
fn a_status_line_lasts_until_the_next_key_not_past_it() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ctrl('k'));
    assert!(app.status.as_deref().is_some_and(|s| s.starts_with("KILL sent")));
    // A new snapshot is not a key: the answer to the kill key stays up.
    update(&mut app, Action::SnapshotArrived, &snap);
    assert!(app.status.is_some());
    press(&mut app, &snap, KeyPress::ch('2'));
    assert_eq!(app.status, None, "the footer shows key hints again");
}

#[test]
fn an_open_ticket_is_checked_again_when_the_account_changes_and_only_then() {
    let mut snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    type_text(&mut app, &snap, "0.2");
    let d = draft(&app);
    // Nothing changed: a new snapshot asks for nothing (no preview ⇄ snapshot loop).
    assert!(sent(&update(&mut app, Action::SnapshotArrived, &snap)).is_empty());
    // The entry filled: a position appeared, so the same draft is checked again, once.
    let mut filled = snap.positions[0].clone();
    filled.qty = filled.qty.checked_add(filled.qty).unwrap();
    snap.positions[0] = filled;
    let fx = update(&mut app, Action::SnapshotArrived, &snap);
    assert_eq!(sent(&fx), vec![Command::PreviewTicket(d.clone())]);
    assert!(sent(&update(&mut app, Action::SnapshotArrived, &snap)).is_empty());
    // Halted by the kill key: checked again.
    snap.header.trading = TradingState::Halted {
        reason: "kill switch pressed".into(),
        since_ms: NOW,
    };
    let fx = update(&mut app, Action::SnapshotArrived, &snap);
    assert_eq!(sent(&fx), vec![Command::PreviewTicket(d)]);
}

fn focus_field(app: &mut App, snap: &Snapshot, field: crbot::engine::snapshot::TicketField) {
    for _ in 0..8 {
        if app.ticket.as_ref().unwrap().focused_field() == field {
            return;
        }
        press(app, snap, KeyPress::plain(KeyCode::Tab));
    }
    panic!("field {field:?} not reachable");
}

#[test]
fn side_and_type_are_toggles_and_the_price_follows_the_type() {
    use crbot::engine::snapshot::TicketField as F;
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    let limit_price = draft(&app).price;
    assert!(!limit_price.is_empty(), "a LIMIT ticket starts at the market");
    focus_field(&mut app, &snap, F::Side);
    // Free text is not taken: only the toggle's letters, arrows and Space.
    type_text(&mut app, &snap, "xyz");
    assert_eq!(draft(&app).side, "BUY");
    press(&mut app, &snap, KeyPress::ch('s'));
    assert_eq!(draft(&app).side, "SELL");
    press(&mut app, &snap, KeyPress::plain(KeyCode::Right));
    assert_eq!(draft(&app).side, "BUY");
    press(&mut app, &snap, KeyPress::ch(' '));
    assert_eq!(draft(&app).side, "SELL");
    press(&mut app, &snap, KeyPress::ch('B'));
    assert_eq!(draft(&app).side, "BUY");

    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    assert_eq!(app.ticket.as_ref().unwrap().focused_field(), F::OrderType);
    let fx = press(&mut app, &snap, KeyPress::ch('m'));
    assert_eq!(draft(&app).order_type, "MARKET");
    assert_eq!(draft(&app).price, "", "no stale limit price on a MARKET ticket");
    assert!(
        matches!(sent(&fx).as_slice(), [Command::PreviewTicket(d)] if d.order_type == "MARKET" && d.price.is_empty()),
        "{fx:?}"
    );
    // Tab from the amount passes over the price of a MARKET ticket.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    assert_eq!(app.ticket.as_ref().unwrap().focused_field(), F::Amount);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    assert_eq!(app.ticket.as_ref().unwrap().focused_field(), F::StopLoss);
    // Back to LIMIT: the price starts at the market again.
    focus_field(&mut app, &snap, F::OrderType);
    press(&mut app, &snap, KeyPress::ch('l'));
    assert_eq!(draft(&app).order_type, "LIMIT");
    assert_eq!(draft(&app).price, limit_price);
}

#[test]
fn a_new_symbol_starts_at_its_own_market() {
    use crbot::engine::snapshot::TicketField as F;
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    let first = draft(&app);
    let other = snap
        .watchlist
        .iter()
        .find(|w| w.symbol.as_str() != first.symbol && w.ask.is_some())
        .unwrap();
    focus_field(&mut app, &snap, F::Symbol);
    for _ in 0..first.symbol.len() {
        press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    }
    type_text(&mut app, &snap, other.symbol.as_str());
    assert_ne!(draft(&app).price, first.price);
    assert_eq!(draft(&app).price, other.ask.unwrap().to_string());
}

#[test]
fn ticket_fields_edit_as_in_a_shell() {
    use crbot::engine::snapshot::TicketField as F;
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    focus_field(&mut app, &snap, F::Amount);
    type_text(&mut app, &snap, "250 USDT");
    press(&mut app, &snap, KeyPress::ctrl('w'));
    assert_eq!(draft(&app).amount, "250 ");
    press(&mut app, &snap, KeyPress::ctrl('u'));
    assert_eq!(draft(&app).amount, "");
    type_text(&mut app, &snap, "1 2");
    press(
        &mut app,
        &snap,
        KeyPress::new(KeyCode::Char('b'), KeyModifiers::ALT),
    );
    type_text(&mut app, &snap, "0");
    assert_eq!(draft(&app).amount, "1 02");
}

#[test]
fn esc_keeps_an_unsent_draft_for_the_next_ticket_on_that_symbol() {
    use crbot::engine::snapshot::TicketField as F;
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('t'));
    focus_field(&mut app, &snap, F::Amount);
    type_text(&mut app, &snap, "0.15");
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    assert!(app.ticket.is_none());
    let fx = press(&mut app, &snap, KeyPress::ch('t'));
    assert_eq!(draft(&app).amount, "0.15");
    assert!(
        matches!(sent(&fx).as_slice(), [Command::PreviewTicket(d)] if d.amount == "0.15"),
        "the kept draft is checked again: {fx:?}"
    );
    // On another symbol a fresh ticket opens.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    press(&mut app, &snap, KeyPress::ch('t'));
    assert_eq!(draft(&app).amount, "");
}

fn command_line(app: &mut App, snap: &Snapshot, line: &str) -> Vec<Effect> {
    press(app, snap, KeyPress::ch(':'));
    assert!(
        matches!(app.dialog, Some(Dialog::CommandLine { .. })),
        "{:?}",
        app.dialog
    );
    type_text(app, snap, line);
    press(app, snap, KeyPress::plain(KeyCode::Enter))
}

#[test]
fn a_command_line_order_fills_the_ticket_and_sends_nothing() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let fx = command_line(
        &mut app,
        &snap,
        "buy btcusdt 0.01 --limit 97000 --stop-loss 95000 --take-profit 99000",
    );
    let d = draft(&app);
    assert_eq!(
        (
            d.symbol.as_str(),
            d.side.as_str(),
            d.order_type.as_str(),
            d.amount.as_str()
        ),
        ("BTCUSDT", "BUY", "LIMIT", "0.01")
    );
    assert_eq!(
        (d.price.as_str(), d.stop_loss.as_str(), d.take_profit.as_str()),
        ("97000", "95000", "99000")
    );
    // Only the risk preview: the order leaves after the ticket's review and `y`, as always.
    assert_eq!(sent(&fx), vec![Command::PreviewTicket(d)]);
    assert!(app.dialog.is_none());
}

#[test]
fn command_line_kill_limit_and_mistakes() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    let fx = command_line(&mut app, &snap, "kill");
    assert_eq!(sent(&fx), vec![Command::Kill]);
    let fx = command_line(&mut app, &snap, "limit daily 4");
    assert_eq!(
        sent(&fx),
        vec![Command::ProposeLimit {
            name: LimitName::DailyLoss,
            value: Decimal::new(4, 0)
        }]
    );
    let fx = command_line(&mut app, &snap, "sell");
    assert!(sent(&fx).is_empty());
    let Some(Dialog::CommandLine { error: Some(e), .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert!(e.starts_with("sell SYMBOL QTY"), "{e}");
    // The kill key works while typing on the command line.
    let fx = press(&mut app, &snap, KeyPress::ctrl('k'));
    assert_eq!(sent(&fx), vec![Command::Kill]);
}

#[test]
fn a_filter_shows_the_matching_rows_and_keys_act_only_on_a_shown_row() {
    let snap = demo::snapshot(NOW);
    let mut app = new_app(&snap);
    press(&mut app, &snap, KeyPress::ch('/'));
    type_text(&mut app, &snap, "sol");
    let fx = press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    assert_eq!(app.visible(Focus::Watchlist, &snap).len(), 1);
    let sel = app
        .selected(Focus::Watchlist, &snap)
        .expect("the selection moved onto the match");
    assert_eq!(snap.watchlist[sel].symbol.as_str(), "SOLUSDT");
    assert!(sent(&fx).contains(&Command::SelectSymbol(Symbol::new("SOLUSDT").unwrap())));
    assert_eq!(
        app.status.as_deref(),
        Some(&*format!("/SOL: 1 of {} rows", snap.watchlist.len()))
    );
    // Moving stays on the shown rows.
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    press(&mut app, &snap, KeyPress::ch('G'));
    assert_eq!(app.watch_sel, sel);
    // A filter nothing matches: no row is selected, so `c` and `d` act on nothing.
    press(&mut app, &snap, KeyPress::ch('/'));
    for _ in 0..3 {
        press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    }
    type_text(&mut app, &snap, "zzz");
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    assert!(app.visible(Focus::Watchlist, &snap).is_empty());
    let fx = press(&mut app, &snap, KeyPress::ch('d'));
    assert!(sent(&fx).is_empty(), "removed a row the filter hides: {fx:?}");
    press(&mut app, &snap, KeyPress::ch('c'));
    assert!(app.dialog.is_none());
    // An empty filter shows every row again.
    press(&mut app, &snap, KeyPress::ch('/'));
    for _ in 0..3 {
        press(&mut app, &snap, KeyPress::plain(KeyCode::Backspace));
    }
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    assert_eq!(app.visible(Focus::Watchlist, &snap).len(), snap.watchlist.len());
    assert_eq!(app.status.as_deref(), Some("filter cleared"));
}
