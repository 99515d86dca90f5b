//! Leadership takeover on PostgreSQL: two `crbot serve` (the built binary) on one local
//! PostgreSQL server and one local exchange; the leader is killed with SIGKILL and the time until
//! the standby's `GET /api/health` answers `"role": "leader"` is measured (that answer comes
//! once it holds the lease, bumped the epoch, opened the journal and started its engine; the
//! engine's reconcile follows). A new standby is started after each kill. Prints the median,
//! p95 and max.
//!
//! `cargo bench --profile dev --bench takeover` (TAKEOVER_BENCH_N=n kills; default 20). Needs
//! Debian's `postgresql` package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/cli.rs"]
mod cli;
#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli::CliExchange;
use crbot::exchange::sim::{SimConfig, SimHandle};

struct Node {
    child: Child,
    base: String,
    _home: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(ex: &SimHandle, database_url: &str) -> Node {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crbot"))
        .env_remove("CRBOT_HOME")
        .env_remove("CRBOT_MODE")
        .env_remove("PGPASSWORD")
        .env("ENV", "development")
        .env("SECRET_KEY", "the takeover bench's key, at least 32 characters")
        .env("RATE_LIMIT_REQUESTS", "0")
        .env("DATABASE_URL", database_url)
        .env("BINANCE_REST_URL", ex.rest_url())
        .env("BINANCE_WS_URL", ex.ws_url())
        .env("BINANCE_WS_API_URL", ex.ws_api_url())
        .env("BINANCE_API_KEY", ex.api_key())
        .env("BINANCE_API_SECRET", ex.api_secret().expose())
        .arg("--home")
        .arg(home.path())
        .args(["--mode", "sim", "serve", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    // Keep reading so that the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines().map_while(Result::ok) {});
    let base = first.trim().strip_prefix("api=").expect("api= line").to_string();
    Node {
        child,
        base,
        _home: home,
    }
}

fn role(rt: &tokio::runtime::Runtime, client: &reqwest::Client, node: &Node) -> Option<String> {
    rt.block_on(async {
        let res = client
            .get(format!("{}/api/health", node.base))
            .send()
            .await
            .ok()?;
        let doc: serde_json::Value = res.json().await.ok()?;
        doc["role"].as_str().map(str::to_string)
    })
}

fn wait_role(rt: &tokio::runtime::Runtime, client: &reqwest::Client, node: &Node, want: &str) -> Duration {
    let start = Instant::now();
    while role(rt, client, node).as_deref() != Some(want) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never became {want}",
            node.base
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn main() {
    let n: usize = std::env::var("TAKEOVER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let exchange = CliExchange::start(SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let (rt, ex) = (&exchange.rt, &exchange.handle);
    let db = pg_support::PgDatabase::new();
    let url = db.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut leader = start(ex, &url);
    wait_role(rt, &client, &leader, "leader");
    let mut standby = start(ex, &url);
    wait_role(rt, &client, &standby, "standby");
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let killed = Instant::now();
        let _ = leader.child.kill();
        let _ = leader.child.wait();
        while role(rt, &client, &standby).as_deref() != Some("leader") {
            assert!(killed.elapsed() < Duration::from_secs(60), "run {i}: no takeover");
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(killed.elapsed());
        leader = standby;
        standby = start(ex, &url);
        wait_role(rt, &client, &standby, "standby");
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p95 = times[((times.len() * 95).div_ceil(100)).saturating_sub(1)];
    println!(
        "takeover (SIGKILL of the leader -> the standby's /api/health says leader), n={}: median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(p95),
        ms(*times.last().unwrap())
    );
    drop(leader);
    drop(standby);
}
