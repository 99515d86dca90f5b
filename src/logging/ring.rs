//! The in-memory ring of recent log lines that feeds the screen's log pane.
//!
//! Owns: a bounded queue of [`LogLine`]s and the `tracing` layer that fills it. Must not: grow
//! without bound, block a logging thread for longer than a push, or format a field other than
//! through its own `Debug`/`Display` (so secret types stay `***`).

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One log line as the log pane shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    pub level: Level,
    pub target: String,
    /// The message followed by the other fields as ` key=value`.
    pub message: String,
}

/// A cloneable handle on the ring; every clone sees the same lines.
#[derive(Debug, Clone)]
pub struct LogRing {
    inner: Arc<Mutex<VecDeque<LogLine>>>,
    capacity: usize,
}

impl LogRing {
    /// A ring keeping the last `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a line, dropping the oldest when full.
    pub fn push(&self, line: LogLine) {
        // A panic while holding the lock cannot leave the queue inconsistent: keep going.
        let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// The last `n` lines, oldest first.
    pub fn recent(&self, n: usize) -> Vec<LogLine> {
        let q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = q.len().saturating_sub(n);
        q.iter().skip(skip).cloned().collect()
    }

    /// The `tracing` layer that records every event into this ring.
    pub fn layer(&self) -> RingLayer {
        RingLayer { ring: self.clone() }
    }
}

/// A `tracing_subscriber` layer writing into a [`LogRing`].
#[derive(Debug, Clone)]
pub struct RingLayer {
    ring: LogRing,
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        let mut message = visitor.message;
        if !visitor.fields.is_empty() {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(&visitor.fields);
        }
        self.ring.push(LogLine {
            time_ms: chrono::Utc::now().timestamp_millis(),
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            // The pane shows what the file shows: URLs without passwords or query values.
            message: crate::config::redact_urls(&message),
        });
    }
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl LineVisitor {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() == "message" {
            let _ = self.message.write_fmt(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={}", field.name(), value);
        }
    }
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn line(i: i64) -> LogLine {
        LogLine {
            time_ms: i,
            level: Level::INFO,
            target: "t".into(),
            message: format!("line {i}"),
        }
    }

    #[test]
    fn keeps_only_the_last_capacity_lines_oldest_first() {
        let ring = LogRing::new(3);
        for i in 0..5 {
            ring.push(line(i));
        }
        let got: Vec<i64> = ring.recent(10).iter().map(|l| l.time_ms).collect();
        assert_eq!(got, [2, 3, 4]);
        let last_two: Vec<i64> = ring.recent(2).iter().map(|l| l.time_ms).collect();
        assert_eq!(last_two, [3, 4]);
        assert!(ring.recent(0).is_empty());
    }

    #[test]
    fn clones_share_the_same_lines() {
        let ring = LogRing::new(4);
        let other = ring.clone();
        other.push(line(1));
        assert_eq!(ring.recent(1), vec![line(1)]);
    }

    #[test]
    fn the_layer_records_level_target_message_and_fields() {
        let ring = LogRing::new(10);
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "crbot::engine", symbol = "BTCUSDT", qty = 3, "order rejected");
            tracing::error!("plain");
        });
        let lines = ring.recent(10);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].level, Level::WARN);
        assert_eq!(lines[0].target, "crbot::engine");
        assert_eq!(lines[0].message, "order rejected symbol=BTCUSDT qty=3");
        assert_eq!(lines[1].message, "plain");
    }
}
