//! Terminal bytes: what the release console writes to a real terminal (a pty) while the market
//! moves, against what redrawing the whole screen at the same frame rate would write.
//!
//! ```sh
//! cargo bench --bench pty_bytes                 # 30 s at 80×24, then 30 s at 160×48
//! BENCH_SMOKE=1 cargo bench --bench pty_bytes   # 3 s each, for CI
//! ```
//!
//! For each size: `crbot --mode sim` (its own local exchange, in-process, default speed: every
//! symbol steps four times a second) in a fresh home, on a pty of that size. Once BTCUSDT shows
//! a price and 3 s more have passed, the master side is read for the window: bytes/s, and frames
//! (ratatui hides the cursor after every draw, so one `ESC[?25l` is one frame). The reference
//! is a full redraw: the terminal is resized away and back, ratatui clears and draws every cell
//! of the screen (the bytes from its `ESC[2J` to the end of that frame), three times, median;
//! × the measured frame rate. Budget: steady bytes ≤ 1/10 of that. Exits non-zero if missed.

#[path = "common/pty.rs"]
mod pty;

use std::time::{Duration, Instant};

use pty::{CLEAR, Pty, btc_price, console, find, frames, load_average, smoke};

/// Earlier figures (before the depth, trades and candles panels), in bytes/s.
const BEFORE: [(u16, u16, f64); 2] = [(80, 24, 1800.0), (160, 48, 2700.0)];
const BUDGET_RATIO: f64 = 0.10;

struct Figures {
    bytes_per_s: f64,
    frames_per_s: f64,
    full_frame: usize,
}

impl Figures {
    fn full_per_s(&self) -> f64 {
        self.full_frame as f64 * self.frames_per_s
    }
    fn ratio(&self) -> f64 {
        self.bytes_per_s / self.full_per_s()
    }
}

/// Bytes of one full redraw: resize away and back; from the clear to the end of its frame.
fn full_frame(pty: &Pty, cols: u16, rows: u16) -> usize {
    let mut sizes = Vec::new();
    for _ in 0..3 {
        for (c, r) in [(cols + 1, rows), (cols, rows)] {
            let from = pty.len();
            pty.resize(c, r);
            let (size, _) = pty
                .wait_for(Duration::from_secs(10), |b| {
                    let clear = find(b, CLEAR, from)?;
                    let end = pty::FRAME_ENDS.iter().filter_map(|e| find(b, e, clear)).min()?;
                    Some(end - clear)
                })
                .expect("a full redraw after the resize");
            if (c, r) == (cols, rows) {
                sizes.push(size);
            }
        }
    }
    sizes.sort_unstable();
    sizes[sizes.len() / 2]
}

fn measure(cols: u16, rows: u16, window: Duration) -> Figures {
    let home = tempfile::tempdir().expect("temp home");
    let pty = Pty::spawn(&mut console(env!("CARGO_BIN_EXE_crbot"), home.path()), cols, rows);
    pty.wait_for_screen(cols, rows, Duration::from_secs(60), |s| btc_price(s).is_some())
        .unwrap_or_else(|| panic!("no BTCUSDT price on the screen:\n{}", pty.screen(cols, rows)));
    std::thread::sleep(Duration::from_secs(3));
    let from = pty.len();
    let start = Instant::now();
    std::thread::sleep(window);
    let bytes = pty.bytes_from(from);
    let secs = start.elapsed().as_secs_f64();
    let full_frame = full_frame(&pty, cols, rows);
    Figures {
        bytes_per_s: bytes.len() as f64 / secs,
        frames_per_s: frames(&bytes) as f64 / secs,
        full_frame,
    }
}

fn main() {
    let window = if smoke() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(30)
    };
    println!(
        "pty_bytes: release console, sim mode (market moving), {} s per size; load average {}",
        window.as_secs(),
        load_average()
    );
    let mut missed = false;
    for (cols, rows, before) in BEFORE {
        let f = measure(cols, rows, window);
        let ok = f.ratio() <= BUDGET_RATIO;
        missed |= !ok;
        println!(
            "{cols}x{rows}: {:.0} B/s over {:.1} frames/s ({:.0} B/frame); full frame {} B → full redraw {:.0} B/s; \
             ratio {:.3} (budget ≤ {BUDGET_RATIO}) {}; before: {before:.0} B/s",
            f.bytes_per_s,
            f.frames_per_s,
            f.bytes_per_s / f.frames_per_s.max(f64::MIN_POSITIVE),
            f.full_frame,
            f.full_per_s(),
            f.ratio(),
            if ok { "met" } else { "MISSED" },
        );
    }
    if missed {
        std::process::exit(1);
    }
}
