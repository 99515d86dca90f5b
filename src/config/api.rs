//! The control API's settings: token lifetime, rate limit, CORS origins and the TCP address of
//! `crbot serve`.
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
    /// `ALERT_WEBHOOK_URL`: where alerts are posted (`https://` only in production).
    pub alert_webhook: Option<Webhook>,
    /// `API_TLS_CERT` / `API_TLS_KEY`: the PEM files that make `crbot serve` speak HTTPS (both
    /// or neither; read and checked by `serve`).
    pub tls: Option<TlsFiles>,
}

/// The control API's certificate chain and private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
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
        alert_webhook: alert_webhook(sources, env)?,
        tls: tls_files(sources)?,
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
