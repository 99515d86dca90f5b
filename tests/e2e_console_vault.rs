//! End-to-end: a console in a mode whose keys come from the vault (testnet, aimed at a local
//! exchange started here), running in tmux, and the commands of a second shell going through
//! its engine: `kill`, then `resume` with the passphrase on stdin (the console's engine has no
//! passphrase of its own: the command's must reach it), and the siblings `order --dry-run` and
//! `backup` through the same console.
//!
//! tmux is required: without it this test fails with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod cli;
    pub mod tmux;
}

use std::time::{Duration, Instant};

use crbot::cli::remote::Remote;
use crbot::exchange::sim::SimConfig;
use support::cli::CliExchange;
use support::tmux::Tmux;

const PASS: &str = "correct horse battery staple 42";

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `crbot --mode testnet` aimed at `ex`, with no keys in the environment (they are in the
/// vault).
fn testnet(ex: &CliExchange) -> assert_cmd::Command {
    let mut c = ex.crbot_in("testnet");
    c.env_remove("BINANCE_API_KEY").env_remove("BINANCE_API_SECRET");
    c
}

fn run(ex: &CliExchange, args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = testnet(ex).args(args).write_stdin(stdin).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_from_a_second_shell_go_through_a_vault_mode_console() {
    let ex = CliExchange::start(SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let (api_key, secret) = (ex.handle.api_key(), ex.handle.api_secret());
    testnet(&ex)
        .args(["--passphrase-stdin", "vault", "init"])
        .write_stdin(format!("{PASS}\n"))
        .assert()
        .success();
    testnet(&ex)
        .args(["--passphrase-stdin", "vault", "set-keys"])
        .write_stdin(format!("{PASS}\n{api_key}\n{}\n", secret.expose()))
        .assert()
        .success();

    let line = format!(
        "env -u BINANCE_API_KEY -u BINANCE_API_SECRET -u CRBOT_HOME -u CRBOT_MODE -u DATABASE_URL {} --mode testnet --home {}; echo CRBOT_EXIT=$?; sleep 30",
        sh_quote(env!("CARGO_BIN_EXE_crbot")),
        sh_quote(&ex.home().display().to_string())
    );
    let env = [
        ("ENV", "development"),
        ("NO_COLOR", "1"),
        ("BINANCE_REST_URL", &ex.handle.rest_url()),
        ("BINANCE_WS_URL", &ex.handle.ws_url()),
        ("BINANCE_WS_API_URL", &ex.handle.ws_api_url()),
    ];
    let t = Tmux::start("vault-console", 160, 48, &line, &env, ex.home());
    t.wait_for("the vault prompt", Duration::from_secs(20), |s| {
        s.contains("passphrase")
    });
    t.type_text(PASS);
    t.keys(&["Enter"]);
    let socket = Remote::at(ex.home().join("engine-testnet.sock"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ex.rt.block_on(socket.answers()) {
        assert!(
            Instant::now() < deadline,
            "the console's engine never answered:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Ready for tickets once reconciled (a dry run says so); this is `order` through it too.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dry = loop {
        let r = run(
            &ex,
            &[
                "order",
                "buy",
                "BTCUSDT",
                "0.001",
                "--stop-loss",
                "90000",
                "--take-profit",
                "110000",
                "--dry-run",
            ],
            "",
        );
        if r.0 == 0 || Instant::now() >= deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(dry.0, 0, "order --dry-run through the console: {dry:?}");
    assert!(dry.1.contains("APPROVED"), "{}", dry.1);

    let copy = ex.home().join("copy.db");
    let backup = run(&ex, &["backup", copy.to_str().unwrap()], "");
    assert_eq!(backup.0, 0, "backup through the console: {backup:?}");
    assert!(copy.exists());

    let kill = run(&ex, &["kill"], "");
    assert_eq!(kill.0, 0, "kill through the console: {kill:?}");
    assert!(kill.1.contains("kill: DONE"), "{}", kill.1);

    let wrong = run(&ex, &["--passphrase-stdin", "resume"], "not the passphrase\n");
    assert_eq!(wrong.0, 1, "{wrong:?}");
    let resume = run(&ex, &["--passphrase-stdin", "resume"], &format!("{PASS}\n"));
    assert_eq!(
        resume.0,
        0,
        "resume through the console: {resume:?}\n{}",
        t.screen()
    );
    assert!(resume.1.contains("re-armed: HALTED"), "{}", resume.1);
    assert!(resume.1.contains("→ ACTIVE"), "{}", resume.1);
    let (_, risk) = ex
        .rt
        .block_on(socket.call("GET", "/api/risk", None, Duration::from_secs(5)))
        .unwrap();
    assert_eq!(risk["trading_state"], "ACTIVE", "{risk}");
    t.keys(&["q"]);
}
