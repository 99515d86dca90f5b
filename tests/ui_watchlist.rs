//! The watchlist's symbol field, key by key: a name the exchange does not list is refused
//! there and never sent, Tab completes from the exchange's symbols, and with no list (an
//! attached screen) the engine decides. Price alerts: set from the command line and the
//! watchlist's key, rung once when a snapshot says one fired (a fake price path), marked and
//! listed in the watchlist. Pure: `App` + `update` with fixed snapshots.

mod support {
    pub mod demo;
    pub mod keys;
    pub mod screen;
}

use crbot::domain::{Price, Symbol};
use crbot::engine::snapshot::{Command, Crossing, PriceAlert, Snapshot};
use crbot::ui::{App, Dialog, Effect, KeyPress, UiConfig, update};
use crossterm::event::KeyCode;
use support::demo;
use support::keys::{press, sent, type_text};
use support::screen::{draw, text};

const NOW: i64 = 1_764_333_296_000;

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
    type_text(&mut app, &snap, "  add ad");
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

fn price(text: &str) -> Price {
    text.parse().unwrap()
}

#[test]
fn alert_from_the_command_line_is_sent_and_one_already_crossed_is_refused() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "alert btcusdt above 100000");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(
        sent(&fx),
        vec![Command::SetPriceAlert {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            crossing: Crossing::Above,
            price: price("100000"),
        }]
    );
    // BTCUSDT's last is 96432.15 in the demo: "below 100000" is true already.
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "alert BTCUSDT below 100000");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert!(sent(&fx).is_empty(), "{fx:?}");
    let error = field(&app).1.unwrap();
    assert!(
        error.contains("already") && error.contains("could never cross"),
        "{error}"
    );

    press(&mut app, &snap, key(KeyCode::Esc));
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "alert clear");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(sent(&fx), vec![Command::ClearPriceAlerts(None)]);
}

#[test]
fn clearing_the_alerts_of_a_malformed_symbol_is_refused_not_read_as_every_fired_one() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "alert clear btc/usdt");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert!(sent(&fx).is_empty(), "{fx:?}");
    assert!(fx.contains(&Effect::Bell), "{fx:?}");
    let (text, error) = field(&app);
    assert_eq!(text, "alert clear btc/usdt");
    assert!(error.is_some_and(|e| e.contains("BTC/USDT")));
}

#[test]
fn the_alert_key_on_the_watchlist_prefills_the_command_line_with_the_symbol() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    let selected = snap.watchlist[app.watch_sel].symbol.to_string();
    press(&mut app, &snap, KeyPress::ch('A'));
    assert_eq!(field(&app).0, format!("alert {selected} above "));
    type_text(&mut app, &snap, "999999");
    let fx = press(&mut app, &snap, key(KeyCode::Enter));
    assert!(matches!(
        sent(&fx).as_slice(),
        [Command::SetPriceAlert {
            crossing: Crossing::Above,
            ..
        }]
    ));
}

/// A fake price path: the engine's snapshots before, at and after the crossing.
#[test]
fn a_fired_alert_rings_once_and_says_so_then_stays_marked() {
    let mut snap = snapshot();
    let btc = Symbol::new("BTCUSDT").unwrap();
    snap.price_alerts = vec![PriceAlert {
        symbol: btc.clone(),
        crossing: Crossing::Above,
        price: price("97000"),
        fired: None,
    }];
    let mut app = App::new(UiConfig::default(), &snap);
    let arrived = |app: &mut App, snap: &Snapshot| update(app, crbot::ui::Action::SnapshotArrived, snap);
    assert!(!arrived(&mut app, &snap).contains(&Effect::Bell));
    let armed = draw(&app, &snap, 160, 48);
    assert!(text(&armed).contains("BTCUSDT *"));
    assert!(text(&armed).contains("armed"));

    // The price crosses 97000: the engine marks the alert fired.
    snap.watchlist[0].last = Some(price("97010.5"));
    snap.now_ms += 1_000;
    snap.price_alerts[0].fired = Some((snap.now_ms, price("97010.5")));
    let fx = arrived(&mut app, &snap);
    assert_eq!(fx.iter().filter(|e| **e == Effect::Bell).count(), 1, "{fx:?}");
    assert_eq!(app.status.as_deref(), Some("ALERT BTCUSDT above 97000.00"));
    // The next snapshots ring no more.
    snap.now_ms += 1_000;
    assert!(!arrived(&mut app, &snap).contains(&Effect::Bell));

    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "alerts");
    press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(
        app.status.as_deref(),
        Some("1 alert: BTCUSDT above 97000.00 FIRED 12:34 at 97010.50")
    );
    let small = draw(&app, &snap, 80, 24);
    assert!(text(&small).contains("BTCUSDT !"));
    insta::assert_snapshot!("watchlist_alert_fired_80x24", small.backend());
    let wide = draw(&app, &snap, 160, 48);
    assert!(text(&wide).contains("FIRED"));
    assert!(text(&wide).contains("≥97000.00"));
    insta::assert_snapshot!("watchlist_alert_fired_160x48", wide.backend());
    insta::assert_snapshot!("watchlist_alert_fired_60x20", draw(&app, &snap, 60, 20).backend());
}

#[test]
fn a_screen_started_after_an_alert_fired_does_not_ring_for_it() {
    let mut snap = snapshot();
    snap.price_alerts = vec![PriceAlert {
        symbol: Symbol::new("ETHUSDT").unwrap(),
        crossing: Crossing::Below,
        price: price("3200"),
        fired: Some((snap.now_ms - 60_000, price("3199"))),
    }];
    let mut app = App::new(UiConfig::default(), &snap);
    assert!(!update(&mut app, crbot::ui::Action::SnapshotArrived, &snap).contains(&Effect::Bell));
}

#[test]
fn theme_on_the_command_line_switches_the_palette_and_a_wrong_name_says_the_choices() {
    let snap = snapshot();
    let mut app = App::new(UiConfig::default(), &snap);
    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "theme light");
    press(&mut app, &snap, key(KeyCode::Enter));
    assert_eq!(app.config.theme.palette, crbot::ui::theme::Palette::LIGHT);
    // A loss is drawn in the light theme's red.
    let t = draw(&app, &snap, 160, 48);
    let buf = t.backend().buffer();
    let area = buf.area;
    let reds = (0..area.height)
        .flat_map(|y| (0..area.width).map(move |x| (x, y)))
        .filter(|&(x, y)| buf[(x, y)].fg == ratatui::style::Color::Rgb(180, 0, 0))
        .count();
    assert!(reds > 0, "no cell in the light theme's red");

    press(&mut app, &snap, KeyPress::ch(':'));
    type_text(&mut app, &snap, "theme neon");
    assert_eq!(press(&mut app, &snap, key(KeyCode::Enter)), vec![Effect::Bell]);
    let error = field(&app).1.unwrap();
    assert!(
        error.contains("no theme `neon`") && error.contains("high-contrast"),
        "{error}"
    );
    assert_eq!(app.config.theme.palette, crbot::ui::theme::Palette::LIGHT);
}
