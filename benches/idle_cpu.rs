//! Steady CPU of the release console at 80×24: against a market held still (the budget), and
//! against a moving one (for comparison).
//!
//! ```sh
//! cargo bench --bench idle_cpu                  # 30 s still, then 30 s moving
//! BENCH_SMOKE=1 cargo bench --bench idle_cpu    # 3 s each, for CI
//! ```
//!
//! The local exchange runs as its own process (`crbot sim --still`: the synthetic market takes
//! no steps; without `--still` it steps four times a second), so the console's CPU is the
//! console's alone. The console (`crbot --mode sim` pointed at it through the `BINANCE_*`
//! overrides, a fresh home) runs on an 80×24 pty. Once BTCUSDT shows a price and start-up has
//! settled (10 s), the console's utime+stime is read from `/proc/PID/stat` at both ends of the
//! window; also printed: frames drawn (from the pty's bytes) and the threads' context switches
//! per second (wake-ups). Budget: ≤ 1 % of a core with the market still. Exits non-zero if
//! missed.

#[path = "common/pty.rs"]
mod pty;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pty::{Pty, btc_price, console, context_switches, cpu_time, frames, load_average, smoke};

const COLS: u16 = 80;
const ROWS: u16 = 24;
const BUDGET_PERCENT: f64 = 1.0;

/// `crbot sim` as its own process, and the environment that points the console at it.
struct Exchange {
    child: Child,
    env: Vec<(&'static str, String)>,
}

impl Exchange {
    fn start(still: bool, state: &std::path::Path) -> Exchange {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crbot"));
        cmd.args(["sim", "--addr", "127.0.0.1:0", "--seed", "7", "--state"])
            .arg(state);
        if still {
            cmd.arg("--still");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("crbot sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("crbot sim prints its endpoints");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("`{name}=` in {line:?}"))
                .to_string()
        };
        let env = vec![
            ("BINANCE_REST_URL", field("rest")),
            ("BINANCE_WS_URL", field("ws")),
            ("BINANCE_WS_API_URL", field("ws_api")),
            ("BINANCE_API_KEY", field("api_key")),
            ("BINANCE_API_SECRET", field("api_secret")),
        ];
        Exchange { child, env }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Figures {
    percent: f64,
    frames_per_s: f64,
    voluntary_per_s: f64,
    involuntary_per_s: f64,
}

fn measure(still: bool, settle: Duration, window: Duration) -> Figures {
    let home = tempfile::tempdir().expect("temp home");
    let exchange = Exchange::start(still, &home.path().join("sim-state.json"));
    let mut cmd = console(env!("CARGO_BIN_EXE_crbot"), home.path());
    cmd.envs(exchange.env.iter().map(|(k, v)| (k, v.as_str())));
    let pty = Pty::spawn(&mut cmd, COLS, ROWS);
    pty.wait_for_screen(COLS, ROWS, Duration::from_secs(60), |s| btc_price(s).is_some())
        .unwrap_or_else(|| panic!("no BTCUSDT price on the screen:\n{}", pty.screen(COLS, ROWS)));
    std::thread::sleep(settle);
    let pid = pty.pid();
    let (from, cpu0, switches0, start) = (pty.len(), cpu_time(pid), context_switches(pid), Instant::now());
    std::thread::sleep(window);
    let (cpu1, switches1, secs) = (
        cpu_time(pid),
        context_switches(pid),
        start.elapsed().as_secs_f64(),
    );
    let drawn = frames(&pty.bytes_from(from));
    drop(pty);
    drop(exchange);
    Figures {
        percent: (cpu1 - cpu0).as_secs_f64() / secs * 100.0,
        frames_per_s: drawn as f64 / secs,
        voluntary_per_s: (switches1.0 - switches0.0) as f64 / secs,
        involuntary_per_s: (switches1.1 - switches0.1) as f64 / secs,
    }
}

fn main() {
    let (settle, window) = if smoke() {
        (Duration::from_secs(1), Duration::from_secs(3))
    } else {
        (Duration::from_secs(10), Duration::from_secs(30))
    };
    println!(
        "idle_cpu: release console at {COLS}x{ROWS}, `crbot sim` in its own process, {} s after {} s settling; load average {}",
        window.as_secs(),
        settle.as_secs(),
        load_average()
    );
    let mut missed = false;
    for (still, label) in [(true, "market still "), (false, "market moving")] {
        let f = measure(still, settle, window);
        let verdict = if still {
            let ok = f.percent <= BUDGET_PERCENT;
            missed |= !ok;
            format!(
                "(budget ≤ {BUDGET_PERCENT} %) {}",
                if ok { "met" } else { "MISSED" }
            )
        } else {
            "(no budget; earlier 2.3 %)".to_string()
        };
        println!(
            "{label}: {:.2} % of a core {verdict}; {:.1} frames/s, {:.0} voluntary + {:.0} involuntary context switches/s",
            f.percent, f.frames_per_s, f.voluntary_per_s, f.involuntary_per_s
        );
    }
    if missed {
        std::process::exit(1);
    }
}
