//! The engine's lease on a PostgreSQL journal: which engine leads the account when several
//! machines share one database, and the fencing token that stops an old leader's orders.
//!
//! Owns: the session advisory lock (`pg_try_advisory_lock(lease_key(mode))`) held on a
//! connection of its own (never the journal's), on a thread of its own with a current-thread
//! runtime (as [`super::postgres`] does), its heartbeat, and the `crbot_leadership` row (epoch,
//! holder, address, since) that each new leader bumps in the same session. Must not: decide what
//! a process does as a standby (serve, the console and the commands decide), or hold the URL's
//! password anywhere it could be shown.
//!
//! **The key.** One database holds the journal of one mode (as one SQLite file does), so the
//! account is the mode: the key is `(APPLICATION_ID << 32) | n` with `n` the mode's number (sim
//! 1, paper 2, demo 3, testnet 4, live 5). It never collides with the journal's migration lock
//! (`pg_advisory_xact_lock(APPLICATION_ID)`).
//!
//! **Timing.** The holder sends `SELECT 1` every [`HEARTBEAT_EVERY`], each bounded by
//! [`HEARTBEAT_WITHIN`] (and `statement_timeout`). Its session has `idle_session_timeout` =
//! [`SERVER_IDLE_TIMEOUT`] and short TCP keepalives, so a leader cut off from the server has its
//! session ended by the server within about 5 s, which releases the lock. The leader's own view
//! ends sooner: [`LeaseGuard::valid`] is false once no heartbeat succeeded for [`VALID_FOR`]
//! (3 s, less than the server's 5 s), so it stops sending before another engine can lead. A lost
//! lease is final for this [`Lease`]: a new campaign starts as a standby.
//!
//! **Fencing.** Each leader increments `crbot_leadership.epoch` when it takes the lock; the
//! journal's write-before-send of an order (PostgreSQL only) inserts the row only while the
//! epoch is still this leader's ([`crate::journal::Journal::set_fence`]), so an old leader that
//! lost its session can never journal, then send, a new order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::postgres::{PgTarget, connect_dedicated};
use super::schema::APPLICATION_ID;
use crate::domain::Mode;

/// How often the leader proves it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long one heartbeat may take.
pub const HEARTBEAT_WITHIN: Duration = Duration::from_secs(2);
/// How long after its last successful heartbeat the leader still counts itself the leader.
pub const VALID_FOR: Duration = Duration::from_secs(3);
/// The server ends a lease session idle this long (`idle_session_timeout`, PostgreSQL 14+).
pub const SERVER_IDLE_TIMEOUT: &str = "5s";
/// How often a standby tries the lock.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// The table of the leaders' epochs (not part of the journal's migrations: SQLite has none).
pub const LEADERSHIP_TABLE: &str = "crbot_leadership";

/// What an order refused for a lost lease says.
pub const LOST_MESSAGE: &str = "this engine lost the lease on the PostgreSQL journal (no heartbeat \
     for 3 s, or another engine leads now): nothing more is sent from it";

/// The advisory lock's key for `mode` (see the module's documentation).
pub fn lease_key(mode: Mode) -> i64 {
    let n: i64 = match mode {
        Mode::Sim => 1,
        Mode::Paper => 2,
        Mode::Demo => 3,
        Mode::Testnet => 4,
        Mode::Live => 5,
    };
    (i64::from(APPLICATION_ID) << 32) | n
}

/// The `crbot_leadership` row: who leads (or last led) the account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leader {
    pub epoch: i64,
    /// `host pid N`.
    pub holder: String,
    /// The leader's control API (`http://HOST:PORT`), when it serves one.
    pub address: Option<String>,
    /// When it took the lease (ms since the epoch).
    pub since_ms: i64,
}

impl Leader {
    /// One line for messages: `host pid 12 at http://… (epoch 3, since …)`.
    pub fn describe(&self) -> String {
        let since = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(self.since_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| self.since_ms.to_string());
        match &self.address {
            Some(a) => format!("{} at {a} (epoch {}, since {since})", self.holder, self.epoch),
            None => format!("{} (epoch {}, since {since})", self.holder, self.epoch),
        }
    }
}

/// Where a campaign for the lease stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Not the leader: another engine holds the lock (`leader`, when its row could be read), or
    /// the server could not be asked (`note` says why). Polled again every [`POLL_EVERY`].
    Standby {
        leader: Option<Leader>,
        note: Option<String>,
    },
    /// This process leads, under `epoch`.
    Leader { epoch: i64 },
    /// This process led and lost the lease (`why`): it sends nothing more.
    Lost { why: String },
}

/// Who asks for the lease: written into the `crbot_leadership` row when it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub holder: String,
    pub address: Option<String>,
}

impl Candidate {
    /// `host pid N`, with `address` (the control API's URL) when there is one.
    pub fn this_process(address: Option<String>) -> Candidate {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Candidate {
            holder: format!("{host} pid {}", std::process::id()),
            address,
        }
    }
}

#[derive(Debug)]
struct Shared {
    base: Instant,
    /// Milliseconds after `base` of the last successful heartbeat.
    last_ok_ms: AtomicI64,
    leading: AtomicBool,
    epoch: AtomicI64,
}

impl Shared {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.base.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// The leader's view of its lease, cheap to clone and to ask: given to the journal (fencing)
/// and to the engine's executor (checked just before an order leaves).
#[derive(Debug, Clone)]
pub struct LeaseGuard {
    shared: Arc<Shared>,
}

impl LeaseGuard {
    /// True while this process leads and its last heartbeat succeeded less than [`VALID_FOR`]
    /// ago.
    pub fn valid(&self) -> bool {
        let s = &self.shared;
        let age = s.now_ms() - s.last_ok_ms.load(Ordering::Acquire);
        s.leading.load(Ordering::Acquire) && age < i64::try_from(VALID_FOR.as_millis()).unwrap_or(3_000)
    }

    /// The epoch this process leads under (0 before it leads).
    pub fn epoch(&self) -> i64 {
        self.shared.epoch.load(Ordering::Acquire)
    }
}

/// A campaign for the account's lease, on its own thread, until dropped (which ends the
/// session, releasing the lock).
#[derive(Debug)]
pub struct Lease {
    state: watch::Receiver<LeaseState>,
    guard: LeaseGuard,
    stop: CancellationToken,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The thread drops its connection (ending the session and the lock) on its way out.
        self.stop.cancel();
    }
}

impl Lease {
    /// Starts campaigning: the lock is tried at once, then every [`POLL_EVERY`] until it is
    /// taken; once taken it is held (heartbeats) until lost or until the `Lease` is dropped.
    pub fn campaign(target: &PgTarget, mode: Mode, me: Candidate) -> Lease {
        let (tx, state) = watch::channel(LeaseState::Standby {
            leader: None,
            note: Some("asking the PostgreSQL server".into()),
        });
        let shared = Arc::new(Shared {
            base: Instant::now(),
            last_ok_ms: AtomicI64::new(i64::MIN / 2),
            leading: AtomicBool::new(false),
            epoch: AtomicI64::new(0),
        });
        let guard = LeaseGuard {
            shared: shared.clone(),
        };
        let stop = CancellationToken::new();
        let thread_stop = stop.clone();
        let target = target.clone();
        let spawned = std::thread::Builder::new()
            .name("engine-lease".into())
            .spawn(
                move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(run(target, mode, me, tx, shared, thread_stop)),
                    Err(e) => {
                        let _ = tx.send(LeaseState::Standby {
                            leader: None,
                            note: Some(format!("cannot start the lease's runtime: {e}")),
                        });
                    }
                },
            );
        if let Err(e) = spawned {
            tracing::error!("cannot start the lease's thread: {e}");
        }
        Lease { state, guard, stop }
    }

    /// The campaign's state now.
    pub fn state(&self) -> LeaseState {
        self.state.borrow().clone()
    }

    /// Waits for the next change of state (returns the state then); the state now when the
    /// campaign's thread has ended.
    pub async fn changed(&mut self) -> LeaseState {
        let _ = self.state.changed().await;
        self.state()
    }

    /// Waits for the campaign's first answer (the first attempt at the lock), at most `within`.
    pub async fn first_answer(&mut self, within: Duration) -> LeaseState {
        let _ = tokio::time::timeout(within, self.state.changed()).await;
        self.state()
    }

    /// Waits until this process leads; its epoch.
    pub async fn until_leader(&mut self) -> i64 {
        loop {
            if let LeaseState::Leader { epoch } = self.state() {
                return epoch;
            }
            if self.state.changed().await.is_err() {
                // The thread ended without leading: nothing more will change.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until a lease this process holds is lost; why.
    pub async fn until_lost(&mut self) -> String {
        loop {
            if let LeaseState::Lost { why } = self.state() {
                return why;
            }
            if self.state.changed().await.is_err() {
                return "the lease's thread stopped".into();
            }
        }
    }

    pub fn guard(&self) -> LeaseGuard {
        self.guard.clone()
    }
}

/// How long [`read_leader`] may take, connection included: a server that accepts the
/// connection and then never answers must not hang the caller (`crbot doctor`).
pub const READ_LEADER_WITHIN: Duration = Duration::from_secs(5);

/// Reads the `crbot_leadership` row of `mode` on a connection of its own (for `crbot doctor`
/// and messages); `None` when no engine ever led. At most `within` (see
/// [`READ_LEADER_WITHIN`]), then `Err` saying it could not be checked in time.
pub async fn read_leader(target: &PgTarget, mode: Mode, within: Duration) -> Result<Option<Leader>, String> {
    let read = async {
        let client = connect_dedicated(target, |_| {})
            .await
            .map_err(|e| e.to_string())?;
        leader_row(&client, mode).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(within, read).await.unwrap_or_else(|_| {
        Err(format!(
            "could not check within {} s (the PostgreSQL server did not answer)",
            within.as_secs_f64()
        ))
    })
}

async fn run(
    target: PgTarget,
    mode: Mode,
    me: Candidate,
    tx: watch::Sender<LeaseState>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let key = lease_key(mode);
    let mut client: Option<Client> = None;
    let (client, epoch) = loop {
        if client.as_ref().is_none_or(Client::is_closed) {
            client = match tokio::select! {
                () = stop.cancelled() => return,
                c = session(&target) => c,
            } {
                Ok(c) => Some(c),
                Err(e) => {
                    let _ = tx.send(LeaseState::Standby {
                        leader: None,
                        note: Some(e),
                    });
                    None
                }
            };
        }
        if let Some(c) = client.take() {
            match attempt(&c, mode, key, &me).await {
                Ok(Ok(epoch)) => break (c, epoch),
                Ok(Err(leader)) => {
                    tx.send_if_modified(|s| {
                        let next = LeaseState::Standby { leader, note: None };
                        let changed = *s != next;
                        *s = next;
                        changed
                    });
                    client = Some(c);
                }
                Err(e) => {
                    let _ = tx.send(LeaseState::Standby {
                        leader: None,
                        note: Some(format!("the lease could not be asked: {e}")),
                    });
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
    };
    shared.epoch.store(epoch, Ordering::Release);
    shared.last_ok_ms.store(shared.now_ms(), Ordering::Release);
    shared.leading.store(true, Ordering::Release);
    let _ = tx.send(LeaseState::Leader { epoch });
    let why = heartbeat(&client, &shared, &stop).await;
    shared.leading.store(false, Ordering::Release);
    drop(client);
    if let Some(why) = why {
        tracing::error!("{LOST_MESSAGE}: {why}");
        let _ = tx.send(LeaseState::Lost { why });
    }
}

/// Heartbeats until the lease is lost (`Some(why)`) or the campaign is stopped (`None`).
///
/// Each heartbeat either succeeds (the time is noted) or ends the lease, so a stalled one
/// (`HEARTBEAT_EVERY + HEARTBEAT_WITHIN` = [`VALID_FOR`]) is lost here as [`LeaseGuard::valid`]
/// turns false.
async fn heartbeat(client: &Client, shared: &Shared, stop: &CancellationToken) -> Option<String> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
        match tokio::time::timeout(HEARTBEAT_WITHIN, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => shared.last_ok_ms.store(shared.now_ms(), Ordering::Release),
            Ok(Err(e)) => return Some(format!("the lease's session failed: {e}")),
            Err(_) => {
                return Some(format!(
                    "the PostgreSQL server did not answer a heartbeat within {} s",
                    HEARTBEAT_WITHIN.as_secs()
                ));
            }
        }
    }
}

/// A lease session: its own connection, with the server told to end it when idle and to probe
/// its TCP peer often.
async fn session(target: &PgTarget) -> Result<Client, String> {
    let client = connect_dedicated(target, |c| {
        c.keepalives(true)
            .keepalives_idle(Duration::from_secs(2))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(2)
            .application_name("crbot-lease");
    })
    .await
    .map_err(|e| format!("cannot reach the PostgreSQL server for the lease: {e}"))?;
    let statement_ms = HEARTBEAT_WITHIN.as_millis();
    client
        .batch_execute(&format!("SET statement_timeout = {statement_ms}"))
        .await
        .map_err(|e| format!("cannot set up the lease's session: {e}"))?;
    // PostgreSQL 14 and later: a partitioned leader's session ends on the server's side.
    if let Err(e) = client
        .batch_execute(&format!("SET idle_session_timeout = '{SERVER_IDLE_TIMEOUT}'"))
        .await
    {
        tracing::warn!(
            "the PostgreSQL server does not end idle lease sessions ({e}): a cut-off leader's \
             lock is released only when its TCP connection is found dead"
        );
    }
    for set in [
        "SET tcp_keepalives_idle = 2",
        "SET tcp_keepalives_interval = 1",
        "SET tcp_keepalives_count = 2",
    ] {
        let _ = client.batch_execute(set).await;
    }
    Ok(client)
}

/// One try at the lock: `Ok(Ok(epoch))` when taken (the epoch bumped in the same session),
/// `Ok(Err(leader))` when held elsewhere.
async fn attempt(
    client: &Client,
    mode: Mode,
    key: i64,
    me: &Candidate,
) -> Result<Result<i64, Option<Leader>>, tokio_postgres::Error> {
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .try_get(0)?;
    if !got {
        return Ok(Err(leader_row(client, mode).await.ok().flatten()));
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {LEADERSHIP_TABLE} (mode TEXT PRIMARY KEY NOT NULL, \
             epoch BIGINT NOT NULL, holder TEXT NOT NULL, address TEXT, since_ms BIGINT NOT NULL)"
        ))
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO {LEADERSHIP_TABLE} (mode, epoch, holder, address, since_ms) \
                 VALUES ($1, 1, $2, $3, $4) ON CONFLICT (mode) DO UPDATE SET \
                 epoch = {LEADERSHIP_TABLE}.epoch + 1, holder = EXCLUDED.holder, \
                 address = EXCLUDED.address, since_ms = EXCLUDED.since_ms RETURNING epoch"
            ),
            &[&mode.as_str(), &me.holder, &me.address, &now],
        )
        .await?;
    Ok(Ok(row.try_get(0)?))
}

async fn leader_row(client: &Client, mode: Mode) -> Result<Option<Leader>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            &format!("SELECT to_regclass('{LEADERSHIP_TABLE}') IS NOT NULL"),
            &[],
        )
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            &format!("SELECT epoch, holder, address, since_ms FROM {LEADERSHIP_TABLE} WHERE mode = $1"),
            &[&mode.as_str()],
        )
        .await?;
    row.map(|r| {
        Ok(Leader {
            epoch: r.try_get(0)?,
            holder: r.try_get(1)?,
            address: r.try_get(2)?,
            since_ms: r.try_get(3)?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_own_key_none_the_journals_migration_lock() {
        let keys: std::collections::BTreeSet<i64> = Mode::ALL.into_iter().map(lease_key).collect();
        assert_eq!(keys.len(), Mode::ALL.len());
        assert!(!keys.contains(&i64::from(APPLICATION_ID)));
        assert_eq!(lease_key(Mode::Sim), (0x6372_6274_i64 << 32) | 1);
    }

    #[test]
    fn a_guard_is_valid_only_while_leading_with_a_recent_heartbeat() {
        let shared = Arc::new(Shared {
            base: Instant::now(),
            last_ok_ms: AtomicI64::new(0),
            leading: AtomicBool::new(false),
            epoch: AtomicI64::new(0),
        });
        let g = LeaseGuard {
            shared: shared.clone(),
        };
        assert!(!g.valid(), "not leading");
        shared.leading.store(true, Ordering::Release);
        shared.last_ok_ms.store(shared.now_ms(), Ordering::Release);
        assert!(g.valid());
        shared
            .last_ok_ms
            .store(shared.now_ms() - 3_001, Ordering::Release);
        assert!(!g.valid(), "no heartbeat for 3 s");
    }
}
