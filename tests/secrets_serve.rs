//! `crbot serve` started unattended (no terminal, nothing on standard input) in testnet mode,
//! aimed at a local exchange whose keys exist only in the backend under test: AWS Secrets
//! Manager (moto's server), HashiCorp Vault KV v2 (the double, with an AppRole login), and the
//! passphrase vault read through `CRBOT_PASSPHRASE_FILE`. Each one trades: a dry run and a real
//! order through `POST /api/orders`, then a clean stop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod secrets_support;

use std::io::{BufRead, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crbot::api::auth::{Scope, TokenKeys};
use crbot::exchange::sim::{self, SimConfig, SimHandle};
use crbot::secret::SecretString;
use secrets_support::kv_double::{KvDouble, Policy};
use secrets_support::{Moto, crbot_testnet, hmac_json};
use serde_json::{Value, json};

const SIGNING_KEY: &str = "the secrets test's key, at least 32 characters";

/// The exchange, in a runtime of its own (it outlives the test's async blocks).
fn exchange() -> (tokio::runtime::Runtime, SimHandle, tempfile::TempDir) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ex = rt
        .block_on(sim::start(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig {
                step_interval: Duration::from_secs(3600),
                ..SimConfig::default()
            },
        ))
        .unwrap();
    (rt, ex, tempfile::tempdir().unwrap())
}

struct Serve {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(ex: &SimHandle, home: &std::path::Path, env: &[(&str, &str)]) -> Serve {
        let mut c = crbot_testnet(ex, home, env);
        c.env("SECRET_KEY", SIGNING_KEY)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let err_tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(format!("stderr: {line}"));
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        let base = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no api= line; serve said: {seen:#?}"));
            if let Some(base) = line.strip_prefix("api=") {
                break base.to_string();
            }
            seen.push(line);
        };
        Serve { child, base, lines }
    }

    fn token(&self) -> String {
        TokenKeys::new(&SecretString::from(SIGNING_KEY))
            .unwrap()
            .issue("test", Scope::Trade, 1, chrono::Utc::now().timestamp())
            .unwrap()
    }

    fn order(&self, body: &Value) -> (u16, Value) {
        self.post("/api/orders", body)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let res = reqwest::Client::new()
                .post(format!("{}{path}", self.base))
                .bearer_auth(self.token())
                .json(body)
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json().await.unwrap_or(Value::Null))
        })
    }

    /// `/api/health`'s status once it is `want` (within 30 s).
    fn wait_health(&self, want: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let doc: Value = rt.block_on(async {
                reqwest::get(format!("{}/api/health", self.base))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            });
            if doc["status"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "health never became {want}: {doc}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Halts trading through the API and waits until it is halted.
    fn kill(&self) {
        let (status, doc) = self.post("/api/kill", &json!({"flatten": false}));
        assert_eq!(status, 202, "{doc}");
        self.wait_health("halted");
    }

    /// Waits until a dry run is answered (the engine reconciled).
    fn reconciled(&self) {
        let probe = json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "dry_run": true});
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.order(&probe).0 != 200 {
            assert!(Instant::now() < deadline, "never reconciled");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A dry run (once the engine has reconciled), then the real order: the account's keys
    /// signed it, or the exchange would have refused it.
    fn trades(&self) {
        let mut ticket = json!({
            "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001",
            "stop_loss": "90000", "take_profit": "110000", "dry_run": true,
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let dry = loop {
            let (status, doc) = self.order(&ticket);
            if status == 200 {
                break doc;
            }
            assert!(Instant::now() < deadline, "never reconciled: {status} {doc}");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(dry["dry_run"], true, "{dry}");
        assert_eq!(dry["approved"], true, "{dry}");
        ticket["dry_run"] = json!(false);
        let (status, placed) = self.order(&ticket);
        assert_eq!(status, 201, "{placed}");
        assert_eq!(placed["status"], "ACCEPTED", "{placed}");
        assert!(placed["order"]["order_id"].as_i64().is_some(), "{placed}");
    }

    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with our own child's pid and a valid signal; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.try_iter().collect();
        assert_eq!(status.code(), Some(0), "{rest:#?}");
    }
}

#[test]
fn serve_trades_with_keys_from_aws_secrets_manager() {
    let (rt, ex, home) = exchange();
    let moto = Moto::start(&[]);
    rt.block_on(moto.create(
        "crbot/binance/testnet",
        &hmac_json(&ex.api_key(), ex.api_secret().expose()),
    ));
    let url = moto.url();
    let serve = Serve::start(
        &ex,
        home.path(),
        &[
            ("SECRETS_BACKEND", "aws"),
            ("AWS_SECRET_ID", "crbot/binance/testnet"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &url),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    serve.trades();
    serve.stop();
    // Nothing of the secret was written under the home.
    assert_no_file_holds(home.path(), ex.api_secret().expose());
}

#[test]
fn a_re_arm_of_a_running_serve_fetches_the_rotated_secret_and_signs_with_it() {
    // The exchange accepts a second key, the one the secret is rotated to in the end.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let second = SecretString::from("second-key-secret-for-the-rotation-test");
    let ex = rt
        .block_on(sim::start(
            "127.0.0.1:0".parse().unwrap(),
            // A moving market: quotes stay fresh across the kills and re-arms.
            SimConfig {
                keys: vec![sim::SimKey::hmac("SECONDKEY0123456789", second.clone())],
                ..SimConfig::default()
            },
        ))
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let moto = Moto::start(&[]);
    let id = "crbot/binance/rotating";
    rt.block_on(moto.create(id, &hmac_json(&ex.api_key(), ex.api_secret().expose())));
    let url = moto.url();
    let serve = Serve::start(
        &ex,
        home.path(),
        &[
            ("SECRETS_BACKEND", "aws"),
            ("AWS_SECRET_ID", id),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &url),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    serve.reconciled();
    let entry = json!({
        "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001",
        "stop_loss": "90000", "take_profit": "110000",
    });
    let resume = json!({"confirm": "RESUME"});

    // Rotated to a key the exchange does not know: the re-arm installs it, the next order
    // is signed with it and refused by the exchange.
    serve.kill();
    rt.block_on(moto.rotate(id, &hmac_json("UNKNOWNKEY0123456789", "unknown")));
    let (status, doc) = serve.post("/api/resume", &resume);
    assert_eq!(status, 200, "{doc}");
    let (status, doc) = serve.order(&entry);
    assert_eq!(status, 502, "signed with the rotated key: {doc}");

    // A secret that cannot be read keeps trading halted.
    serve.kill();
    rt.block_on(async {
        moto.client()
            .delete_secret()
            .secret_id(id)
            .force_delete_without_recovery(true)
            .send()
            .await
            .unwrap();
    });
    let (status, doc) = serve.post("/api/resume", &resume);
    assert_ne!(status, 200, "{doc}");
    serve.wait_health("halted");

    // Rotated to the second key: re-armed, and the order goes through.
    rt.block_on(moto.create(id, &hmac_json("SECONDKEY0123456789", second.expose())));
    let (status, doc) = serve.post("/api/resume", &resume);
    assert_eq!(status, 200, "{doc}");
    let (status, doc) = serve.order(&entry);
    assert_eq!(status, 201, "{doc}");
    serve.stop();
}

#[test]
fn serve_trades_with_keys_from_hashicorp_kv_v2_through_approle() {
    let (rt, ex, home) = exchange();
    let double = rt.block_on(KvDouble::start(&["secret"]));
    double.approle(
        "role-crbot",
        "approle-secret-id-for-serve",
        Policy {
            read: vec!["secret/data/crbot/".into()],
            write: vec![],
        },
    );
    double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": ex.api_key(), "api_secret": ex.api_secret().expose()}),
    );
    let url = double.url();
    let serve = Serve::start(
        &ex,
        home.path(),
        &[
            ("SECRETS_BACKEND", "hashicorp"),
            ("VAULT_ADDR", &url),
            ("VAULT_ROLE_ID", "role-crbot"),
            ("VAULT_SECRET_ID", "approle-secret-id-for-serve"),
        ],
    );
    serve.trades();
    serve.stop();
    let seen = double.seen();
    assert_eq!(seen[0].path, "auth/approle/login", "{seen:?}");
    assert!(
        seen.iter()
            .any(|s| s.path == "secret/data/crbot/binance" && s.had_token),
        "{seen:?}"
    );
    assert_no_file_holds(home.path(), ex.api_secret().expose());
}

#[test]
fn serve_trades_with_keys_from_the_vault_and_a_passphrase_file() {
    let (_rt, ex, home) = exchange();
    let pass = "serve test passphrase, long enough to pass";
    let feed = |args: &[&str], input: String| {
        let mut c = crbot_testnet(&ex, home.path(), &[]);
        c.arg("--passphrase-stdin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    feed(&["vault", "init"], format!("{pass}\n"));
    feed(
        &["vault", "set-keys"],
        format!("{pass}\n{}\n{}\n", ex.api_key(), ex.api_secret().expose()),
    );
    let file = home.path().join("passphrase");
    std::fs::write(&file, format!("{pass}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = file.display().to_string();
    let serve = Serve::start(&ex, home.path(), &[("CRBOT_PASSPHRASE_FILE", &file)]);
    serve.trades();
    serve.stop();
}

/// No file under `dir` contains `secret` in clear.
fn assert_no_file_holds(dir: &std::path::Path, secret: &str) {
    for entry in std::fs::read_dir(dir).unwrap().map_while(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            assert_no_file_holds(&path, secret);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the API secret",
                path.display()
            );
        }
    }
}
