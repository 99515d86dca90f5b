//! The market queue between the market-stream task and the engine: first in, first out, except
//! that a quote still waiting is replaced by a newer one of the same kind and symbol.
//!
//! Owns: the events the stream task has decoded and the engine has not taken yet, and the rule
//! for which of them a newer event supersedes. Must not: decide what an event means (the
//! engine does), drop anything that is not superseded, or grow without bound.
//!
//! **What is conflated.** Three kinds of event only say "the latest value is X": a
//! `@bookTicker` (best bid/ask of a symbol), a `@miniTicker` (24 h figures of a symbol), and a
//! `@kline` that is not closed (the forming candle of a symbol, interval and open time). Each
//! such event has a *slot* keyed by what it describes ([`SlotKey`]). When a newer event finds
//! its slot still queued, it takes the older one's place in the queue and the older one is
//! never delivered ([`MarketSender::superseded_count`] counts them). Once the engine has taken
//! a slot's event, the next one of that key queues a new slot at the back.
//!
//! **What keeps its order and is never dropped.** Everything else: `@aggTrade` trades, the
//! `@depth` diffs (the local book checks their update ids: losing one forces a resync), closed
//! klines (a candle's final figures), and the stream's status events (connected, lost, stale…).
//! Their relative order is exactly the order they were sent in.
//!
//! **Why a quote may overtake older events safely.** A slot keeps the *oldest* queued
//! position of its key while its value is the *newest* (a slot that moved to the back at each
//! new quote could be overtaken forever by a fast symbol and never be delivered). So a quote can
//! reach the engine before trades, diffs or statuses that were sent before it. That cannot
//! change any outcome, because each piece of engine state is written by one key only:
//! `EngineState::quotes[symbol]` by that symbol's `@bookTicker`, `tickers[symbol]` by its
//! `@miniTicker`, a candle by the klines of its symbol, interval and open time, the local book
//! by the diffs, the tape by the trades, the stream status by the status events. For each key
//! the engine sees a subsequence of what was sent, in order, ending with the last value sent;
//! events of different keys never write the same place. Two consequences, both intended:
//! - a forming candle's slot queued before its closed kline is delivered before it (it was
//!   older), and the closed kline, which is never conflated, is applied last: the final figures
//!   win as in a plain queue;
//! - a value that was superseded before the engine took it is never seen at all. The engine
//!   under a burst therefore samples fewer quotes (the mid history used for a fill's fee price,
//!   `EngineState::quote_trail`, gets fewer but fresher points), and a price alert, checked
//!   after every input against the last price, fires on the values the engine sees: an
//!   excursion that a newer ticker superseded while both were queued is not seen. On Binance a
//!   `@miniTicker` comes once a second per symbol, so this needs the engine over a second behind.
//!
//! **Bounds and back-pressure.** `capacity` bounds the first-in-first-out events; when they
//! fill it, [`MarketSender::send`] waits for the engine to take one (the stream task stops
//! reading the socket meanwhile: TCP holds the rest, and the exchange tolerates a minute
//! without a pong). A conflatable event never waits: it replaces its slot or adds one, and
//! slots exist only for keys with an event queued — at most one per symbol for quotes and for
//! tickers, one per symbol, interval and open time for forming candles (a new one per interval
//! that passes while the engine takes nothing).
//!
//! **Closing.** Like tokio's `mpsc`: once every sender is dropped, the receiver drains what is
//! queued and then reads `None`; once the receiver is dropped, sends fail and give the event back.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::events::MarketEvent;
use crate::domain::Symbol;

/// What a conflatable event describes: a newer event of the same key supersedes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SlotKey {
    /// A `@bookTicker`: the symbol's best bid and ask.
    Quote(Symbol),
    /// A `@miniTicker`: the symbol's 24 h figures.
    Ticker(Symbol),
    /// A forming `@kline`: the symbol's candle of an interval and open time (ms).
    Candle(Symbol, String, i64),
}

impl SlotKey {
    /// The key of a conflatable event; `None` for an event that keeps its place.
    pub fn of(event: &MarketEvent) -> Option<SlotKey> {
        match event {
            MarketEvent::BookTicker { symbol, .. } => Some(SlotKey::Quote(symbol.clone())),
            MarketEvent::MiniTicker { symbol, .. } => Some(SlotKey::Ticker(symbol.clone())),
            MarketEvent::Kline {
                symbol,
                interval,
                kline,
                ..
            } if !kline.closed => Some(SlotKey::Candle(
                symbol.clone(),
                interval.clone(),
                kline.open_time_ms,
            )),
            _ => None,
        }
    }
}

/// One place in the queue.
#[derive(Debug)]
enum Entry {
    /// An event that keeps its order.
    Event(MarketEvent),
    /// The slot of a key: its newest event is in [`Queue::slots`].
    Slot(SlotKey),
}

/// The queue itself, without waiting: what [`MarketSender`] and [`MarketReceiver`] share.
#[derive(Debug)]
struct Queue {
    entries: VecDeque<Entry>,
    /// The newest event of each key that has an [`Entry::Slot`] in `entries`.
    slots: HashMap<SlotKey, MarketEvent>,
    /// How many [`Entry::Event`]s `entries` holds.
    fifo: usize,
    capacity: usize,
    superseded: u64,
    senders: usize,
    receiver_alive: bool,
}

/// Why [`Queue::offer`] did not take an event (boxed: a refusal is rare, an event is large).
enum Refused {
    Full(Box<MarketEvent>),
    Closed(Box<MarketEvent>),
}

impl Queue {
    fn offer(&mut self, event: MarketEvent) -> Result<(), Refused> {
        if !self.receiver_alive {
            return Err(Refused::Closed(Box::new(event)));
        }
        if let Some(key) = SlotKey::of(&event) {
            match self.slots.entry(key) {
                MapEntry::Occupied(mut slot) => {
                    slot.insert(event);
                    self.superseded += 1;
                }
                MapEntry::Vacant(slot) => {
                    self.entries.push_back(Entry::Slot(slot.key().clone()));
                    slot.insert(event);
                }
            }
            return Ok(());
        }
        if self.fifo >= self.capacity {
            return Err(Refused::Full(Box::new(event)));
        }
        self.fifo += 1;
        self.entries.push_back(Entry::Event(event));
        Ok(())
    }

    fn pop(&mut self) -> Option<MarketEvent> {
        loop {
            match self.entries.pop_front()? {
                Entry::Event(event) => {
                    self.fifo -= 1;
                    return Some(event);
                }
                // Every slot entry has its event; a missing one would only be skipped.
                Entry::Slot(key) => {
                    if let Some(event) = self.slots.remove(&key) {
                        return Some(event);
                    }
                }
            }
        }
    }

    fn is_full(&self) -> bool {
        self.fifo >= self.capacity
    }
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the receiver: an event was queued, or the last sender left.
    readable: Notify,
    /// Wakes senders waiting for room: an event left a full queue, or the receiver left.
    room: Notify,
}

impl Shared {
    /// The queue; never held across an await. A panic while it was held (none of the code
    /// under the lock can panic) would leave it consistent, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A new market queue holding at most `capacity` first-in-first-out events (at least 1), plus
/// one slot per key with a conflatable event queued.
pub fn channel(capacity: usize) -> (MarketSender, MarketReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            entries: VecDeque::new(),
            slots: HashMap::new(),
            fifo: 0,
            capacity: capacity.max(1),
            superseded: 0,
            senders: 1,
            receiver_alive: true,
        }),
        readable: Notify::new(),
        room: Notify::new(),
    });
    (
        MarketSender {
            shared: shared.clone(),
        },
        MarketReceiver { shared },
    )
}

/// The receiver is gone; the event that could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the market queue's receiver is gone")]
pub struct SendError(pub MarketEvent);

/// Why [`MarketSender::try_send`] did not queue an event (it is given back, boxed: a
/// refusal is rare and an event is large).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError {
    #[error("the market queue is full")]
    Full(Box<MarketEvent>),
    #[error("the market queue's receiver is gone")]
    Closed(Box<MarketEvent>),
}

/// The stream task's end. Cloning adds a sender; the receiver ends once all are dropped.
#[derive(Debug)]
pub struct MarketSender {
    shared: Arc<Shared>,
}

impl Clone for MarketSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for MarketSender {
    fn drop(&mut self) {
        let last = {
            let mut q = self.shared.lock();
            q.senders -= 1;
            q.senders == 0
        };
        if last {
            self.shared.readable.notify_one();
        }
    }
}

impl MarketSender {
    /// Queues `event`, waiting while the first-in-first-out events fill the queue (a
    /// conflatable event never waits). Cancel-safe: dropped while waiting, nothing was queued.
    pub async fn send(&self, event: MarketEvent) -> Result<(), SendError> {
        let mut event = event;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before the check: a pop between the check and the await still wakes us.
            room.as_mut().enable();
            match self.try_send(event) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(e)) => return Err(SendError(*e)),
                Err(TrySendError::Full(e)) => event = *e,
            }
            room.await;
        }
    }

    /// Queues `event` without waiting.
    pub fn try_send(&self, event: MarketEvent) -> Result<(), TrySendError> {
        let mut q = self.shared.lock();
        let was_empty = q.entries.is_empty();
        match q.offer(event) {
            Ok(()) => {
                drop(q);
                if was_empty {
                    self.shared.readable.notify_one();
                }
                Ok(())
            }
            Err(Refused::Full(e)) => Err(TrySendError::Full(e)),
            Err(Refused::Closed(e)) => Err(TrySendError::Closed(e)),
        }
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().receiver_alive
    }

    /// Conflatable events replaced by a newer one of their key before the receiver took them.
    pub fn superseded_count(&self) -> u64 {
        self.shared.lock().superseded
    }

    /// The queue's counters, for an owner that must not hold a sender (one would keep the
    /// receiver from ending).
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            shared: self.shared.clone(),
        }
    }
}

/// A read-only view of a market queue's counters; does not count as a sender.
#[derive(Debug, Clone)]
pub struct QueueStats {
    shared: Arc<Shared>,
}

impl QueueStats {
    /// See [`MarketSender::superseded_count`].
    pub fn superseded_count(&self) -> u64 {
        self.shared.lock().superseded
    }
}

/// The engine's end.
#[derive(Debug)]
pub struct MarketReceiver {
    shared: Arc<Shared>,
}

impl Drop for MarketReceiver {
    fn drop(&mut self) {
        self.shared.lock().receiver_alive = false;
        self.shared.room.notify_waiters();
    }
}

impl MarketReceiver {
    /// The next event; `None` once every sender is gone and the queue is drained. Cancel-safe
    /// (an event is taken only when this returns it), for the engine's `select!`.
    pub async fn recv(&mut self) -> Option<MarketEvent> {
        loop {
            match self.take() {
                Taken::Event(event) => return Some(event),
                Taken::Ended => return None,
                // A wake-up from a send after the check is kept by `Notify` as a permit.
                Taken::Empty => self.shared.readable.notified().await,
            }
        }
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<MarketEvent> {
        match self.take() {
            Taken::Event(event) => Some(event),
            Taken::Empty | Taken::Ended => None,
        }
    }

    /// Events queued now: first-in-first-out ones and slots.
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&mut self) -> Taken {
        let mut q = self.shared.lock();
        let was_full = q.is_full();
        match q.pop() {
            Some(event) => {
                let room = was_full && !q.is_full();
                drop(q);
                if room {
                    self.shared.room.notify_waiters();
                }
                Taken::Event(event)
            }
            None if q.senders == 0 => Taken::Ended,
            None => Taken::Empty,
        }
    }
}

enum Taken {
    Event(MarketEvent),
    Empty,
    Ended,
}

#[cfg(test)]
mod tests;
