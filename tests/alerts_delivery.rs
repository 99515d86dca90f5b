//! The alert delivery task against a local webhook: retried with backoff until a 2xx, given
//! up after its attempts with the last error (never the URL's secret), a full queue's oldest
//! alert reported as dropped, and delivery in order. Short backoffs; nothing timed is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use crbot::alerts::{self, Alert, AlertKind, AlertQueue, Delivery, Retry, Severity, Status, Webhook};
use crbot::domain::Mode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A webhook that answers 503 to the first `failures` requests, then 200; returns its URL and
/// the bodies it accepted.
async fn hook(failures: u32) -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let _ = tx.send(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook?token=s3cret"), rx)
}

fn fast(attempts: u32) -> Retry {
    Retry {
        attempts,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        timeout: Duration::from_secs(5),
    }
}

fn alert(n: i64) -> Alert {
    Alert::new(n, AlertKind::Fill, Severity::Info, format!("fill {n}"))
}

/// Starts delivery of `queue` to `url`; outcomes come out of the returned channel.
fn deliver(
    queue: &AlertQueue,
    url: &str,
    retry: Retry,
) -> (mpsc::UnboundedReceiver<Delivery>, CancellationToken) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let webhook = Webhook::parse(url, false).unwrap();
    tokio::spawn(alerts::deliver(
        queue.clone(),
        webhook,
        Mode::Sim,
        retry,
        cancel.clone(),
        move |d| {
            let _ = tx.send(d);
        },
    ));
    (rx, cancel)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("an outcome")
        .expect("the task runs")
}

#[tokio::test]
async fn a_refused_delivery_is_retried_until_the_webhook_takes_it() {
    let (url, mut bodies) = hook(2).await;
    let queue = AlertQueue::new(8);
    let (mut outcomes, cancel) = deliver(&queue, &url, fast(5));
    queue.push(alert(1));
    let d = next(&mut outcomes).await;
    assert_eq!(d.status, Status::Sent);
    assert_eq!(d.attempts, 3, "two 503s, then 200");
    assert_eq!(
        d.last_error.as_deref(),
        Some("HTTP 503"),
        "the last failure is kept"
    );
    let body = bodies.recv().await.unwrap();
    assert_eq!(body["kind"], "FILL");
    assert_eq!(body["message"], "fill 1");
    cancel.cancel();
}

#[tokio::test]
async fn a_webhook_that_never_takes_it_fails_after_the_attempts_without_the_url_in_the_error() {
    let (url, _bodies) = hook(u32::MAX).await;
    let queue = AlertQueue::new(8);
    let (mut outcomes, cancel) = deliver(&queue, &url, fast(3));
    queue.push(alert(1));
    queue.push(alert(2));
    let first = next(&mut outcomes).await;
    assert_eq!((first.status, first.attempts), (Status::Failed, 3));
    assert_eq!(first.alert.message, "fill 1", "in order");
    assert_eq!(first.last_error.as_deref(), Some("HTTP 503"));
    let second = next(&mut outcomes).await;
    assert_eq!(second.alert.message, "fill 2");

    // Nobody listening at all: a connection error, which must not quote the URL's token.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let queue = AlertQueue::new(8);
    let (mut outcomes, cancel2) = deliver(&queue, &format!("http://{closed}/x?token=s3cret"), fast(2));
    queue.push(alert(3));
    let d = next(&mut outcomes).await;
    assert_eq!((d.status, d.attempts), (Status::Failed, 2));
    let error = d.last_error.unwrap();
    assert!(!error.contains("s3cret") && !error.contains("token"), "{error}");
    cancel.cancel();
    cancel2.cancel();
}

#[tokio::test]
async fn a_full_queue_reports_its_dropped_alert_then_delivers_the_rest_in_order() {
    let (url, mut bodies) = hook(0).await;
    let queue = AlertQueue::new(2);
    // Filled before the task starts: the oldest of three goes.
    for n in 1..=3 {
        queue.push(alert(n));
    }
    assert_eq!(queue.dropped_total(), 1);
    let (mut outcomes, cancel) = deliver(&queue, &url, fast(2));
    let dropped = next(&mut outcomes).await;
    assert_eq!((dropped.status, dropped.attempts), (Status::Dropped, 0));
    assert_eq!(dropped.alert.message, "fill 1");
    for n in [2, 3] {
        let d = next(&mut outcomes).await;
        assert_eq!(
            (d.status, d.alert.message.as_str()),
            (Status::Sent, format!("fill {n}").as_str())
        );
        assert_eq!(bodies.recv().await.unwrap()["message"], format!("fill {n}"));
    }
    cancel.cancel();
}

#[tokio::test]
async fn a_redirect_is_not_followed_it_is_a_failed_attempt() {
    let (target, mut bodies) = hook(0).await;
    let app = axum::Router::new().route(
        "/moved",
        axum::routing::post(move || {
            let target = target.clone();
            async move { axum::response::Redirect::temporary(&target) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let queue = AlertQueue::new(8);
    let (mut outcomes, cancel) = deliver(&queue, &format!("http://{addr}/moved"), fast(2));
    queue.push(alert(1));
    let d = next(&mut outcomes).await;
    assert_eq!((d.status, d.attempts), (Status::Failed, 2));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 307"));
    assert!(bodies.try_recv().is_err(), "the redirect's target got nothing");
    cancel.cancel();
}
