//! A HashiCorp Vault double: the parts of Vault's HTTP API that crbot uses, written from
//! HashiCorp's API documentation (no Vault server can be installed here).
//!
//! - KV version 2 (`/v1/{mount}/data/{path}`): `GET` reads the current version as
//!   `{"data": {"data": {...}, "metadata": {created_time, custom_metadata, deletion_time,
//!   destroyed, version}}}`; `POST {"data": {...}}` writes a new version and answers its
//!   metadata; `DELETE` soft-deletes the current version, which then reads as 404 with the
//!   metadata and `"data": null`. A path never written is 404 with `{"errors": []}`.
//! - Tokens travel in `X-Vault-Token`. A missing or unknown token, or one whose policy lacks
//!   the capability on `{mount}/data/{path}`, is 403 with
//!   `{"errors": ["1 error occurred:\n\t* permission denied\n\n"]}`.
//! - AppRole (`POST /v1/auth/approle/login` with `role_id`, `secret_id`) answers
//!   `{"auth": {"client_token", "accessor", "policies", "token_policies", "lease_duration",
//!   "renewable"}}`, or 400 `{"errors": ["invalid role or secret ID"]}`.
//! - A sealed Vault answers 503 `{"errors": ["Vault is sealed"]}`.
//!
//! Owns: that imitation and what it saw (each request's method, path and whether it carried a
//! token). Must not: be mistaken for Vault: the README says this backend is tested against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};

/// A token's grants: path prefixes (under the mount, e.g. `secret/data/crbot/`) it may read.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub read: Vec<String>,
    pub write: Vec<String>,
}

#[derive(Debug, Clone)]
struct Version {
    data: Value,
    created: String,
    deleted: Option<String>,
}

/// What one request looked like (never the token itself).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub had_token: bool,
}

#[derive(Debug, Default)]
struct Inner {
    mounts: Vec<String>,
    tokens: HashMap<String, Policy>,
    approles: HashMap<String, (String, Policy)>,
    kv: HashMap<String, Vec<Version>>,
    sealed: bool,
    seen: Vec<Seen>,
    issued: u64,
}

/// The double, served on `127.0.0.1:0` for as long as it lives.
#[derive(Debug)]
pub struct KvDouble {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KvDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

impl KvDouble {
    /// Serves the double on the current Tokio runtime with a KV v2 engine at each of `mounts`.
    pub async fn start(mounts: &[&str]) -> KvDouble {
        let inner = Arc::new(Mutex::new(Inner {
            mounts: mounts.iter().map(|m| m.to_string()).collect(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/auth/approle/login", post(login))
            .route("/v1/{*rest}", any(kv))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        KvDouble { inner, addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token with `policy`.
    pub fn token(&self, token: &str, policy: Policy) {
        self.inner.lock().unwrap().tokens.insert(token.into(), policy);
    }

    /// An AppRole whose logins get tokens with `policy`.
    pub fn approle(&self, role_id: &str, secret_id: &str, policy: Policy) {
        self.inner
            .lock()
            .unwrap()
            .approles
            .insert(role_id.into(), (secret_id.into(), policy));
    }

    /// Writes a new version of `{mount}/{path}` (as `vault kv put` does); returns its number.
    pub fn put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        let versions = inner.kv.entry(format!("{mount}/{path}")).or_default();
        versions.push(Version {
            data,
            created: now(),
            deleted: None,
        });
        versions.len() as u64
    }

    pub fn seal(&self, sealed: bool) {
        self.inner.lock().unwrap().sealed = sealed;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn errors(status: StatusCode, errors: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": errors }))).into_response()
}

fn metadata(v: &Version, number: usize) -> Value {
    json!({
        "created_time": v.created,
        "custom_metadata": null,
        "deletion_time": v.deleted.clone().unwrap_or_default(),
        "destroyed": false,
        "version": number,
    })
}

fn envelope(data: Value) -> Value {
    json!({
        "request_id": "00000000-0000-0000-0000-000000000000",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    })
}

async fn login(State(inner): State<Arc<Mutex<Inner>>>, body: Bytes) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.seen.push(Seen {
        method: "POST".into(),
        path: "auth/approle/login".into(),
        had_token: false,
    });
    if inner.sealed {
        return errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]);
    };
    let role = req["role_id"].as_str().unwrap_or("");
    let secret = req["secret_id"].as_str().unwrap_or("");
    if role.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &["missing role_id"]);
    }
    let Some((want, policy)) = inner.approles.get(role).cloned() else {
        return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
    };
    if want != secret {
        return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
    }
    inner.issued += 1;
    let token = format!("hvs.double-issued-{}", inner.issued);
    inner.tokens.insert(token.clone(), policy);
    let mut doc = envelope(Value::Null);
    doc["auth"] = json!({
        "client_token": token,
        "accessor": format!("accessor-{}", inner.issued),
        "policies": ["default", "crbot"],
        "token_policies": ["default", "crbot"],
        "metadata": {"role_name": "crbot"},
        "lease_duration": 1200,
        "renewable": true,
    });
    (StatusCode::OK, axum::Json(doc)).into_response()
}

async fn kv(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(rest): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let token = headers
        .get("X-Vault-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    inner.seen.push(Seen {
        method: method.to_string(),
        path: rest.clone(),
        had_token: token.is_some(),
    });
    if inner.sealed {
        return errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    let Some(policy) = token.and_then(|t| inner.tokens.get(&t).cloned()) else {
        return errors(StatusCode::FORBIDDEN, &[DENIED]);
    };
    let Some((mount, path)) = inner.mounts.iter().find_map(|m| {
        rest.strip_prefix(&format!("{m}/data/"))
            .map(|p| (m.clone(), p.to_string()))
    }) else {
        let allowed = policy.read.iter().any(|p| rest.starts_with(p.as_str()));
        return if allowed {
            errors(
                StatusCode::NOT_FOUND,
                &[&format!(
                    "no handler for route \"{rest}\". route entry not found."
                )],
            )
        } else {
            errors(StatusCode::FORBIDDEN, &[DENIED])
        };
    };
    let full = format!("{mount}/data/{path}");
    let key = format!("{mount}/{path}");
    let grants = |list: &[String]| list.iter().any(|p| full.starts_with(p.as_str()));
    match method {
        Method::GET => {
            if !grants(&policy.read) {
                return errors(StatusCode::FORBIDDEN, &[DENIED]);
            }
            let Some(versions) = inner.kv.get(&key) else {
                return errors(StatusCode::NOT_FOUND, &[]);
            };
            let number = versions.len();
            let current = versions.last().unwrap();
            if current.deleted.is_some() {
                let doc = envelope(json!({"data": null, "metadata": metadata(current, number)}));
                return (StatusCode::NOT_FOUND, axum::Json(doc)).into_response();
            }
            let doc = envelope(json!({"data": current.data, "metadata": metadata(current, number)}));
            (StatusCode::OK, axum::Json(doc)).into_response()
        }
        Method::POST | Method::PUT => {
            if !grants(&policy.write) {
                return errors(StatusCode::FORBIDDEN, &[DENIED]);
            }
            let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]);
            };
            if !req["data"].is_object() {
                return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
            }
            let versions = inner.kv.entry(key).or_default();
            versions.push(Version {
                data: req["data"].clone(),
                created: now(),
                deleted: None,
            });
            let doc = envelope(metadata(versions.last().unwrap(), versions.len()));
            (StatusCode::OK, axum::Json(doc)).into_response()
        }
        Method::DELETE => {
            if !grants(&policy.write) {
                return errors(StatusCode::FORBIDDEN, &[DENIED]);
            }
            if let Some(v) = inner.kv.get_mut(&key).and_then(|v| v.last_mut()) {
                v.deleted = Some(now());
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}
