//! End-to-end: the real `crbot` binary in tmux against the local exchange it starts (`sim`
//! mode, a fresh temporary home), walking the market-detail and history panels the way a
//! trader reads them (`capture-pane`): the selected symbol's live order book and trades, the
//! book following a new selection, the candles' timeframe switch, a price alert set with `A`
//! and fired (once, with the bell) when the market crosses it, an order typed on the `:`
//! command line, the fill in the history, the history's `/` filter, and the tabs at 80×24.
//!
//! The market is moved across the alert with the local exchange's `POST /sim/control/price`,
//! reached with the address and key the console publishes in `<home>/sim-endpoint.json`; the
//! terminal bells are counted by a tmux `alert-bell` hook.
//!
//! tmux is required: without it these tests fail with a message saying so.

mod support {
    pub mod tmux;
}

use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use support::tmux::{Tmux, panel, panel_rows, panel_text, sh_quote};

const START: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(15);

fn crbot() -> &'static str {
    env!("CARGO_BIN_EXE_crbot")
}

fn wrapper(home: &Path) -> String {
    format!(
        "env NO_COLOR=1 {} --mode sim --home {}; echo CRBOT_EXIT=$?; sleep 30",
        sh_quote(crbot()),
        sh_quote(&home.display().to_string())
    )
}

/// The book's levels as (price, size, cumulated), when the panel shows a live book.
fn book_levels(screen: &str, symbol: &str) -> Vec<(Decimal, Decimal, Decimal)> {
    panel_rows(screen, &format!("Book {symbol} (live"))
        .into_iter()
        .filter_map(|w| {
            let n = |i: usize| w.get(i)?.parse::<Decimal>().ok();
            (w.len() == 3).then(|| Some((n(0)?, n(1)?, n(2)?)))?
        })
        .collect()
}

/// Moves a symbol's price on the console's own local exchange (`POST /sim/control/price`).
fn move_price(home: &Path, symbol: &str, price: Decimal) {
    let text = std::fs::read_to_string(home.join("sim-endpoint.json")).expect("sim-endpoint.json is written");
    let rec: serde_json::Value = serde_json::from_str(&text).expect("sim-endpoint.json is JSON");
    let field = |k: &str| {
        rec[k]
            .as_str()
            .unwrap_or_else(|| panic!("sim-endpoint.json has {k}"))
            .to_string()
    };
    let url = format!("{}/sim/control/price", field("rest").trim_end_matches('/'));
    let body = serde_json::json!({"symbol": symbol, "price": price.to_string()}).to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(&url)
            .header("X-MBX-APIKEY", field("api_key"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the local exchange answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "price control: {status} {text}");
    });
}

/// A watchlist row's words, the selection mark `>` dropped: `[symbol, (mark,) last, bid, ask,
/// 24h%]`.
fn watch_row(screen: &str, symbol: &str) -> Option<Vec<String>> {
    panel_rows(screen, "Watchlist")
        .into_iter()
        .find(|w| w.first().is_some_and(|n| n.trim_start_matches('>') == symbol))
}

/// A symbol's last price from the watchlist (a row with no alert mark).
fn last(screen: &str, symbol: &str) -> Option<Decimal> {
    watch_row(screen, symbol).filter(|w| w.len() == 5)?[1]
        .parse()
        .ok()
}

/// The log lines that contain `text`.
fn log_lines(screen: &str, text: &str) -> usize {
    panel_text(screen, "Risk & event log").matches(text).count()
}

/// A symbol's ask from the watchlist.
fn ask(screen: &str, symbol: &str) -> Option<Decimal> {
    panel_rows(screen, "Watchlist").into_iter().find_map(|w| {
        (w.len() == 5 && w[0].trim_start_matches('>') == symbol)
            .then(|| w[3].parse::<Decimal>().ok())
            .flatten()
    })
}

/// The bells counted so far (`Tmux::count_bells`).
fn bell_count(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |s| s.lines().count())
}

#[test]
fn book_trades_timeframes_a_price_alert_a_command_line_order_and_its_history() {
    let home = tempfile::tempdir().expect("temp home");
    let t = Tmux::start("panels", 160, 48, &wrapper(home.path()), &[], home.path());

    // 1. The first symbol's book goes live: levels on both sides of the spread, sizes
    //    cumulated from the touch.
    t.wait_for("the log line saying it reconciled", START, |s| {
        panel_text(s, "Risk & event log").contains("reconciled with the exchange")
    });
    let screen = t.wait_for("BTCUSDT's live book", START, |s| {
        book_levels(s, "BTCUSDT").len() >= 4 && panel_text(s, "Book BTCUSDT").contains("spread")
    });
    let book = panel_text(&screen, "Book BTCUSDT (live");
    let levels = book_levels(&screen, "BTCUSDT");
    let spread_at = book.lines().position(|l| l.contains("spread")).expect("spread");
    let asks = spread_at.saturating_sub(1);
    assert!(asks >= 1, "asks above the spread:\n{book}");
    // Asks are drawn from the farthest to the best: prices fall towards the spread.
    assert!(levels[0].0 > levels[asks - 1].0, "{book}");
    // The best ask's cumulated size is its own size.
    assert_eq!(levels[asks - 1].1, levels[asks - 1].2, "{book}");

    // 2. The book and the tape follow a new selection.
    t.keys(&["Down"]);
    let screen = t.wait_for("ETHUSDT's live book and trades", START, |s| {
        book_levels(s, "ETHUSDT").len() >= 4
            && panel_rows(s, "Trades ETHUSDT")
                .iter()
                .any(|w| w.last().is_some_and(|side| side == "buy" || side == "sell"))
    });
    assert!(
        panel(&screen, "Book BTCUSDT").is_none(),
        "one book on screen:\n{screen}"
    );

    // 3. The candles' timeframe: 5m then 1h, named in the title, backfilled from REST.
    t.keys(&["]"]);
    t.wait_for("the 5m chart", STEP, |s| {
        s.contains("ETHUSDT 5m: close") && !panel_text(s, "ETHUSDT 5m").contains("loading")
    });
    t.keys(&["]"]);
    let screen = t.wait_for("the 1h chart with its axis", STEP, |s| {
        let chart = panel_text(s, "ETHUSDT 1h: close");
        chart.contains('│') && !chart.contains("loading")
    });
    assert!(
        !panel_text(&screen, "ETHUSDT 1h").contains("no candles yet"),
        "{screen}"
    );
    t.keys(&["["]);
    t.wait_for("back to 5m", STEP, |s| s.contains("ETHUSDT 5m: close"));

    // 4. A price alert, set from the watchlist with `A` (the command line opens prefilled
    //    with the highlighted symbol) 1 % above the last price, then the market moved across
    //    it: what the trader sees is the armed alert, then the fired one with the bell, the
    //    log line and the status line, once, however often the price crosses again.
    let bells = home.path().join("bells.txt");
    t.count_bells(&bells);
    let last_eth = t.wait_for_value("ETHUSDT's last price", STEP, |s| last(s, "ETHUSDT"));
    let target = (last_eth * Decimal::new(101, 2)).round_dp(2).normalize();
    t.keys(&["A"]);
    t.wait_for("the command line prefilled", STEP, |s| {
        s.contains("alert ETHUSDT above")
    });
    t.type_text(&target.to_string());
    t.keys(&["Enter"]);
    let shown = format!("ETHUSDT above {target:.2}");
    let screen = t.wait_for("the alert armed", STEP, |s| {
        watch_row(s, "ETHUSDT").is_some_and(|w| w.get(1).is_some_and(|m| m == "*"))
            && log_lines(s, &format!("alert set: {shown}")) == 1
    });
    assert!(
        screen.contains("Watchlist (~ = stale, * = alert, ! = fired)"),
        "the legend names the marks:\n{screen}"
    );
    t.keys(&[":"]);
    t.type_text("alerts");
    t.keys(&["Enter"]);
    t.wait_for("the alert listed as armed", STEP, |s| {
        s.contains(&format!("1 alert: {shown} armed"))
    });
    assert_eq!(bell_count(&bells), 0, "no bell before the alert fires");

    let crossed = (target * Decimal::new(101, 2)).round_dp(2).normalize();
    move_price(home.path(), "ETHUSDT", crossed);
    let screen = t.wait_for("the alert fired", START, |s| {
        watch_row(s, "ETHUSDT").is_some_and(|w| w.get(1).is_some_and(|m| m == "!"))
            && log_lines(s, &format!("ALERT {shown}: last")) == 1
    });
    assert!(
        screen
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("ALERT {shown}"))),
        "the status line says it:\n{screen}"
    );
    t.wait_for_value("the bell", STEP, |_| (bell_count(&bells) == 1).then_some(()));
    t.keys(&[":"]);
    t.type_text("alerts");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the alert listed as fired", STEP, |s| {
        s.contains(&format!("1 alert: {shown} FIRED"))
    });
    let listed = |s: &str| {
        s.lines()
            .find_map(|l| l.find("1 alert:").map(|at| l[at..].trim_end().to_string()))
            .unwrap_or_default()
    };
    let fired = listed(&screen);

    // Down below the target and up across it again: a fired alert is not re-armed.
    move_price(home.path(), "ETHUSDT", last_eth);
    t.wait_for("the price back under the target", STEP, |s| {
        watch_row(s, "ETHUSDT")
            .and_then(|w| w.get(2)?.parse::<Decimal>().ok())
            .is_some_and(|p| p < target)
    });
    let again = (target * Decimal::new(103, 2)).round_dp(2).normalize();
    move_price(home.path(), "ETHUSDT", again);
    t.wait_for("the price across the target again", STEP, |s| {
        watch_row(s, "ETHUSDT")
            .and_then(|w| w.get(2)?.parse::<Decimal>().ok())
            .is_some_and(|p| p > target * Decimal::new(102, 2))
    });
    t.keys(&[":"]);
    t.type_text("alerts");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the alerts listed again", STEP, |s| s.contains("1 alert:"));
    assert_eq!(log_lines(&screen, "ALERT ETHUSDT"), 1, "fired once:\n{screen}");
    assert_eq!(bell_count(&bells), 1, "one bell:\n{screen}");
    assert_eq!(listed(&screen), fired, "still the first firing:\n{screen}");
    // Cleared, the alert leaves the watchlist (the order below reads the plain row).
    t.keys(&[":"]);
    t.type_text("alert clear ETHUSDT");
    t.keys(&["Enter"]);
    t.wait_for("the alert cleared", STEP, |s| {
        watch_row(s, "ETHUSDT").is_some_and(|w| w.len() == 5) && !s.contains("* alert, ! fired")
    });

    // 5. An order typed on the `:` command line: it fills the ticket, reviewed and sent as
    //    one typed field by field.
    let ask = t.wait_for_value("ETHUSDT's ask", STEP, |s| ask(s, "ETHUSDT"));
    let price = (ask * Decimal::new(101, 2)).round_dp(2).normalize();
    let stop = (price * Decimal::new(98, 2)).round_dp(2).normalize();
    let take = (price * Decimal::new(104, 2)).round_dp(2).normalize();
    t.keys(&[":"]);
    t.type_text(&format!(
        "buy ETHUSDT 0.01 --limit {price} --stop-loss {stop} --take-profit {take}"
    ));
    t.keys(&["Enter"]);
    t.wait_for("the filled ticket approved", STEP, |s| {
        panel_text(s, "Order ticket").contains("APPROVED")
    });
    t.keys(&["Enter"]);
    t.wait_for("the confirm step", STEP, |s| {
        panel(s, "Send this ticket?").is_some()
    });
    t.keys(&["y"]);
    t.wait_for("the order accepted", START, |s| {
        panel_text(s, "Order ticket").contains("ACCEPTED")
    });
    t.keys(&["Escape"]);
    t.wait_for("the ticket closed", STEP, |s| {
        panel_text(s, "Order ticket").contains("No ticket open")
    });

    // 6. The fill and its order in the history, today's.
    let screen = t.wait_for("the ETHUSDT fill in the history", START, |s| {
        panel_rows(s, "History")
            .iter()
            .any(|w| w.len() >= 4 && w[1] == "ETHUSDT" && w[2] == "fill" && w[3] == "BUY")
    });
    let history = panel_text(&screen, "History");
    assert!(history.contains("realized today"), "{history}");
    assert!(
        history
            .lines()
            .any(|l| l.contains("ETHUSDT") && l.contains("order")),
        "{history}"
    );

    // 7. The `/` filter on the history: Tab to it, filter on BTC, nothing of ETH left.
    for _ in 0..6 {
        t.keys(&["Tab"]);
    }
    t.wait_for("the history focused", STEP, |s| {
        s.contains("History: fills & orders")
    });
    t.keys(&["/"]);
    t.type_text("BTC");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the filtered history", STEP, |s| {
        s.contains("History: fills & orders (0) /BTC")
    });
    // Below the summary line (today's and each position's realized P&L), no ETHUSDT row.
    let rows = panel(&screen, "History").unwrap_or_default();
    assert!(rows.iter().skip(1).all(|r| !r.contains("ETHUSDT")), "{screen}");
    assert!(rows.iter().any(|r| r.contains("matches /BTC")), "{screen}");

    // 8. At 80×24 the panels are tabs: the book on 6, the history on 7.
    t.resize(80, 24);
    t.keys(&["6"]);
    t.wait_for("the book tab", STEP, |s| {
        book_levels(s, "ETHUSDT").len() >= 2 && s.contains("6 Book")
    });
    t.keys(&["7"]);
    t.wait_for("the history tab, still filtered", STEP, |s| {
        s.contains("History: fills & orders (0) /BTC")
    });

    let screen = t.quit_crbot(STEP);
    assert!(screen.contains("CRBOT_EXIT=0"), "{screen}");
}
