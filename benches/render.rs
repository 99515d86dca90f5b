//! Rendering: one full frame of the console (`ui::view` into ratatui's `TestBackend`, diff and
//! flush included) from the demo snapshot the screen tests use, at 160×48 and 80×24.
//!
//! - `full_redraw`: the terminal's previous buffer is cleared first, so every cell is drawn and
//!   flushed (a frame after a resize, or the first one);
//! - `ticking`: the best bid moves by one tick between frames, as in a steady market, so only the
//!   cells that changed are flushed.
//!
//! Then the same two with the history panel holding a long journal (`history_10k`: 10 000
//! fills and 2 000 orders), at 160×48 (every panel: book, trades, candles, history) and at
//! 80×24 on the History tab. There each frame comes after `update(SnapshotArrived)`, as in
//! the console's loop.
//!
//! Budget: a full frame at 160×48, median ≤ 1 ms. Run: `cargo bench --bench render`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/demo.rs"]
mod demo;

use std::hint::black_box;

use crbot::domain::Price;
use crbot::ui::{Action, App, Tab, UiConfig, update, view};
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
    long_history(c);
}

/// The screen with 10 000 fills in the history panel.
fn long_history(c: &mut Criterion) {
    let mut snap = demo::snapshot(NOW);
    snap.history = demo::long_history(NOW, 10_000);
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        let mut app = App::new(UiConfig::default(), &snap);
        if w < 120 {
            app.tab = Tab::History;
        }
        let mut group = c.benchmark_group(format!("render/{w}x{h}/history_10k"));
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
                update(&mut app, Action::SnapshotArrived, &moving);
                terminal.draw(|f| view(&app, black_box(&moving), f)).unwrap();
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
