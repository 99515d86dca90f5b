//! End-to-end: the real `crbot` binary, in tmux, against the local exchange it starts in-process
//! (`sim` mode, a fresh temporary home).
//!
//! What a trader does on day one, checked the way a trader sees it (the screen) and the way the
//! exchange sees it (a signed REST call with the credentials the console publishes in
//! `<home>/sim-endpoint.json`): prices arrive, a ticket fills and its protective legs rest, the
//! kill key pressed while typing halts and leaves nothing open, and quitting gives the terminal
//! back as it was. A second test checks the smallest supported screen (80×24) and `NO_COLOR`.
//!
//! tmux is required: without it these tests fail with a message saying so.

mod support {
    pub mod tmux;
}

use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use support::tmux::{Tmux, colour_codes, panel, panel_rows};

const START: Duration = Duration::from_secs(20);
const STEP: Duration = Duration::from_secs(10);

fn crbot() -> &'static str {
    env!("CARGO_BIN_EXE_crbot")
}

/// Single-quotes `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell line tmux runs: crbot, then what the terminal looks like once it is gone.
fn wrapper(env: &str, home: &Path) -> String {
    format!(
        "env {env} {} --mode sim --home {}; echo CRBOT_EXIT=$?; stty -a; sleep 30",
        sh_quote(crbot()),
        sh_quote(&home.display().to_string())
    )
}

/// BTCUSDT's (last, bid, ask) from the watchlist, once it shows numbers.
fn btc_quote(screen: &str) -> Option<(Decimal, Decimal, Decimal)> {
    panel_rows(screen, "Watchlist").into_iter().find_map(|w| {
        if w.len() != 5 || w[0].trim_start_matches('>') != "BTCUSDT" {
            return None;
        }
        let n = |i: usize| w[i].parse::<Decimal>().ok();
        Some((n(1)?, n(2)?, n(3)?))
    })
}

fn panel_text(screen: &str, title: &str) -> String {
    panel(screen, title).unwrap_or_default().join("\n")
}

/// The words of the ticket row for `field` (the focus marker `>` removed).
fn ticket_field(screen: &str, field: &str) -> Option<Vec<String>> {
    panel_rows(screen, "Order ticket").into_iter().find_map(|mut w| {
        let first = w.first()?.trim_start_matches('>').to_string();
        (first == field).then(|| {
            w.remove(0);
            w
        })
    })
}

/// True when the ticket's focus marker is on `field`.
fn ticket_focus(screen: &str, field: &str) -> bool {
    panel_rows(screen, "Order ticket")
        .iter()
        .any(|w| w.first().is_some_and(|f| *f == format!(">{field}")))
}

/// The header's first row (mode, trading state, clock, kill key).
fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

/// A signed `GET {path}` to the local exchange with the credentials the console published;
/// returns the raw body, so an empty answer is asserted as the exchange wrote it.
fn signed_get(home: &Path, path: &str) -> String {
    use crbot::exchange::binance::sign::{KeyMaterial, sign_rest};
    use crbot::secret::SecretString;

    let text = std::fs::read_to_string(home.join("sim-endpoint.json")).expect("sim-endpoint.json is written");
    let rec: serde_json::Value = serde_json::from_str(&text).expect("sim-endpoint.json is JSON");
    let field = |k: &str| {
        rec[k]
            .as_str()
            .unwrap_or_else(|| panic!("sim-endpoint.json has {k}"))
            .to_string()
    };
    let key = KeyMaterial::hmac(SecretString::from(field("api_secret").as_str()));
    let now = chrono::Utc::now().timestamp_millis();
    let params = [("recvWindow", "5000".to_string()), ("timestamp", now.to_string())];
    let query = sign_rest(&key, &params).expect("signs").query;
    let url = format!("{}{path}?{query}", field("rest").trim_end_matches('/'));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(&url)
            .header("X-MBX-APIKEY", field("api_key"))
            .send()
            .await
            .expect("the local exchange answers");
        let status = resp.status();
        let body = resp.text().await.expect("a body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    })
}

#[test]
fn trades_through_the_ticket_kills_mid_typing_and_restores_the_terminal() {
    let home = tempfile::tempdir().expect("temp home");
    let t = Tmux::start(
        "flow",
        160,
        48,
        &wrapper("-u NO_COLOR", home.path()),
        &[],
        home.path(),
    );

    // 1. Prices, and the start-up reconciliation that gates trading.
    t.wait_for_value("BTCUSDT prices in the watchlist", START, btc_quote);
    t.wait_for("the log line saying it reconciled", START, |s| {
        panel_text(s, "Risk & event log").contains("reconciled with the exchange")
    });
    let screen = t.screen();
    assert!(
        header(&screen).contains("SIM") && header(&screen).contains("ACTIVE"),
        "header:\n{screen}"
    );
    assert!(
        !colour_codes(&t.screen_styled()).is_empty(),
        "without NO_COLOR the screen uses colour"
    );

    // 2. A ticket that passes every rule: a BUY LIMIT above the ask fills at once.
    t.keys(&["t"]);
    t.wait_for("a ticket focused on the quantity", STEP, |s| {
        ticket_focus(s, "qty/amount")
    });
    let (_, _, ask) = btc_quote(&t.screen()).expect("the watchlist still shows BTCUSDT");
    let price = (ask * Decimal::new(101, 2)).round_dp(2).normalize();
    let stop = (price * Decimal::new(98, 2)).round_dp(2).normalize();
    let take = (price * Decimal::new(104, 2)).round_dp(2).normalize();
    t.type_text("0.001");
    t.keys(&["Tab"]);
    t.wait_for("focus on the price", STEP, |s| ticket_focus(s, "price"));
    t.key_n("BSpace", 24);
    t.type_text(&price.to_string());
    t.keys(&["Tab"]);
    t.wait_for("focus on the stop-loss", STEP, |s| ticket_focus(s, "stop-loss"));
    t.type_text(&stop.to_string());
    t.keys(&["Tab"]);
    t.wait_for("focus on the take-profit", STEP, |s| {
        ticket_focus(s, "take-profit")
    });
    t.type_text(&take.to_string());
    let screen = t.wait_for("the engine approving the draft", STEP, |s| {
        let ticket = panel_text(s, "Order ticket");
        ticket_field(s, "take-profit") == Some(vec![take.to_string()]) && ticket.contains("APPROVED")
    });
    assert_eq!(
        ticket_field(&screen, "qty/amount"),
        Some(vec!["0.001".to_string()])
    );
    assert_eq!(ticket_field(&screen, "price"), Some(vec![price.to_string()]));
    assert_eq!(ticket_field(&screen, "stop-loss"), Some(vec![stop.to_string()]));
    let preview = panel_text(&screen, "Order ticket");
    assert!(preview.contains("BUY LIMIT 0.001 BTCUSDT"), "preview:\n{preview}");
    assert!(!preview.contains('✗'), "no rule fails:\n{preview}");

    t.keys(&["Enter"]);
    let confirm = t.wait_for("the confirm step", STEP, |s| {
        panel_text(s, "Send this ticket?").contains("(stop-loss")
    });
    let confirm = panel_text(&confirm, "Send this ticket?");
    assert!(
        confirm.contains("These 3 orders will leave") && confirm.contains("(take-profit"),
        "the confirm step lists the entry and both protective legs:\n{confirm}"
    );
    t.keys(&["y"]);
    let screen = t.wait_for("the position and its protective legs", START, |s| {
        let position = panel_rows(s, "Positions").iter().any(|w| {
            w.len() >= 2 && w[0] == "BTCUSDT" && w[1].parse::<Decimal>().is_ok_and(|q| q > Decimal::ZERO)
        });
        let orders = panel_text(s, "Open orders");
        let leg = |purpose: &str| {
            orders
                .lines()
                .any(|l| l.contains("BTCUSDT") && l.contains("SELL") && l.contains(purpose))
        };
        position && leg("stop-loss") && leg("take-profit")
    });
    let orders = panel_text(&screen, "Open orders");
    assert!(!orders.contains("entry"), "the entry filled:\n{orders}");
    // The same ticket, still open, is checked again against the new position.
    t.wait_for("the open ticket refused as a duplicate now", STEP, |s| {
        panel_rows(s, "Order ticket")
            .iter()
            .any(|w| w.len() >= 2 && w[0] == "✗" && w[1] == "DUPLICATE_POSITION")
    });
    assert!(
        panel_text(&screen, "Order ticket").contains("ACCEPTED"),
        "the result shows in place:\n{screen}"
    );

    // 3. The kill key while typing in a new ticket.
    t.keys(&["Escape"]);
    t.wait_for("the ticket closed", STEP, |s| {
        panel_text(s, "Order ticket").contains("No ticket open")
    });
    t.keys(&["t"]);
    t.wait_for("a new ticket", STEP, |s| ticket_focus(s, "qty/amount"));
    t.type_text("0.00");
    t.wait_for("the typed characters in the field", STEP, |s| {
        ticket_field(s, "qty/amount") == Some(vec!["0.00".to_string()])
    });
    t.keys(&["C-k"]);
    let screen = t.wait_for("HALTED and the kill-switch outcome", STEP, |s| {
        let kill = panel_text(s, "KILL SWITCH");
        header(s).contains("HALTED") && kill.contains("done")
    });
    let kill = panel_text(&screen, "KILL SWITCH");
    assert!(
        kill.lines()
            .any(|l| l.contains("BTCUSDT") && l.contains("cancelled")),
        "per-symbol cancel result:\n{kill}"
    );
    assert!(!header(&screen).contains("ACTIVE"), "header:\n{screen}");
    assert_eq!(
        ticket_field(&screen, "qty/amount"),
        Some(vec!["0.00".to_string()]),
        "the kill key is not typed into the field"
    );
    t.wait_for("the open orders panel empty", STEP, |s| {
        s.contains("Open orders (0)")
    });
    let open = signed_get(home.path(), "/api/v3/openOrders");
    assert_eq!(open.trim(), "[]", "the exchange still has open orders");
    let lists = signed_get(home.path(), "/api/v3/openOrderList");
    assert_eq!(lists.trim(), "[]", "the exchange still has open order lists");

    // 4. Quit, and the terminal as the shell had it.
    t.keys(&["Escape"]);
    t.wait_for("the ticket closed", STEP, |s| {
        panel_text(s, "Order ticket").contains("No ticket open")
    });
    t.keys(&["Escape"]);
    t.wait_for("the kill panel hidden", STEP, |s| {
        panel(s, "KILL SWITCH").is_none()
    });
    t.keys(&["q"]);
    let screen = t.wait_for("the quit confirmation", STEP, |s| {
        panel_text(s, "Quit crbot?").contains("stay on the exchange")
    });
    assert!(
        panel_text(&screen, "Quit crbot?").contains("0 open orders"),
        "{screen}"
    );
    t.keys(&["y"]);
    // Joined lines: `stty -a` wraps at the pane's width.
    let screen = t.wait_for_value("crbot exited and stty ran", STEP, |_| {
        let s = t.screen_joined();
        (s.contains("CRBOT_EXIT=") && s.contains("icanon")).then_some(s)
    });
    assert!(screen.contains("CRBOT_EXIT=0"), "exit status:\n{screen}");
    let first = screen.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        first.starts_with("CRBOT_EXIT="),
        "crbot printed nothing on the normal screen; it starts with:\n{screen}"
    );
    let words: Vec<&str> = screen.split_whitespace().collect();
    for mode in ["icanon", "echo"] {
        assert!(
            words.contains(&mode) && !words.contains(&format!("-{mode}").as_str()),
            "stty shows `{mode}` restored:\n{screen}"
        );
    }
    assert!(!t.alternate_screen(), "the alternate screen is gone");
    assert!(
        !screen.contains("Watchlist"),
        "the console's frame is gone:\n{screen}"
    );
    assert!(
        !home.path().join("sim-endpoint.json").exists(),
        "the endpoint file is removed on quit"
    );
}

#[test]
fn is_usable_at_80x24_without_colour() {
    let home = tempfile::tempdir().expect("temp home");
    let t = Tmux::start(
        "small",
        80,
        24,
        &wrapper("NO_COLOR=1", home.path()),
        &[],
        home.path(),
    );

    let screen = t.wait_for("the header and BTCUSDT prices", START, |s| {
        btc_quote(s).is_some() && header(s).contains("ACTIVE")
    });
    let top = header(&screen);
    for label in ["SIM", "ACTIVE", "Ctrl-K KILL", "UTC"] {
        assert!(top.contains(label), "header shows {label}:\n{screen}");
    }
    for tab in ["1 Market", "2 Positions", "3 Risk", "4 Log", "5 Ticket"] {
        assert!(screen.contains(tab), "tab bar shows {tab}:\n{screen}");
    }
    assert_eq!(
        colour_codes(&t.screen_styled()),
        Vec::<String>::new(),
        "NO_COLOR: no colour escapes"
    );

    t.keys(&["2"]);
    t.wait_for("the positions tab", STEP, |s| {
        panel(s, "Positions").is_some()
            && panel(s, "Open orders").is_some()
            && panel(s, "Watchlist").is_none()
    });
    t.keys(&["3"]);
    t.wait_for("the risk tab", STEP, |s| {
        panel_text(s, "Risk limits").contains("Day P&L") && panel(s, "Positions").is_none()
    });
    t.keys(&["4"]);
    t.wait_for("the log tab", STEP, |s| {
        panel_text(s, "Risk & event log").contains("reconciled with the exchange")
    });
    t.keys(&["5"]);
    t.wait_for("the ticket tab", STEP, |s| ticket_focus(s, "qty/amount"));
    t.keys(&["Escape"]);
    t.wait_for("the ticket closed", STEP, |s| !ticket_focus(s, "qty/amount"));
    t.keys(&["1"]);
    t.wait_for("the market tab", STEP, |s| btc_quote(s).is_some());
    t.keys(&["?"]);
    let help = t.wait_for("the help", STEP, |s| panel(s, "Keys").is_some());
    let keys = panel_text(&help, "Keys");
    assert!(keys.contains("Ctrl-K") && keys.contains("KILL"), "help:\n{help}");
    t.keys(&["Escape"]);
    t.wait_for("the help closed", STEP, |s| panel(s, "Keys").is_none());
    assert_eq!(
        colour_codes(&t.screen_styled()),
        Vec::<String>::new(),
        "NO_COLOR: no colour escapes after switching tabs"
    );

    t.keys(&["q"]);
    t.wait_for("the quit confirmation", STEP, |s| {
        panel(s, "Quit crbot?").is_some()
    });
    t.keys(&["y"]);
    let screen = t.wait_for("crbot exited", STEP, |s| s.contains("CRBOT_EXIT="));
    assert!(screen.contains("CRBOT_EXIT=0"), "exit status:\n{screen}");
}

#[test]
fn ascii_mode_draws_only_ascii_and_redraws_on_resize() {
    let home = tempfile::tempdir().expect("temp home");
    let cmd = format!(
        "{} --mode sim --home {} --ascii; echo CRBOT_EXIT=$?; sleep 30",
        sh_quote(crbot()),
        sh_quote(&home.path().display().to_string())
    );
    let t = Tmux::start("ascii", 80, 24, &cmd, &[], home.path());
    let screen = t.wait_for("BTCUSDT prices in the tabbed layout", START, |s| {
        btc_quote(s).is_some() && s.contains("1 Market")
    });
    let non_ascii: String = screen.chars().filter(|c| !c.is_ascii()).collect();
    assert_eq!(non_ascii, "", "--ascii draws ASCII only:\n{screen}");

    t.resize(160, 48);
    let screen = t.wait_for("every panel at once after growing to 160x48", STEP, |s| {
        btc_quote(s).is_some()
            && panel(s, "Positions").is_some()
            && panel(s, "Order ticket").is_some()
            && panel_text(s, "Risk & event log").contains("reconciled")
    });
    assert!(
        !screen.contains("1 Market"),
        "no tab bar in the wide layout:\n{screen}"
    );
    let non_ascii: String = screen.chars().filter(|c| !c.is_ascii()).collect();
    assert_eq!(
        non_ascii, "",
        "--ascii draws ASCII only, charts included:\n{screen}"
    );

    t.resize(80, 24);
    t.wait_for("the tabs again after shrinking to 80x24", STEP, |s| {
        s.contains("1 Market") && panel(s, "Positions").is_none() && btc_quote(s).is_some()
    });
    t.keys(&["q"]);
    t.wait_for("the quit confirmation", STEP, |s| {
        panel(s, "Quit crbot?").is_some()
    });
    t.keys(&["y"]);
    let screen = t.wait_for("crbot exited", STEP, |s| s.contains("CRBOT_EXIT="));
    assert!(screen.contains("CRBOT_EXIT=0"), "exit status:\n{screen}");
}
