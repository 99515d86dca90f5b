//! The console engine on a journal that stops taking writes mid-session (the
//! engine's part): new tickets are refused with a clear message, the kill switch still halts
//! (in memory) and still cancels every open order on the exchange, and nothing recorded
//! before the failure is lost.
//!
//! How the storage fails: this test process gets a file-size limit (`RLIMIT_FSIZE`, with
//! `SIGXFSZ` ignored) at the journal's current size, so every write that would grow the
//! journal's files fails as it would on a full disk (SQLite reports an I/O error). The limit
//! is per process, and this file holds a single test, so no other test shares it.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::path::Path;
use std::time::Duration;

use crbot::domain::broker::OrderOutcome;
use crbot::domain::{ClientOrderId, Mode, OrderPurpose, OrderRequest, OrderType, Side, Symbol, TimeInForce};
use crbot::engine::core::Core;
use crbot::engine::runtime::Runtime;
use crbot::engine::snapshot::{Command, Snapshot, TicketDraft, TicketOutcome, TradingState};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, SimConfig, SimHandle};
use crbot::journal::{EventRecord, Journal, TicketSource};
use crbot::risk::Limits;
use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn wait_until<F: FnMut() -> bool>(mut cond: F, timeout: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rest_for(h: &SimHandle) -> BinanceRest {
    BinanceRest::without_ban_store(
        Endpoints::local(h.addr()).unwrap(),
        Some(Credentials::hmac(&h.api_key(), h.api_secret().expose())),
        RestConfig::default(),
    )
    .unwrap()
}

/// One resting BUY limit per symbol, 3 % under the market, journaled as the console would.
async fn place_resting(rest: &BinanceRest, h: &SimHandle, journal: &Journal) -> Vec<ClientOrderId> {
    let info = rest.exchange_info(&[]).await.unwrap();
    let mids = h.mids();
    let mut cids = Vec::new();
    for name in SYMBOLS {
        let symbol = Symbol::new(name).unwrap();
        let rules = info.symbols.iter().find(|r| r.symbol == symbol).unwrap();
        let mid = mids.iter().find(|(s, _)| s == name).unwrap().1;
        let raw = mid * Decimal::new(97, 2);
        let price = rules.round_price(Side::Buy, raw.round_dp(8).to_string().parse().unwrap());
        let qty = rules.round_qty(
            OrderType::Limit,
            (Decimal::from(50) / raw).round_dp(8).to_string().parse().unwrap(),
        );
        let cid = ClientOrderId::generate(now_ms(), rand::random::<u64>());
        let req = OrderRequest {
            symbol,
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            qty,
            price: Some(price),
            stop_price: None,
            client_order_id: cid.clone(),
        };
        match rest.place_order_unchecked(&req).await {
            OrderOutcome::Done(p) => journal
                .insert_order(&p.order.to_order(OrderPurpose::Entry))
                .unwrap(),
            other => panic!("placing {name}: {other:?}"),
        }
        cids.push(cid);
    }
    cids
}

/// From now on no file of this process may grow beyond the journal's current size.
fn freeze_file_sizes(journal: &Path) {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = journal.with_extension("db-wal");
    let limit = size(&wal);
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let r = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0);
    }
}

fn unfreeze_file_sizes() {
    unsafe {
        let r = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0);
    }
}

fn draft(symbol: &str) -> TicketDraft {
    TicketDraft {
        symbol: symbol.into(),
        side: "BUY".into(),
        order_type: "MARKET".into(),
        amount: "100 USDT".into(),
        price: String::new(),
        stop_loss: "1".into(),
        take_profit: "1000000".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_written_refuses_tickets_keeps_the_kill_switch_and_loses_nothing() {
    let config = SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    };
    let h = sim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let rest = rest_for(&h);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let journal = Journal::open(&path, Mode::Sim).unwrap();
    let cids = place_resting(&rest, &h, &journal).await;
    journal
        .record_event(&EventRecord {
            time_ms: now_ms(),
            kind: "BEFORE_FAILURE".into(),
            symbol: None,
            detail: "written while the disk had room".into(),
        })
        .unwrap();

    let core = Core::restore(journal, Mode::Sim, Limits::default(), TicketSource::Tui, now_ms()).unwrap();
    let (snap_tx, snap_rx) = watch::channel(core.state.snapshot(now_ms()));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(Runtime::run(
        core,
        rest.clone(),
        cmd_rx,
        snap_tx,
        cancel.clone(),
        false,
        None,
    ));
    let snap = || -> Snapshot { snap_rx.borrow().clone() };
    wait_until(
        || {
            snap()
                .log
                .iter()
                .any(|l| l.text.contains("reconciled with the exchange"))
        },
        Duration::from_secs(20),
        "the start-up reconciliation",
    )
    .await;

    // The disk fills up.
    freeze_file_sizes(&path);

    // A ticket is refused, saying why; the header says so too, and a second one is refused as well.
    cmd_tx
        .send(Command::SubmitTicket(draft("BTCUSDT")))
        .await
        .unwrap();
    wait_until(
        || snap().ticket_result.is_some(),
        Duration::from_secs(10),
        "a ticket result",
    )
    .await;
    let result = snap().ticket_result.unwrap();
    match &result.outcome {
        TicketOutcome::Rejected { message, .. } => {
            assert!(
                message.contains("journal cannot record"),
                "unclear refusal: {message}"
            );
            // The same words as every command line command uses for the same failure.
            assert!(
                message.contains("the journal's disk is full"),
                "not said as a full disk: {message}"
            );
        }
        other => panic!("a ticket was not refused while the journal cannot write: {other:?}"),
    }
    wait_until(
        || {
            snap()
                .header
                .warnings
                .iter()
                .any(|w| w.contains("journal cannot be written"))
        },
        Duration::from_secs(5),
        "the header warning",
    )
    .await;
    cmd_tx
        .send(Command::SubmitTicket(draft("ETHUSDT")))
        .await
        .unwrap();
    wait_until(
        || snap().ticket_result.is_some_and(|r| r.draft.symbol == "ETHUSDT"),
        Duration::from_secs(10),
        "the second ticket's result",
    )
    .await;
    assert!(matches!(
        snap().ticket_result.unwrap().outcome,
        TicketOutcome::Rejected { .. }
    ));

    // The kill switch: halted in memory, and every order cancelled on the exchange.
    cmd_tx.send(Command::Kill).await.unwrap();
    wait_until(
        || matches!(snap().header.trading, TradingState::Halted { .. }),
        Duration::from_secs(5),
        "the halt",
    )
    .await;
    wait_until(
        || snap().kill.is_some_and(|k| k.done),
        Duration::from_secs(20),
        "the kill sweep",
    )
    .await;
    let open = rest.open_orders(None).await.unwrap();
    assert!(
        open.is_empty(),
        "{} order(s) still open after the kill",
        open.len()
    );
    // Nothing was sent for the refused tickets.
    for s in ["BTCUSDT", "ETHUSDT"] {
        let trades = rest.my_trades(&Symbol::new(s).unwrap(), None).await.unwrap();
        assert!(trades.is_empty(), "{s}: a refused ticket traded");
    }

    cancel.cancel();
    engine.await.unwrap();
    unfreeze_file_sizes();

    // Everything written before the failure is still there.
    let reopened = Journal::open_existing(&path, Mode::Sim).unwrap();
    assert!(reopened.integrity_check().unwrap());
    for cid in &cids {
        assert!(reopened.order(cid).unwrap().is_some(), "order {cid} lost");
    }
    let events = reopened.recent_events(1000).unwrap();
    assert!(
        events.iter().any(|e| e.record.kind == "BEFORE_FAILURE"),
        "an event written before the failure was lost"
    );
    h.shutdown().await;
}
