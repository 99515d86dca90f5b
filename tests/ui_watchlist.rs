//! The watchlist's symbol field, key by key: a name the exchange does not list is refused
//! there and never sent, Tab completes from the exchange's symbols, and with no list (an
//! attached screen) the engine decides. Pure: `App` + `update` with fixed snapshots.

mod support {
    pub mod demo;
}

use crbot::domain::Symbol;
use crbot::engine::snapshot::{Command, Snapshot};
use crbot::ui::{App, Dialog, Effect, KeyPress, UiConfig, update};
use crossterm::event::KeyCode;
use support::demo;

const NOW: i64 = 1_764_333_296_000;

fn press(app: &mut App, snap: &Snapshot, key: KeyPress) -> Vec<Effect> {
    match app.action_for(key) {
        Some(action) => update(app, action, snap),
        None => vec![],
    }
}

fn type_text(app: &mut App, snap: &Snapshot, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| press(app, snap, KeyPress::ch(c)))
        .collect()
}

fn sent(effects: &[Effect]) -> Vec<Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The demo snapshot with the exchange's symbols (sorted, as the engine gives them).
fn snapshot() -> Snapshot {
    let mut snap = demo::snapshot(NOW);
    snap.symbols = std::sync::Arc::new(
        [
            "ADAUSDT", "BNBUSDT", "BTCFDUSD", "BTCUSDC", "BTCUSDT", "ETHBTC", "ETHUSDT", "SOLUSDT",
        ]
        .iter()
        .map(|s| Symbol::new(s).unwrap())
        .collect(),
    );
    snap
}

fn key(code: KeyCode) -> KeyPress {
    KeyPress::plain(code)
}

fn field(app: &App) -> (String, Option<String>) {
    match &app.dialog {
        Some(Dialog::AddSymbol { input, error }) | Some(Dialog::CommandLine { input, error }) => {
            (input.lines().concat(), error.clone())
        }
        other => panic!("no prompt open: {other:?}"),
    }
}

#[test]
fn an_unknown_symbol_is_refused_in_the_field_and_never_sent() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "btcusdx");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(fx, vec![Effect::Bell]);
    assert!(sent(&fx).is_empty());
    let (_, error) = field(&app);
    let error = error.expect("a reason");
    assert!(
        error.contains("BTCUSDX is not a symbol of the exchange"),
        "{error}"
    );
    assert!(error.contains("BTCUSDT"), "suggests the near names: {error}");

    // The same from the command line.
    press(&mut app, &snap, key(KeyCode::Esc));
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "add FOOBAR");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert!(sent(&fx).is_empty(), "{fx:?}");
    assert!(
        field(&app)
            .1
            .is_some_and(|e| e.contains("FOOBAR is not a symbol"))
    );
}

#[test]
fn a_known_symbol_is_sent_and_one_already_watched_is_not_sent_again() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "adausdt");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(
        sent(&fx),
        vec![Command::AddSymbol(Symbol::new("ADAUSDT").unwrap())]
    );

    let watched = snap.watchlist[0].symbol.to_string();
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, &watched);
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert!(sent(&fx).is_empty(), "{fx:?}");
    assert!(app.status.as_deref().is_some_and(|s| s.contains("already")));
}

#[test]
fn tab_completes_the_common_part_then_the_one_name_left() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "bt");
    press(&mut app, &snap, key(KeyCode::Tab));
    let (text, hint) = field(&app);
    assert_eq!(text, "BTC");
    let hint = hint.expect("the candidates");
    assert!(
        hint.contains("3 symbols") && hint.contains("BTCFDUSD") && hint.contains("BTCUSDT"),
        "{hint}"
    );
    type_text(&mut app, &snap, "u");
    press(&mut app, &snap, key(KeyCode::Tab));
    assert_eq!(field(&app).0, "BTCUSD");
    type_text(&mut app, &snap, "t");
    press(&mut app, &snap, key(KeyCode::Tab));
    assert_eq!(field(&app), ("BTCUSDT".to_string(), None));
    press(&mut app, &snap, key(KeyCode::Esc));

    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "zz");
    press(&mut app, &snap, key(KeyCode::Tab));
    let (text, hint) = field(&app);
    assert_eq!(text, "ZZ");
    assert!(hint.is_some_and(|h| h.contains("no symbol of the exchange starts with ZZ")));
}

#[test]
fn tab_on_the_command_line_completes_the_symbol_word() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "add ad");
    press(&mut app, &snap, key(KeyCode::Tab));
    assert_eq!(field(&app).0, "add ADAUSDT");
}

#[test]
fn without_the_exchanges_list_a_well_formed_name_goes_to_the_engine_to_decide() {
    let snap = demo::snapshot(NOW);
    assert!(snap.symbols.is_empty());
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "xrpusdt");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(
        sent(&fx),
        vec![Command::AddSymbol(Symbol::new("XRPUSDT").unwrap())]
    );
}
