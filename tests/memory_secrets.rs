//! No plaintext API secret and no vault passphrase in the memory of a running engine.
//!
//! The test makes a random API secret and a random passphrase at run time (never literals: a
//! literal would sit in this binary's read-only data, and in crbot's if it were shared), gives
//! the secret to a local exchange started here and stores it in a vault with `crbot vault`,
//! then starts `crbot serve --mode testnet` aimed at that exchange, unlocking the vault from
//! `CRBOT_PASSPHRASE_FILE`. It places an order through the engine (`crbot order` over the
//! engine's socket: the engine signs the order, and the protective OCO after its fill), waits
//! 2 s after the engine has placed both, stops the process (SIGSTOP, so nothing moves while it
//! is read) and reads every readable region of `/proc/<pid>/maps` through `/proc/<pid>/mem`
//! (root is needed: crbot makes itself non-dumpable, which closes `/proc/<pid>/mem` to its own
//! user; without root the test fails saying so, unless `CRBOT_SKIP_MEMORY_SCAN=1`). The secret and the passphrase must not be found, whole or their first or last 16
//! bytes. The scanner keeps each needle XOR-masked with random bytes and compares byte by byte
//! through the mask, so it never holds the plaintext it looks for in one piece.
//!
//! The control: the same engine started with the secret in `BINANCE_API_SECRET` (development's
//! plain keys) and the passphrase in `API_KEY_ENCRYPTION_KEY`, which crbot keeps in clear (its
//! configuration, and the process's environment block): the same scan must find both, the
//! secret also outside the stack region that holds the environment.
//!
//! What the scan cannot see: CPU registers, pages swapped out to disk (read back in by the
//! kernel when touched, so they are scanned, but a copy on the swap device is not), kernel
//! buffers (the terminal's or a pipe's input queue, the page cache of the passphrase file, the
//! socket buffers), memory of other processes (`crbot vault set-keys`, which exits), fragments
//! shorter than 16 bytes, and any encoding other than the raw bytes (hex, base64, UTF-16).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod cli;
}
mod secrets_support;

use std::io::{BufRead, Write as _};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crbot::exchange::sim::{SimConfig, SimKey};
use crbot::secret::SecretString;
use support::cli::CliExchange;

/// A random alphanumeric string, made at run time.
fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()] as char)
        .collect()
}

/// A byte string kept XOR-masked: the scanner compares through the mask.
struct Needle {
    name: String,
    mask: Vec<u8>,
    masked: Vec<u8>,
}

impl Needle {
    fn new(name: &str, plain: &[u8]) -> Needle {
        let mask: Vec<u8> = (0..plain.len()).map(|_| rand::random::<u8>() | 1).collect();
        let masked = plain.iter().zip(&mask).map(|(p, m)| p ^ m).collect();
        Needle {
            name: name.to_string(),
            mask,
            masked,
        }
    }

    /// The first and last 16 bytes of `plain` (a whole copy contains both).
    fn ends(name: &str, plain: &str) -> [Needle; 2] {
        let b = plain.as_bytes();
        [
            Needle::new(&format!("{name} (first 16 bytes)"), &b[..16]),
            Needle::new(&format!("{name} (last 16 bytes)"), &b[b.len() - 16..]),
        ]
    }

    fn at(&self, hay: &[u8]) -> bool {
        hay.len() >= self.masked.len()
            && self
                .masked
                .iter()
                .zip(&self.mask)
                .zip(hay)
                .all(|((x, m), h)| h ^ m == *x)
    }
}

#[derive(Debug)]
struct Hit {
    needle: String,
    region: String,
    addr: u64,
}

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {} at {:#x}", self.needle, self.region, self.addr)
    }
}

fn list(hits: &[Hit]) -> String {
    hits.iter().map(Hit::to_string).collect::<Vec<_>>().join("; ")
}

#[derive(Debug, Default)]
struct Scan {
    hits: Vec<Hit>,
    bytes: u64,
    regions: usize,
    unreadable: usize,
}

/// Reads every readable mapping of `pid` and reports where a needle occurs.
fn scan(pid: u32, needles: &[Needle]) -> Scan {
    const CHUNK: usize = 4 << 20;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open /proc/<pid>/mem (run as root)");
    let longest = needles.iter().map(|n| n.masked.len()).max().unwrap();
    let mut out = Scan::default();
    let mut buf = vec![0u8; CHUNK + longest];
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (range, perms) = (fields[0], fields[1]);
        let name = fields.get(5).copied().unwrap_or("[anonymous]").to_string();
        if !perms.starts_with('r') || name.starts_with("[vvar") || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (
            u64::from_str_radix(start, 16).unwrap(),
            u64::from_str_radix(end, 16).unwrap(),
        );
        out.regions += 1;
        let mut at = start;
        while at < end {
            let want = usize::try_from((end - at).min((CHUNK + longest) as u64)).unwrap();
            let Ok(n) = mem.read_at(&mut buf[..want], at) else {
                out.unreadable += 1;
                break;
            };
            if n == 0 {
                break;
            }
            out.bytes += n as u64;
            let hay = &buf[..n];
            for i in 0..n {
                for nd in needles {
                    if hay[i] ^ nd.mask[0] == nd.masked[0] && nd.at(&hay[i..]) {
                        out.hits.push(Hit {
                            needle: nd.name.clone(),
                            region: name.clone(),
                            addr: at + i as u64,
                        });
                    }
                }
            }
            // Overlap by the longest needle so that nothing straddling two chunks is missed
            // (a hit inside the overlap may be reported twice; only emptiness matters).
            at += (n.saturating_sub(longest).max(1)) as u64;
        }
    }
    out
}

fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: kill(2) on our own child with a valid signal; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

struct Engine {
    child: Child,
}

impl Drop for Engine {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crbot --home HOME --mode testnet` aimed at the exchange, with no plain keys unless `env`
/// sets them.
fn crbot(ex: &CliExchange, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crbot"));
    for v in [
        "CRBOT_HOME",
        "CRBOT_MODE",
        "BINANCE_TESTNET",
        "DATABASE_URL",
        "DEBUG",
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
        "CRBOT_PASSPHRASE_FILE",
        "API_KEY_ENCRYPTION_KEY",
        "CRBOT_API_ADDR",
        "ALERT_WEBHOOK_URL",
        "API_TLS_CERT",
        "API_TLS_KEY",
    ] {
        c.env_remove(v);
    }
    c.env("ENV", "development")
        .env("SECRET_KEY", random_text(40))
        .env("BINANCE_REST_URL", ex.handle.rest_url())
        .env("BINANCE_WS_URL", ex.handle.ws_url())
        .env("BINANCE_WS_API_URL", ex.handle.ws_api_url())
        .env("CRBOT_VAULT_KDF", "8,1,1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("--home").arg(ex.home()).args(["--mode", "testnet"]);
    c
}

fn vault(ex: &CliExchange, args: &[&str], answers: &[&str]) {
    let mut child = crbot(ex, &[])
        .arg("--passphrase-stdin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for a in answers {
        writeln!(stdin, "{a}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `crbot serve` and waits for its `api=` line.
fn serve(ex: &CliExchange, env: &[(&str, &str)]) -> Engine {
    let mut child = crbot(ex, env)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("api="), "crbot serve did not start: {line}");
    Engine { child }
}

/// An entry through the engine's socket (the engine signs it), then waits until the engine has
/// placed its protective OCO too; returns when the last signature happened, roughly.
fn trade_through_the_engine(ex: &CliExchange, env: &[(&str, &str)]) {
    let out = crbot(ex, env)
        .args([
            "--json",
            "order",
            "buy",
            "BTCUSDT",
            "0.001",
            "--stop-loss",
            "90000",
            "--take-profit",
            "110000",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "crbot order: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = ex.rt.block_on(ex.rest().open_orders(None)).unwrap().len();
        if open >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no protective OCO on the exchange ({open} open)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A local exchange that accepts `api_key`/`secret`, with a market that does not move.
fn exchange(api_key: &str, secret: &str) -> CliExchange {
    CliExchange::start(SimConfig {
        keys: vec![SimKey::hmac(api_key, SecretString::from(secret))],
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    })
}

fn scan_after_trading(ex: &CliExchange, engine: &Engine, env: &[(&str, &str)], needles: &[Needle]) -> Scan {
    trade_through_the_engine(ex, env);
    std::thread::sleep(Duration::from_secs(2));
    let pid = engine.child.id();
    signal(pid, libc::SIGSTOP);
    let found = scan(pid, needles);
    signal(pid, libc::SIGCONT);
    assert!(found.bytes > 1 << 20, "the scan read almost nothing: {found:?}");
    eprintln!(
        "scanned pid {pid}: {} regions, {} MiB, {} unreadable; hits: {:?}",
        found.regions,
        found.bytes >> 20,
        found.unreadable,
        list(&found.hits)
    );
    found
}

fn assert_clean(found: &Scan) {
    assert!(
        found.hits.is_empty(),
        "plaintext found in the engine's memory: {}\n({} regions, {} bytes read)",
        list(&found.hits),
        found.regions,
        found.bytes
    );
}

/// Reading another process's memory needs root (crbot makes itself non-dumpable). Not being
/// root is a failure that says so, never a silent pass, unless `CRBOT_SKIP_MEMORY_SCAN=1`
/// asks to skip the scan explicitly (a developer's unprivileged run).
fn is_root() -> bool {
    if crbot::vault::effective_uid() == 0 {
        return true;
    }
    assert!(
        std::env::var("CRBOT_SKIP_MEMORY_SCAN").is_ok_and(|v| v == "1"),
        "the memory scan reads /proc/<pid>/mem of a non-dumpable process and needs root; run the \
         tests as root, or set CRBOT_SKIP_MEMORY_SCAN=1 to skip it knowingly"
    );
    false
}

#[test]
fn an_engine_holds_no_plaintext_secret_or_passphrase_2_s_after_signing() {
    if !is_root() {
        eprintln!("skipped (CRBOT_SKIP_MEMORY_SCAN=1): reading another process's memory needs root");
        return;
    }
    let (api_key, secret, pass) = (random_text(64), random_text(64), random_text(40));
    let ex = exchange(&api_key, &secret);
    vault(&ex, &["vault", "init"], &[&pass]);
    vault(&ex, &["vault", "set-keys"], &[&pass, &api_key, &secret]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passphrase");
    std::fs::write(&file, format!("{pass}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = file.display().to_string();
    let env = [("CRBOT_PASSPHRASE_FILE", file.as_str())];

    let engine = serve(&ex, &env);
    let mut needles = Vec::new();
    needles.extend(Needle::ends("API secret", &secret));
    needles.extend(Needle::ends("passphrase", &pass));
    let found = scan_after_trading(&ex, &engine, &env, &needles);
    assert_clean(&found);
}

/// The same with the keys fetched from HashiCorp Vault's KV v2 (the double of
/// `tests/secrets_support`): the response that carried the secret must be gone too.
#[test]
fn an_engine_with_keys_from_hashicorp_holds_no_plaintext_secret_2_s_after_signing() {
    use secrets_support::kv_double::{KvDouble, Policy};
    if !is_root() {
        eprintln!("skipped (CRBOT_SKIP_MEMORY_SCAN=1): reading another process's memory needs root");
        return;
    }
    let (api_key, secret, token) = (random_text(64), random_text(64), random_text(40));
    let ex = exchange(&api_key, &secret);
    let double = ex.rt.block_on(KvDouble::start(&["secret"]));
    double.token(
        &token,
        Policy {
            read: vec!["secret/data/crbot/".into()],
            write: vec![],
        },
    );
    double.put(
        "secret",
        "crbot/binance",
        serde_json::json!({"api_key": api_key, "api_secret": secret}),
    );
    let url = double.url();
    let env = [
        ("SECRETS_BACKEND", "hashicorp"),
        ("VAULT_ADDR", url.as_str()),
        ("VAULT_TOKEN", token.as_str()),
    ];
    let engine = serve(&ex, &env);
    let needles = Needle::ends("API secret", &secret);
    let found = scan_after_trading(&ex, &engine, &env, &needles);
    assert_clean(&found);
}

/// The same with the keys fetched from AWS Secrets Manager (moto's server) through the SDK.
#[test]
fn an_engine_with_keys_from_aws_holds_no_plaintext_secret_2_s_after_signing() {
    use secrets_support::{Moto, hmac_json};
    if !is_root() {
        eprintln!("skipped (CRBOT_SKIP_MEMORY_SCAN=1): reading another process's memory needs root");
        return;
    }
    let (api_key, secret) = (random_text(64), random_text(64));
    let ex = exchange(&api_key, &secret);
    let moto = Moto::start(&[]);
    ex.rt
        .block_on(moto.create("crbot/binance/testnet", &hmac_json(&api_key, &secret)));
    let url = moto.url();
    let env = [
        ("SECRETS_BACKEND", "aws"),
        ("AWS_SECRET_ID", "crbot/binance/testnet"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let engine = serve(&ex, &env);
    let needles = Needle::ends("API secret", &secret);
    let found = scan_after_trading(&ex, &engine, &env, &needles);
    assert_clean(&found);
}

#[test]
fn control_the_scan_finds_a_secret_and_a_passphrase_crbot_keeps_in_clear() {
    if !is_root() {
        eprintln!("skipped (CRBOT_SKIP_MEMORY_SCAN=1): reading another process's memory needs root");
        return;
    }
    let (api_key, secret, pass) = (random_text(64), random_text(64), random_text(40));
    let ex = exchange(&api_key, &secret);
    let env = [
        ("BINANCE_API_KEY", api_key.as_str()),
        ("BINANCE_API_SECRET", secret.as_str()),
        ("API_KEY_ENCRYPTION_KEY", pass.as_str()),
    ];
    let engine = serve(&ex, &env);
    let mut needles = Vec::new();
    needles.extend(Needle::ends("API secret", &secret));
    needles.extend(Needle::ends("passphrase", &pass));
    let found = scan_after_trading(&ex, &engine, &env, &needles);
    for name in ["API secret (first 16 bytes)", "passphrase (first 16 bytes)"] {
        assert!(
            found.hits.iter().any(|h| h.needle == name),
            "the control's {name} was not found: {found:?}"
        );
    }
    assert!(
        found
            .hits
            .iter()
            .any(|h| h.needle.starts_with("API secret") && h.region != "[stack]"),
        "the control's secret was found only in the environment block: {:?}",
        found.hits
    );
}

#[test]
fn the_scanner_finds_a_needle_across_chunk_and_mask_boundaries_only_where_it_is() {
    let plain = b"0123456789abcdefXYZ";
    let n = Needle::new("n", plain);
    assert!(
        !n.masked.iter().zip(plain).any(|(m, p)| m == p),
        "the needle is masked"
    );
    let mut hay = [7u8; 100];
    hay[40..40 + plain.len()].copy_from_slice(plain);
    assert!(n.at(&hay[40..]));
    assert!(!n.at(&hay[41..]));
    assert!(!n.at(&hay[90..]));
}
