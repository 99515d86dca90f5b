//! THE crash test: a writer process is killed with SIGKILL while it records orders and fills;
//! every record it acknowledged (printed after the journal call returned) must be there after a
//! reopen, and SQLite's integrity check must pass.
//!
//! The writer is this same test binary, re-executed with `CRBOT_CRASH_WRITER` set: the test
//! function then acts as the writer instead of the parent.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crbot::domain::{
    Asset, ClientOrderId, Fill, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderType, Qty, Side,
    Symbol,
};
use crbot::journal::Journal;

const WRITER_ENV: &str = "CRBOT_CRASH_WRITER";
const TEST_NAME: &str = "every_acknowledged_record_survives_sigkill";

fn order(i: u64) -> Order {
    Order {
        client_order_id: ClientOrderId::new(&format!("crash-{i}")).expect("cid"),
        order_id: None,
        order_list_id: None,
        symbol: Symbol::new("BTCUSDT").expect("symbol"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some(format!("60000.{i}").parse().expect("price")),
        stop_price: None,
        qty: "0.001".parse().expect("qty"),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Pending,
        purpose: OrderPurpose::Entry,
        created_ms: i as i64,
        updated_ms: i as i64,
    }
}

fn fill(i: u64) -> Fill {
    Fill {
        symbol: Symbol::new("BTCUSDT").expect("symbol"),
        trade_id: i,
        order_id: i,
        client_order_id: Some(ClientOrderId::new(&format!("crash-{i}")).expect("cid")),
        side: Side::Buy,
        price: format!("60000.{i}").parse().expect("price"),
        qty: "0.001".parse().expect("qty"),
        commission: "0.0000001".parse().expect("commission"),
        commission_asset: Asset::new("BTC").expect("asset"),
        time_ms: i as i64,
        is_maker: false,
    }
}

/// The child: records orders and fills forever (bounded), acknowledging each on stdout only
/// after the journal returned `Ok`.
fn run_writer(path: &Path) {
    let j = Journal::open(path, Mode::Sim).expect("writer open");
    let mut out = std::io::stdout().lock();
    // libtest prints the test's name without a line break: start acks on a line of their own.
    writeln!(out).expect("stdout");
    // Bounded so that an orphaned writer stops by itself.
    for i in 1..=200_000u64 {
        j.insert_order(&order(i)).expect("insert order");
        writeln!(out, "ACK order crash-{i}").expect("stdout");
        out.flush().expect("flush");
        j.insert_fill(&fill(i)).expect("insert fill");
        writeln!(out, "ACK fill {i}").expect("stdout");
        out.flush().expect("flush");
    }
}

#[derive(Default)]
struct Acks {
    orders: BTreeSet<String>,
    fills: BTreeSet<u64>,
}

impl Acks {
    fn take(&mut self, line: &str) {
        if let Some(cid) = line.strip_prefix("ACK order ") {
            self.orders.insert(cid.to_string());
        } else if let Some(id) = line.strip_prefix("ACK fill ") {
            self.fills.insert(id.parse().expect("fill id"));
        }
    }

    fn count(&self) -> usize {
        self.orders.len() + self.fills.len()
    }
}

/// Starts a writer on `path`, reads acks until `kill_after`, SIGKILLs it, returns every ack.
fn run_and_kill(path: &Path, kill_after: usize) -> Acks {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut acks = Acks::default();
    let mut line = String::new();
    while acks.count() < kill_after {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read");
        assert!(n > 0, "writer ended after {} acks", acks.count());
        acks.take(line.trim_end());
    }
    // SIGKILL on Unix: no destructor, no checkpoint, no flush runs in the writer.
    child.kill().expect("kill");
    child.wait().expect("wait");
    // Acks printed before the kill are still in the pipe; a partial last line is not an ack.
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("drain");
    for l in rest.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        acks.take(l.trim_end());
    }
    acks
}

fn crash_once(dir: &Path, round: usize, kill_after: usize) {
    let path = dir.join(format!("journal-{round}.db"));
    let acks = run_and_kill(&path, kill_after);
    let j = Journal::open(&path, Mode::Sim).expect("reopen after crash");
    assert!(
        j.integrity_check().expect("integrity"),
        "round {round}: integrity_check failed"
    );
    for cid in &acks.orders {
        let cid = ClientOrderId::new(cid).expect("cid");
        assert!(
            j.order(&cid).expect("read order").is_some(),
            "round {round}: acknowledged order {cid} lost"
        );
    }
    let stored: BTreeSet<u64> = j.fills().expect("fills").iter().map(|f| f.trade_id).collect();
    let lost: Vec<_> = acks.fills.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "round {round}: acknowledged fills lost: {lost:?}"
    );
}

#[test]
fn every_acknowledged_record_survives_sigkill() {
    if let Some(path) = std::env::var_os(WRITER_ENV) {
        run_writer(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (round, kill_after) in [7, 60, 151, 400].into_iter().enumerate() {
        crash_once(dir.path(), round, kill_after);
    }
}

fn digest(path: &Path) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).expect("read")).to_vec()
}

#[test]
fn another_mode_is_refused_untouched_even_with_a_crash_left_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    run_and_kill(&path, 40);
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    assert!(
        Path::new(&wal).exists(),
        "the killed writer leaves its WAL behind"
    );
    let before = digest(&path);
    let err = Journal::open(&path, Mode::Live).expect_err("a sim journal");
    assert!(
        matches!(err, crbot::journal::JournalError::WrongMode { .. }),
        "{err:?}"
    );
    assert_eq!(digest(&path), before);
}
