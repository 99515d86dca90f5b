//! Finding the account's engine, and talking to it over its unix socket.
//!
//! One engine per account (README "One engine per account"): a command first tries to take
//! the account's lock. Free: the command is a short-lived engine of its own and holds the lock
//! until it exits. Held by an engine that answers on `<data>/engine-<mode>.sock`: the command
//! goes through it (HTTP/1.1 over the socket; no token, the socket is 0600). Held but nothing
//! answers (another command running alone, or an engine still starting): the command waits at
//! most [`ENGINE_WAIT`], saying so once on stderr, then fails with exit 1.
//!
//! Owns: that choice and the socket client. Must not: decide anything about an order (the
//! engine does), or retry a request that changes state (an order is never sent twice).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use hyper::body::Bytes;
use serde_json::Value;

use crate::domain::Mode;
use crate::engine::lock::{self, EngineLock, LockError};

/// How long a command waits for the account while another command holds it (or an engine is
/// still starting and not yet answering on its socket).
pub const ENGINE_WAIT: Duration = Duration::from_secs(30);
/// How long a look at the socket may take before the engine counts as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a command runs.
#[derive(Debug)]
pub enum Route {
    /// An engine runs for the account: go through it.
    Engine(Remote),
    /// No engine: this command is the account's short-lived engine while it holds the lock.
    /// `None` when the lock file cannot even be opened (a data folder this user may only
    /// read): no engine can run there for this user either, and the command goes on as before
    /// (the journal itself refuses what cannot be written).
    Alone(Option<EngineLock>),
}

/// The running engine's control API on its unix socket.
#[derive(Debug, Clone)]
pub struct Remote {
    path: PathBuf,
}

/// Finds the account's engine or takes the lock, waiting at most `wait` ([`ENGINE_WAIT`]);
/// `Err` is the line to print.
pub async fn route_within(data: &Path, mode: Mode, wait: Duration) -> Result<Route, String> {
    let remote = Remote {
        path: lock::socket_path(data, mode),
    };
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let holder = match EngineLock::try_acquire(data, mode) {
            Ok(lock) => return Ok(Route::Alone(Some(lock))),
            Err(LockError::Held { holder, .. }) => holder,
            Err(e @ LockError::Io { .. }) => {
                if remote.answers().await {
                    return Ok(Route::Engine(remote));
                }
                tracing::warn!("{e}; going on without the account's lock");
                return Ok(Route::Alone(None));
            }
        };
        if remote.answers().await {
            return Ok(Route::Engine(remote));
        }
        let pid = holder.as_deref().unwrap_or("unknown").to_string();
        if Instant::now() >= deadline {
            return Err(format!(
                "the {mode} account is still busy after {} s (pid {pid} holds it and no engine answers on {}); try again when it is done",
                wait.as_secs(),
                remote.path.display()
            ));
        }
        if !told {
            eprintln!(
                "crbot: waiting for another crbot process (pid {pid}) to finish with the {mode} account (at most {} s)",
                wait.as_secs()
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The running engine if one answers on the socket now (no waiting for the lock).
pub async fn engine_now(data: &Path, mode: Mode) -> Option<Remote> {
    let remote = Remote {
        path: lock::socket_path(data, mode),
    };
    remote.answers().await.then_some(remote)
}

impl Remote {
    /// The engine's socket at `path` (see [`lock::socket_path`]).
    pub fn at(path: PathBuf) -> Remote {
        Remote { path }
    }

    /// Whether the engine answers `GET /api/health` within [`PROBE_TIMEOUT`].
    pub async fn answers(&self) -> bool {
        if !self.path.exists() {
            return false;
        }
        matches!(
            self.call("GET", "/api/health", None, PROBE_TIMEOUT).await,
            Ok((200, _))
        )
    }

    /// One request; the status and the JSON body (`null` when there is none). A transport
    /// failure or `timeout` is `Err` with a line for the user.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), String> {
        tokio::time::timeout(timeout, self.exchange(method, path, body))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the engine did not answer {method} {path} within {} s",
                    timeout.as_secs()
                ))
            })
    }

    async fn exchange(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let shown = self.path.display();
        let stream = tokio::net::UnixStream::connect(&self.path)
            .await
            .map_err(|e| format!("cannot reach the engine on {shown}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("the engine on {shown}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "localhost");
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(http_body_util::Full::new(Bytes::from(bytes)))
            .map_err(|e| format!("bad request to the engine: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("the engine on {shown}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the engine on {shown}: {e}"))?
            .to_bytes();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| format!("the engine's answer is not JSON: {e}"))?
        };
        Ok((status, value))
    }
}

/// The `message` of an API error document, or the status.
pub fn error_line(status: u16, doc: &Value) -> String {
    match doc["message"].as_str() {
        Some(m) => m.to_string(),
        None => format!("the engine answered HTTP {status}"),
    }
}
