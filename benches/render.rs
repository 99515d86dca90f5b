//! Rendering: one full frame of the console (`ui::view` into ratatui's `TestBackend`, diff and
//! flush included) from the demo snapshot the screen tests use, at 160×48 and 80×24.
//!
//! - `full_redraw`: the terminal's previous buffer is cleared first, so every cell is drawn and
//!   flushed (a frame after a resize, or the first one);
//! - `ticking`: the best bid moves by one tick between frames, as in a steady market, so only the
//!   cells that changed are flushed.
//!
//! Budget: a full frame at 160×48, median ≤ 1 ms. Run: `cargo bench --bench render`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/demo.rs"]
mod demo;

use std::hint::black_box;

use crbot::domain::Price;
use crbot::ui::{App, UiConfig, view};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rust_decimal::Decimal;

const NOW: i64 = 1_764_333_296_000;

fn bench(c: &mut Criterion) {
    let snap = demo::snapshot(NOW);
    let app = App::new(UiConfig::default(), &snap);
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        let mut group = c.benchmark_group(format!("render/{w}x{h}"));
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        group.bench_function("full_redraw", |b| {
            b.iter(|| {
                terminal.clear().unwrap();
                terminal.draw(|f| view(&app, black_box(&snap), f)).unwrap();
            })
        });
        let mut moving = snap.clone();
        let mut step = 0i64;
        group.bench_function("ticking", |b| {
            b.iter(|| {
                step = (step + 1) % 100;
                if let Some(row) = moving.watchlist.first_mut() {
                    let bid = Decimal::new(9_725_000 + step, 2);
                    row.bid = Price::try_new(bid).ok();
                }
                terminal.draw(|f| view(&app, black_box(&moving), f)).unwrap();
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
