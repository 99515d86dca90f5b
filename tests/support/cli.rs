//! The built `crbot` binary against a local exchange started in the test: the harness the
//! command-line tests share (a still market unless the test's `SimConfig` says otherwise, a
//! fresh home, development posture, keys and URLs of the local exchange in the environment).

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, SimConfig, SimHandle};
use serde_json::Value;

/// Variables of the caller's environment that would change what the commands do.
const CLEARED: [&str; 6] = [
    "CRBOT_HOME",
    "CRBOT_MODE",
    "BINANCE_TESTNET",
    "DATABASE_URL",
    "DEBUG",
    "MAX_DAILY_LOSS_PERCENT",
];

pub struct CliExchange {
    pub rt: tokio::runtime::Runtime,
    pub handle: SimHandle,
    pub home: tempfile::TempDir,
    /// Set on every command after the defaults (e.g. a wider position-size limit).
    pub env: Vec<(&'static str, String)>,
}

impl CliExchange {
    pub fn start(config: SimConfig) -> CliExchange {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt
            .block_on(sim::start("127.0.0.1:0".parse().unwrap(), config))
            .unwrap();
        CliExchange {
            rt,
            handle,
            home: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `crbot --home <home> --mode sim` aimed at this exchange.
    pub fn crbot(&self) -> Command {
        self.crbot_in("sim")
    }

    /// The same in another mode (the URL overrides still point at this exchange).
    pub fn crbot_in(&self, mode: &str) -> Command {
        let mut c = Command::cargo_bin("crbot").unwrap();
        for v in CLEARED {
            c.env_remove(v);
        }
        c.env("ENV", "development")
            .env("BINANCE_REST_URL", self.handle.rest_url())
            .env("BINANCE_WS_URL", self.handle.ws_url())
            .env("BINANCE_WS_API_URL", self.handle.ws_api_url())
            .env("BINANCE_API_KEY", self.handle.api_key())
            .env("BINANCE_API_SECRET", self.handle.api_secret().expose());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.arg("--home")
            .arg(self.home())
            .args(["--mode", mode])
            .timeout(Duration::from_secs(60));
        c
    }

    /// Runs crbot and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.crbot().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `crbot --json <args>`, which must succeed, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run(&all);
        assert_eq!(code, 0, "crbot {args:?} failed: {err}\n{out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("crbot {args:?}: not JSON ({e}):\n{out}"))
    }

    /// A client of the test's own, to read the exchange's truth (or act as someone else).
    pub fn rest(&self) -> BinanceRest {
        BinanceRest::without_ban_store(
            Endpoints::local(self.handle.addr()).unwrap(),
            Some(Credentials::hmac(
                &self.handle.api_key(),
                self.handle.api_secret().expose(),
            )),
            RestConfig::default(),
        )
        .unwrap()
    }
}
