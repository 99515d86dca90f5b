//! Whole-screen snapshots of the console with `TestBackend` at 80×24 and 160×48, one per
//! panel/tab and per dialog, plus colour assertions on the cells where colour carries meaning.
//! Snapshots ignore colour (insta sees text only); colours are asserted cell by cell.

mod support {
    pub mod demo;
}

use crbot::domain::Mode;
use crbot::engine::snapshot::{LimitChangePending, LimitName, Snapshot, TradingState};
use crbot::ui::{Action, App, KeyPress, Theme, UiConfig, update, view};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use rust_decimal::Decimal;
use support::demo;

/// 2025-11-28 12:34:56 UTC: fixed, so every snapshot is deterministic.
const NOW: i64 = 1_764_333_296_000;

fn config(color: bool, ascii: bool) -> UiConfig {
    UiConfig {
        theme: Theme {
            color,
            ascii,
            ..Theme::DEFAULT
        },
        ..UiConfig::default()
    }
}

fn draw(app: &App, snap: &Snapshot, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view(app, snap, f)).unwrap();
    t
}

fn press(app: &mut App, snap: &Snapshot, key: KeyPress) {
    if let Some(action) = app.action_for(key) {
        update(app, action, snap);
    }
}

fn type_text(app: &mut App, snap: &Snapshot, text: &str) {
    for c in text.chars() {
        press(app, snap, KeyPress::ch(c));
    }
}

/// The engine's answer to the ticket's current draft: the demo verdict for exactly that draft.
fn answer_preview(app: &App, snap: &mut Snapshot) {
    let draft = app.ticket.as_ref().unwrap().draft();
    snap.ticket_preview.as_mut().unwrap().draft = draft;
}

fn ticket_app(snap: &mut Snapshot) -> App {
    let mut app = App::new(config(true, false), snap);
    press(&mut app, snap, KeyPress::ch('t'));
    type_text(&mut app, snap, "0.15");
    answer_preview(&app, snap);
    app
}

/// Where `needle` starts in the buffer, as (x, y) of its first cell.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let area = buf.area;
    for y in 0..area.height {
        let cells: Vec<&str> = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        let n: Vec<char> = needle.chars().collect();
        for x in 0..cells.len() {
            if x + n.len() <= cells.len() && n.iter().enumerate().all(|(i, c)| cells[x + i] == c.to_string())
            {
                return Some((x as u16, y));
            }
        }
    }
    None
}

#[test]
fn market_tab_at_80x24() {
    let snap = demo::snapshot(NOW);
    let app = App::new(config(true, false), &snap);
    insta::assert_snapshot!(draw(&app, &snap, 80, 24).backend());
}

#[test]
fn positions_tab_at_80x24_shows_oco_legs_and_unknown_spinner() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('2'));
    let t = draw(&app, &snap, 80, 24);
    assert!(find(t.backend().buffer(), "UNKNOWN").is_some());
    assert!(find(t.backend().buffer(), "stop-loss OCO").is_some());
    insta::assert_snapshot!(t.backend());
}

#[test]
fn a_long_average_entry_is_rounded_and_keeps_its_column() {
    let mut snap = demo::snapshot(NOW);
    // 97.24543 USDT for 0.000999 BTC (the fee taken in BTC): a 28-decimal quotient.
    let entry = Decimal::new(9_724_543, 5) / Decimal::new(999, 6);
    snap.positions[0].avg_fill = Some(crbot::domain::Price::try_new(entry).unwrap());
    // A mark off the tick (a mid) with a half at the third decimal: half away from zero.
    snap.positions[0].mark = Some(crbot::domain::Price::try_new(Decimal::new(97_297_865, 3)).unwrap());
    let app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 160, 48);
    let text = format!("{}", t.backend());
    assert!(
        text.contains("97342.77 "),
        "entry at BTCUSDT's tick (0.01):\n{text}"
    );
    assert!(
        text.contains("97297.87 "),
        "mark at the tick, half away from zero:\n{text}"
    );
    assert!(!text.contains("97342.7727"), "{text}");
    let header = text
        .lines()
        .find(|l| l.contains("Symbol") && l.contains("uP&L"))
        .unwrap();
    assert!(header.contains("Entry"), "{header}");

    // Rules not loaded yet (no tick): the entry follows the mark's own decimals.
    snap.price_ticks.clear();
    snap.positions[0].mark = Some(crbot::domain::Price::try_new(Decimal::new(97_297_875, 3)).unwrap());
    let t = draw(&app, &snap, 160, 48);
    let text = format!("{}", t.backend());
    assert!(
        text.contains("97342.773 "),
        "entry at the mark's 3 decimals:\n{text}"
    );
}

#[test]
fn prices_and_chart_labels_follow_the_symbol_tick() {
    let mut snap = demo::snapshot(NOW);
    // ETHUSDT (the selected symbol) at a 0.01 tick: a last price of 3118.4 is 3118.40, and
    // the candle axis is labelled at two decimals; the equity axis at USDT's two.
    snap.watchlist[1].last = Some(crbot::domain::Price::try_new(Decimal::new(31184, 1)).unwrap());
    let app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 160, 48);
    let text = format!("{}", t.backend());
    let eth = text.lines().find(|l| l.contains(">ETHUSDT")).unwrap();
    assert!(eth.contains("3118.40"), "{eth}");
    let bnb = text.lines().find(|l| l.contains("BNBUSDT ~")).unwrap();
    assert!(
        bnb.contains("702.3") && !bnb.contains("702.30"),
        "BNB at its 0.1 tick: {bnb}"
    );
    let title = text.lines().find(|l| l.contains("1m: close")).unwrap();
    assert!(title.contains("3093.00"), "{title}");
    // Every number on a chart's value axis has exactly two decimals (no `{:.0}` labels).
    for line in text.lines().filter(|l| l.contains('│')) {
        for cell in line.split('│') {
            let cell = cell.trim();
            if let Ok(v) = cell.parse::<Decimal>()
                && cell.len() > 3
            {
                assert_eq!(v.scale(), 2, "axis label {cell:?} in {line}");
            }
        }
    }
}

#[test]
fn risk_tab_at_80x24() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('3'));
    insta::assert_snapshot!(draw(&app, &snap, 80, 24).backend());
}

#[test]
fn log_tab_at_80x24() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('4'));
    insta::assert_snapshot!(draw(&app, &snap, 80, 24).backend());
}

#[test]
fn ticket_with_preview_at_80x24() {
    let mut snap = demo::snapshot(NOW);
    let app = ticket_app(&mut snap);
    let t = draw(&app, &snap, 80, 24);
    assert!(find(t.backend().buffer(), "APPROVED").is_some());
    insta::assert_snapshot!(t.backend());
}

#[test]
fn ticket_with_refused_preview_at_160x48() {
    let mut snap = demo::snapshot(NOW);
    let app = ticket_app(&mut snap);
    let p = snap.ticket_preview.as_mut().unwrap();
    p.approved = false;
    p.rules[0].passed = false;
    p.rules[0].detail = "notional 980.00 > 492.63 (5% of 9852.61)".into();
    let t = draw(&app, &snap, 160, 48);
    let at = find(t.backend().buffer(), "REFUSED").unwrap();
    assert_eq!(t.backend().buffer()[at].fg, Color::Red);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn stale_preview_shows_checking_instead_of_a_verdict() {
    let mut snap = demo::snapshot(NOW);
    let mut app = ticket_app(&mut snap);
    type_text(&mut app, &snap, "5");
    let t = draw(&app, &snap, 80, 24);
    assert!(find(t.backend().buffer(), "checking the ticket").is_some());
    assert!(find(t.backend().buffer(), "APPROVED").is_none());
}

#[test]
fn unfinished_ticket_says_not_ready_instead_of_refusing_zero_checks() {
    let mut snap = demo::snapshot(NOW);
    let app = ticket_app(&mut snap);
    let p = snap.ticket_preview.as_mut().unwrap();
    p.approved = false;
    p.rules.clear();
    p.field_errors = vec![(
        crbot::engine::snapshot::TicketField::StopLoss,
        "an entry needs a stop-loss".into(),
    )];
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    let at = find(buf, "NOT READY: 1 field to fill or fix").expect("the not-ready line");
    assert_eq!(buf[at].fg, Color::Yellow);
    assert!(find(buf, "stop-loss: an entry needs a stop-loss").is_some());
    assert!(find(buf, "REFUSED").is_none());
    assert!(find(buf, "0 of 0").is_none());
}

#[test]
fn a_failed_rule_shows_its_code_once_when_the_reason_repeats_it() {
    let mut snap = demo::snapshot(NOW);
    let app = ticket_app(&mut snap);
    let p = snap.ticket_preview.as_mut().unwrap();
    p.approved = false;
    let code = p.rules[0].code.clone();
    p.rules[0].passed = false;
    p.rules[0].detail = format!("{code}: notional 980.00 > 492.63");
    for (w, h) in [(80, 24), (160, 48)] {
        let t = draw(&app, &snap, w, h);
        let text = format!("{}", t.backend());
        let line = text
            .lines()
            .find(|l| l.contains("notional 980.00 > 492.63"))
            .unwrap_or_else(|| panic!("the failed rule's reason is drawn:\n{text}"));
        assert_eq!(line.matches(&code).count(), 1, "code drawn once: {line}");
    }
}

#[test]
fn every_panel_at_160x48() {
    let snap = demo::snapshot(NOW);
    let app = App::new(config(true, false), &snap);
    insta::assert_snapshot!(draw(&app, &snap, 160, 48).backend());
}

#[test]
fn every_panel_at_160x48_in_ascii() {
    let snap = demo::snapshot(NOW);
    let app = App::new(config(true, true), &snap);
    let t = draw(&app, &snap, 160, 48);
    let buf = t.backend().buffer();
    let non_ascii: Vec<&str> = buf
        .content
        .iter()
        .map(|c| c.symbol())
        .filter(|s| !s.is_ascii())
        .collect();
    assert!(non_ascii.is_empty(), "non-ASCII cells: {non_ascii:?}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn help_at_80x24_and_160x48_lists_the_kill_key() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('?'));
    let small = draw(&app, &snap, 80, 24);
    assert!(find(small.backend().buffer(), "Ctrl-K").is_some());
    insta::assert_snapshot!("help_80x24", small.backend());
    insta::assert_snapshot!("help_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn confirm_submit_lists_entry_and_oco_legs() {
    let mut snap = demo::snapshot(NOW);
    let mut app = ticket_app(&mut snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    let small = draw(&app, &snap, 80, 24);
    let buf = small.backend().buffer();
    assert!(find(buf, "BUY LIMIT 0.15 ETHUSDT @ 3120.5 GTC").is_some());
    assert!(find(buf, "(take-profit, OCO)").is_some());
    assert!(find(buf, "(stop-loss, OCO)").is_some());
    insta::assert_snapshot!("confirm_submit_80x24", small.backend());
    insta::assert_snapshot!("confirm_submit_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn confirm_submit_of_one_order_says_this_order_in_the_singular() {
    let mut snap = demo::snapshot(NOW);
    let mut app = ticket_app(&mut snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    if let Some(crbot::ui::Dialog::ConfirmSubmit { orders, .. }) = app.dialog.as_mut() {
        orders.truncate(1);
    } else {
        panic!("no confirm dialog: {:?}", app.dialog);
    }
    let buf = draw(&app, &snap, 80, 24);
    assert!(find(buf.backend().buffer(), "This order will leave, exactly:").is_some());
    assert!(find(buf.backend().buffer(), "These 1 orders").is_none());
}

#[test]
fn confirm_quit_says_open_orders_stay() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('q'));
    let small = draw(&app, &snap, 80, 24);
    assert!(find(small.backend().buffer(), "3 open orders stay on the exchange").is_some());
    insta::assert_snapshot!("confirm_quit_80x24", small.backend());
    insta::assert_snapshot!("confirm_quit_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn confirm_quit_on_an_attached_screen_says_the_engine_keeps_running_and_counts_right() {
    let mut snap = demo::snapshot(NOW);
    snap.orders.truncate(1);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('q'));
    let alone = draw(&app, &snap, 160, 48);
    assert!(
        find(
            alone.backend().buffer(),
            "1 open order stays on the exchange after crbot quits"
        )
        .is_some()
    );

    snap.attached_to = Some("pid 4242, socket /d/engine-sim.sock".into());
    let attached = draw(&app, &snap, 160, 48);
    let buffer = attached.backend().buffer();
    assert!(
        find(
            buffer,
            "Only this screen closes: the engine keeps running (pid 4242"
        )
        .is_some()
    );
    assert!(find(buffer, "1 open order stays on the exchange.").is_some());
    assert!(
        find(buffer, "after crbot quits").is_none(),
        "an attached screen's quit stops no engine"
    );
}

#[test]
fn cancelling_a_protective_leg_names_both_legs_and_the_unprotected_position() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    press(&mut app, &snap, KeyPress::ch('x'));
    let wide = draw(&app, &snap, 160, 48);
    let buffer = wide.backend().buffer();
    assert!(find(buffer, "the exchange cancels both legs").is_some());
    assert!(find(buffer, "position is then UNPROTECTED on the exchange").is_some());
    insta::assert_snapshot!("cancel_protection_80x24", draw(&app, &snap, 80, 24).backend());
}

#[test]
fn close_position_dialog() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Tab));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    press(&mut app, &snap, KeyPress::ch('c'));
    press(&mut app, &snap, KeyPress::ch('2'));
    let small = draw(&app, &snap, 80, 24);
    assert!(
        find(
            small.backend().buffer(),
            "Sell 50% of 2.5 SOLUSDT at market: 1.25"
        )
        .is_some()
    );
    insta::assert_snapshot!("close_position_80x24", small.backend());
    insta::assert_snapshot!("close_position_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn flatten_confirm_after_kill() {
    let mut snap = demo::killing(NOW);
    if let Some(k) = &mut snap.kill {
        k.done = true;
        k.stage = crbot::engine::snapshot::KillStage::Cancelled;
        k.lines[1].ok = Some(true);
        k.lines[1].outcome = "1 order cancelled".into();
    }
    let mut app = App::new(config(true, false), &snap);
    insta::assert_snapshot!(
        "kill_done_offers_flatten_160x48",
        draw(&app, &snap, 160, 48).backend()
    );
    press(&mut app, &snap, KeyPress::ch('F'));
    insta::assert_snapshot!("flatten_80x24", draw(&app, &snap, 80, 24).backend());
    insta::assert_snapshot!("flatten_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn limit_change_dialogs() {
    let mut snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('L'));
    insta::assert_snapshot!("limit_change_80x24", draw(&app, &snap, 80, 24).backend());
    insta::assert_snapshot!("limit_change_160x48", draw(&app, &snap, 160, 48).backend());
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    snap.limit_change_pending = Some(LimitChangePending {
        name: LimitName::DailyLoss,
        from: Decimal::new(5, 0),
        to: Decimal::new(8, 0),
        phrase: "LOOSEN MAX_DAILY_LOSS_PERCENT 8".into(),
    });
    update(&mut app, Action::SnapshotArrived, &snap);
    insta::assert_snapshot!("limit_typed_confirm_80x24", draw(&app, &snap, 80, 24).backend());
}

#[test]
fn kill_in_progress_shows_per_symbol_lines_and_halted() {
    let snap = demo::killing(NOW);
    let app = App::new(config(true, false), &snap);
    let small = draw(&app, &snap, 80, 24);
    let buf = small.backend().buffer();
    assert!(find(buf, "OCO list 7 cancelled").is_some());
    let at = find(buf, "HALTED").unwrap();
    assert_eq!(at.1, 0, "HALTED is on the header's first line");
    assert_eq!(buf[at].bg, Color::Red);
    insta::assert_snapshot!("kill_in_progress_80x24", small.backend());
    insta::assert_snapshot!("kill_in_progress_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn add_symbol_and_rearm_dialogs_at_80x24() {
    let snap = demo::killing(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('a'));
    type_text(&mut app, &snap, "adausdt");
    insta::assert_snapshot!("add_symbol_80x24", draw(&app, &snap, 80, 24).backend());
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    press(&mut app, &snap, KeyPress::ch('R'));
    insta::assert_snapshot!("rearm_80x24", draw(&app, &snap, 80, 24).backend());
}

/// A halted `demo` console (keys from the vault) with the re-arm dialog open.
fn rearm_with_keys() -> (App, Snapshot) {
    let mut snap = demo::killing(NOW);
    snap.mode = Mode::Demo;
    snap.rearm_needs_passphrase = true;
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('R'));
    (app, snap)
}

#[test]
fn rearm_dialog_asks_the_vault_passphrase_in_a_mode_with_keys() {
    let (mut app, snap) = rearm_with_keys();
    type_text(&mut app, &snap, "hunter22");
    let small = draw(&app, &snap, 80, 24);
    assert!(find(small.backend().buffer(), "Vault passphrase: ••••••••").is_some());
    insta::assert_snapshot!("rearm_passphrase_80x24", small.backend());
    insta::assert_snapshot!("rearm_passphrase_160x48", draw(&app, &snap, 160, 48).backend());
}

#[test]
fn typing_the_rearm_passphrase_never_draws_it() {
    let (mut app, snap) = rearm_with_keys();
    let pass = "Qz7#Wv9pKx2m";
    for (n, c) in pass.chars().enumerate() {
        press(&mut app, &snap, KeyPress::ch(c));
        let typed: String = pass.chars().take(n + 1).collect();
        for (w, h) in [(80, 24), (160, 48)] {
            let t = draw(&app, &snap, w, h);
            let buf = t.backend().buffer();
            let marks = format!("Vault passphrase: {}", "•".repeat(n + 1));
            assert!(find(buf, &marks).is_some(), "one mark per character at {w}x{h}");
            if typed.len() >= 3 {
                assert!(find(buf, &typed).is_none(), "`{typed}` drawn at {w}x{h}");
            }
        }
    }
}

#[test]
fn live_badge_is_white_on_red_at_both_sizes() {
    let mut snap = demo::snapshot(NOW);
    snap.mode = Mode::Live;
    let app = App::new(config(true, false), &snap);
    for (w, h) in [(80, 24), (160, 48)] {
        let t = draw(&app, &snap, w, h);
        let buf = t.backend().buffer();
        let at = find(buf, "LIVE").unwrap();
        assert_eq!(at.1, 0);
        assert_eq!(buf[at].bg, Color::Red, "LIVE at {w}x{h}");
        assert_eq!(buf[at].fg, Color::White);
    }
    insta::assert_snapshot!("live_80x24", draw(&app, &snap, 80, 24).backend());
}

#[test]
fn modes_have_distinct_badges() {
    let mut seen = Vec::new();
    for mode in Mode::ALL {
        let mut snap = demo::snapshot(NOW);
        snap.mode = mode;
        let app = App::new(config(true, false), &snap);
        let t = draw(&app, &snap, 80, 24);
        let buf = t.backend().buffer();
        let label = mode.as_str().to_ascii_uppercase();
        let at = find(buf, &label).unwrap();
        let bg = buf[at].bg;
        assert!(!seen.contains(&bg), "{mode} shares a badge colour");
        seen.push(bg);
    }
}

#[test]
fn halted_badge_shows_on_the_frame_after_the_kill_key_before_the_engine_confirms() {
    let snap = demo::snapshot(NOW);
    assert_eq!(snap.header.trading, TradingState::Active);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ctrl('k'));
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    let at = find(buf, "HALTED").unwrap();
    assert_eq!(at.1, 0);
    assert_eq!(buf[at].bg, Color::Red);
    assert!(find(buf, "ACTIVE").is_none());
}

#[test]
fn negative_pnl_is_red_and_positive_green() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('2'));
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    assert_eq!(buf[find(buf, "-19.58").unwrap()].fg, Color::Red);
    assert_eq!(buf[find(buf, "+6.36").unwrap()].fg, Color::Green);
    // The day's loss in the header.
    assert_eq!(buf[find(buf, "-212.40 USDT").unwrap()].fg, Color::Red);
}

#[test]
fn no_color_draws_no_colour_at_all() {
    let mut snap = demo::killing(NOW);
    snap.mode = Mode::Live;
    let mut app = App::new(config(false, false), &snap);
    for tab in ['1', '2', '3', '4'] {
        press(&mut app, &snap, KeyPress::ch(tab));
        for (w, h) in [(80, 24), (160, 48)] {
            let t = draw(&app, &snap, w, h);
            for cell in &t.backend().buffer().content {
                assert_eq!(
                    cell.fg,
                    Color::Reset,
                    "fg on {:?} in tab {tab} at {w}x{h}",
                    cell.symbol()
                );
                assert_eq!(
                    cell.bg,
                    Color::Reset,
                    "bg on {:?} in tab {tab} at {w}x{h}",
                    cell.symbol()
                );
            }
        }
    }
    insta::assert_snapshot!("no_color_live_halted_80x24", draw(&app, &snap, 80, 24).backend());
}

#[test]
fn ticket_result_appears_in_place_with_binance_message_or_reconciling() {
    use crbot::domain::ClientOrderId;
    use crbot::engine::snapshot::{TicketOutcome, TicketResult};
    let mut snap = demo::snapshot(NOW);
    let mut app = ticket_app(&mut snap);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    press(&mut app, &snap, KeyPress::ch('y'));
    let draft = app.ticket.as_ref().unwrap().draft();
    snap.ticket_result = Some(TicketResult {
        draft: draft.clone(),
        outcome: TicketOutcome::Rejected {
            code: Some(-2010),
            message: "Account has insufficient balance for requested action.".into(),
        },
    });
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    let at = find(buf, "REJECTED by Binance (-2010)").unwrap();
    assert_eq!(buf[at].fg, Color::Red);
    insta::assert_snapshot!("ticket_rejected_80x24", t.backend());

    snap.ticket_result = Some(TicketResult {
        draft,
        outcome: TicketOutcome::Unknown {
            client_order_id: ClientOrderId::new("crb-eth-en-0009").unwrap(),
        },
    });
    let t = draw(&app, &snap, 160, 48);
    assert!(find(t.backend().buffer(), "being reconciled").is_some());
    insta::assert_snapshot!("ticket_unknown_160x48", t.backend());
}

#[test]
fn a_position_without_a_stop_on_the_exchange_is_marked_in_the_table_and_the_header() {
    let mut snap = demo::snapshot(NOW);
    // The demo: BTCUSDT has its stop-loss leg open, SOLUSDT has none, BNBUSDT is external.
    let names = |s: &Snapshot| s.unprotected().iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&snap), ["SOLUSDT"]);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('2'));
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    let at = find(buf, "SOLUSDT NO STOP").expect("the unprotected position is tagged");
    assert_eq!(buf[at].fg, Color::Yellow);
    assert!(
        find(buf, "BTCUSDT NO STOP").is_none(),
        "BTCUSDT has its stop-loss open"
    );
    assert!(find(buf, "NO STOP on the exchange: SOLUSDT").is_some());

    // The stop-loss leg gone (cancelled on the exchange): BTCUSDT is unprotected too.
    let stop = snap
        .orders
        .iter_mut()
        .find(|o| o.client_order_id.as_str() == "crb-btc-sl-0001")
        .unwrap();
    stop.state = crbot::domain::LocalOrderState::Exchange(crbot::domain::OrderStatus::Canceled);
    assert_eq!(names(&snap), ["BTCUSDT", "SOLUSDT"]);
    let t = draw(&app, &snap, 80, 24);
    assert!(find(t.backend().buffer(), "NO STOP on the exchange: BTCUSDT, SOLUSDT").is_some());

    // Nothing to protect: no marker, no warning row.
    snap.positions.retain(|p| p.external);
    assert!(snap.unprotected().is_empty());
    let t = draw(&app, &snap, 80, 24);
    assert!(find(t.backend().buffer(), "NO STOP").is_none());
}

#[test]
fn help_that_does_not_fit_scrolls_and_every_key_is_reachable_uncut() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('?'));
    let screen_text = |app: &App| {
        let t = draw(app, &snap, 80, 24);
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut seen = String::new();
    let first = screen_text(&app);
    assert!(first.contains("scroll, Esc closes"), "{first}");
    // More presses than rows beyond the screen: the last ones stay at the end.
    for _ in 0..app.config.keymap.bindings.len() {
        seen.push_str(&screen_text(&app));
        press(&mut app, &snap, KeyPress::plain(KeyCode::Down));
    }
    for (_, _, help) in app.config.keymap.help_lines(false) {
        assert!(seen.contains(help), "help line {help:?} never shown whole");
    }
    // Scrolling moved the rows: the last screen is not the first.
    assert_ne!(screen_text(&app), first);
    press(&mut app, &snap, KeyPress::plain(KeyCode::Esc));
    assert!(!app.help);
}

#[test]
fn before_the_first_equity_the_header_says_unknown_never_zero() {
    let mut snap = demo::snapshot(NOW);
    snap.equity = None;
    snap.equity_status = crbot::engine::snapshot::EquityStatus::Pending;
    snap.limits.day_pnl = crbot::domain::Money::zero(crbot::domain::Asset::new("USDT").unwrap());
    snap.limits.day_pnl_pct = Decimal::ZERO;
    snap.limits.drawdown_pct = Decimal::ZERO;
    let app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 160, 48);
    let buf = t.backend().buffer();
    assert!(find(buf, "day – (no equity yet)").is_some());
    assert!(find(buf, "DD –/10%").is_some());
    assert!(find(buf, "eq –").is_some());
    let text: String = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                + "\n"
        })
        .collect();
    assert!(
        find(buf, "0.00 USDT").is_none(),
        "an unknown P&L drawn as zero:\n{text}"
    );
    assert!(
        find(buf, "DD 0.00").is_none(),
        "an unknown drawdown drawn as zero"
    );
}

#[test]
fn quitting_before_the_account_is_loaded_does_not_claim_zero_open_orders() {
    let mut snap = demo::snapshot(NOW);
    snap.orders.clear();
    snap.equity = None;
    snap.equity_status = crbot::engine::snapshot::EquityStatus::Pending;
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('q'));
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    assert!(find(buf, "0 open orders").is_none());
    assert!(find(buf, "(not loaded yet)").is_some());
    // Loaded and truly none: then zero is the fact.
    snap.equity_status = crbot::engine::snapshot::EquityStatus::Complete { held: vec![] };
    let t = draw(&app, &snap, 80, 24);
    assert!(find(t.backend().buffer(), "0 open orders stay").is_some());
}

#[test]
fn a_connected_market_stream_with_every_quote_stale_is_not_ok() {
    let mut snap = demo::snapshot(NOW);
    for w in &mut snap.watchlist {
        w.stale = true;
    }
    let app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 120, 36);
    let buf = t.backend().buffer();
    assert!(find(buf, "mkt ok").is_none());
    let at = find(buf, "mkt STALE").expect("the badge says stale");
    assert_eq!(buf[(at.0 + 4, at.1)].fg, Color::Yellow);
    // One quote live: the stream is ok, the watchlist marks the stale rows.
    snap.watchlist[0].stale = false;
    let t = draw(&app, &snap, 120, 36);
    assert!(find(t.backend().buffer(), "mkt ok 12ms").is_some());
}

#[test]
fn an_approved_ticket_shows_reward_risk_the_loss_at_the_stop_and_the_share_of_equity() {
    let mut snap = demo::snapshot(NOW);
    let app = ticket_app(&mut snap);
    assert!(snap.ticket_preview.as_ref().unwrap().approved);
    let t = draw(&app, &snap, 160, 48);
    let buf = t.backend().buffer();
    // Entry 3120.50, stop 3050 (limit 3045), take-profit 3280, 0.15 ETH, equity 9852.61 USDT:
    // (3280 - 3120.5) / (3120.5 - 3050) = 2.26; (3120.5 - 3045) × 0.15 = 11.325 = 0.11 % of it;
    // the notional 468.08 is 4.75 % of it.
    assert!(find(buf, "R/R 2.26").is_some());
    assert!(find(buf, "loss at stop 11.32 USDT (0.11% eq)").is_some());
    assert!(find(buf, "(4.75% eq)").is_some());
}

#[test]
fn at_60x20_the_header_drops_whole_fields_by_priority_and_never_cuts_a_number() {
    let mut snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 60, 20);
    let buf = t.backend().buffer();
    // Streams, equity, the day's P&L, the drawdown and trades stay whole; the rate limits and
    // the reset time leave.
    for whole in [
        "mkt ok 12ms",
        "eq 9852.61 USDT",
        "day -212.40 USDT -2.11%/-5%",
        "DD 3.40/10%",
        "trades 4/10",
    ] {
        assert!(find(buf, whole).is_some(), "{whole} missing at 60x20");
    }
    assert!(find(buf, "wt 84/6000").is_none() && find(buf, "resets").is_none());
    insta::assert_snapshot!("market_60x20", t.backend());
    for (key, name) in [('2', "positions_60x20"), ('3', "risk_60x20"), ('4', "log_60x20")] {
        press(&mut app, &snap, KeyPress::ch(key));
        insta::assert_snapshot!(name, draw(&app, &snap, 60, 20).backend());
    }
    let app = ticket_app(&mut snap);
    insta::assert_snapshot!("ticket_60x20", draw(&app, &snap, 60, 20).backend());
}

#[test]
fn at_60x20_a_long_halt_reason_is_cut_with_an_ellipsis_and_never_runs_into_the_clock() {
    let snap = demo::killing(NOW);
    let app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 60, 20);
    let first: String = (0..60)
        .map(|x| t.backend().buffer()[(x, 0)].symbol().to_string())
        .collect();
    assert!(first.contains(" HALTED "), "{first}");
    assert!(first.contains(" kill switch"), "the reason starts: {first}");
    assert!(
        first.contains("… 12:34:"),
        "cut, then a space before the clock: {first}"
    );
    assert!(first.ends_with("UTC  Ctrl-K KILL "), "{first}");
    // Wide enough, the whole reason and its time.
    let wide = draw(&app, &snap, 160, 48);
    let first: String = (0..160)
        .map(|x| wide.backend().buffer()[(x, 0)].symbol().to_string())
        .collect();
    assert!(first.contains(" kill switch (key) since 12:34:"), "{first}");
}

#[test]
fn a_filtered_list_draws_only_its_matches_and_says_so_in_its_title() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('2'));
    press(&mut app, &snap, KeyPress::ch('/'));
    type_text(&mut app, &snap, "btc");
    press(&mut app, &snap, KeyPress::plain(KeyCode::Enter));
    let t = draw(&app, &snap, 80, 24);
    let buf = t.backend().buffer();
    assert!(find(buf, "Positions (ext = external) /BTC").is_some());
    assert!(find(buf, "BTCUSDT").is_some());
    assert!(
        find(buf, "SOLUSDT NO STOP").is_none(),
        "a filtered-out row is drawn"
    );
    // The header's warning still names every unprotected position: a filter never hides risk.
    assert!(find(buf, "NO STOP on the exchange: SOLUSDT").is_some());
}

fn mouse_at(kind: crossterm::event::MouseEventKind, column: u16, row: u16) -> crossterm::event::MouseEvent {
    crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: crossterm::event::KeyModifiers::NONE,
    }
}

#[test]
fn a_click_focuses_the_list_under_it_and_selects_the_row_and_the_wheel_moves() {
    use crbot::ui::Focus;
    use crbot::ui::app::mouse;
    use crossterm::event::{MouseButton, MouseEventKind};
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    let t = draw(&app, &snap, 160, 48);
    let buf = t.backend().buffer().clone();
    // Click the SOLUSDT row of the positions panel.
    let (x, y) = find(&buf, "SOLUSDT NO STOP").unwrap();
    let fx = mouse(
        &mut app,
        mouse_at(MouseEventKind::Down(MouseButton::Left), x + 2, y),
        &snap,
    );
    assert!(fx.is_empty(), "a click sends nothing: {fx:?}");
    assert_eq!(app.focus, Focus::Positions);
    assert_eq!(snap.positions[app.position_sel].symbol.as_str(), "SOLUSDT");
    // `c` then offers to close exactly that row.
    press(&mut app, &snap, KeyPress::ch('c'));
    assert!(
        matches!(&app.dialog, Some(crbot::ui::Dialog::ClosePosition { symbol, .. }) if symbol.as_str() == "SOLUSDT")
    );
    press(&mut app, &snap, KeyPress::ch('n'));
    // The wheel over the watchlist moves its selection and focuses it.
    draw(&app, &snap, 160, 48);
    let (wx, wy) = find(&buf, "Watchlist").unwrap();
    let before = app.watch_sel;
    mouse(&mut app, mouse_at(MouseEventKind::ScrollDown, wx, wy + 3), &snap);
    assert_eq!(app.focus, Focus::Watchlist);
    assert_eq!(app.watch_sel, before + 1);
    // With a dialog open the mouse does nothing.
    press(&mut app, &snap, KeyPress::ch('q'));
    let sel = app.watch_sel;
    mouse(&mut app, mouse_at(MouseEventKind::ScrollDown, wx, wy + 3), &snap);
    assert_eq!(app.watch_sel, sel);
}

#[test]
fn the_close_dialog_shows_the_quantity_that_will_be_sent_at_the_lot_step() {
    let snap = demo::snapshot(NOW);
    let mut app = App::new(config(true, false), &snap);
    press(&mut app, &snap, KeyPress::ch('2'));
    press(&mut app, &snap, KeyPress::plain(KeyCode::Down)); // SOLUSDT, 2.5 held, step 0.01
    assert_eq!(snap.positions[app.position_sel].symbol.as_str(), "SOLUSDT");
    press(&mut app, &snap, KeyPress::ch('c'));
    press(&mut app, &snap, KeyPress::ch('3')); // 75 %: 1.875, sent as 1.87
    let t = draw(&app, &snap, 100, 30);
    let buf = t.backend().buffer();
    assert!(find(buf, "Sell 75% of 2.5 SOLUSDT at market: 1.87").is_some());
    assert!(find(buf, "lot step 0.01").is_some());
    assert!(
        find(buf, "1.875").is_none(),
        "the unrounded share is not what is sent"
    );
}
