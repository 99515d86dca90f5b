//! A journal that cannot be written (disk full, read-only, I/O error) while the console runs:
//! new tickets are refused with a clear message, the kill switch still cancels everything,
//! and nothing already recorded is lost (item 7).
//!
//! Writes are made to fail for this whole test process by lowering its file-size limit
//! (`RLIMIT_FSIZE`) to zero, which turns every write to a regular file into `EFBIG` (SQLite:
//! an I/O error), with `SIGXFSZ` ignored so the process is not killed. Root cannot be stopped
//! by file permissions, and a full disk cannot be made without mounting; this works for any
//! user. Because the limit is process-wide, this file holds a single test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::{LocalOrderState, Mode, OrderPurpose, OrderStatus};
use crbot::engine::snapshot::{Command, TicketOutcome};
use crbot::journal::Journal;
use engine_support::*;

/// Every write to a regular file fails while this lives.
struct NoFileWrites {
    saved: libc::rlimit,
}

impl NoFileWrites {
    fn start() -> Self {
        // SAFETY: plain libc calls on this process's own signal disposition and resource
        // limit, with valid pointers to stack values.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let mut saved = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut saved), 0);
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: saved.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &none), 0);
            NoFileWrites { saved }
        }
    }
}

impl Drop for NoFileWrites {
    fn drop(&mut self) {
        // SAFETY: as above; raising the soft limit back up to the unchanged hard limit.
        unsafe {
            libc::setrlimit(libc::RLIMIT_FSIZE, &self.saved);
        }
    }
}

#[tokio::test]
async fn an_unwritable_journal_refuses_tickets_keeps_the_kill_switch_and_loses_nothing() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    let (_, ask) = ex.book(BTC).await;
    c.send(Command::SubmitTicket(crossing_buy(BTC, "0.001", ask)))
        .await;
    let s = wait_snapshot(
        &mut c.snap,
        Duration::from_secs(10),
        "a protected BTC position",
        |s| {
            [OrderPurpose::StopLoss, OrderPurpose::TakeProfit]
                .iter()
                .all(|p| {
                    s.orders
                        .iter()
                        .any(|o| o.purpose == *p && o.state == LocalOrderState::Exchange(OrderStatus::New))
                })
        },
    )
    .await;
    let recorded: Vec<_> = s.orders.iter().map(|o| o.client_order_id.clone()).collect();
    let entry = c.journal().recent_orders(10).unwrap();
    let entry = entry
        .iter()
        .find(|o| o.purpose == OrderPurpose::Entry)
        .unwrap()
        .client_order_id
        .clone();

    let no_writes = NoFileWrites::start();
    let (bid, _) = ex.book(ETH).await;
    c.send(Command::SubmitTicket(resting_buy(ETH, "0.01", bid))).await;
    let s = wait_snapshot(
        &mut c.snap,
        Duration::from_secs(10),
        "the ticket refused for storage",
        |s| matches!(&s.ticket_result, Some(r) if r.draft.symbol == ETH),
    )
    .await;
    let Some(TicketOutcome::Rejected { message, .. }) = s.ticket_result.map(|r| r.outcome) else {
        panic!("expected a refusal")
    };
    assert!(
        message.contains("not sent") && message.contains("journal"),
        "clear message: {message}"
    );
    assert!(
        s.header
            .warnings
            .iter()
            .any(|w| w.contains("journal cannot be written")),
        "the header says why: {:?}",
        s.header.warnings
    );
    assert!(
        ex.all_orders(ETH).await.is_empty(),
        "nothing sent that could not be recorded"
    );

    // The kill switch does not need the journal to cancel.
    c.send(Command::Kill).await;
    wait_snapshot(
        &mut c.snap,
        Duration::from_secs(10),
        "HALTED and the sweep done",
        |s| is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done),
    )
    .await;
    assert!(
        ex.open_orders().await.is_empty(),
        "the kill cancelled the protective legs"
    );

    drop(no_writes);
    let path = c.journal_path.clone();
    let _dir = c.stop().await;
    let journal = Journal::open(&path, Mode::Sim).unwrap();
    for cid in &recorded {
        assert!(
            journal.order(cid).unwrap().is_some(),
            "order {cid} recorded before the failure is kept"
        );
    }
    let fills = journal.fills_for(&sym(BTC)).unwrap();
    assert!(
        fills.iter().any(|f| f.client_order_id.as_ref() == Some(&entry)),
        "the entry's fill is kept"
    );
    assert!(journal.integrity_check().unwrap());
}
