//! What the secrets-backend tests share: moto's Secrets Manager server (`moto[server]` from
//! PyPI) on a free loopback port, a HashiCorp Vault KV version 2 double (`kv_double`), and the
//! `crbot` binary in testnet mode aimed at a local exchange with no keys of its own in the
//! environment, so that the keys can only come from the backend under test.
//!
//! Owns: finding or installing `moto_server`, starting and stopping it, its set-up calls.
//! Must not: pass when moto cannot be had (the test fails saying how to install it).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod kv_double;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

/// How to get moto, said by every failure to find it.
const INSTALL: &str = "install moto's server: python3 -m venv target/moto-venv && \
    target/moto-venv/bin/pip install \"moto[server]==5.2.1\" (or set MOTO_SERVER_BIN to a moto_server)";

/// `MOTO_SERVER_BIN`, else `moto_server` on PATH, else `target/moto-venv/bin/moto_server`,
/// created with pip when missing (once per machine: a lock file keeps test binaries in turn).
pub fn moto_server_bin() -> PathBuf {
    static FOUND: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = found.as_ref() {
        return p.clone();
    }
    let path = locate_or_install();
    *found = Some(path.clone());
    path
}

fn locate_or_install() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "MOTO_SERVER_BIN={} is not a file; {INSTALL}",
            p.display()
        );
        return p;
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    }) {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv");
    let bin = venv.join("bin/moto_server");
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
    // SAFETY: flock(2) on a descriptor this function owns; released when `lock` is dropped.
    #[allow(unsafe_code)]
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(locked, 0, "cannot lock {}", venv.display());
    if !bin.is_file() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "moto[server]==5.2.1"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok && bin.is_file(),
            "could not install moto[server] with pip; {INSTALL}"
        );
    }
    bin
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    free_port()
}

/// `moto_server` on 127.0.0.1, stopped on drop.
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto; `env` is its own environment on top of ours (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, which makes it enforce IAM after that many requests).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        let bin = moto_server_bin();
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL}", bin.display()));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut moto = Moto { child, addr };
            // Ready when it accepts connections (a request would count as an action).
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return moto;
                }
                if moto.child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = moto.child.kill();
        }
        panic!("moto_server ({}) did not start; {INSTALL}", bin.display());
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Secrets Manager client of the test's own (moto accepts any credentials while it does
    /// not enforce IAM).
    pub fn client(&self) -> aws_sdk_secretsmanager::Client {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    pub async fn create(&self, name: &str, secret: &str) {
        self.client()
            .create_secret()
            .name(name)
            .secret_string(secret)
            .send()
            .await
            .unwrap();
    }

    /// A new version (`PutSecretValue`), which becomes `AWSCURRENT`.
    pub async fn rotate(&self, name: &str, secret: &str) -> String {
        self.client()
            .put_secret_value()
            .secret_id(name)
            .secret_string(secret)
            .send()
            .await
            .unwrap()
            .version_id
            .unwrap()
    }

    /// An IAM call in moto's query protocol, unauthenticated (within the first
    /// `INITIAL_NO_AUTH_ACTION_COUNT` requests). Returns the XML answer.
    pub async fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut form: Vec<(&str, &str)> = vec![("Version", "2010-05-08")];
        form.extend_from_slice(params);
        let res = reqwest::Client::new()
            .post(format!("{}/", self.url()))
            // moto picks the service from the credential scope of the Authorization header.
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }
}

/// The text between `<tag>` and `</tag>` in an XML answer.
pub fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// The secret's JSON for an HMAC key.
pub fn hmac_json(api_key: &str, secret: &str) -> String {
    serde_json::json!({"api_key": api_key, "api_secret": secret}).to_string()
}

/// Variables of the caller's environment that would change where the keys come from.
pub const CLEARED: [&str; 26] = [
    "CRBOT_HOME",
    "CRBOT_MODE",
    "BINANCE_TESTNET",
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "DATABASE_URL",
    "DEBUG",
    "CRBOT_API_ADDR",
    "CRBOT_PASSPHRASE_FILE",
    "SECRETS_BACKEND",
    "AWS_SECRET_ID",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_ROLE_ID",
    "VAULT_SECRET_ID",
    "VAULT_KV_MOUNT",
    "VAULT_SECRET_PATH",
    "ALERT_WEBHOOK_URL",
    "MAX_DAILY_LOSS_PERCENT",
];

/// `crbot --home HOME --mode testnet` in development, aimed at the local exchange `ex` (its
/// URLs, not its keys), with the AWS chain confined to the environment given (no profile
/// files, no instance metadata), plus `env`.
pub fn crbot_testnet(ex: &crbot::exchange::sim::SimHandle, home: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("crbot"));
    for v in CLEARED {
        c.env_remove(v);
    }
    c.env("ENV", "development")
        .env("SECRET_KEY", "the secrets test's key, at least 32 characters")
        .env("BINANCE_REST_URL", ex.rest_url())
        .env("BINANCE_WS_URL", ex.ws_url())
        .env("BINANCE_WS_API_URL", ex.ws_api_url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-aws-credentials"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("--home").arg(home).args(["--mode", "testnet"]);
    c
}

/// Runs a command to its end: (exit code, stdout, stderr).
pub fn run(mut c: Command) -> (i32, String, String) {
    let out = c.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
