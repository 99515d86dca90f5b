//! Leadership on PostgreSQL: one engine leads an account, the others wait as standbys and take
//! over when the leader's session ends.
//!
//! The lease itself (`journal::lease`: the advisory lock on a session of its own, the epoch, the
//! fenced order write) against a throw-away server; then two `crbot serve` processes on one
//! database and one local exchange: the standby's API, a takeover after `kill -9` (orders and
//! fills agree, no client order id sent twice), a kill mid-order, and a partition (a relay
//! between the leader and PostgreSQL that stops forwarding).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;

use std::time::{Duration, Instant};

use crbot::domain::{
    ClientOrderId, LocalOrderState, Mode, Notional, Order, OrderPurpose, OrderType, Qty, Side, Symbol,
};
use crbot::journal::lease::{Candidate, Lease, LeaseState};
use crbot::journal::{Journal, JournalError, Location, PgTarget};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn candidate(name: &str) -> Candidate {
    Candidate {
        holder: name.to_string(),
        address: Some(format!("http://{name}.example:8002")),
    }
}

fn order(cid: &str) -> Order {
    Order {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        order_id: None,
        order_list_id: None,
        symbol: Symbol::new("BTCUSDT").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some("60000.01".parse().unwrap()),
        stop_price: None,
        qty: "0.001".parse().unwrap(),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Sending,
        purpose: OrderPurpose::Entry,
        created_ms: 1,
        updated_ms: 1,
    }
}

#[test]
fn one_campaign_leads_the_other_waits_naming_it_and_takes_over_when_it_goes() {
    let db = pg_support::PgDatabase::new();
    let target = PgTarget::parse(&db.url()).unwrap();
    let rt = rt();
    rt.block_on(async {
        let mut a = Lease::campaign(&target, Mode::Sim, candidate("alpha"));
        let epoch_a = tokio::time::timeout(Duration::from_secs(20), a.until_leader())
            .await
            .expect("the first campaign leads");
        assert!(a.guard().valid());
        assert_eq!(a.guard().epoch(), epoch_a);

        let mut b = Lease::campaign(&target, Mode::Sim, candidate("beta"));
        let state = b.first_answer(Duration::from_secs(20)).await;
        match state {
            LeaseState::Standby {
                leader: Some(leader),
                note: None,
            } => {
                assert_eq!(leader.holder, "alpha");
                assert_eq!(leader.address.as_deref(), Some("http://alpha.example:8002"));
                assert_eq!(leader.epoch, epoch_a);
            }
            other => panic!("the second campaign is a standby naming the leader: {other:?}"),
        }
        assert!(!b.guard().valid());
        // Another mode is another account: its lease is free.
        let mut paper = Lease::campaign(&target, Mode::Paper, candidate("gamma"));
        tokio::time::timeout(Duration::from_secs(20), paper.until_leader())
            .await
            .expect("another mode leads at once");

        let gone = Instant::now();
        drop(a);
        let epoch_b = tokio::time::timeout(Duration::from_secs(10), b.until_leader())
            .await
            .expect("the standby takes over within 10 s of the leader's session ending");
        assert!(epoch_b > epoch_a, "each new leader bumps the epoch");
        assert!(gone.elapsed() < Duration::from_secs(10));
        assert!(b.guard().valid());
    });
}

#[test]
fn an_order_is_journaled_only_under_the_current_epoch() {
    let db = pg_support::PgDatabase::new();
    let target = PgTarget::parse(&db.url()).unwrap();
    let location = Location::Postgres(target.clone());
    let rt = rt();
    let mut a = Lease::campaign(&target, Mode::Sim, candidate("alpha"));
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), a.until_leader()).await })
        .expect("leads");
    // The leadership table exists before the journal does: the journal is still created.
    let mut journal = Journal::open_at(&location, Mode::Sim).expect("a new journal beside the lease");
    journal.set_fence(a.guard());
    journal
        .insert_order(&order("crb-fence-1"))
        .expect("the leader journals its order");
    assert!(matches!(
        journal.insert_order(&order("crb-fence-1")),
        Err(JournalError::DuplicateOrder(_))
    ));

    // Another engine leads meanwhile (the epoch moves on): the old leader's write is refused
    // even while its own lease still looks valid to it.
    db.psql("UPDATE crbot_leadership SET epoch = epoch + 1");
    assert!(a.guard().valid());
    let err = journal.insert_order(&order("crb-fence-2")).expect_err("fenced");
    assert!(err.to_string().contains("lost the lease"), "{err}");
    assert!(
        journal
            .order(&ClientOrderId::new("crb-fence-2").unwrap())
            .unwrap()
            .is_none()
    );

    // A lease that is no longer held refuses at once.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let err = journal.insert_order(&order("crb-fence-3")).expect_err("no lease");
    assert!(err.to_string().contains("lost the lease"), "{err}");
}
