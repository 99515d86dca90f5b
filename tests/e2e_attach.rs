//! End-to-end: `crbot serve` in sim (its own local exchange on loopback) and the real `crbot`
//! console attached to it over TCP (`CRBOT_API_URL`, `CRBOT_API_TOKEN`), in tmux, with a home of
//! its own: the engine is the serve's, the screen the console's. Prices show, a ticket's live
//! verdict (computed by the serve's engine) shows, the kill key halts the serve's engine (its
//! `GET /api/health` says `halted`), and quitting the screen leaves serve running and says so.
//!
//! tmux is required: without it this test fails with a message saying so.

mod support {
    pub mod tmux;
}

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crbot::api::auth::{Scope, TokenKeys};
use crbot::secret::SecretString;
use rust_decimal::Decimal;
use support::tmux::{Tmux, panel, panel_rows};

const KEY: &str = "the attach test's key, at least 32 characters";
const START: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(10);

/// Variables of the caller's environment that would change what either process does.
const CLEARED: [&str; 16] = [
    "CRBOT_HOME",
    "CRBOT_MODE",
    "BINANCE_TESTNET",
    "BINANCE_REST_URL",
    "BINANCE_WS_URL",
    "BINANCE_WS_API_URL",
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "DATABASE_URL",
    "DEBUG",
    "SECRET_KEY",
    "RATE_LIMIT_REQUESTS",
    "CRBOT_API_ADDR",
    "CRBOT_PASSPHRASE_FILE",
    "CRBOT_API_URL",
    "CRBOT_API_TOKEN",
];

fn crbot() -> &'static str {
    env!("CARGO_BIN_EXE_crbot")
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve(home: &Path) -> Serve {
    start_serve_on(home, "127.0.0.1:0")
}

fn start_serve_on(home: &Path, addr: &str) -> Serve {
    let mut c = Command::new(crbot());
    for v in CLEARED {
        c.env_remove(v);
    }
    let mut child = c
        .env("ENV", "development")
        .env("SECRET_KEY", KEY)
        .env("RATE_LIMIT_REQUESTS", "0")
        .arg("--home")
        .arg(home)
        .args(["--mode", "sim", "serve", "--addr", addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("crbot serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("serve printed its api= line");
    let base = first
        .strip_prefix("api=")
        .unwrap_or_else(|| panic!("first line is not api=…: {first}"))
        .to_string();
    Serve { child, base }
}

/// `GET /api/health`'s status, or `None` when serve does not answer.
fn health(base: &str) -> Option<String> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let res = reqwest::get(format!("{base}/api/health")).await.ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        body["status"].as_str().map(str::to_string)
    })
}

/// Polls `GET /api/health` until its status is `want`, or fails with the last one.
fn wait_health(base: &str, want: &str) {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let got = health(base);
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health is {got:?}, never {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

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

fn ticket_focus(screen: &str, field: &str) -> bool {
    panel_rows(screen, "Order ticket")
        .iter()
        .any(|w| w.first().is_some_and(|f| *f == format!(">{field}")))
}

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

/// The console in tmux (session `name`, unique per test), attached to `base` with a trade-scope token (returned too).
fn attach_console(name: &str, base: &str, home: &Path) -> (Tmux, String) {
    let token = TokenKeys::new(&SecretString::from(KEY))
        .expect("key")
        .issue("e2e", Scope::Trade, 1, chrono::Utc::now().timestamp())
        .expect("token");
    // Everything cleared but the two variables that make the console attach (set by tmux).
    let cleared: String = CLEARED
        .iter()
        .filter(|v| !matches!(**v, "CRBOT_API_URL" | "CRBOT_API_TOKEN"))
        .map(|v| format!("-u {v} "))
        .collect();
    let command = format!(
        "env {cleared} {} --mode sim --home {}; echo CRBOT_EXIT=$?; sleep 30",
        sh_quote(crbot()),
        sh_quote(&home.display().to_string())
    );
    let t = Tmux::start(
        name,
        160,
        48,
        &command,
        &[
            ("CRBOT_API_URL", base),
            ("CRBOT_API_TOKEN", token.as_str()),
            ("ENV", "development"),
        ],
        home,
    );
    (t, token)
}

#[test]
fn an_attached_console_trades_kills_and_quits_while_serve_keeps_the_engine() {
    let serve_home = tempfile::tempdir().expect("serve's home");
    let console_home = tempfile::tempdir().expect("the console's home");
    let serve = start_serve(serve_home.path());
    let (t, token) = attach_console("attach", &serve.base, console_home.path());

    // 1. The serve's prices and its start-up reconciliation, on the attached screen.
    t.wait_for_value("BTCUSDT prices in the watchlist", START, btc_quote);
    t.wait_for("the serve's log line saying it reconciled", START, |s| {
        panel_text(s, "Risk & event log").contains("reconciled with the exchange")
    });
    assert!(header(&t.screen()).contains("SIM"), "{}", t.screen());

    // 2. A ticket: the verdict is the serve's engine's, live as it is typed.
    t.keys(&["t"]);
    t.wait_for("a ticket focused on the quantity", STEP, |s| {
        ticket_focus(s, "qty/amount")
    });
    let (_, _, ask) = btc_quote(&t.screen()).expect("BTCUSDT still shows");
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
        panel_text(s, "Order ticket").contains("APPROVED")
    });
    let ticket = panel_text(&screen, "Order ticket");
    assert!(ticket.contains("BUY LIMIT 0.001 BTCUSDT"), "{ticket}");
    assert_eq!(health(&serve.base).as_deref().map(|s| s != "halted"), Some(true));

    // 3. The kill key, typed into the attached screen, halts the serve's engine.
    t.keys(&["C-k"]);
    t.wait_for("HALTED on the attached screen", STEP, |s| {
        header(s).contains("HALTED")
    });
    wait_health(&serve.base, "halted");

    // 4. Quit: the screen goes, serve stays, and the last line says where the engine runs.
    t.keys(&["Escape"]);
    t.wait_for("the ticket closed", STEP, |s| {
        panel_text(s, "Order ticket").contains("No ticket open")
    });
    t.keys(&["Escape"]);
    t.wait_for("the kill panel hidden", STEP, |s| {
        panel(s, "KILL SWITCH").is_none()
    });
    t.keys(&["q"]);
    t.wait_for("the quit confirmation", STEP, |s| {
        panel(s, "Quit crbot?").is_some()
    });
    t.keys(&["y"]);
    let screen = t.wait_for_value("crbot exited", STEP, |_| {
        let s = t.screen_joined();
        s.contains("CRBOT_EXIT=").then_some(s)
    });
    assert!(screen.contains("CRBOT_EXIT=0"), "{screen}");
    assert!(
        screen.contains(&format!("the engine keeps running ({}/)", serve.base)),
        "{screen}"
    );
    assert!(!screen.contains(&token), "the token is never printed");
    assert_eq!(health(&serve.base).as_deref(), Some("halted"), "serve still runs");
    let engine_files = |home: &Path| {
        let mut found = Vec::new();
        let mut dirs = vec![home.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() {
                    dirs.push(entry.path());
                } else if name.starts_with("journal-") || name == "sim-endpoint.json" {
                    found.push(name);
                }
            }
        }
        found
    };
    assert!(
        !engine_files(serve_home.path()).is_empty(),
        "serve's engine files are found"
    );
    let local = engine_files(console_home.path());
    assert!(
        local.is_empty(),
        "the attached console ran no engine of its own: {local:?}"
    );
}

#[test]
fn a_dropped_engine_shows_disconnected_and_a_kill_pressed_meanwhile_halts_it_when_it_is_back() {
    let serve_home = tempfile::tempdir().expect("serve's home");
    let console_home = tempfile::tempdir().expect("the console's home");
    // A port of our choosing, so that the restarted serve is where the screen looks for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut serve = start_serve_on(serve_home.path(), &addr);
    let (t, _token) = attach_console("reattach", &serve.base, console_home.path());
    t.wait_for_value("BTCUSDT prices in the watchlist", START, btc_quote);

    // The engine goes away: the screen says so, and shows no quote as live.
    let _ = serve.child.kill();
    let _ = serve.child.wait();
    let screen = t.wait_for("the disconnection in the header", STEP, |s| {
        s.contains("DISCONNECTED")
    });
    assert!(!header(&screen).contains("HALTED"), "{screen}");

    // The kill key while nothing answers: pending, then sent when the engine is back.
    t.keys(&["C-k"]);
    t.wait_for("the pending kill", STEP, |s| s.contains("KILL PENDING"));
    serve = start_serve_on(serve_home.path(), &addr);
    t.wait_for("HALTED and connected again", START, |s| {
        header(s).contains("HALTED") && !s.contains("DISCONNECTED") && !s.contains("KILL PENDING")
    });
    wait_health(&serve.base, "halted");
    t.keys(&["q"]);
    t.wait_for("the quit confirmation", STEP, |s| {
        panel(s, "Quit crbot?").is_some()
    });
    t.keys(&["y"]);
    let screen = t.wait_for_value("crbot exited", STEP, |_| {
        let s = t.screen_joined();
        s.contains("CRBOT_EXIT=").then_some(s)
    });
    assert!(screen.contains("CRBOT_EXIT=0"), "{screen}");
}

/// The local way in: `crbot` on an account whose engine `crbot serve` runs on this machine finds
/// the engine's lock held and attaches on its unix socket, without a token.
#[test]
fn a_console_on_an_account_whose_engine_runs_attaches_on_its_socket() {
    let home = tempfile::tempdir().expect("the shared home");
    let serve = start_serve(home.path());
    let cleared: String = CLEARED.iter().map(|v| format!("-u {v} ")).collect();
    let command = format!(
        "env {cleared} ENV=development {} --mode sim --home {}; echo CRBOT_EXIT=$?; sleep 30",
        sh_quote(crbot()),
        sh_quote(&home.path().display().to_string())
    );
    let t = Tmux::start("local", 160, 48, &command, &[], home.path());
    t.wait_for_value("BTCUSDT prices in the watchlist", START, btc_quote);
    t.keys(&["C-k"]);
    t.wait_for("HALTED on the attached screen", STEP, |s| {
        header(s).contains("HALTED")
    });
    wait_health(&serve.base, "halted");
    t.keys(&["q"]);
    t.wait_for("the quit confirmation", STEP, |s| {
        panel(s, "Quit crbot?").is_some()
    });
    t.keys(&["y"]);
    let screen = t.wait_for_value("crbot exited", STEP, |_| {
        let s = t.screen_joined();
        s.contains("CRBOT_EXIT=").then_some(s)
    });
    assert!(screen.contains("CRBOT_EXIT=0"), "{screen}");
    assert!(screen.contains("the engine keeps running (pid "), "{screen}");
    assert!(screen.contains("engine-sim.sock)"), "{screen}");
    assert_eq!(health(&serve.base).as_deref(), Some("halted"), "serve still runs");
}
