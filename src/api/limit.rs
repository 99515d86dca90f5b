//! The API's rate limit: at most `RATE_LIMIT_REQUESTS` requests per `RATE_LIMIT_WINDOW_SECS`
//! per client address, counted before authentication so that it also slows token guessing.
//!
//! Owns: the per-address windows and the 429 with `Retry-After`. Must not: look at the token
//! or the route (every request counts the same), or grow without bound (expired windows are
//! dropped when many addresses have been seen).
//!
//! Each address gets a fixed window that starts at its first request: the limit means exactly
//! "N requests per window", whatever the spacing of the requests. (A smoothed limiter, such as
//! GCRA, refills one request every window/N and so lets a slow burst of N + 1 through.)

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Beyond this many addresses, expired windows are swept on the next request.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// Requests per window per client address.
#[derive(Debug)]
pub struct RateLimiter {
    requests: u32,
    window: Duration,
    // A plain mutex: held for one map lookup, never across an await.
    clients: Mutex<HashMap<IpAddr, Window>>,
}

impl RateLimiter {
    pub fn new(requests: u32, window: Duration) -> Self {
        Self {
            requests,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `ip` at `now`: `Err(wait)` when it is over the limit, with the
    /// time until its window ends.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut clients = match self.clients.lock() {
            Ok(g) => g,
            // A panic elsewhere while holding the lock left counts that are still counts.
            Err(poisoned) => poisoned.into_inner(),
        };
        if clients.len() > SWEEP_ABOVE {
            let window = self.window;
            clients.retain(|_, w| now.saturating_duration_since(w.started) < window);
        }
        let w = clients.entry(ip).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.saturating_duration_since(w.started) >= self.window {
            *w = Window {
                started: now,
                count: 0,
            };
        }
        if w.count >= self.requests {
            return Err(self
                .window
                .saturating_sub(now.saturating_duration_since(w.started)));
        }
        w.count += 1;
        Ok(())
    }
}

/// The middleware: a request over the limit gets 429 with `Retry-After` (whole seconds,
/// rounded up, at least 1) and goes no further.
pub async fn enforce(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    // Served without the peer's address (tests through `oneshot`), every request is one client.
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match limiter.check(ip, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("too many requests: retry in {} s", secs.max(1)),
            );
            e.retry_after_secs = Some(secs.max(1));
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn the_request_after_the_limit_waits_for_the_end_of_its_window() {
        let l = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check(A, t0 + Duration::from_secs(i)).is_ok());
        }
        assert_eq!(
            l.check(A, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(l.check(A, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn addresses_are_counted_apart() {
        let l = RateLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.check(A, t0).is_ok());
        assert!(l.check(A, t0).is_err());
        assert!(l.check(B, t0).is_ok());
    }

    #[test]
    fn requests_spread_over_the_window_still_count() {
        let l = RateLimiter::new(100, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(l.check(A, t0 + Duration::from_millis(500 * i)).is_ok());
        }
        assert!(l.check(A, t0 + Duration::from_millis(50_500)).is_err());
    }
}
