//! The `alerts` table: each webhook alert and how its delivery ended.
//!
//! Owns: writing and reading that table. Must not: hold a webhook's URL (the delivery's error
//! text never carries it).

use super::value::values;
use super::{Journal, Result, Stored};

/// One alert's delivery outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// When the alert was raised.
    pub time_ms: i64,
    /// `FILL`, `HALTED`, `REDUCING`, `KILL`, `DAILY_LOSS`, … (text, so that a journal holding a
    /// code this version does not know still reads).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub message: String,
    /// `SENT`, `FAILED` or `DROPPED`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the outcome was known.
    pub done_ms: i64,
}

impl Journal {
    /// Records one alert's outcome.
    pub fn record_alert(&self, rec: &AlertRecord) -> Result<i64> {
        self.store.insert_id(
            "INSERT INTO alerts (time_ms, kind, severity, message, status, attempts, last_error, done_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            values![
                rec.time_ms,
                &rec.kind,
                &rec.severity,
                &rec.message,
                &rec.status,
                rec.attempts,
                rec.last_error.as_deref(),
                rec.done_ms
            ],
        )
    }

    /// The newest `limit` alerts' outcomes, newest first.
    pub fn recent_alerts(&self, limit: usize) -> Result<Vec<Stored<AlertRecord>>> {
        let rows = self.store.query(
            "SELECT id, time_ms, kind, severity, message, status, attempts, last_error, done_ms \
             FROM alerts ORDER BY id DESC LIMIT ?1",
            values![i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Stored {
                    id: r.get(0)?,
                    record: AlertRecord {
                        time_ms: r.get(1)?,
                        kind: r.get(2)?,
                        severity: r.get(3)?,
                        message: r.get(4)?,
                        status: r.get(5)?,
                        attempts: r.get(6)?,
                        last_error: r.get(7)?,
                        done_ms: r.get(8)?,
                    },
                })
            })
            .collect()
    }
}
