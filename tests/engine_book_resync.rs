//! The order book's REST resync under the client's rate-limit guard, end to end: the console
//! engine (`Runtime::run`) against the local exchange, a new symbol selected so that its book
//! must read a REST snapshot.
//!
//! - During a 418 ban of the client nothing is read: the book says "syncing", no failed read
//!   is logged, and it goes live from a read made after the ban ends.
//! - A snapshot read answered 429 (the exchange's `next_429` switch) is waited out and read
//!   again after the hold: the book goes live and the exchange never had to ban the client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::engine::snapshot::{BookStatus, Command, Snapshot};
use crbot::exchange::sim::Faults;
use engine_support::*;

const WAIT: Duration = Duration::from_secs(20);

fn book_lines(s: &Snapshot) -> Vec<String> {
    s.log
        .iter()
        .filter(|l| l.text.contains("book snapshot"))
        .map(|l| l.text.clone())
        .collect()
}

/// Selects ETHUSDT: the screen follows its book, which has to read a snapshot.
async fn select_eth(c: &mut Console) {
    c.send(Command::SelectSymbol(sym(ETH))).await;
    wait_snapshot(&mut c.snap, WAIT, "ETHUSDT's book syncing", |s| {
        s.focus.symbol == Some(sym(ETH)) && s.focus.book.status == BookStatus::Syncing
    })
    .await;
}

fn eth_live(s: &Snapshot) -> bool {
    s.focus.symbol == Some(sym(ETH)) && s.focus.book.status == BookStatus::Live
}

#[tokio::test]
async fn during_a_ban_the_book_reads_no_snapshot_and_goes_live_once_it_lifts() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    wait_snapshot(&mut c.snap, WAIT, "the selected symbol's book live", |s| {
        s.focus.book.status == BookStatus::Live
    })
    .await;

    // The client is banned for 3 s (what a 418, on REST or the WebSocket API, leaves it in).
    let until = now_ms() + 3_000;
    ex.rest.note_ban(until);
    select_eth(&mut c).await;
    assert!(
        ex.rest.banned_until().is_some(),
        "the ban still holds while the book syncs"
    );

    let s = wait_snapshot(&mut c.snap, WAIT, "ETHUSDT's book live", eth_live).await;
    assert!(
        s.now_ms >= until,
        "live from a read made after the ban: {} < {until}",
        s.now_ms
    );
    assert!(
        book_lines(&s).is_empty(),
        "no snapshot read failed (none was made during the ban): {:?}",
        book_lines(&s)
    );
    c.stop().await;
}

#[tokio::test]
async fn a_snapshot_read_answered_429_is_read_again_after_the_hold_and_the_book_goes_live() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    wait_snapshot(&mut c.snap, WAIT, "the selected symbol's book live", |s| {
        s.focus.book.status == BookStatus::Live
    })
    .await;

    // The next request the exchange sees is answered 429 (Retry-After 1 s): the snapshot
    // read, unless a poll of the engine's comes first; either way the client is held, the
    // read waits, and the exchange sees nothing from it until the hold ends.
    ex.sim.faults().set(Faults {
        next_429: 1,
        ..Faults::default()
    });
    select_eth(&mut c).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "ETHUSDT's book live", eth_live).await;
    assert_eq!(ex.sim.faults().get().next_429, 0, "the 429 was answered");
    assert_eq!(
        ex.rest.usage().banned_until_ms,
        None,
        "nothing was sent during the hold: the exchange had no reason to ban"
    );
    assert!(book_lines(&s).len() <= 1, "{:?}", book_lines(&s));
    c.stop().await;
}
