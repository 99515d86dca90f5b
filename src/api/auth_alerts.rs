//! Repeated authentication failures on the control API become an alert: [`FAILURES`] refused
//! tokens (401) from one address within [`WINDOW`] raise one `AUTH_FAILURES` alert for that
//! address, and no second one until the window has passed.
//!
//! Owns: the per-address count of refused tokens. Must not: slow or change a response (it only
//! looks at the status), or put a token in the alert (it names the address and the count).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::alerts::{Alert, AlertKind, AlertQueue, Severity};

/// Refused tokens from one address that make an alert…
pub const FAILURES: u32 = 5;
/// …within this long.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts refused tokens per address and raises the alert.
#[derive(Debug)]
pub struct AuthWatch {
    queue: AlertQueue,
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    started: Instant,
    count: u32,
    alerted: bool,
}

impl AuthWatch {
    pub fn new(queue: AlertQueue) -> AuthWatch {
        AuthWatch {
            queue,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// One refused token from `ip` at `now`; `true` when it raised the alert.
    pub fn refused(&self, ip: IpAddr, now: Instant, now_ms: i64) -> bool {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded memory under a spray from many addresses: forget finished windows.
        if clients.len() > 10_000 {
            clients.retain(|_, f| now.saturating_duration_since(f.started) < WINDOW);
        }
        let f = clients.entry(ip).or_insert(Failures {
            started: now,
            count: 0,
            alerted: false,
        });
        if now.saturating_duration_since(f.started) >= WINDOW {
            *f = Failures {
                started: now,
                count: 0,
                alerted: false,
            };
        }
        f.count += 1;
        if f.count < FAILURES || f.alerted {
            return false;
        }
        f.alerted = true;
        let text = format!(
            "control API: {} refused tokens from {ip} within {} s",
            f.count,
            WINDOW.as_secs()
        );
        tracing::warn!(%ip, count = f.count, "control API: repeated authentication failures");
        self.queue.push(Alert::new(
            now_ms,
            AlertKind::AuthFailures,
            Severity::Critical,
            text,
        ));
        true
    }
}

/// `app` with every 401 counted for the alert.
pub fn layer(app: Router, queue: AlertQueue) -> Router {
    let watch = Arc::new(AuthWatch::new(queue));
    app.layer(axum::middleware::from_fn_with_state(watch, observe))
}

async fn observe(State(watch): State<Arc<AuthWatch>>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let response = next.run(req).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        watch.refused(ip, Instant::now(), chrono::Utc::now().timestamp_millis());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn five_refusals_from_one_address_within_a_minute_alert_once() {
        let q = AlertQueue::new(16);
        let w = AuthWatch::new(q.clone());
        let t = Instant::now();
        for i in 0..4 {
            assert!(!w.refused(A, t + Duration::from_secs(i), 0));
            assert!(!w.refused(B, t + Duration::from_secs(i), 0));
        }
        assert!(
            w.refused(A, t + Duration::from_secs(10), 0),
            "the fifth raises it"
        );
        assert!(
            !w.refused(A, t + Duration::from_secs(11), 0),
            "only once per window"
        );
        assert_eq!(q.len(), 1);
        // A new window counts afresh.
        let later = t + WINDOW + Duration::from_secs(1);
        for i in 0..4 {
            assert!(!w.refused(A, later + Duration::from_secs(i), 0));
        }
        assert!(w.refused(A, later + Duration::from_secs(5), 0));
    }

    #[test]
    fn refusals_spread_over_more_than_a_minute_do_not_alert() {
        let q = AlertQueue::new(16);
        let w = AuthWatch::new(q.clone());
        let t = Instant::now();
        for i in 0..10 {
            assert!(!w.refused(A, t + Duration::from_secs(i * 20), 0));
        }
        assert!(q.is_empty());
    }
}
