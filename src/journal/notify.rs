//! Trading-state changes heard as they commit, on a PostgreSQL journal.
//!
//! Owns: the listening connection (one, dedicated: never one of the journal's own, never
//! pooled) on a thread of its own, reconnecting with backoff when it is lost, and the channel
//! name. Must not: decide anything about the change it hears (the engine re-reads the journal),
//! or be needed for a halt to take effect: the engine's 250 ms poll of
//! [`super::Journal::latest_trading_state_id`] stays, and this only makes it hear sooner.
//!
//! [`super::Journal::record_trading_state`] on PostgreSQL inserts the row and issues
//! `NOTIFY crbot_<mode>, '<id>'` in the same transaction. PostgreSQL delivers a notice on
//! commit only, so whoever hears it finds the row durable; a rolled-back write is never heard.
//! A notice sent while no listener was connected is lost (PostgreSQL keeps none): the
//! listener says [`Notice::Listening`] each time it (re)connects, so that its owner reads the
//! state once then.

use std::time::Duration;

use tokio::sync::oneshot;

use super::postgres::{PgTarget, connect_listening};
use super::{JournalError, Result};
use crate::domain::Mode;

/// The first wait before reconnecting; doubled after each failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often the idle connection is checked with a query, and how long the answer may take:
/// a server gone without a reset is noticed within about this long.
const CHECK_EVERY: Duration = Duration::from_secs(15);
const CHECK_WITHIN: Duration = Duration::from_secs(5);

/// The channel a mode's trading-state changes are announced on.
pub fn channel(mode: Mode) -> String {
    format!("crbot_{}", mode.as_str())
}

/// On a PostgreSQL journal, a [`Listener`] for `mode`'s trading-state changes; `None` on
/// SQLite, which has no notices (its readers poll).
pub fn listen<F>(location: &super::Location, mode: Mode, on_notice: F) -> Result<Option<Listener>>
where
    F: FnMut(Notice) + Send + 'static,
{
    match location {
        super::Location::Sqlite(_) => Ok(None),
        super::Location::Postgres(target) => Listener::spawn(target, mode, on_notice).map(Some),
    }
}

/// What the listener heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Listening now (at start, or again after the connection was lost): a change made while
    /// not listening was not heard, so read the state once.
    Listening,
    /// A trading-state row with this id was committed.
    Changed(i64),
}

/// The listening connection's thread; stopped when dropped.
pub struct Listener {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// Starts listening for `mode`'s trading-state changes on `target`; `on_notice` is called
    /// on the listener's thread for each [`Notice`] (it must not block: hand it on).
    pub fn spawn<F>(target: &PgTarget, mode: Mode, on_notice: F) -> Result<Listener>
    where
        F: FnMut(Notice) + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let target = target.clone();
        let channel = channel(mode);
        let thread = std::thread::Builder::new()
            .name("journal-listen".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("the journal's listener cannot start its runtime: {e}");
                        return;
                    }
                };
                rt.block_on(listen_until(target, channel, on_notice, stopped));
            })
            .map_err(|e| JournalError::Database(format!("cannot start the journal's listener: {e}")))?;
        Ok(Listener {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Listens until stopped: one session after another, waiting longer after each failure.
async fn listen_until<F>(target: PgTarget, channel: String, mut on_notice: F, mut stop: oneshot::Receiver<()>)
where
    F: FnMut(Notice),
{
    let mut wait = RETRY_FIRST;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            listened = session(&target, &channel, &mut on_notice) => match listened {
                // It was listening: the loss is news, the retry starts quick.
                Ok(()) => wait = RETRY_FIRST,
                Err(e) => tracing::warn!("the journal's listener cannot listen: {e}"),
            },
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// One connection's life: `Err` when it could not listen at all, `Ok` when it listened and
/// then was lost.
async fn session<F>(target: &PgTarget, channel: &str, on_notice: &mut F) -> Result<()>
where
    F: FnMut(Notice),
{
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let client = connect_listening(target, tx).await?;
    client.batch_execute(&format!("LISTEN \"{channel}\"")).await?;
    on_notice(Notice::Listening);
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    loop {
        tokio::select! {
            heard = notices.recv() => match heard {
                Some(payload) => on_notice(
                    payload.trim().parse().map_or(Notice::Listening, Notice::Changed),
                ),
                None => break,
            },
            _ = check.tick() => {
                let answered = tokio::time::timeout(CHECK_WITHIN, client.batch_execute("SELECT 1")).await;
                if !matches!(answered, Ok(Ok(()))) {
                    break;
                }
            }
        }
    }
    tracing::warn!("the journal's listening connection was lost; reconnecting");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_own_channel() {
        assert_eq!(channel(Mode::Live), "crbot_live");
        assert_ne!(channel(Mode::Sim), channel(Mode::Testnet));
    }
}
