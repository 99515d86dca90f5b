//! Configuration: where crbot's settings come from, what values they may take,
//! and the posture that `ENV` enforces.
//!
//! Owns: reading the three sources (process environment, then `.env` in the working directory,
//! then `<config dir>/crbot.env`), validating every variable, resolving the mode, and the
//! posture checks. Must not: mutate the process environment, print or log a secret value (an
//! error about an API key names the variable only), or start anything; it only describes.
//!
//! The work is split so that it can be tested without touching the machine:
//! [`Config::load`] reads the real sources into [`Sources`], and the pure
//! [`Config::from_sources`] does everything else.
//!
//! Posture by `ENV`:
//!
//! | rule | development | staging | production |
//! |---|---|---|---|
//! | `DEBUG=true` | allowed, warning | refused | refused |
//! | `BINANCE_API_KEY`/`SECRET` in plain text | allowed, loud warning | refused | refused |
//! | `SECRETS_BACKEND=env` (the same keys) | allowed, loud warning | refused | refused |
//! | `VAULT_ADDR`/`AWS_ENDPOINT_URL` over `http://` | allowed, warning | loopback only | refused |
//! | `http://`/`ws://` override to a loopback host | allowed, warning | allowed, warning | refused |
//! | `http://`/`ws://` override elsewhere | allowed, loud warning | refused | refused |
//!
//! Staging is the rehearsal of production, so it keeps production's rules for debug and keys;
//! it still allows plain-text endpoints on this machine only, so that a rehearsal can run
//! against the local exchange (`crbot sim`).

mod api;
mod dotenv;
mod kill_key;
mod redact;
mod secrets;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;
use url::Url;

pub use api::{ApiConfig, DEFAULT_API_ADDR, RemoteEngine};
pub use kill_key::{KeyName, KillKey};
pub use redact::redact_urls;

use crate::domain::Mode;
use crate::domain::money::{DecimalError, parse_decimal};
use crate::secret::SecretString;

/// The name of the file read from the config folder.
pub const CONFIG_FILE_NAME: &str = "crbot.env";

/// One variable crbot reads: its name, default and allowed values (also the source of
/// `.env.example`'s comments, which a test keeps in step).
#[derive(Debug, Clone, Copy)]
pub struct VarDoc {
    pub name: &'static str,
    pub default: &'static str,
    pub allowed: &'static str,
}

const PERCENT: &str = "0 < value <= 100";

const fn var(name: &'static str, default: &'static str, allowed: &'static str) -> VarDoc {
    VarDoc {
        name,
        default,
        allowed,
    }
}

/// Every variable crbot reads.
pub const VARIABLES: &[VarDoc] = &[
    var("ENV", "development", "development, staging, production"),
    var("DEBUG", "false", "true or false"),
    var(
        "SECRET_KEY",
        "(unset; development generates one)",
        "at least 32 characters (signs the control API's tokens)",
    ),
    var(
        "DATABASE_URL",
        "<data dir>/journal-<mode>.db",
        "a file path or sqlite://PATH",
    ),
    var(
        "PGPASSWORD",
        "(unset)",
        "the PostgreSQL password when DATABASE_URL (or journal migrate --to) gives none",
    ),
    var("BINANCE_API_KEY", "(unset)", "development only; use the vault"),
    var("BINANCE_API_SECRET", "(unset)", "development only; use the vault"),
    var("BINANCE_TESTNET", "(unset)", "true (testnet) or false (live)"),
    var("MAX_DAILY_LOSS_PERCENT", "5.0", PERCENT),
    var("MAX_DRAWDOWN_PERCENT", "10.0", PERCENT),
    var("MAX_TRADES_PER_DAY", "10", "1 <= value <= 1000"),
    var("MAX_POSITION_SIZE_PERCENT", "5.0", PERCENT),
    var("MIN_RISK_REWARD", "1.0", "0 <= value <= 100"),
    var("BINANCE_REST_URL", "(per mode)", "an http(s):// origin"),
    var("BINANCE_WS_URL", "(per mode)", "a ws(s):// origin"),
    var("BINANCE_WS_API_URL", "(per mode)", "a ws(s):// URL"),
    VarDoc {
        name: "CRBOT_MODE",
        default: "sim",
        allowed: "sim, paper, demo, testnet, live",
    },
    var("CRBOT_HOME", "(the user folders)", "a folder"),
    var("CRBOT_LOG", "RUST_LOG, else info", "a tracing filter"),
    var("FAT_FINGER_PERCENT", "5.0", PERCENT),
    var("RECV_WINDOW_MS", "5000", "1 <= value <= 60000"),
    var("KILL_KEY", "ctrl-k", KillKey::ALLOWED),
    var("CRBOT_BELL", "true", "true or false"),
    var("CRBOT_MOUSE", "true", "true or false"),
    var("CRBOT_DETAIL_MS", "500", "0 <= value <= 2000"),
    var(
        "CRBOT_THEME",
        "dark (custom when theme.toml exists)",
        "dark, light, high-contrast, mono, custom",
    ),
    VarDoc {
        name: "AUTO_HALT_ACTION",
        default: "reduce",
        allowed: "reduce, halt_flatten",
    },
    var("JWT_EXPIRE_HOURS", "24", "1 <= value <= 8760"),
    var(
        "RATE_LIMIT_REQUESTS",
        "100",
        "0 <= value <= 100000 (0: off, development only)",
    ),
    var("RATE_LIMIT_WINDOW_SECS", "60", "1 <= value <= 86400"),
    var(
        "CORS_ORIGINS",
        "(none)",
        "comma-separated origins such as https://app.example.com",
    ),
    var("CRBOT_API_ADDR", DEFAULT_API_ADDR, "HOST:PORT with an IP address"),
    var(
        "API_TLS_CERT",
        "(unset: plain HTTP)",
        "a PEM certificate chain file (with API_TLS_KEY: crbot serve speaks HTTPS)",
    ),
    var(
        "API_TLS_KEY",
        "(unset)",
        "a PEM private key file (with API_TLS_CERT)",
    ),
    var(
        "ALERT_WEBHOOK_URL",
        "(unset: no alerts)",
        "an https:// URL (http:// outside production) receiving JSON alerts",
    ),
    var(
        "CRBOT_PASSPHRASE_FILE",
        "(unset)",
        "a file of mode 0600 or 0400, owned by the user crbot runs as, holding the vault passphrase (crbot serve; commands and the console without a terminal)",
    ),
    var(
        "API_KEY_ENCRYPTION_KEY",
        "(unset)",
        "the vault passphrase itself, for unattended starts without CRBOT_PASSPHRASE_FILE; refused in production",
    ),
    var(
        "REDIS_URL",
        "(unset)",
        "not used: crbot does not use Redis (said once at start-up)",
    ),
    var(
        "SECRETS_BACKEND",
        "vault",
        "vault, aws, hashicorp, env (env: development only)",
    ),
    var(
        "AWS_SECRET_ID",
        "(unset)",
        "the secret's name or ARN (SECRETS_BACKEND=aws), e.g. crbot/binance/prod",
    ),
    var("AWS_REGION", "(the AWS chain)", "an AWS region such as eu-west-1"),
    var(
        "AWS_ENDPOINT_URL",
        "(AWS's own)",
        "an https:// origin (http:// outside production, on this machine in staging)",
    ),
    var(
        "VAULT_ADDR",
        "(unset)",
        "HashiCorp Vault's https:// origin (SECRETS_BACKEND=hashicorp)",
    ),
    var("VAULT_TOKEN", "(unset)", "a Vault token (or AppRole below)"),
    var(
        "VAULT_ROLE_ID",
        "(unset)",
        "an AppRole role ID (with VAULT_SECRET_ID)",
    ),
    var(
        "VAULT_SECRET_ID",
        "(unset)",
        "an AppRole secret ID (with VAULT_ROLE_ID)",
    ),
    var("VAULT_KV_MOUNT", "secret", "the KV version 2 mount"),
    var(
        "VAULT_SECRET_PATH",
        "crbot/binance",
        "the secret's path in that mount",
    ),
    var(
        "CRBOT_ADVERTISE_URL",
        "(the address crbot serve listens on; none for 0.0.0.0 or ::)",
        api::ADVERTISE_URL_ALLOWED,
    ),
    var("CRBOT_API_URL", "(unset)", api::API_URL_ALLOWED),
    var("CRBOT_API_TOKEN", "(unset)", api::API_TOKEN_ALLOWED),
];

/// Read too, but only as the fallback of `CRBOT_LOG`.
const OTHER_KNOWN: &[&str] = &["RUST_LOG"];

/// A configuration that cannot be used; `Display` is the one line printed at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("{name}={value} {problem}: allowed {allowed}")]
    BadValue {
        name: &'static str,
        value: String,
        problem: &'static str,
        allowed: String,
    },
    /// A problem with a secret variable: the value is never shown.
    #[error("{name} {problem}")]
    BadSecret { name: &'static str, problem: String },
    /// A value the posture of `ENV` forbids.
    #[error("{setting} is refused with ENV={env}: {why}")]
    Refused {
        setting: String,
        env: Environment,
        why: String,
    },
    /// Two settings that select different things (which network real orders go to).
    #[error("{first} contradicts {second}: {why}")]
    Contradiction {
        first: String,
        second: String,
        why: String,
    },
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("cannot find the user's folders (no home directory): set CRBOT_HOME or use --home DIR")]
    NoHome,
}

/// The deployment posture (`ENV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Environment {
    #[default]
    Development,
    Staging,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" => Ok(Environment::Development),
            "staging" => Ok(Environment::Staging),
            "production" => Ok(Environment::Production),
            _ => Err(()),
        }
    }
}

/// What happens when an automated trigger (daily loss, drawdown) fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoHaltAction {
    /// Go to *reducing*: entry orders are cancelled, protective orders stay.
    #[default]
    Reduce,
    /// Halt and flatten crbot's positions.
    HaltFlatten,
}

impl AutoHaltAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoHaltAction::Reduce => "reduce",
            AutoHaltAction::HaltFlatten => "halt_flatten",
        }
    }
}

/// Where the mode came from, for the header and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeSource {
    CommandLine,
    CrbotMode,
    BinanceTestnet,
    Default,
}

/// The risk limits as configured (the risk engine turns them into its own type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskLimitsConfig {
    pub max_daily_loss_percent: Decimal,
    pub max_drawdown_percent: Decimal,
    pub max_trades_per_day: u32,
    pub max_position_size_percent: Decimal,
    pub min_risk_reward: Decimal,
    /// Limit prices further than this from the best bid/ask are refused.
    pub fat_finger_percent: Decimal,
}

impl Default for RiskLimitsConfig {
    fn default() -> Self {
        Self {
            max_daily_loss_percent: Decimal::new(50, 1),
            max_drawdown_percent: Decimal::new(100, 1),
            max_trades_per_day: 10,
            max_position_size_percent: Decimal::new(50, 1),
            min_risk_reward: Decimal::new(10, 1),
            fat_finger_percent: Decimal::new(50, 1),
        }
    }
}

/// Base URL overrides; `None` means the mode's own endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    pub rest: Option<Url>,
    pub ws: Option<Url>,
    pub ws_api: Option<Url>,
}

/// API credentials read from plain text (development only).
#[derive(Debug, Clone)]
pub struct EnvKeys {
    pub api_key: SecretString,
    pub api_secret: SecretString,
}

/// The folders crbot uses. With `--home`/`CRBOT_HOME` both are that folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Config file and vault.
    pub config_dir: PathBuf,
    /// Journals and logs.
    pub data_dir: PathBuf,
}

impl Paths {
    /// The user folders for crbot (`~/.config/crbot`, `~/.local/share/crbot` on Linux).
    pub fn user_default() -> Option<Paths> {
        let dirs = directories::ProjectDirs::from("", "", "crbot")?;
        Some(Paths {
            config_dir: dirs.config_dir().to_path_buf(),
            data_dir: dirs.data_dir().to_path_buf(),
        })
    }

    fn home(dir: &Path) -> Paths {
        Paths {
            config_dir: dir.to_path_buf(),
            data_dir: dir.to_path_buf(),
        }
    }
}

/// Everything [`Config::from_sources`] reads: the three key/value sources in priority order
/// and the command line.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub process: BTreeMap<String, String>,
    /// `.env` in the working directory.
    pub dotenv: BTreeMap<String, String>,
    /// `<config dir>/crbot.env`.
    pub config_file: BTreeMap<String, String>,
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--home`.
    pub home: Option<PathBuf>,
    /// The user folders, used when no home is given (`None`: there is no home directory).
    pub default_paths: Option<Paths>,
}

/// Where a value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Process,
    DotEnv,
    ConfigFile,
}

impl Origin {
    fn describe(self) -> &'static str {
        match self {
            Origin::Process => "the environment",
            Origin::DotEnv => ".env",
            Origin::ConfigFile => CONFIG_FILE_NAME,
        }
    }
}

impl Sources {
    /// The value of `name` from the first source that has it; an empty value counts as unset
    /// (so a copied `.env.example` with blank lines means "default").
    fn get(&self, name: &str) -> Option<(&str, Origin)> {
        [
            (&self.process, Origin::Process),
            (&self.dotenv, Origin::DotEnv),
            (&self.config_file, Origin::ConfigFile),
        ]
        .into_iter()
        .find_map(|(map, origin)| {
            map.get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| (v, origin))
        })
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(|(v, _)| v)
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub debug: bool,
    pub mode: Mode,
    pub mode_source: ModeSource,
    pub paths: Paths,
    /// `DATABASE_URL` as a path; `None` means the per-mode default of [`Config::journal_path`].
    pub database_path: Option<PathBuf>,
    /// `DATABASE_URL=postgresql://…`: the journal is in PostgreSQL (its `Debug` and every
    /// message show the URL with the password masked).
    pub database_postgres: Option<crate::journal::PgTarget>,
    pub limits: RiskLimitsConfig,
    pub endpoints: EndpointOverrides,
    /// Plain-text keys, present only where the posture allows them (development).
    pub env_keys: Option<EnvKeys>,
    /// `SECRETS_BACKEND` and its settings: where a mode with keys gets them.
    pub secrets: crate::secrets::SecretsSettings,
    /// Signs the control API's tokens; never printed. `None`: development generates one.
    pub secret_key: Option<SecretString>,
    /// The control API (`crbot serve`, `crbot token`).
    pub api: ApiConfig,
    /// Where `crbot serve` reads the vault passphrase (it never prompts); read only when needed.
    pub passphrase_file: Option<PathBuf>,
    /// `API_KEY_ENCRYPTION_KEY`: the vault passphrase for unattended starts (never in production).
    pub vault_passphrase_env: Option<SecretString>,
    pub recv_window_ms: u64,
    pub kill_key: KillKey,
    pub bell: bool,
    /// `CRBOT_DETAIL_MS`: how often the order book and trade tape are shown anew, in ms (0:
    /// with every snapshot). Fewer bytes over SSH; prices elsewhere follow every snapshot.
    pub detail_ms: u64,
    /// `CRBOT_THEME`: the screen's theme by name (the screen checks the name; a bad one gets
    /// the default theme and a note on screen, never a refused start).
    pub theme: Option<String>,
    pub auto_halt_action: AutoHaltAction,
    /// A `tracing` filter: `CRBOT_LOG`, else `RUST_LOG`, else `info`.
    pub log_filter: String,
    /// Things allowed by the posture but worth shouting about; the screen shows them.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the real sources (without changing the process environment) and validates them.
    /// `home` is `--home`; `CRBOT_HOME` is read here with the other variables.
    pub fn load(mode: Option<Mode>, home: Option<PathBuf>) -> Result<Config, ConfigError> {
        let process: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .filter(|(k, _)| is_known(k))
            .collect();
        let dotenv = read_env_file(Path::new(".env"))?;
        let mut sources = Sources {
            process,
            dotenv,
            config_file: BTreeMap::new(),
            mode,
            home,
            default_paths: Paths::user_default(),
        };
        if let Ok(paths) = resolve_paths(&sources) {
            sources.config_file = read_env_file(&paths.config_dir.join(CONFIG_FILE_NAME))?;
        }
        Config::from_sources(&sources)
    }

    /// Validates `sources`: every variable, the mode, and the posture of `ENV`.
    pub fn from_sources(sources: &Sources) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        for (file, map) in [
            (".env", &sources.dotenv),
            (CONFIG_FILE_NAME, &sources.config_file),
        ] {
            for key in map.keys().filter(|k| !is_known(k)) {
                warnings.push(format!("{file}: unknown variable {key} is ignored (a typo?)"));
            }
        }
        if sources.config_file.contains_key("CRBOT_HOME") {
            warnings.push(format!(
                "{CONFIG_FILE_NAME}: CRBOT_HOME is ignored there (the file is found through it)"
            ));
        }

        let env = match sources.value("ENV") {
            None => Environment::Development,
            Some(v) => v
                .parse()
                .map_err(|()| bad("ENV", v, "is not valid", "development, staging, production"))?,
        };
        let debug = parse_bool(sources, "DEBUG")?.unwrap_or(false);
        let testnet = parse_bool(sources, "BINANCE_TESTNET")?;
        let crbot_mode = match sources.value("CRBOT_MODE") {
            None => None,
            Some(v) => Some(
                v.parse::<Mode>()
                    .map_err(|_| bad("CRBOT_MODE", v, "is not valid", "sim, paper, demo, testnet, live"))?,
            ),
        };
        let (mode, mode_source) = resolve_mode(sources.mode, crbot_mode, testnet);
        // The seed's variable still says which network the trader means; a mode that says the
        // other one is ambiguous about real money, so neither is guessed.
        if let Some(t) = testnet
            && matches!((mode, t), (Mode::Live, true) | (Mode::Testnet, false))
        {
            let by = match mode_source {
                ModeSource::CommandLine => format!("--mode {mode}"),
                _ => format!("CRBOT_MODE={mode}"),
            };
            return Err(ConfigError::Contradiction {
                first: by,
                second: format!("BINANCE_TESTNET={t}"),
                why: "one selects testnet, the other live; remove BINANCE_TESTNET or make them agree".into(),
            });
        }
        if (mode, mode_source) == (Mode::Live, ModeSource::BinanceTestnet) {
            warnings.push(
                "LIVE mode was selected by BINANCE_TESTNET=false (no --mode or CRBOT_MODE given)".to_string(),
            );
        }

        let paths = resolve_paths(sources)?;
        let (database_path, database_postgres) = database(sources, env)?;

        let limits = RiskLimitsConfig {
            max_daily_loss_percent: percent(sources, "MAX_DAILY_LOSS_PERCENT", Decimal::new(50, 1))?,
            max_drawdown_percent: percent(sources, "MAX_DRAWDOWN_PERCENT", Decimal::new(100, 1))?,
            max_trades_per_day: u32::try_from(integer(sources, "MAX_TRADES_PER_DAY", 10, 1, 1000)?)
                .unwrap_or(10),
            max_position_size_percent: percent(sources, "MAX_POSITION_SIZE_PERCENT", Decimal::new(50, 1))?,
            min_risk_reward: min_risk_reward(sources)?,
            fat_finger_percent: percent(sources, "FAT_FINGER_PERCENT", Decimal::new(50, 1))?,
        };
        let recv_window_ms = integer(sources, "RECV_WINDOW_MS", 5000, 1, 60_000)?;
        let kill_key = match sources.value("KILL_KEY") {
            None => KillKey::DEFAULT,
            Some(v) => v
                .parse()
                .map_err(|()| bad("KILL_KEY", v, "is not valid", KillKey::ALLOWED))?,
        };
        let bell = parse_bool(sources, "CRBOT_BELL")?.unwrap_or(true);
        let detail_ms = integer(sources, "CRBOT_DETAIL_MS", 500, 0, 2_000)?;
        let theme = sources.value("CRBOT_THEME").map(str::to_string);
        let auto_halt_action = match sources.value("AUTO_HALT_ACTION") {
            None => AutoHaltAction::Reduce,
            Some(v) if v.eq_ignore_ascii_case("reduce") => AutoHaltAction::Reduce,
            Some(v) if v.eq_ignore_ascii_case("halt_flatten") => AutoHaltAction::HaltFlatten,
            Some(v) => return Err(bad("AUTO_HALT_ACTION", v, "is not valid", "reduce, halt_flatten")),
        };
        let log_filter = log_filter(sources)?;
        let secret_key = sources.value("SECRET_KEY").map(SecretString::from);
        let api = api::api_config(sources, env)?;
        let passphrase_file = sources.value("CRBOT_PASSPHRASE_FILE").map(PathBuf::from);

        // ----- posture -----
        if debug {
            match env {
                Environment::Development => {
                    warnings.push("DEBUG=true: development diagnostics are on".to_string());
                }
                _ => {
                    return Err(ConfigError::Refused {
                        setting: "DEBUG=true".into(),
                        env,
                        why: "debug output may expose account details; unset DEBUG or set it to false".into(),
                    });
                }
            }
        }

        let env_keys = env_keys(sources, env, &mut warnings)?;
        let secrets = secrets::secrets_settings(sources, env, env_keys.is_some(), &mut warnings)?;
        let vault_passphrase_env = vault_passphrase_env(sources, env)?;
        if sources.value("REDIS_URL").is_some() {
            warnings.push(REDIS_NOTE.to_string());
        }

        let endpoints = EndpointOverrides {
            rest: endpoint(
                sources,
                "BINANCE_REST_URL",
                &["https", "http"],
                env,
                &mut warnings,
            )?,
            ws: endpoint(sources, "BINANCE_WS_URL", &["wss", "ws"], env, &mut warnings)?,
            ws_api: endpoint(sources, "BINANCE_WS_API_URL", &["wss", "ws"], env, &mut warnings)?,
        };

        Ok(Config {
            env,
            debug,
            mode,
            mode_source,
            paths,
            database_path,
            database_postgres,
            limits,
            endpoints,
            env_keys,
            secrets,
            secret_key,
            api,
            passphrase_file,
            vault_passphrase_env,
            recv_window_ms,
            kill_key,
            bell,
            detail_ms,
            theme,
            auto_halt_action,
            log_filter,
            warnings,
        })
    }

    /// The journal file: `DATABASE_URL` if set, else `<data dir>/journal-<mode>.db`. For a
    /// PostgreSQL journal, its URL with the password masked (for messages: the journal refuses
    /// to open it as a file; use [`Config::journal_location`]).
    pub fn journal_path(&self) -> PathBuf {
        if let Some(t) = &self.database_postgres {
            return PathBuf::from(t.shown());
        }
        self.database_path
            .clone()
            .unwrap_or_else(|| self.paths.data_dir.join(format!("journal-{}.db", self.mode)))
    }

    /// Whether this mode's keys come from the passphrase vault (`SECRETS_BACKEND=vault`), so
    /// that starting and re-arming need its passphrase.
    pub fn keys_from_vault(&self) -> bool {
        self.mode.needs_keys() && self.secrets.backend == crate::secrets::Backend::Vault
    }

    /// Where this mode's journal is: the file of [`Config::journal_path`], or PostgreSQL.
    pub fn journal_location(&self) -> crate::journal::Location {
        match &self.database_postgres {
            Some(t) => crate::journal::Location::Postgres(t.clone()),
            None => crate::journal::Location::Sqlite(self.journal_path()),
        }
    }

    /// JSON log lines in production, plain text otherwise.
    pub fn json_logs(&self) -> bool {
        self.env == Environment::Production
    }
}

fn is_known(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.name == name) || OTHER_KNOWN.contains(&name)
}

/// CLI `--mode` > `CRBOT_MODE` > `BINANCE_TESTNET` (true → testnet, false → live) > sim.
fn resolve_mode(cli: Option<Mode>, crbot_mode: Option<Mode>, testnet: Option<bool>) -> (Mode, ModeSource) {
    if let Some(m) = cli {
        (m, ModeSource::CommandLine)
    } else if let Some(m) = crbot_mode {
        (m, ModeSource::CrbotMode)
    } else if let Some(t) = testnet {
        (
            if t { Mode::Testnet } else { Mode::Live },
            ModeSource::BinanceTestnet,
        )
    } else {
        (Mode::Sim, ModeSource::Default)
    }
}

/// `--home` > `CRBOT_HOME` (environment or `.env`; empty means unset) > the user folders.
fn resolve_paths(sources: &Sources) -> Result<Paths, ConfigError> {
    match home_of(sources) {
        Some(home) => Ok(Paths::home(&home)),
        None => sources.default_paths.clone().ok_or(ConfigError::NoHome),
    }
}

/// `--home`, else a non-empty `CRBOT_HOME` from the environment or `.env` (not from
/// `crbot.env`, which is found through it).
fn home_of(sources: &Sources) -> Option<PathBuf> {
    let from_env = || {
        [&sources.process, &sources.dotenv]
            .into_iter()
            .find_map(|m| m.get("CRBOT_HOME").map(|v| v.trim()).filter(|v| !v.is_empty()))
            .map(PathBuf::from)
    };
    sources.home.clone().or_else(from_env)
}

/// The home folder given by `--home` or `CRBOT_HOME` (environment, then `.env`), by the same
/// rule as [`Config::load`]: for the commands that run without a valid configuration (the
/// vault), so that they use the same folder as everything else.
pub fn home_override(cli_home: Option<PathBuf>) -> Result<Option<PathBuf>, ConfigError> {
    if cli_home.is_some() {
        return Ok(cli_home);
    }
    let sources = Sources {
        process: std::env::var("CRBOT_HOME")
            .ok()
            .map(|v| ("CRBOT_HOME".to_string(), v))
            .into_iter()
            .collect(),
        dotenv: read_env_file(Path::new(".env"))?,
        ..Sources::default()
    };
    Ok(home_of(&sources))
}

/// Shows a value on one line, escaped and cut short, with any URL's password and query values
/// hidden (a value is quoted back exactly when it is wrong, and a wrong URL may still carry a
/// real password).
fn shown(value: &str) -> String {
    let escaped: String = redact_urls(value).escape_debug().collect();
    if escaped.chars().count() > 64 {
        let cut: String = escaped.chars().take(64).collect();
        format!("{cut}…")
    } else {
        escaped
    }
}

fn bad(name: &'static str, value: &str, problem: &'static str, allowed: &str) -> ConfigError {
    ConfigError::BadValue {
        name,
        value: shown(value),
        problem,
        allowed: allowed.to_string(),
    }
}

fn parse_bool(sources: &Sources, name: &'static str) -> Result<Option<bool>, ConfigError> {
    let Some(v) = sources.value(name) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(bad(name, v, "is not valid", "true or false")),
    }
}

fn decimal_in(
    sources: &Sources,
    name: &'static str,
    default: Decimal,
    allowed: &str,
    ok: impl Fn(Decimal) -> bool,
) -> Result<Decimal, ConfigError> {
    let Some(v) = sources.value(name) else {
        return Ok(default);
    };
    let text = v.strip_prefix('+').unwrap_or(v);
    let d = match parse_decimal(text, true) {
        Ok(d) => d,
        // Well formed, but more digits than a Decimal holds (28): a number that large is out
        // of every range here; otherwise the digits are decimal places no limit can use.
        Err(DecimalError::OutOfRange(_)) => {
            let whole = text.trim_start_matches('-').split('.').next().unwrap_or("");
            let problem = if whole.trim_start_matches('0').len() > 28 {
                "is out of range"
            } else {
                "has too many digits (at most 28)"
            };
            return Err(bad(name, v, problem, allowed));
        }
        Err(_) => return Err(bad(name, v, "is not a number", allowed)),
    };
    if ok(d) {
        Ok(d)
    } else {
        Err(bad(name, v, "is out of range", allowed))
    }
}

fn percent(sources: &Sources, name: &'static str, default: Decimal) -> Result<Decimal, ConfigError> {
    decimal_in(sources, name, default, PERCENT, |d| {
        d > Decimal::ZERO && d <= Decimal::ONE_HUNDRED
    })
}

fn min_risk_reward(sources: &Sources) -> Result<Decimal, ConfigError> {
    decimal_in(
        sources,
        "MIN_RISK_REWARD",
        Decimal::ONE,
        "0 <= value <= 100",
        |d| d >= Decimal::ZERO && d <= Decimal::ONE_HUNDRED,
    )
}

fn integer(
    sources: &Sources,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let allowed = format!("{min} <= value <= {max}");
    let Some(v) = sources.value(name) else {
        return Ok(default);
    };
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(name, v, "is not a whole number", &allowed));
    }
    // Any length of digits is a well-formed number: one too long for u64 is out of range.
    match v.strip_prefix('+').unwrap_or(v).parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(name, v, "is out of range", &allowed)),
    }
}

/// `DATABASE_URL`: a file (or none: the per-mode default), or a PostgreSQL journal, which
/// production refuses over a plain connection.
fn database(
    sources: &Sources,
    env: Environment,
) -> Result<(Option<PathBuf>, Option<crate::journal::PgTarget>), ConfigError> {
    Ok(match sources.value("DATABASE_URL") {
        None => (None, None),
        Some(v) => match parse_database_url(v)? {
            DatabaseUrl::File(p) => (Some(p), None),
            DatabaseUrl::Postgres(t) => {
                let t = t.with_default_password(sources.value("PGPASSWORD"));
                if env == Environment::Production && t.tls() == crate::journal::PgTls::Off {
                    return Err(ConfigError::BadValue {
                        name: "DATABASE_URL",
                        value: shown(v),
                        problem: "is a plain PostgreSQL connection, which production refuses \
                                      (the journal would cross the network unencrypted)",
                        allowed: "postgresql://…?sslmode=verify-full (TLS with the server's \
                                      certificate verified; sslrootcert=FILE for a private CA)"
                            .to_string(),
                    });
                }
                (None, Some(t))
            }
        },
    })
}

/// What `DATABASE_URL` names.
enum DatabaseUrl {
    File(PathBuf),
    Postgres(crate::journal::PgTarget),
}

/// `DATABASE_URL`: a path, `sqlite://PATH` / `sqlite:PATH` (`sqlite:///abs/path` for an
/// absolute one), the same with `file:`, or `postgresql://…` / `postgres://…`.
///
/// A value that starts with a URL scheme is never taken as a file name: a mistyped database
/// URL would otherwise become a new, empty journal in the working directory, and the trader
/// would trade with no history and no limits carried over. Such a value may hold a password,
/// so it is shown redacted or by its scheme only.
fn parse_database_url(v: &str) -> Result<DatabaseUrl, ConfigError> {
    const NAME: &str = "DATABASE_URL";
    const ALLOWED: &str = "a file path, sqlite://PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE";
    let Some(scheme) = url_scheme(v) else {
        return Ok(DatabaseUrl::File(PathBuf::from(v)));
    };
    let after = &v[scheme.len() + 1..];
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" | "file" => {
            let path = after.strip_prefix("//").unwrap_or(after);
            if path.is_empty() {
                return Err(bad(NAME, v, "has no path", ALLOWED));
            }
            Ok(DatabaseUrl::File(PathBuf::from(path)))
        }
        "postgresql" | "postgres" => {
            let parsed = if after.starts_with("//") {
                crate::journal::PgTarget::parse(v)
            } else {
                Err("has no // after the scheme".to_string())
            };
            parsed
                .map(DatabaseUrl::Postgres)
                .map_err(|why| ConfigError::BadValue {
                    name: NAME,
                    value: format!("{}:…", shown(scheme)),
                    problem: "is not a valid PostgreSQL URL",
                    allowed: format!(
                        "postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=verify-full] (this \
                     one {why}), a file path or sqlite://PATH"
                    ),
                })
        }
        _ => Err(ConfigError::BadValue {
            name: NAME,
            value: format!("{}:…", shown(scheme)),
            problem: "is not supported (crbot's journal is SQLite or PostgreSQL; for a file whose \
                      name has a colon, write ./NAME)",
            allowed: ALLOWED.to_string(),
        }),
    }
}

/// The scheme of `v` when it starts like a URL (`scheme:`), as RFC 3986 spells one. A single
/// letter is a Windows drive (`C:\`), not a scheme.
fn url_scheme(v: &str) -> Option<&str> {
    let (scheme, _) = v.split_once(':')?;
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (well_formed && scheme.len() > 1).then_some(scheme)
}

fn log_filter(sources: &Sources) -> Result<String, ConfigError> {
    for name in ["CRBOT_LOG", "RUST_LOG"] {
        if let Some(v) = sources.value(name) {
            // Filters are ASCII (targets, levels, field names). The parser of
            // tracing-subscriber 0.3 panics on some non-ASCII input (it slices a directive
            // inside a multi-byte character), so such a value never reaches it.
            let parsed = if v.is_ascii() {
                tracing_subscriber::EnvFilter::builder()
                    .parse(v)
                    .map(drop)
                    .map_err(drop)
            } else {
                Err(())
            };
            parsed.map_err(|_| {
                bad(
                    name,
                    v,
                    "is not valid",
                    "a tracing filter such as info or crbot=debug,info",
                )
            })?;
            return Ok(v.to_string());
        }
    }
    Ok("info".to_string())
}

/// Said once at start-up when `REDIS_URL` is set.
pub const REDIS_NOTE: &str = "REDIS_URL is set but crbot does not use Redis: PostgreSQL coordinates \
     engines, and one engine per account holds its state in memory; REDIS_URL is ignored";

/// `API_KEY_ENCRYPTION_KEY`, the vault passphrase for unattended starts. Refused in production,
/// where it would sit in plain text next to the vault (use `CRBOT_PASSPHRASE_FILE`).
fn vault_passphrase_env(sources: &Sources, env: Environment) -> Result<Option<SecretString>, ConfigError> {
    let Some((value, origin)) = sources.get("API_KEY_ENCRYPTION_KEY") else {
        return Ok(None);
    };
    if env == Environment::Production {
        return Err(ConfigError::Refused {
            setting: format!("API_KEY_ENCRYPTION_KEY in {}", origin.describe()),
            env,
            why: "it is the vault's passphrase in plain text next to the vault; remove it and use \
                  CRBOT_PASSPHRASE_FILE (a 0600 or 0400 file owned by crbot's user)"
                .into(),
        });
    }
    Ok(Some(SecretString::from(value)))
}

fn env_keys(
    sources: &Sources,
    env: Environment,
    warnings: &mut Vec<String>,
) -> Result<Option<EnvKeys>, ConfigError> {
    let key = sources.get("BINANCE_API_KEY");
    let secret = sources.get("BINANCE_API_SECRET");
    let (key, secret) = match (key, secret) {
        (None, None) => return Ok(None),
        (Some(k), Some(s)) => (k, s),
        (Some(_), None) => {
            return Err(ConfigError::BadSecret {
                name: "BINANCE_API_KEY",
                problem: "is set but BINANCE_API_SECRET is not: set both or neither".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::BadSecret {
                name: "BINANCE_API_SECRET",
                problem: "is set but BINANCE_API_KEY is not: set both or neither".into(),
            });
        }
    };
    let origin = if key.1 == secret.1 {
        key.1.describe().to_string()
    } else {
        format!("{} and {}", key.1.describe(), secret.1.describe())
    };
    if env != Environment::Development {
        return Err(ConfigError::Refused {
            setting: format!("BINANCE_API_KEY/BINANCE_API_SECRET in {origin}"),
            env,
            why: "plain-text credentials are not allowed outside development; remove them and store \
                  the keys in the vault (`crbot vault set-keys`)"
                .into(),
        });
    }
    warnings.push(format!(
        "API keys are read in plain text from {origin}: allowed only because ENV=development; \
         use the vault (`crbot vault set-keys`) for anything real"
    ));
    Ok(Some(EnvKeys {
        api_key: SecretString::from(key.0),
        api_secret: SecretString::from(secret.0),
    }))
}

fn endpoint(
    sources: &Sources,
    name: &'static str,
    schemes: &[&str; 2],
    env: Environment,
    warnings: &mut Vec<String>,
) -> Result<Option<Url>, ConfigError> {
    let [secure, plain] = *schemes;
    let allowed = VARIABLES
        .iter()
        .find(|d| d.name == name)
        .map_or("a URL", |d| d.allowed);
    let Some(v) = sources.value(name) else {
        return Ok(None);
    };
    let url = Url::parse(v).map_err(|_| bad(name, v, "is not a URL", allowed))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::BadSecret {
            name,
            problem: "must not carry a user name or password".into(),
        });
    }
    if url.host_str().is_none() {
        return Err(bad(name, v, "has no host", allowed));
    }
    // REST and stream URLs are origins: crbot appends `/api/v3/…` and `/stream?…` itself.
    let origin_only = name != "BINANCE_WS_API_URL";
    if origin_only && (url.path() != "/" || url.query().is_some()) {
        return Err(bad(name, v, "is not an origin (remove the path)", allowed));
    }
    if url.scheme() == secure {
        return Ok(Some(url));
    }
    if url.scheme() != plain {
        return Err(bad(name, v, "has the wrong scheme", allowed));
    }
    let loopback = is_loopback(&url);
    let refuse = match env {
        Environment::Production => true,
        Environment::Staging => !loopback,
        Environment::Development => false,
    };
    if refuse {
        return Err(ConfigError::Refused {
            setting: format!("{name}={}", shown(v)),
            env,
            why: format!(
                "{plain}:// is unencrypted (signed requests and account data would cross the network \
                 in plain text); use {secure}://{}",
                if env == Environment::Staging {
                    " or a loopback address"
                } else {
                    ""
                }
            ),
        });
    }
    let where_ = if loopback {
        "on this machine"
    } else {
        "OVER THE NETWORK"
    };
    warnings.push(format!(
        "{name}={} is unencrypted {plain}:// {where_}; allowed only because ENV={env}",
        shown(v)
    ));
    Ok(Some(url))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Reads a dotenv-format file (see [`parse_env`]) without touching the process environment.
/// A missing file is empty.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                problem: format!("cannot be read: {e}"),
            });
        }
    };
    parse_env(text.as_slice()).map_err(|problem| ConfigError::File {
        path: path.to_path_buf(),
        problem,
    })
}

/// Parses dotenv text: `NAME=VALUE` lines, `#` comments (also after an unquoted value),
/// `export`, single and double quotes. `$` is literal, and a name given twice is an error
/// naming both lines. Errors never quote a value or a line (it may hold a secret).
pub fn parse_env<R: std::io::Read>(mut reader: R) -> Result<BTreeMap<String, String>, String> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        format!("line {line} is not UTF-8 text")
    })?;
    Ok(dotenv::parse(&text)?
        .into_iter()
        .map(|(name, entry)| (name, entry.value))
        .collect())
}
