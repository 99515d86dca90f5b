//! First frame with prices: from spawning the release console, cold, to the first screen on
//! which BTCUSDT has a price.
//!
//! ```sh
//! cargo bench --bench first_frame                 # 10 runs
//! BENCH_SMOKE=1 cargo bench --bench first_frame   # 2 runs, for CI
//! ```
//!
//! Each run: a fresh home (no journal, no saved account, no endpoint file), `crbot --mode sim`
//! on an 80×24 pty, which starts its local exchange in-process as a trader's first
//! `cargo run --release` does. The pty's master side is read as it comes and replayed into a
//! screen; the time is that of the read after which the watchlist's BTCUSDT row shows a price.
//! Budget: ≤ 300 ms, median and max printed. Exits non-zero if the median misses it.

#[path = "common/pty.rs"]
mod pty;

use std::time::Duration;

use pty::{Pty, btc_price, console, load_average, smoke};

const COLS: u16 = 80;
const ROWS: u16 = 24;
const BUDGET: Duration = Duration::from_millis(300);

fn once() -> Duration {
    let home = tempfile::tempdir().expect("temp home");
    let pty = Pty::spawn(&mut console(env!("CARGO_BIN_EXE_crbot"), home.path()), COLS, ROWS);
    let at = pty
        .wait_for_screen(COLS, ROWS, Duration::from_secs(60), |s| btc_price(s).is_some())
        .unwrap_or_else(|| panic!("no BTCUSDT price on the screen:\n{}", pty.screen(COLS, ROWS)));
    at - pty.started
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs = if smoke() { 2 } else { 10 };
    println!(
        "first_frame: release console, sim mode (exchange in-process), fresh home, {COLS}x{ROWS}, {runs} runs; load average {}",
        load_average()
    );
    let mut times: Vec<Duration> = (0..runs).map(|_| once()).collect();
    println!(
        "runs: {}",
        times.iter().map(|t| ms(*t)).collect::<Vec<_>>().join(", ")
    );
    times.sort_unstable();
    let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
    let ok = median <= BUDGET;
    println!(
        "median {}, max {} (budget ≤ {}) {}",
        ms(median),
        ms(max),
        ms(BUDGET),
        if ok { "met" } else { "MISSED" }
    );
    if !ok {
        std::process::exit(1);
    }
}
