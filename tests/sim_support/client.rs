//! A plain HTTP/WebSocket client for the sim's integration tests, written by hand from
//! Binance's docs (not crbot's client): HMAC-SHA256 over the percent-encoded query string.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use crbot::exchange::sim::{self, SimConfig, SimHandle};
use hmac::{KeyInit, Mac};
use serde_json::Value;

pub async fn start(config: SimConfig) -> SimHandle {
    sim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

/// A config whose market does not move by itself (tests move prices with `set_price`).
pub fn still_config() -> SimConfig {
    SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Signs WebSocket API parameters (with `signature`): HMAC-SHA256 over `k=v` sorted by name.
pub fn ws_sign(secret: &str, params: &mut serde_json::Map<String, Value>) {
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    let payload = keys
        .iter()
        .map(|k| {
            let v = match &params[k.as_str()] {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&");
    let sig = hmac_hex(secret, &payload);
    params.insert("signature".into(), Value::String(sig));
}

pub fn encode(params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(0)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub struct Client {
    pub base: String,
    pub key: String,
    pub secret: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(h: &SimHandle) -> Self {
        Client {
            base: h.rest_url(),
            key: h.api_key(),
            secret: h.api_secret().expose().to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn raw(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<String>,
        key: Option<&str>,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{}", self.base, path_and_query));
        if let Some(k) = key {
            req = req.header("X-MBX-APIKEY", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn public(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        let q = encode(params);
        let pq = if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        };
        self.raw("GET", &pq, None, None).await
    }

    /// Signed request with every parameter (and the signature) in the query string.
    pub async fn signed(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Resp {
        let ts = now_ms().to_string();
        let mut all: Vec<(&str, &str)> = params.to_vec();
        all.push(("timestamp", &ts));
        let q = encode(&all);
        let sig = hmac_hex(&self.secret, &q);
        self.raw(
            method,
            &format!("{path}?{q}&signature={sig}"),
            None,
            Some(&self.key),
        )
        .await
    }

    pub async fn order(&self, params: &[(&str, &str)]) -> Resp {
        self.signed("POST", "/api/v3/order", params).await
    }

    pub async fn balance(&self, asset: &str) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
        let r = self.signed("GET", "/api/v3/account", &[]).await;
        let arr = r.body["balances"].as_array().cloned().unwrap_or_default();
        for b in arr {
            if b["asset"] == asset {
                return (dec(&b["free"]), dec(&b["locked"]));
            }
        }
        (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO)
    }
}

pub fn dec(v: &Value) -> rust_decimal::Decimal {
    v.as_str().unwrap_or("0").parse().unwrap()
}

/// Waits until `cond` holds, polling, or fails after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Client {
    /// `POST /sim/control/<what>` with the exchange's API key in `X-MBX-APIKEY`, as the
    /// control endpoints require.
    pub async fn control(&self, what: &str, body: &Value) -> Resp {
        self.control_as(what, body, Some(&self.key)).await
    }

    /// `POST /sim/control/<what>` with the given key header (or none).
    pub async fn control_as(&self, what: &str, body: &Value, key: Option<&str>) -> Resp {
        let mut req = self
            .http
            .post(format!("{}/sim/control/{what}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("X-MBX-APIKEY", k);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Signed request with a caller-chosen `timestamp` (and `recvWindow`), in the query string.
    pub async fn signed_at(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        timestamp: &str,
        recv_window: Option<&str>,
    ) -> Resp {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        if let Some(rw) = recv_window {
            all.push(("recvWindow", rw));
        }
        all.push(("timestamp", timestamp));
        let q = encode(&all);
        let sig = hmac_hex(&self.secret, &q);
        self.raw(
            method,
            &format!("{path}?{q}&signature={sig}"),
            None,
            Some(&self.key),
        )
        .await
    }
}
