//! `crbot serve` as a process for the alert and TLS tests: the binary with a fresh home, a port
//! picked by the system, and its first line (`api=…`) read; a local webhook that records what
//! it receives; SIGTERM to stop.
//!
//! Owns: starting and stopping the process and the webhook listener. Must not: assert
//! behaviour beyond what starting needs; each test says what it proves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crbot::api::auth::{Scope, TokenKeys};
use crbot::secret::SecretString;
use serde_json::Value;

pub const KEY: &str = "the serve test's key, at least 32 characters";

/// Variables of the caller's environment that would change what serve does.
const CLEARED: [&str; 20] = [
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
    "ALERT_WEBHOOK_URL",
    "API_TLS_CERT",
    "API_TLS_KEY",
    "AUTO_HALT_ACTION",
    "MAX_DAILY_LOSS_PERCENT",
    "MAX_DRAWDOWN_PERCENT",
];

/// `crbot --home HOME --mode sim` in development with the test's signing key, plus `env`.
pub fn crbot(home: &Path, env: &[(&str, &str)]) -> Command {
    crbot_in("sim", home, env)
}

/// [`crbot`] in another mode.
pub fn crbot_in(mode: &str, home: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("crbot"));
    for v in CLEARED {
        c.env_remove(v);
    }
    c.env("ENV", "development").env("SECRET_KEY", KEY);
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("--home").arg(home).args(["--mode", mode]);
    c
}

pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:PORT` or `https://…`, as printed.
    pub base: String,
    pub lines: mpsc::Receiver<String>,
    pub home: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `crbot serve --addr 127.0.0.1:0` and waits for its `api=` line.
    pub fn start(env: &[(&str, &str)]) -> Serve {
        let home = tempfile::tempdir().unwrap();
        let mut child = crbot(home.path(), env)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(90))
            .expect("crbot serve printed its api= line");
        let base = first
            .strip_prefix("api=")
            .unwrap_or_else(|| panic!("first line is not api=…: {first}"))
            .to_string();
        Serve {
            child,
            base,
            lines,
            home,
        }
    }

    pub fn token(&self, scope: Scope) -> String {
        TokenKeys::new(&SecretString::from(KEY))
            .unwrap()
            .issue("test", scope, 1, chrono::Utc::now().timestamp())
            .unwrap()
    }

    /// Sends SIGTERM and returns the exit code and what it printed after `api=` (the home
    /// stays until `self` is dropped).
    pub fn terminate(&mut self) -> (Option<i32>, Vec<String>) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with our own child's pid and a valid signal; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            assert!(Instant::now() < deadline, "crbot serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            rest.push(line);
        }
        (code, rest)
    }
}

/// One request the webhook received: its query string and its JSON body.
#[derive(Debug, Clone)]
pub struct Received {
    pub query: Option<String>,
    pub body: Value,
}

/// A local webhook on `127.0.0.1:0` answering 200 to every POST and recording it.
pub struct Webhook {
    pub url_base: String,
    pub received: tokio::sync::mpsc::UnboundedReceiver<Received>,
    /// Everything received so far (what `wait_for` has read).
    pub seen: Vec<Received>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        use axum::extract::{RawQuery, State};
        let (tx, received) = tokio::sync::mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route(
                "/{*path}",
                axum::routing::post(
                    |State(tx): State<tokio::sync::mpsc::UnboundedSender<Received>>,
                     RawQuery(query): RawQuery,
                     axum::Json(body): axum::Json<Value>| async move {
                        let _ = tx.send(Received { query, body });
                        "ok"
                    },
                ),
            )
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook {
            url_base: format!("http://{addr}"),
            received,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for an alert of `kind` not seen yet by this call, and returns it.
    pub async fn wait_for(&mut self, kind: &str) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = tokio::time::timeout_at(deadline, self.received.recv()).await;
            match got {
                Ok(Some(r)) => {
                    self.seen.push(r.clone());
                    if r.body["kind"] == kind {
                        return r;
                    }
                }
                _ => panic!("no {kind} alert within 30 s; received: {:?}", self.seen),
            }
        }
    }
}

/// The shell command that runs a console in `home` with nothing of the caller's environment
/// that would give it an engine of its own (its exchange, journal, keys): it can only attach,
/// through the `CRBOT_API_URL`/`CRBOT_API_TOKEN` its pane is given. It prints `CRBOT_EXIT=…`
/// when the console ends, and keeps the pane open.
pub fn attached_console_command(home: &Path) -> String {
    let cleared: String = [
        "CRBOT_HOME",
        "CRBOT_MODE",
        "DATABASE_URL",
        "BINANCE_REST_URL",
        "BINANCE_WS_URL",
        "BINANCE_WS_API_URL",
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
        "SECRET_KEY",
        "DEBUG",
    ]
    .iter()
    .map(|v| format!("-u {v} "))
    .collect();
    format!(
        "env {cleared} {} --mode sim --home '{}'; echo CRBOT_EXIT=$?; sleep 30",
        env!("CARGO_BIN_EXE_crbot"),
        home.display()
    )
}
