//! Connecting a mode to its exchange: which URLs, which keys, and (in `sim` and `paper`) the
//! local exchange itself.
//!
//! Owns: the rules for reaching an exchange in each mode. `sim` uses, in order: the URL
//! overrides (with keys from the environment), the local exchange a running console
//! recorded in `<data>/sim-endpoint.json` (when it answers a ping), or a local exchange
//! started in this process on the account kept in `<data>/sim-exchange.json`. `paper` does the
//! same with `paper-…` files, its local exchange priced by Binance's public streams (or by
//! `BINANCE_WS_URL`). `demo`,
//! `testnet` and `live` use the official URLs (each overridable) and keys from
//! `SECRETS_BACKEND`: the vault, AWS Secrets Manager or HashiCorp Vault (`crate::secrets`,
//! fetched at every start), or `BINANCE_API_KEY`/`BINANCE_API_SECRET` where the posture allows
//! (development).
//! Must not: print or log a secret; the sim endpoint file holds only the local exchange's
//! own generated test key, never a vault key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::Mode;
use crate::exchange::binance::endpoints::Endpoints;
use crate::exchange::binance::limits::BanStore;
use crate::exchange::binance::rest::{BinanceRest, RestConfig};
use crate::exchange::binance::sign::{Credentials, KeyMaterial};
use crate::exchange::sim::{self, SimConfig, SimHandle};
use crate::secret::SecretString;
use crate::vault::{KeySecret, ModeKeys};

/// Where a running console's local exchange can be reached.
#[derive(Debug, Serialize, Deserialize)]
pub struct SimEndpointFile {
    pub rest: String,
    pub ws: String,
    pub ws_api: String,
    /// The local exchange's generated test key (not a vault key).
    pub api_key: String,
    pub api_secret: String,
    pub pid: u32,
}

/// How the vault passphrase is obtained, for modes that need keys.
#[derive(Debug)]
pub enum Unlock {
    /// Ask on the terminal (no echo), three tries.
    Terminal,
    /// The first line of standard input (`--passphrase-stdin`).
    Stdin,
    /// Never ask: a passphrase read beforehand (`crbot serve`'s `CRBOT_PASSPHRASE_FILE`), or
    /// `None` to refuse a mode that needs one.
    Given(Option<SecretString>),
}

/// A connected exchange.
#[derive(Debug)]
pub struct Session {
    pub mode: Mode,
    pub endpoints: Endpoints,
    pub rest: BinanceRest,
    pub credentials: Option<Credentials>,
    /// The local exchange this process started, if any (stopped with the session).
    pub sim: Option<SimHandle>,
    /// Where the keys came from, for `doctor` and `health` (never the keys): e.g. `vault`,
    /// `aws (AWS_SECRET_ID=…)`; `None` for the local exchange's own generated test key.
    pub keys_from: Option<String>,
}

impl Session {
    /// Connects per the mode's rules. `publish_sim` records an in-process local exchange's
    /// endpoint for other shells (the console does; one-shot commands do not).
    pub async fn connect(config: &Config, unlock: Unlock, publish_sim: bool) -> anyhow::Result<Session> {
        let rest_config = RestConfig {
            recv_window_ms: config.recv_window_ms,
            ..RestConfig::default()
        };
        let bans: Arc<dyn BanStore> = Arc::new(FileBanStore::new(
            config.paths.data_dir.join(format!("ban-until-{}", config.mode)),
        ));
        let overrides = |name: &str| -> Option<String> {
            let u = match name {
                "BINANCE_REST_URL" => config.endpoints.rest.as_ref(),
                "BINANCE_WS_URL" => config.endpoints.ws.as_ref(),
                "BINANCE_WS_API_URL" => config.endpoints.ws_api.as_ref(),
                _ => None,
            };
            u.map(|u| u.as_str().trim_end_matches('/').to_string())
        };
        let (endpoints, credentials, sim) = match config.mode {
            Mode::Sim if config.endpoints.rest.is_some() => {
                let base = Endpoints::local("127.0.0.1:1".parse()?)?;
                let endpoints = base.with_overrides(overrides)?;
                let creds = config.env_keys.as_ref().map(|k| Credentials {
                    api_key: k.api_key.clone(),
                    key: KeyMaterial::hmac(k.api_secret.clone()),
                });
                if creds.is_none() {
                    anyhow::bail!(
                        "BINANCE_REST_URL points {} at another exchange: set BINANCE_API_KEY and BINANCE_API_SECRET to the keys it printed",
                        config.mode
                    );
                }
                (endpoints, creds, None)
            }
            Mode::Sim | Mode::Paper => local_exchange(config, publish_sim).await?,
            Mode::Demo | Mode::Testnet | Mode::Live if config.secrets.backend.is_service() => {
                let endpoints = Endpoints::official(config.mode)?.with_overrides(overrides)?;
                // Fetched at every start (never stored), so a rotated secret is used from then on.
                let keys = crate::secrets::fetch(&config.secrets).await?;
                tracing::info!(backend = %config.secrets.backend, "keys fetched from the secrets backend");
                (endpoints, Some(credentials_from(keys)), None)
            }
            Mode::Demo | Mode::Testnet | Mode::Live => {
                let endpoints = Endpoints::official(config.mode)?.with_overrides(overrides)?;
                // The passphrase prompt and Argon2 (tens of ms to seconds) block: keep them off the
                // async workers.
                let cfg = config.clone();
                let creds = tokio::task::spawn_blocking(move || keys_for(&cfg, unlock)).await??;
                (endpoints, Some(creds), None)
            }
        };
        let rest = BinanceRest::new(endpoints.clone(), credentials.clone(), rest_config, bans)?;
        let keys_from = match config.mode {
            Mode::Sim if config.endpoints.rest.is_some() => Some(crate::secrets::Backend::Env.to_string()),
            Mode::Sim | Mode::Paper => None,
            _ => Some(config.secrets.describe()),
        };
        Ok(Session {
            mode: config.mode,
            endpoints,
            rest,
            credentials,
            sim,
            keys_from,
        })
    }

    /// Stops an in-process local exchange (saving its account) and removes its endpoint file.
    pub async fn close(self, config: &Config) {
        if let Some(sim) = self.sim {
            let path = sim_endpoint_path(&config.paths.data_dir, config.mode);
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(rec) = serde_json::from_str::<SimEndpointFile>(&text)
                && rec.pid == std::process::id()
            {
                let _ = std::fs::remove_file(&path);
            }
            sim.shutdown().await;
        }
    }
}

/// `<data>/sim-endpoint.json` (or `paper-endpoint.json`): a running console's local exchange.
pub fn sim_endpoint_path(data_dir: &Path, mode: Mode) -> PathBuf {
    data_dir.join(format!("{mode}-endpoint.json"))
}

pub fn sim_state_path(data_dir: &Path, mode: Mode) -> PathBuf {
    data_dir.join(format!("{mode}-exchange.json"))
}

async fn local_exchange(
    config: &Config,
    publish: bool,
) -> anyhow::Result<(Endpoints, Option<Credentials>, Option<SimHandle>)> {
    let data = &config.paths.data_dir;
    std::fs::create_dir_all(data)?;
    let record_path = sim_endpoint_path(data, config.mode);
    if let Some(rec) = read_endpoint(&record_path)
        && reachable(&rec.rest).await
    {
        let endpoints = Endpoints {
            rest: rec.rest.parse()?,
            ws: rec.ws.parse()?,
            ws_api: rec.ws_api.parse()?,
        };
        return Ok((
            endpoints,
            Some(Credentials::hmac(&rec.api_key, &rec.api_secret)),
            None,
        ));
    }
    let mut sim_config = SimConfig {
        state_file: Some(sim_state_path(data, config.mode)),
        ..SimConfig::default()
    };
    if config.mode == Mode::Paper {
        // Paper trades on the local exchange, priced by Binance's public streams (or by the
        // stream origin in BINANCE_WS_URL, e.g. another local exchange in tests).
        let prices = match &config.endpoints.ws {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => sim::PriceSource::BINANCE_STREAMS.to_string(),
        };
        sim_config.price_source = sim::PriceSource::Binance(prices);
    }
    let handle = sim::start("127.0.0.1:0".parse()?, sim_config).await?;
    let endpoints = Endpoints::local(handle.addr())?;
    let secret = handle.api_secret();
    let creds = Credentials {
        api_key: SecretString::new(handle.api_key()),
        key: KeyMaterial::hmac(secret.clone()),
    };
    if publish {
        let rec = SimEndpointFile {
            rest: handle.rest_url(),
            ws: handle.ws_url(),
            ws_api: handle.ws_api_url(),
            api_key: handle.api_key(),
            api_secret: secret.expose().to_string(),
            pid: std::process::id(),
        };
        write_private(&record_path, &serde_json::to_vec_pretty(&rec)?)?;
    }
    Ok((endpoints, Some(creds), Some(handle)))
}

fn read_endpoint(path: &Path) -> Option<SimEndpointFile> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

async fn reachable(rest: &str) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
    else {
        return false;
    };
    let url = format!("{}/api/v3/ping", rest.trim_end_matches('/'));
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

/// Writes a file readable by the owner only (0600), atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn keys_for(config: &Config, unlock: Unlock) -> anyhow::Result<Credentials> {
    if config.secrets.backend == crate::secrets::Backend::Env
        && let Some(k) = &config.env_keys
    {
        // The config refuses these outside development; here they are allowed, loudly.
        return Ok(Credentials {
            api_key: k.api_key.clone(),
            key: KeyMaterial::hmac(k.api_secret.clone()),
        });
    }
    let path = crate::vault::vault_path(Some(&config.paths.config_dir));
    let mut source: Box<dyn crate::vault::PassphraseSource> = match unlock {
        // No terminal to ask on (a script, a service): the unattended sources, when set.
        Unlock::Terminal if !std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            match unattended_passphrase(config)? {
                Some(p) => Box::new(crate::vault::ScriptedSource::new([p])),
                None => Box::new(crate::vault::TerminalPrompt),
            }
        }
        Unlock::Terminal => Box::new(crate::vault::TerminalPrompt),
        Unlock::Stdin => Box::new(crate::vault::StdinLines::new()?),
        Unlock::Given(Some(passphrase)) => Box::new(crate::vault::ScriptedSource::new([passphrase])),
        Unlock::Given(None) => anyhow::bail!(
            "{} mode needs the vault passphrase and nothing may prompt for it: set CRBOT_PASSPHRASE_FILE (or API_KEY_ENCRYPTION_KEY outside production)",
            config.mode
        ),
    };
    let keys = crate::vault::unlock_interactive(&path, config.mode, source.as_mut(), &std::thread::sleep)?;
    Ok(credentials_from(keys))
}

/// The vault passphrase for a start nobody can type it at: `CRBOT_PASSPHRASE_FILE` (0600 or
/// 0400, owned by this user), else `API_KEY_ENCRYPTION_KEY` (refused in production by the
/// config), else `None`.
pub fn unattended_passphrase(config: &Config) -> anyhow::Result<Option<SecretString>> {
    if let Some(path) = &config.passphrase_file {
        return Ok(Some(crate::vault::read_passphrase_file(path)?));
    }
    Ok(config.vault_passphrase_env.clone())
}

/// The client's credentials from the vault's keys.
pub fn credentials_from(keys: ModeKeys) -> Credentials {
    let key = match keys.secret {
        KeySecret::Hmac(s) => KeyMaterial::hmac(s),
        KeySecret::Ed25519(b) => KeyMaterial::ed25519(b),
    };
    Credentials {
        api_key: keys.api_key,
        key,
    }
}

/// Persists the 418 ban-until time so a restart honours it, as `<until_ms> <REST origin>`: a
/// ban belongs to the exchange that gave it. A file without an origin (older versions) is not
/// trusted: it could be any exchange's.
#[derive(Debug)]
pub struct FileBanStore {
    path: PathBuf,
}

impl FileBanStore {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl BanStore for FileBanStore {
    fn load(&self) -> Option<i64> {
        None
    }

    fn save(&self, _until_ms: i64) {}

    fn load_for(&self, origin: &str) -> Option<i64> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let (until, stored) = text.trim().split_once(' ')?;
        (stored == origin).then(|| until.parse().ok()).flatten()
    }

    fn save_for(&self, origin: &str, until_ms: i64) {
        if let Err(e) = write_private(&self.path, format!("{until_ms} {origin}").as_bytes()) {
            tracing::warn!(error = %e, "could not persist the ban-until time");
        }
    }
}
