//! Where each mode's exchange lives.
//!
//! Owns: the official origins per mode and the `BINANCE_*_URL` overrides, and building the
//! request/stream URLs from them. Must not: pick a mode (config does) or open connections.
//! `rest` is an origin (crbot appends `/api/v3/…`), `ws` the stream origin (crbot appends
//! `/stream?streams=…`), `ws_api` the full WebSocket API URL (`…/ws-api/v3`).

use std::net::SocketAddr;

use url::Url;

use crate::domain::Mode;

/// Why an endpoint URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{var} `{value}` is not a valid URL")]
    Invalid { var: &'static str, value: String },
    #[error("{var} `{value}` must use {expected}")]
    Scheme {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("mode {0} runs the local exchange: its endpoints come from the running instance")]
    LocalMode(Mode),
}

/// The three base URLs crbot talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub rest: Url,
    pub ws: Url,
    pub ws_api: Url,
}

fn parse(var: &'static str, value: &str, allowed: &[&'static str]) -> Result<Url, EndpointError> {
    let url = Url::parse(value.trim()).map_err(|_| EndpointError::Invalid {
        var,
        value: value.to_string(),
    })?;
    if !allowed.contains(&url.scheme()) {
        return Err(EndpointError::Scheme {
            var,
            value: value.to_string(),
            expected: if allowed.contains(&"https") {
                "http or https"
            } else {
                "ws or wss"
            },
        });
    }
    Ok(url)
}

impl Endpoints {
    /// The official endpoints of demo, testnet and live. Sim and paper run the local exchange,
    /// whose address is only known once it runs ([`Endpoints::local`]).
    pub fn official(mode: Mode) -> Result<Endpoints, EndpointError> {
        let (rest, ws, ws_api) = match mode {
            Mode::Live => (
                "https://api.binance.com",
                "wss://stream.binance.com:9443",
                "wss://ws-api.binance.com:443/ws-api/v3",
            ),
            // The testnet REST origin: crbot appends /api/v3/… itself.
            Mode::Testnet => (
                "https://testnet.binance.vision",
                "wss://stream.testnet.binance.vision",
                "wss://ws-api.testnet.binance.vision/ws-api/v3",
            ),
            Mode::Demo => (
                "https://demo-api.binance.com",
                "wss://demo-stream.binance.com:9443",
                "wss://demo-ws-api.binance.com/ws-api/v3",
            ),
            Mode::Sim | Mode::Paper => return Err(EndpointError::LocalMode(mode)),
        };
        Ok(Endpoints {
            rest: parse("BINANCE_REST_URL", rest, &["https"])?,
            ws: parse("BINANCE_WS_URL", ws, &["wss"])?,
            ws_api: parse("BINANCE_WS_API_URL", ws_api, &["wss"])?,
        })
    }

    /// The local exchange on `addr` (what `crbot sim` prints).
    pub fn local(addr: SocketAddr) -> Result<Endpoints, EndpointError> {
        Ok(Endpoints {
            rest: parse("BINANCE_REST_URL", &format!("http://{addr}"), &["http"])?,
            ws: parse("BINANCE_WS_URL", &format!("ws://{addr}"), &["ws"])?,
            ws_api: parse("BINANCE_WS_API_URL", &format!("ws://{addr}/ws-api/v3"), &["ws"])?,
        })
    }

    /// Applies `BINANCE_REST_URL`, `BINANCE_WS_URL`, `BINANCE_WS_API_URL` from `get` (the
    /// process environment in production, a map in tests). Empty values are ignored.
    pub fn with_overrides(
        mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Endpoints, EndpointError> {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = non_empty("BINANCE_REST_URL") {
            let mut url = parse("BINANCE_REST_URL", &v, &["http", "https"])?;
            // The docs write the testnet base as `…/api`; crbot appends `/api/v3/…` itself, so
            // a trailing `/api` would double it.
            let path = url.path().trim_end_matches('/').to_string();
            if let Some(stripped) = path.strip_suffix("/api") {
                url.set_path(if stripped.is_empty() { "/" } else { stripped });
            }
            self.rest = url;
        }
        if let Some(v) = non_empty("BINANCE_WS_URL") {
            self.ws = parse("BINANCE_WS_URL", &v, &["ws", "wss"])?;
        }
        if let Some(v) = non_empty("BINANCE_WS_API_URL") {
            self.ws_api = parse("BINANCE_WS_API_URL", &v, &["ws", "wss"])?;
        }
        Ok(self)
    }

    /// The endpoints of `mode` with the environment's overrides applied. Sim and paper need all
    /// three overrides (the running local exchange's URLs); otherwise they are an error.
    pub fn for_mode(mode: Mode, get: impl Fn(&str) -> Option<String>) -> Result<Endpoints, EndpointError> {
        match Endpoints::official(mode) {
            Ok(e) => e.with_overrides(get),
            Err(err) => {
                let all = ["BINANCE_REST_URL", "BINANCE_WS_URL", "BINANCE_WS_API_URL"]
                    .iter()
                    .all(|k| get(k).is_some_and(|v| !v.trim().is_empty()));
                if !all {
                    return Err(err);
                }
                // Placeholder origins, all replaced by the overrides below.
                Endpoints::local(SocketAddr::from(([127, 0, 0, 1], 1)))?.with_overrides(get)
            }
        }
    }

    /// True when every URL is encrypted (https/wss): required in `ENV=production`.
    pub fn is_secure(&self) -> bool {
        self.rest.scheme() == "https" && self.ws.scheme() == "wss" && self.ws_api.scheme() == "wss"
    }

    /// `{rest origin}{path}` with a pre-encoded query (never re-encoded).
    pub fn rest_url(&self, path: &str, query: &str) -> String {
        let origin = self.rest.as_str().trim_end_matches('/');
        if query.is_empty() {
            format!("{origin}{path}")
        } else {
            format!("{origin}{path}?{query}")
        }
    }

    /// The combined-stream URL for the given stream names (`btcusdt@bookTicker`…).
    pub fn stream_url(&self, streams: &[String]) -> String {
        let origin = self.ws.as_str().trim_end_matches('/');
        format!("{origin}/stream?streams={}", streams.join("/"))
    }
}

/// `BINANCE_TESTNET=true|false` (the seed's variable) picks testnet or live when no mode is
/// given; `None` when unset, empty or not a boolean.
pub fn mode_from_testnet_flag(value: Option<&str>) -> Option<Mode> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("true" | "1" | "yes") => Some(Mode::Testnet),
        Some("false" | "0" | "no") => Some(Mode::Live),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_testnet_rest_is_an_origin_and_api_paths_are_appended() {
        let e = Endpoints::official(Mode::Testnet).expect("testnet");
        assert_eq!(
            e.rest_url("/api/v3/time", ""),
            "https://testnet.binance.vision/api/v3/time"
        );
        assert_eq!(e.ws_api.as_str(), "wss://ws-api.testnet.binance.vision/ws-api/v3");
        assert!(e.is_secure());
    }

    #[test]
    fn official_live_and_demo_use_the_documented_hosts() {
        let live = Endpoints::official(Mode::Live).expect("live");
        assert_eq!(
            live.rest_url("/api/v3/ping", ""),
            "https://api.binance.com/api/v3/ping"
        );
        assert_eq!(
            live.stream_url(&["btcusdt@bookTicker".into(), "btcusdt@kline_1m".into()]),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@bookTicker/btcusdt@kline_1m"
        );
        let demo = Endpoints::official(Mode::Demo).expect("demo");
        assert_eq!(demo.rest.host_str(), Some("demo-api.binance.com"));
        assert_eq!(demo.ws_api.as_str(), "wss://demo-ws-api.binance.com/ws-api/v3");
    }

    #[test]
    fn sim_and_paper_have_no_official_endpoints() {
        assert_eq!(
            Endpoints::official(Mode::Sim),
            Err(EndpointError::LocalMode(Mode::Sim))
        );
        assert!(Endpoints::official(Mode::Paper).is_err());
    }

    #[test]
    fn overrides_replace_each_url_and_reject_wrong_schemes() {
        let e = Endpoints::official(Mode::Live)
            .expect("live")
            .with_overrides(|k| match k {
                "BINANCE_REST_URL" => Some("http://127.0.0.1:9000".into()),
                "BINANCE_WS_API_URL" => Some("ws://127.0.0.1:9000/ws-api/v3".into()),
                _ => None,
            })
            .expect("overrides");
        assert_eq!(
            e.rest_url("/api/v3/time", "a=1"),
            "http://127.0.0.1:9000/api/v3/time?a=1"
        );
        assert_eq!(e.ws.as_str(), "wss://stream.binance.com:9443/");
        assert!(!e.is_secure());
        let bad = Endpoints::official(Mode::Live)
            .expect("live")
            .with_overrides(|k| (k == "BINANCE_WS_URL").then(|| "https://x".to_string()));
        assert!(matches!(bad, Err(EndpointError::Scheme { .. })));
    }

    #[test]
    fn a_rest_override_ending_in_api_is_not_doubled() {
        let e = Endpoints::official(Mode::Testnet)
            .expect("testnet")
            .with_overrides(|k| {
                (k == "BINANCE_REST_URL").then(|| "https://testnet.binance.vision/api/".to_string())
            })
            .expect("override");
        assert_eq!(
            e.rest_url("/api/v3/time", ""),
            "https://testnet.binance.vision/api/v3/time"
        );
    }

    #[test]
    fn testnet_flag_selects_testnet_or_live() {
        assert_eq!(mode_from_testnet_flag(Some("true")), Some(Mode::Testnet));
        assert_eq!(mode_from_testnet_flag(Some(" FALSE ")), Some(Mode::Live));
        assert_eq!(mode_from_testnet_flag(Some("maybe")), None);
        assert_eq!(mode_from_testnet_flag(None), None);
    }

    #[test]
    fn sim_mode_takes_its_urls_from_the_overrides_only() {
        let none = |_: &str| None;
        assert!(Endpoints::for_mode(Mode::Sim, none).is_err());
        let all = |k: &str| match k {
            "BINANCE_REST_URL" => Some("http://127.0.0.1:7000".to_string()),
            "BINANCE_WS_URL" => Some("ws://127.0.0.1:7000".to_string()),
            "BINANCE_WS_API_URL" => Some("ws://127.0.0.1:7000/ws-api/v3".to_string()),
            _ => None,
        };
        let e = Endpoints::for_mode(Mode::Sim, all).expect("sim");
        assert_eq!(
            e.rest_url("/api/v3/ping", ""),
            "http://127.0.0.1:7000/api/v3/ping"
        );
        let live = Endpoints::for_mode(Mode::Live, none).expect("live");
        assert_eq!(live, Endpoints::official(Mode::Live).expect("live"));
    }

    #[test]
    fn local_endpoints_match_what_the_sim_prints() {
        let e = Endpoints::local("127.0.0.1:4000".parse().expect("addr")).expect("local");
        assert_eq!(
            e.rest_url("/api/v3/ping", ""),
            "http://127.0.0.1:4000/api/v3/ping"
        );
        assert_eq!(e.ws_api.as_str(), "ws://127.0.0.1:4000/ws-api/v3");
    }
}
