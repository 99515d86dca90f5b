//! Webhook alerts: what an alert is, the bounded queue it waits in, and its delivery.
//!
//! Owns: the alert's wire form (a JSON POST `{"time","mode","kind","severity","message",…}` to
//! `ALERT_WEBHOOK_URL`), the queue between whoever raises an alert (the engine's executor, the
//! control API) and the one delivery task, and the delivery itself: one alert at a time, in
//! order, each tried up to [`Retry::attempts`] times with a doubling backoff. Every outcome
//! (sent, failed after its attempts, dropped from a full queue) is reported to a callback that
//! the executor turns into an engine input, so the engine journals it (`alerts` table).
//!
//! Must not: block or slow whoever raises an alert (a full queue drops its oldest alert, counted
//! and logged, never waits), decide when to alert (the engine's `machine::alerts` does), or show
//! a webhook URL's secrets: the URL's path, query and user information are never logged or
//! reported; [`Webhook`] displays as `scheme://host[:port]` only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::Mode;

/// Alerts waiting for delivery at most; past it the oldest is dropped.
pub const QUEUE_CAPACITY: usize = 256;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// An order of the account traded.
    Fill,
    /// Trading went to HALTED (the kill switch, by hand or automatically).
    Halted,
    /// Trading went to REDUCING (daily loss, drawdown, …).
    Reducing,
    /// Trading was re-armed (ACTIVE again).
    Rearmed,
    /// The kill switch's cancel sweep finished (or gave up).
    Kill,
    /// Today's loss passed a share (50 %, 80 %) of the daily-loss limit.
    DailyLoss,
    /// The exchange's streams have been unreachable for a while.
    Unreachable,
    /// They are reachable again.
    Reconnected,
    /// Repeated authentication failures on the control API.
    AuthFailures,
    /// A price alert set on the screen fired (a symbol's last price crossed it).
    Price,
    /// A position's protective OCO ended on the exchange without a fill (a leg expired by
    /// self-trade prevention, the list cancelled outside crbot): the position is unprotected.
    ProtectionLost,
}

impl AlertKind {
    /// The `kind` field: `FILL`, `HALTED`, `REDUCING`, …
    pub fn code(self) -> &'static str {
        match self {
            AlertKind::Fill => "FILL",
            AlertKind::Halted => "HALTED",
            AlertKind::Reducing => "REDUCING",
            AlertKind::Rearmed => "REARMED",
            AlertKind::Kill => "KILL",
            AlertKind::DailyLoss => "DAILY_LOSS",
            AlertKind::Unreachable => "UNREACHABLE",
            AlertKind::Reconnected => "RECONNECTED",
            AlertKind::AuthFailures => "AUTH_FAILURES",
            AlertKind::Price => "PRICE",
            AlertKind::ProtectionLost => "PROTECTION_LOST",
        }
    }
}

/// How urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The `severity` field: `info`, `warning`, `critical`.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert, as decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// When it happened (ms since the epoch).
    pub time_ms: i64,
    pub kind: AlertKind,
    pub severity: Severity,
    /// One line for a person.
    pub message: String,
    /// The symbol it is about, if any.
    pub symbol: Option<String>,
}

impl Alert {
    pub fn new(time_ms: i64, kind: AlertKind, severity: Severity, message: impl Into<String>) -> Alert {
        Alert {
            time_ms,
            kind,
            severity,
            message: message.into(),
            symbol: None,
        }
    }

    /// The JSON body posted to the webhook.
    pub fn body(&self, mode: Mode) -> serde_json::Value {
        let time = chrono::DateTime::from_timestamp_millis(self.time_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let mut body = serde_json::json!({
            "time": time,
            "time_ms": self.time_ms,
            "mode": mode.to_string(),
            "kind": self.kind.code(),
            "severity": self.severity.code(),
            "message": self.message,
        });
        if let (Some(s), Some(map)) = (&self.symbol, body.as_object_mut()) {
            map.insert("symbol".into(), serde_json::Value::String(s.clone()));
        }
        body
    }
}

/// A webhook's URL, checked. Shown (`Display`, `Debug`) as `scheme://host[:port]` only: the
/// path of many webhook services is itself the secret, and a query or a password may be.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    url: url::Url,
}

impl Webhook {
    /// Parses `text` as an `http(s)://` URL with a host; `https_only` refuses `http://`.
    /// Errors never quote the URL.
    pub fn parse(text: &str, https_only: bool) -> Result<Webhook, String> {
        let url = url::Url::parse(text.trim()).map_err(|_| "is not a URL".to_string())?;
        match url.scheme() {
            "https" => {}
            "http" if !https_only => {}
            "http" => return Err("must be https:// (alerts cross the network in clear otherwise)".into()),
            _ => return Err("must be an http(s):// URL".into()),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        Ok(Webhook { url })
    }

    /// The full URL, for the request only.
    fn url(&self) -> &url::Url {
        &self.url
    }
}

impl std::fmt::Display for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(p) => write!(f, "{}://{host}:{p}", self.url.scheme()),
            None => write!(f, "{}://{host}", self.url.scheme()),
        }
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({self})")
    }
}

/// How a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries per alert, the first included.
    pub attempts: u32,
    /// The wait after the first failure; doubled after each next one, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// One request's limit.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// How an alert's delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Sent,
    /// Every attempt failed.
    Failed,
    /// Dropped from a full queue before it was tried.
    Dropped,
}

impl Status {
    /// The journal's `status` column: `SENT`, `FAILED`, `DROPPED`.
    pub fn code(self) -> &'static str {
        match self {
            Status::Sent => "SENT",
            Status::Failed => "FAILED",
            Status::Dropped => "DROPPED",
        }
    }
}

/// An alert's delivery outcome, for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub alert: Alert,
    pub status: Status,
    pub attempts: u32,
    /// The last attempt's error (never the URL).
    pub last_error: Option<String>,
}

/// The queue between whoever raises alerts and the delivery task. Cheap to clone; pushing
/// never waits.
#[derive(Debug, Clone)]
pub struct AlertQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    items: Mutex<Pending>,
    notify: Notify,
    dropped_total: AtomicU64,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Pending {
    alerts: VecDeque<Alert>,
    /// Dropped alerts not reported yet (their outcome is journaled too).
    dropped: Vec<Alert>,
}

impl AlertQueue {
    pub fn new(capacity: usize) -> AlertQueue {
        AlertQueue {
            inner: Arc::new(Inner {
                items: Mutex::new(Pending::default()),
                notify: Notify::new(),
                dropped_total: AtomicU64::new(0),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Queues `alert`; when full, the oldest waiting alert is dropped (counted and logged).
    pub fn push(&self, alert: Alert) {
        {
            let mut pending = self.lock();
            if pending.alerts.len() >= self.inner.capacity
                && let Some(old) = pending.alerts.pop_front()
            {
                let total = self.inner.dropped_total.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    kind = old.kind.code(),
                    dropped_total = total,
                    "alert queue full: dropped the oldest alert"
                );
                if pending.dropped.len() < self.inner.capacity {
                    pending.dropped.push(old);
                }
            }
            pending.alerts.push_back(alert);
        }
        self.inner.notify.notify_one();
    }

    /// Alerts dropped since this queue was made.
    pub fn dropped_total(&self) -> u64 {
        self.inner.dropped_total.load(Ordering::Relaxed)
    }

    /// Alerts waiting.
    pub fn len(&self) -> usize {
        self.lock().alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave it half-changed: recover the data.
        self.inner
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next alert, waiting for one; dropped alerts come out first, as outcomes.
    async fn next(&self) -> Next {
        loop {
            if let Some(n) = self.try_next() {
                return n;
            }
            self.inner.notify.notified().await;
        }
    }

    /// The next alert if one is queued now.
    fn try_next(&self) -> Option<Next> {
        let mut pending = self.lock();
        if !pending.dropped.is_empty() {
            return Some(Next::Dropped(std::mem::take(&mut pending.dropped)));
        }
        pending.alerts.pop_front().map(Next::Send)
    }
}

enum Next {
    Send(Alert),
    Dropped(Vec<Alert>),
}

/// How long a stopping engine gives the alerts still queued (and the one being sent) to be
/// delivered before it gives up on them, saying how many.
pub const FLUSH_WAIT: Duration = Duration::from_secs(3);

/// Delivers the queue's alerts to `webhook` until `cancel` fires, reporting each outcome to
/// `report`. One at a time, in order; a failed attempt waits its backoff. Once `cancel`
/// fires, what is queued is still delivered for at most [`FLUSH_WAIT`]; returns how many
/// alerts were not delivered by then (logged too).
pub async fn deliver(
    queue: AlertQueue,
    webhook: Webhook,
    mode: Mode,
    retry: Retry,
    cancel: CancellationToken,
    mut report: impl FnMut(Delivery) + Send,
) -> usize {
    // No redirects: a webhook that moved answers 3xx, which is a failed attempt, rather than
    // the alert (and the URL's secret) following it somewhere else, perhaps in clear.
    let client = match reqwest::Client::builder()
        .timeout(retry.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "alerts: no HTTP client; alerts are not delivered");
            return queue.len();
        }
    };
    tracing::info!(%webhook, "alerts: delivering to the webhook");
    // The flush's end: FLUSH_WAIT after the stop.
    let deadline = CancellationToken::new();
    let timer = {
        let (stop, deadline) = (cancel.clone(), deadline.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            tokio::time::sleep(FLUSH_WAIT).await;
            deadline.cancel();
        })
    };
    let mut lost = 0;
    loop {
        let next = if cancel.is_cancelled() {
            // Stopping: what is queued now, then no more.
            match queue.try_next() {
                Some(n) => n,
                None => break,
            }
        } else {
            tokio::select! {
                _ = cancel.cancelled() => continue,
                n = queue.next() => n,
            }
        };
        let alert = match next {
            Next::Dropped(list) => {
                for alert in list {
                    report(Delivery {
                        alert,
                        status: Status::Dropped,
                        attempts: 0,
                        last_error: Some("queue full".into()),
                    });
                }
                continue;
            }
            Next::Send(a) => a,
        };
        let Some(delivery) = send_with_retries(&client, &webhook, mode, retry, &deadline, alert).await else {
            lost = 1;
            break;
        };
        if delivery.status == Status::Failed {
            tracing::warn!(
                kind = delivery.alert.kind.code(),
                attempts = delivery.attempts,
                error = delivery.last_error.as_deref().unwrap_or(""),
                "alerts: delivery failed"
            );
        }
        report(delivery);
    }
    timer.abort();
    let left = queue.len() + lost;
    if left > 0 {
        tracing::warn!(left, "alerts: stopping with alerts not delivered");
    }
    left
}

/// One alert, tried until sent or out of attempts. `None` when `cancel` (the flush's end)
/// fires meanwhile.
async fn send_with_retries(
    client: &reqwest::Client,
    webhook: &Webhook,
    mode: Mode,
    retry: Retry,
    cancel: &CancellationToken,
    alert: Alert,
) -> Option<Delivery> {
    let body = alert.body(mode);
    let mut backoff = retry.first_backoff;
    let mut last_error = None;
    let attempts = retry.attempts.max(1);
    for attempt in 1..=attempts {
        let posted = tokio::select! {
            _ = cancel.cancelled() => return None,
            r = post(client, webhook, &body) => r,
        };
        match posted {
            Ok(()) => {
                return Some(Delivery {
                    alert,
                    status: Status::Sent,
                    attempts: attempt,
                    last_error,
                });
            }
            Err(e) => last_error = Some(e),
        }
        if attempt < attempts {
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(retry.max_backoff);
        }
    }
    Some(Delivery {
        alert,
        status: Status::Failed,
        attempts,
        last_error,
    })
}

/// One POST; any 2xx is delivered. The error never carries the URL.
async fn post(client: &reqwest::Client, webhook: &Webhook, body: &serde_json::Value) -> Result<(), String> {
    let response = client
        .post(webhook.url().clone())
        .json(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_shows_only_its_scheme_host_and_port() {
        let w = Webhook::parse(
            "https://user:pw@hooks.example.com:8443/services/T0/SECRET?token=abc",
            true,
        )
        .expect("valid");
        assert_eq!(w.to_string(), "https://hooks.example.com:8443");
        let debug = format!("{w:?}");
        for secret in ["pw", "SECRET", "abc", "user"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn https_only_refuses_http_and_every_url_needs_a_web_scheme_and_host() {
        assert!(Webhook::parse("http://127.0.0.1:9/x", false).is_ok());
        let err = Webhook::parse("http://hooks.example.com/x?token=abc", true).expect_err("refused");
        assert!(err.contains("https://") && !err.contains("abc"), "{err}");
        assert!(Webhook::parse("ftp://hooks.example.com/", false).is_err());
        assert!(Webhook::parse("not a url", false).is_err());
    }

    #[test]
    fn a_full_queue_drops_its_oldest_alert_counts_it_and_keeps_the_newest() {
        let q = AlertQueue::new(2);
        for i in 0..3 {
            q.push(Alert::new(
                i,
                AlertKind::Fill,
                Severity::Info,
                format!("fill {i}"),
            ));
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped_total(), 1);
        let pending = q.lock();
        assert_eq!(pending.dropped.len(), 1);
        assert_eq!(pending.dropped[0].message, "fill 0");
        let kept: Vec<&str> = pending.alerts.iter().map(|a| a.message.as_str()).collect();
        assert_eq!(kept, ["fill 1", "fill 2"]);
    }

    #[test]
    fn the_body_has_the_documented_fields() {
        let mut a = Alert::new(
            1_772_445_600_000,
            AlertKind::Halted,
            Severity::Critical,
            "halted: x",
        );
        a.symbol = Some("BTCUSDT".into());
        let body = a.body(Mode::Sim);
        assert_eq!(body["time"], "2026-03-02T10:00:00.000Z");
        assert_eq!(body["mode"], "sim");
        assert_eq!(body["kind"], "HALTED");
        assert_eq!(body["severity"], "critical");
        assert_eq!(body["message"], "halted: x");
        assert_eq!(body["symbol"], "BTCUSDT");
    }
}
