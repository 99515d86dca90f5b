//! A WebSocket API connection subscribed to the account's user-data events
//! (`userDataStream.subscribe.signature`), for the sim's integration tests. Needs `client.rs`
//! as the sibling module `client`.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::client::{now_ms, ws_sign};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct UserEvents {
    ws: Ws,
    key: String,
    secret: String,
    seen: Vec<Value>,
}

impl UserEvents {
    /// Connects to `ws_api_url` and subscribes.
    pub async fn subscribe(ws_api_url: &str, key: &str, secret: &str) -> Self {
        let ws = tokio_tungstenite::connect_async(ws_api_url).await.unwrap().0;
        let mut u = UserEvents {
            ws,
            key: key.to_string(),
            secret: secret.to_string(),
            seen: Vec::new(),
        };
        let r = u
            .call("sub", "userDataStream.subscribe.signature", json!({}))
            .await;
        assert_eq!(r["status"], 200, "{r}");
        u
    }

    /// A signed request; its response.
    pub async fn call(&mut self, id: &str, method: &str, params: Value) -> Value {
        let mut p = params.as_object().cloned().unwrap_or_default();
        p.insert("apiKey".into(), json!(self.key));
        p.insert("timestamp".into(), json!(now_ms()));
        ws_sign(&self.secret, &mut p);
        let req = json!({"id": id, "method": method, "params": p});
        self.ws.send(Message::Text(req.to_string().into())).await.unwrap();
        loop {
            let v = self.next(Duration::from_secs(5)).await.expect("no answer");
            if v["id"] == id {
                return v;
            }
            if v.get("event").is_some() {
                self.seen.push(v["event"].clone());
            }
        }
    }

    async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
            match tokio::time::timeout(left, self.ws.next()).await.ok()?? {
                Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The first event (seen before or arriving within 5 s) matching `pred`, consumed.
    pub async fn wait(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let left = deadline - tokio::time::Instant::now();
            let Some(v) = self.next(left).await else { break };
            let ev = v["event"].clone();
            if pred(&ev) {
                return ev;
            }
            self.seen.push(ev);
        }
        panic!("no matching event; seen {:?}", self.seen);
    }
}
