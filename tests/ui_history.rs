//! The history panel over a long journal (`demo::long_history`: fills and orders over four
//! symbols, today's and earlier days'): the rows it draws, newest first, at the top, around a
//! selection deep in the list, under a `/` filter and on the 80×24 tab, as insta snapshots
//! taken before its rows were cached (any change to what a row says or where it is drawn
//! shows up as a diff); and the rows following what they are built from: new fills, a new
//! filter, a new day, the symbols' ticks.

mod support {
    pub mod demo;
    pub mod keys;
    pub mod screen;
}

use std::sync::Arc;

use crbot::engine::snapshot::Snapshot;
use crbot::ui::{Action, App, Focus, KeyPress, Tab, update};
use crossterm::event::KeyCode;
use rust_decimal::Decimal;
use support::demo;
use support::keys::{press, type_text};

/// 2025-11-28 12:34:56 UTC: fixed, so every snapshot is deterministic.
const NOW: i64 = 1_764_333_296_000;

/// 3 000 fills and 600 orders, one every 37 s back from `NOW`: 31 hours, so two days.
fn long_snapshot() -> Snapshot {
    let mut snap = demo::snapshot(NOW);
    snap.history = demo::long_history(NOW, 3_000);
    snap
}

fn app(snap: &Snapshot) -> App {
    support::screen::unicode_app(snap)
}

/// The history panel's rows as drawn at `w`×`h`: the box titled "History" cut out of the frame.
fn history_panel(app: &App, snap: &Snapshot, w: u16, h: u16) -> String {
    let screen = support::screen::text(&support::screen::draw(app, snap, w, h));
    let lines: Vec<&str> = screen.lines().collect();
    let Some((top, col)) = lines
        .iter()
        .enumerate()
        .find_map(|(y, l)| l.find("History: fills").map(|x| (y, l[..x].chars().count())))
    else {
        return String::new();
    };
    // The box's left edge is the corner before the title; its right edge the next corner.
    let row: Vec<char> = lines[top].chars().collect();
    let left = (0..col).rev().find(|x| row[*x] == '┌').unwrap_or(0);
    let right = (col..row.len()).find(|x| row[*x] == '┐').unwrap_or(row.len() - 1);
    lines[top..]
        .iter()
        .take_while(|l| l.chars().nth(left).is_none_or(|c| c != '└'))
        .chain(lines.iter().skip(top).find(|l| l.chars().nth(left) == Some('└')))
        .map(|l| l.chars().skip(left).take(right + 1 - left).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn focus_history(app: &mut App, snap: &Snapshot) {
    for _ in 0..Focus::ALL.len() {
        if app.focus == Focus::History {
            return;
        }
        press(app, snap, KeyPress::plain(KeyCode::Tab));
    }
    panic!("Tab never reached the history");
}

#[test]
fn a_long_history_draws_its_newest_rows_first() {
    let snap = long_snapshot();
    let a = app(&snap);
    let panel = history_panel(&a, &snap, 160, 48);
    assert!(panel.contains("History: fills & orders (3600)"), "{panel}");
    insta::assert_snapshot!("long_history_160x48_top", panel);
}

#[test]
fn a_selection_deep_in_a_long_history_is_drawn_among_its_neighbours() {
    let snap = long_snapshot();
    let mut a = app(&snap);
    focus_history(&mut a, &snap);
    for _ in 0..3 {
        press(&mut a, &snap, KeyPress::plain(KeyCode::PageDown));
    }
    let after_pages = a.history_sel;
    assert!(after_pages > 0, "PgDn moves the selection");
    insta::assert_snapshot!("long_history_160x48_paged", history_panel(&a, &snap, 160, 48));
    // The oldest row: yesterday's, with its date.
    press(&mut a, &snap, KeyPress::ch('G'));
    assert_eq!(a.history_sel, 3_599);
    let panel = history_panel(&a, &snap, 160, 48);
    assert!(panel.contains("11-27 "), "{panel}");
    insta::assert_snapshot!("long_history_160x48_end", panel);
    // And back up to the newest.
    press(&mut a, &snap, KeyPress::ch('g'));
    assert_eq!(a.history_sel, 0);
    assert_eq!(
        history_panel(&a, &snap, 160, 48),
        {
            let fresh = app(&snap);
            let mut f = fresh.clone();
            focus_history(&mut f, &snap);
            history_panel(&f, &snap, 160, 48)
        },
        "the same panel as a fresh screen's"
    );
}

#[test]
fn a_filtered_long_history_on_the_small_screen_tab() {
    let snap = long_snapshot();
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('7'));
    assert_eq!(a.tab, Tab::History);
    insta::assert_snapshot!("long_history_80x24_tab", history_panel(&a, &snap, 80, 24));
    press(&mut a, &snap, KeyPress::ch('/'));
    type_text(&mut a, &snap, "sol");
    press(&mut a, &snap, KeyPress::plain(KeyCode::Enter));
    // 750 SOL fills (every fourth) and 150 orders (every fourth, on the fills' fifths).
    assert_eq!(a.visible(Focus::History, &snap).len(), 900);
    press(&mut a, &snap, KeyPress::plain(KeyCode::PageDown));
    let panel = history_panel(&a, &snap, 80, 24);
    assert!(panel.contains("(900) /SOL"), "{panel}");
    insta::assert_snapshot!("long_history_80x24_sol_paged", panel);
}

/// The rows follow what they are drawn from, on the next frame: a new read of the journal,
/// the filter, the day (today's rows show the time, earlier ones the date) and a tick.
#[test]
fn the_rows_follow_new_fills_the_filter_the_day_and_the_ticks() {
    let mut snap = long_snapshot();
    let mut a = app(&snap);
    press(&mut a, &snap, KeyPress::ch('7'));
    let before = history_panel(&a, &snap, 80, 24);

    // A new read with one more fill, newer than every other.
    let mut fills = snap.history.fills.as_ref().clone();
    let mut newest = fills[0].clone();
    newest.fill.trade_id = 9_999_999;
    newest.fill.time_ms = NOW + 1_000;
    newest.fill.price = crbot::domain::Price::try_new(Decimal::new(9_999_999, 2)).unwrap();
    fills.insert(0, newest);
    snap.history.fills = Arc::new(fills);
    update(&mut a, Action::SnapshotArrived, &snap);
    let panel = history_panel(&a, &snap, 80, 24);
    assert!(panel.contains("(3601)"), "{panel}");
    assert!(panel.contains("99999.99"), "the new fill is drawn:\n{panel}");
    assert_ne!(panel, before);

    // Same rows, a new `Arc` (as an attached screen gets each snapshot): drawn the same.
    let copy = Arc::new(snap.history.fills.as_ref().clone());
    let mut same = snap.clone();
    same.history.fills = copy;
    assert_eq!(history_panel(&a, &same, 80, 24), panel);

    // The filter, then none again.
    press(&mut a, &snap, KeyPress::ch('/'));
    type_text(&mut a, &snap, "bnb");
    press(&mut a, &snap, KeyPress::plain(KeyCode::Enter));
    let bnb = history_panel(&a, &snap, 80, 24);
    assert!(bnb.contains("(900) /BNB") && !bnb.contains("ETHUSDT"), "{bnb}");
    // The `/` field opens with the filter in it: rubbed out, every row again.
    press(&mut a, &snap, KeyPress::ch('/'));
    for _ in 0..3 {
        press(&mut a, &snap, KeyPress::plain(KeyCode::Backspace));
    }
    press(&mut a, &snap, KeyPress::plain(KeyCode::Enter));
    assert_eq!(history_panel(&a, &snap, 80, 24), panel);

    // The next day: today's rows are yesterday's now, drawn with their date.
    let mut tomorrow = snap.clone();
    tomorrow.now_ms = NOW + 86_400_000;
    update(&mut a, Action::SnapshotArrived, &tomorrow);
    let next_day = history_panel(&a, &tomorrow, 80, 24);
    assert!(next_day.contains("11-28 12:34"), "{next_day}");

    // A coarser tick for BTCUSDT: its prices are drawn at it.
    let mut ticked = snap.clone();
    let btc = crbot::domain::Symbol::new("BTCUSDT").unwrap();
    ticked.price_ticks.insert(btc, Decimal::ONE);
    update(&mut a, Action::SnapshotArrived, &ticked);
    let coarse = history_panel(&a, &ticked, 80, 24);
    assert!(
        coarse.contains("97250 ") && !coarse.contains("97250.00"),
        "{coarse}"
    );
}
