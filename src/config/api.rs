//! The control API's settings: token lifetime, rate limit, CORS origins, the TCP address of
//! `crbot serve` and the address it advertises to other engines (`CRBOT_ADVERTISE_URL`).
//!
//! Owns: parsing and range-checking these variables, and the posture rule that the rate limit
//! cannot be switched off outside development. Must not: read `SECRET_KEY`'s value into an
//! error or a log line (the signing key is resolved by the API itself, which may generate one),
//! or decide whether an address may be listened on (`serve` does, since `--addr` overrides it).

use std::net::SocketAddr;
use std::path::PathBuf;

use url::Url;

use crate::alerts::Webhook;

use super::{ConfigError, Environment, Sources, bad, integer};
use crate::secret::SecretString;

/// `crbot serve`'s default address: loopback, on the seed's port.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8002";

/// The control API's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Lifetime of a token that `crbot token issue` prints without `--ttl`.
    pub jwt_expire_hours: u64,
    /// Requests allowed per client address per window; `None` when switched off (development
    /// with `RATE_LIMIT_REQUESTS=0`).
    pub rate_limit_requests: Option<u32>,
    pub rate_limit_window_secs: u64,
    /// Origins a browser may call the API from in staging and production (`scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// Where `crbot serve` listens unless `--addr` says otherwise.
    pub addr: SocketAddr,
    /// `CRBOT_ADVERTISE_URL`: the control API's address as other machines reach it, written in
    /// the lease's leadership row when this engine leads (standbys, screens and commands name
    /// it). `None`: the address it listens on, unless that is `0.0.0.0`/`::` (then none).
    pub advertise_url: Option<Url>,
    /// `ALERT_WEBHOOK_URL`: where alerts are posted (`https://` only in production).
    pub alert_webhook: Option<Webhook>,
    /// `API_TLS_CERT` / `API_TLS_KEY`: the PEM files that make `crbot serve` speak HTTPS (both
    /// or neither; read and checked by `serve`).
    pub tls: Option<TlsFiles>,
    /// A running engine elsewhere that the console attaches to as a screen
    /// (`CRBOT_API_URL` with `CRBOT_API_TOKEN`).
    pub remote: Option<RemoteEngine>,
}

/// The control API's certificate chain and private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The control API of an engine on another machine (or another user's), and the token for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEngine {
    /// Its base URL as given (`http`, `https`, `ws` or `wss`; no credentials, query or fragment).
    pub url: Url,
    /// A bearer token `crbot token issue` printed for that engine; never shown.
    pub token: SecretString,
}

impl RemoteEngine {
    /// Whether the connection is encrypted (`https`/`wss`): a re-arm's passphrase is sent only then.
    pub fn is_tls(&self) -> bool {
        matches!(self.url.scheme(), "https" | "wss")
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            jwt_expire_hours: 24,
            rate_limit_requests: Some(100),
            rate_limit_window_secs: 60,
            cors_origins: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8002)),
            alert_webhook: None,
            tls: None,
            remote: None,
            advertise_url: None,
        }
    }
}

pub(super) fn api_config(sources: &Sources, env: Environment) -> Result<ApiConfig, ConfigError> {
    let jwt_expire_hours = integer(sources, "JWT_EXPIRE_HOURS", 24, 1, 8760)?;
    let requests = integer(sources, "RATE_LIMIT_REQUESTS", 100, 0, 100_000)?;
    // Off only where nobody else can reach the engine: the limit also slows token guessing.
    if requests == 0 && env != Environment::Development {
        return Err(ConfigError::Refused {
            setting: "RATE_LIMIT_REQUESTS=0".into(),
            env,
            why: "the rate limit also slows token guessing; set 1 <= value <= 100000".into(),
        });
    }
    let rate_limit_requests = u32::try_from(requests).ok().filter(|n| *n > 0);
    let rate_limit_window_secs = integer(sources, "RATE_LIMIT_WINDOW_SECS", 60, 1, 86_400)?;
    let cors_origins = match sources.value("CORS_ORIGINS") {
        None => Vec::new(),
        Some(v) => cors_origins(v)?,
    };
    let addr = match sources.value("CRBOT_API_ADDR") {
        None => ApiConfig::default().addr,
        Some(v) => v.parse().map_err(|_| {
            bad(
                "CRBOT_API_ADDR",
                v,
                "is not valid",
                "HOST:PORT with an IP address",
            )
        })?,
    };
    Ok(ApiConfig {
        jwt_expire_hours,
        rate_limit_requests,
        rate_limit_window_secs,
        cors_origins,
        addr,
        advertise_url: advertise_url(sources)?,
        alert_webhook: alert_webhook(sources, env)?,
        tls: tls_files(sources)?,
        remote: remote_engine(sources, env)?,
    })
}

/// `ALERT_WEBHOOK_URL`: an `http(s)://` URL, `https://` only in production. Errors never quote
/// the URL (its path or query may be the webhook's secret).
fn alert_webhook(sources: &Sources, env: Environment) -> Result<Option<Webhook>, ConfigError> {
    let Some(v) = sources
        .value("ALERT_WEBHOOK_URL")
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let https_only = env == Environment::Production;
    match Webhook::parse(v, https_only) {
        Ok(w) => Ok(Some(w)),
        Err(why) if https_only && Webhook::parse(v, false).is_ok() => Err(ConfigError::Refused {
            setting: "ALERT_WEBHOOK_URL=http://…".into(),
            env,
            why,
        }),
        Err(why) => Err(ConfigError::BadValue {
            name: "ALERT_WEBHOOK_URL",
            value: "(not shown)".into(),
            problem: "is not a usable webhook URL",
            allowed: format!("an https:// URL (this one {why})"),
        }),
    }
}

/// `API_TLS_CERT` and `API_TLS_KEY`: both or neither.
fn tls_files(sources: &Sources) -> Result<Option<TlsFiles>, ConfigError> {
    let path = |name| {
        sources
            .value(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (path("API_TLS_CERT"), path("API_TLS_KEY")) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (Some(_), None) => Err(bad(
            "API_TLS_KEY",
            "",
            "is missing",
            "set it with API_TLS_CERT (a PEM private key file)",
        )),
        (None, Some(_)) => Err(bad(
            "API_TLS_CERT",
            "",
            "is missing",
            "set it with API_TLS_KEY (a PEM certificate chain file)",
        )),
    }
}

/// What `CRBOT_ADVERTISE_URL` accepts.
pub const ADVERTISE_URL_ALLOWED: &str = "the http(s):// URL other machines reach this crbot serve's API at, such as https://crbot-a.example.com:8002 (no credentials, query or fragment)";

/// `CRBOT_ADVERTISE_URL`: an `http(s)://` URL with a host, without credentials, query or
/// fragment; written as given less a lone trailing `/`.
fn advertise_url(sources: &Sources) -> Result<Option<Url>, ConfigError> {
    let Some(v) = sources
        .value("CRBOT_ADVERTISE_URL")
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let parsed = Url::parse(v.trim())
        .map_err(|_| bad("CRBOT_ADVERTISE_URL", v, "is not a URL", ADVERTISE_URL_ALLOWED))?;
    let credentials = !parsed.username().is_empty() || parsed.password().is_some();
    let unspecified = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_unspecified(),
        _ => false,
    };
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || unspecified
        || credentials
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(bad(
            "CRBOT_ADVERTISE_URL",
            v,
            "is not valid",
            ADVERTISE_URL_ALLOWED,
        ));
    }
    Ok(Some(parsed))
}

/// What `CRBOT_API_URL` accepts.
pub const API_URL_ALLOWED: &str =
    "an http(s):// or ws(s):// URL of a crbot serve, without credentials (with CRBOT_API_TOKEN)";
/// What `CRBOT_API_TOKEN` accepts.
pub const API_TOKEN_ALLOWED: &str = "a token from crbot token issue (with CRBOT_API_URL)";

/// `CRBOT_API_URL` and `CRBOT_API_TOKEN`, both or neither. A plain-text URL to a host other
/// than loopback is refused in staging and production: the token and the account would cross
/// the network in clear. The token's value never reaches a message.
fn remote_engine(sources: &Sources, env: Environment) -> Result<Option<RemoteEngine>, ConfigError> {
    let url = sources.value("CRBOT_API_URL");
    let token = sources.value("CRBOT_API_TOKEN");
    let (url, token) = match (url, token) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::BadSecret {
                name: "CRBOT_API_TOKEN",
                problem: "is not set: CRBOT_API_URL needs a token from crbot token issue".into(),
            });
        }
        (None, Some(_)) => {
            return Err(bad(
                "CRBOT_API_URL",
                "",
                "is not set but CRBOT_API_TOKEN is",
                API_URL_ALLOWED,
            ));
        }
        (Some(url), Some(token)) => (url, token),
    };
    let parsed =
        Url::parse(url.trim()).map_err(|_| bad("CRBOT_API_URL", url, "is not a URL", API_URL_ALLOWED))?;
    let credentials = !parsed.username().is_empty() || parsed.password().is_some();
    if !matches!(parsed.scheme(), "http" | "https" | "ws" | "wss")
        || parsed.host_str().is_none()
        || credentials
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(bad("CRBOT_API_URL", url, "is not valid", API_URL_ALLOWED));
    }
    let token = token.trim();
    let jwt_shaped = token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !jwt_shaped {
        return Err(ConfigError::BadSecret {
            name: "CRBOT_API_TOKEN",
            problem: format!(
                "is not a token (three base64url parts joined by dots): allowed {API_TOKEN_ALLOWED}"
            ),
        });
    }
    let remote = RemoteEngine {
        url: parsed,
        token: SecretString::from(token),
    };
    if !remote.is_tls() && env != Environment::Development && !is_loopback(&remote.url) {
        return Err(ConfigError::Refused {
            setting: format!("CRBOT_API_URL={}", remote.url),
            env,
            why: "the token and the account would cross the network in clear; use https:// or wss://".into(),
        });
    }
    Ok(Some(remote))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `https://app.example.com, http://localhost:3000` → the origins, each as a browser sends it
/// in `Origin` (no path, no trailing slash), so that they compare byte for byte.
fn cors_origins(v: &str) -> Result<Vec<String>, ConfigError> {
    const ALLOWED: &str = "comma-separated origins such as https://app.example.com";
    let mut origins = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = Url::parse(item).map_err(|_| bad("CORS_ORIGINS", item, "is not an origin", ALLOWED))?;
        let origin_only = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
        let credentials = !url.username().is_empty() || url.password().is_some();
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || !origin_only
            || credentials
        {
            return Err(bad("CORS_ORIGINS", item, "is not an origin", ALLOWED));
        }
        origins.push(url.origin().ascii_serialization());
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(vars: &[(&str, &str)], env: Environment) -> Result<ApiConfig, ConfigError> {
        let s = Sources {
            process: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Sources::default()
        };
        api_config(&s, env)
    }

    #[test]
    fn defaults_are_a_day_of_token_100_requests_a_minute_and_loopback_8002() {
        let c = sources(&[], Environment::Production).expect("valid");
        assert_eq!(c, ApiConfig::default());
        assert_eq!(c.addr.to_string(), DEFAULT_API_ADDR);
    }

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl";

    #[test]
    fn the_advertised_url_is_an_http_or_https_url_with_a_host_and_nothing_else() {
        let c = sources(
            &[("CRBOT_ADVERTISE_URL", " https://crbot-a.example.com:8002 ")],
            Environment::Production,
        )
        .expect("valid");
        assert_eq!(
            c.advertise_url.map(|u| u.to_string()).as_deref(),
            Some("https://crbot-a.example.com:8002/")
        );
        assert!(
            sources(&[("CRBOT_ADVERTISE_URL", "  ")], Environment::Production)
                .expect("blank is unset")
                .advertise_url
                .is_none()
        );
        for bad in [
            "crbot-a.example.com:8002",
            "ftp://crbot-a.example.com",
            "ws://crbot-a.example.com",
            "https://user:pw@crbot-a.example.com",
            "https://crbot-a.example.com/?x=1",
            "https://crbot-a.example.com/#top",
            "http://0.0.0.0:8002",
            "http://[::]:8002",
        ] {
            let err = sources(&[("CRBOT_ADVERTISE_URL", bad)], Environment::Development)
                .expect_err(bad)
                .to_string();
            assert!(err.contains("CRBOT_ADVERTISE_URL"), "{bad}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn an_engine_elsewhere_is_a_url_and_a_token_together() {
        let c = sources(
            &[
                ("CRBOT_API_URL", "https://ops.example.com:8002"),
                ("CRBOT_API_TOKEN", TOKEN),
            ],
            Environment::Production,
        )
        .expect("valid");
        let remote = c.remote.expect("set");
        assert_eq!(remote.url.as_str(), "https://ops.example.com:8002/");
        assert_eq!(remote.token.expose(), TOKEN);
        assert!(remote.is_tls());
        let loopback = sources(
            &[
                ("CRBOT_API_URL", "ws://127.0.0.1:8002"),
                ("CRBOT_API_TOKEN", TOKEN),
            ],
            Environment::Production,
        )
        .expect("loopback in clear is fine");
        assert!(!loopback.remote.expect("set").is_tls());
    }

    #[test]
    fn a_bad_url_or_token_is_one_line_that_never_shows_the_token() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("CRBOT_API_URL", "http://h:1")], "CRBOT_API_TOKEN is not set"),
            (&[("CRBOT_API_TOKEN", TOKEN)], "CRBOT_API_URL= is not set"),
            (
                &[("CRBOT_API_URL", "ftp://h"), ("CRBOT_API_TOKEN", TOKEN)],
                "CRBOT_API_URL=ftp://h is not valid",
            ),
            (
                &[("CRBOT_API_URL", "h:8002"), ("CRBOT_API_TOKEN", TOKEN)],
                "CRBOT_API_URL=h:8002 is not valid",
            ),
            (
                &[("CRBOT_API_URL", "http://h?x=1"), ("CRBOT_API_TOKEN", TOKEN)],
                "is not valid",
            ),
            (
                &[
                    ("CRBOT_API_URL", "http://h"),
                    ("CRBOT_API_TOKEN", "Bearer hunter2"),
                ],
                "CRBOT_API_TOKEN is not a token",
            ),
            (
                &[("CRBOT_API_URL", "http://h"), ("CRBOT_API_TOKEN", "a.b.c d")],
                "CRBOT_API_TOKEN is not a token",
            ),
        ];
        for (vars, want) in cases {
            let err = sources(vars, Environment::Development)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(want), "{err}");
            assert!(
                !err.contains("hunter2") && !err.contains(TOKEN) && !err.contains('\n'),
                "{err}"
            );
        }
        let err = sources(
            &[
                ("CRBOT_API_URL", "http://ops.example.com"),
                ("CRBOT_API_TOKEN", TOKEN),
            ],
            Environment::Staging,
        )
        .expect_err("clear text across the network")
        .to_string();
        assert!(
            err.contains("refused with ENV=staging") && !err.contains(TOKEN),
            "{err}"
        );
    }

    #[test]
    fn a_zero_rate_limit_switches_it_off_in_development_only() {
        let dev = sources(&[("RATE_LIMIT_REQUESTS", "0")], Environment::Development).expect("valid");
        assert_eq!(dev.rate_limit_requests, None);
        let err = sources(&[("RATE_LIMIT_REQUESTS", "0")], Environment::Staging).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("RATE_LIMIT_REQUESTS=0 is refused with ENV=staging"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_the_allowed_range() {
        for (name, value) in [
            ("JWT_EXPIRE_HOURS", "0"),
            ("JWT_EXPIRE_HOURS", "a day"),
            ("RATE_LIMIT_REQUESTS", "-1"),
            ("RATE_LIMIT_WINDOW_SECS", "0"),
            ("CRBOT_API_ADDR", "localhost"),
            ("CORS_ORIGINS", "https://ok.example.com, ftp://files.example.com"),
            ("CORS_ORIGINS", "https://app.example.com/path"),
        ] {
            let err = sources(&[(name, value)], Environment::Development).expect_err("refused");
            let line = err.to_string();
            assert!(line.starts_with(&format!("{name}=")), "{line}");
            assert!(line.contains("allowed"), "{line}");
        }
    }

    #[test]
    fn cors_origins_are_kept_as_a_browser_sends_them() {
        let c = sources(
            &[(
                "CORS_ORIGINS",
                "https://App.Example.com/, http://localhost:3000 ,",
            )],
            Environment::Production,
        )
        .expect("valid");
        assert_eq!(
            c.cors_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn an_alert_webhook_is_https_in_production_and_never_quoted_back() {
        let url = "http://hooks.example.com/services/T0/SECRET?token=abc";
        for env in [Environment::Development, Environment::Staging] {
            let c = sources(&[("ALERT_WEBHOOK_URL", url)], env).expect("http allowed");
            assert_eq!(
                c.alert_webhook.expect("set").to_string(),
                "http://hooks.example.com"
            );
        }
        let err = sources(&[("ALERT_WEBHOOK_URL", url)], Environment::Production).expect_err("refused");
        let line = err.to_string();
        assert!(
            line.contains("ALERT_WEBHOOK_URL") && line.contains("https://"),
            "{line}"
        );
        let https = url.replacen("http://", "https://", 1);
        let c = sources(&[("ALERT_WEBHOOK_URL", &https)], Environment::Production).expect("https");
        assert!(c.alert_webhook.is_some());
        for bad in [
            "hooks.example.com/SECRET",
            "ftp://hooks.example.com/SECRET?token=abc",
        ] {
            let line = sources(&[("ALERT_WEBHOOK_URL", bad)], Environment::Development)
                .expect_err("refused")
                .to_string();
            assert!(line.starts_with("ALERT_WEBHOOK_URL="), "{line}");
            assert!(!line.contains("SECRET") && !line.contains("abc"), "{line}");
        }
        assert_eq!(
            sources(&[("ALERT_WEBHOOK_URL", "")], Environment::Production)
                .expect("empty is unset")
                .alert_webhook,
            None
        );
    }

    #[test]
    fn tls_files_come_in_pairs() {
        let c = sources(
            &[
                ("API_TLS_CERT", "/etc/crbot/api.crt"),
                ("API_TLS_KEY", "/etc/crbot/api.key"),
            ],
            Environment::Production,
        )
        .expect("both");
        let tls = c.tls.expect("set");
        assert_eq!(tls.cert, PathBuf::from("/etc/crbot/api.crt"));
        assert_eq!(tls.key, PathBuf::from("/etc/crbot/api.key"));
        for (name, missing) in [("API_TLS_CERT", "API_TLS_KEY"), ("API_TLS_KEY", "API_TLS_CERT")] {
            let line = sources(&[(name, "/x.pem")], Environment::Development)
                .expect_err("half a pair")
                .to_string();
            assert!(line.starts_with(&format!("{missing}=")), "{line}");
        }
    }
}
