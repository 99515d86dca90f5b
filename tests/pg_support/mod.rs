//! A throw-away PostgreSQL server for tests: Debian's binaries, a cluster in a temporary folder,
//! on a free loopback port, a fresh database per test.
//!
//! Owns: finding the binaries, `initdb`, starting and stopping the server, creating databases.
//! Must not: touch the machine's own PostgreSQL or its `/dev/null`, or leave a server running.
//!
//! One cluster serves every test of a binary that is running at the same time: each test holds
//! a [`PgDatabase`], which holds the cluster; when the last one is dropped (a test that panics
//! drops it too) the server is stopped (SIGQUIT to the postmaster, then waited for) and its
//! folder removed. The next test starts a new one. Should the test process be killed outright,
//! the postmaster stops by itself within a minute when it finds its folder gone.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and the server run as
//! the package's `postgres` user through `runuser`, inside a private mount namespace whose
//! `/dev/null` is a world-writable null device (on these machines the real one may be
//! root-only, which breaks `initdb`); the machine's own `/dev/null` is left as it is.
//!
//! A missing package fails the test saying how to install it: these tests never pass silently.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The cluster's superuser; TCP connections must give its password.
pub const USER: &str = "crbot_test";

/// How long a server may take to accept connections before the test fails.
const START_WITHIN: Duration = Duration::from_secs(60);

/// The folder holding `initdb`, `postgres` and `psql`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`. Panics, saying how to install them, when there is none.
pub fn bin_dir() -> PathBuf {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return dir;
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let dir = e.path().join("bin");
            has_initdb(&dir).then_some((version, dir))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, dir)) => dir,
        None => panic!(
            "PostgreSQL's server binaries (initdb, postgres) were not found (no `pg_config \
             --bindir`, nothing in /usr/lib/postgresql/*/bin): install them with \
             `apt-get install postgresql` (.ci/run does this when initdb is missing)"
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A running cluster in a temporary folder.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The server's command line, to start it again after [`PgCluster::kill_server`].
    server: String,
    password: String,
    child: Mutex<Child>,
}

static CLUSTER: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl PgCluster {
    /// The cluster every live test of this binary shares, started when none runs.
    pub fn shared() -> Arc<PgCluster> {
        let mut slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.upgrade() {
            return c;
        }
        let c = Arc::new(PgCluster::start());
        *slot = Arc::downgrade(&c);
        c
    }

    /// Runs `initdb` and starts the server; retries on another port when the one picked was
    /// taken meanwhile.
    pub fn start() -> PgCluster {
        PgCluster::start_with(None, false)
    }

    /// A server that syncs its WAL to disk on commit, as a production server does (tests run
    /// with `fsync=off`; a benchmark of write latency must not).
    pub fn start_durable() -> PgCluster {
        PgCluster::start_with(None, true)
    }

    /// A server with TLS on (`cert_pem`, `key_pem`); with `tls_only`, a plain TCP connection
    /// is refused by `pg_hba.conf` (as a server that requires TLS does).
    pub fn start_tls(cert_pem: &str, key_pem: &str, tls_only: bool) -> PgCluster {
        PgCluster::start_with(Some((cert_pem, key_pem, tls_only)), false)
    }

    fn start_with(tls: Option<(&str, &str, bool)>, durable: bool) -> PgCluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("crbot-pg-")
            .tempdir()
            .expect("a temporary folder for the cluster");
        let password = format!("pw-{}-{}", std::process::id(), rand_suffix());
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("pwfile"), &password).expect("password file");
        if is_root() {
            chown_to_postgres(dir.path());
            chown_to_postgres(&dir.path().join("pwfile"));
        }
        let initdb = format!(
            "{} -D {} -U {USER} --pwfile={} --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
             --no-sync --no-instructions",
            bin.join("initdb").display(),
            data.display(),
            dir.path().join("pwfile").display()
        );
        let out = as_postgres(&initdb, dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ssl = "";
        if let Some((cert, key, tls_only)) = tls {
            for (name, text) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, text).expect("TLS file");
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .expect("chmod");
                if is_root() {
                    chown_to_postgres(&path);
                }
            }
            if tls_only {
                std::fs::write(
                    data.join("pg_hba.conf"),
                    "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
                )
                .expect("pg_hba.conf");
            }
            ssl = " -c ssl=on";
        }
        let speed = if durable {
            ""
        } else {
            " -c fsync=off -c full_page_writes=off"
        };
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = dir.path().join(format!("server-{port}.log"));
            let server = format!(
                "exec {} -D {} -p {port} -k {} -c listen_addresses=127.0.0.1{speed} \
                 -c max_connections=200{ssl} > {} 2>&1",
                bin.join("postgres").display(),
                data.display(),
                dir.path().display(),
                log.display()
            );
            let mut child = as_postgres(&server, dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the server starts");
            let url = url_of(&password, port, "postgres");
            if wait_ready(&bin, &url, &mut child) {
                return PgCluster {
                    dir,
                    bin,
                    port,
                    server,
                    password,
                    child: Mutex::new(child),
                };
            }
            stop(&data, &mut child);
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("the test PostgreSQL server did not start: {last_log}");
    }

    /// The cluster's folder (data, logs, sockets), removed when it stops.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgresql://USER:PASSWORD@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        url_of(&self.password, self.port, db)
    }

    /// Runs SQL with `psql` on database `db`; panics with psql's message when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server now, as a crash or a network cut would look to its clients (the
    /// cluster's folder stays until it is dropped).
    pub fn kill_server(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        stop(&self.dir.path().join("data"), &mut child);
    }

    /// Starts the server again on the same port and data after [`PgCluster::kill_server`]
    /// (crash recovery runs as after a real crash).
    pub fn restart_server(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        stop(&self.dir.path().join("data"), &mut child);
        // The command line's log redirection truncates the old log: keep appending instead.
        let server = self.server.replace(" > ", " >> ");
        *child = as_postgres(&server, self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts again");
        assert!(
            wait_ready(&self.bin, &self.url("postgres"), &mut child),
            "the test PostgreSQL server did not start again"
        );
    }

    /// A new, empty database on this cluster.
    pub fn database(self: &Arc<Self>) -> PgDatabase {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        PgDatabase {
            cluster: Arc::clone(self),
            name,
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        stop(&self.dir.path().join("data"), child);
    }
}

fn url_of(password: &str, port: u16, db: &str) -> String {
    format!("postgresql://{USER}:{password}@127.0.0.1:{port}/{db}")
}

/// Polls until the server answers a query, or gives up (the server exited, or it took longer
/// than [`START_WITHIN`]).
fn wait_ready(bin: &Path, url: &str, child: &mut Child) -> bool {
    let start = Instant::now();
    while start.elapsed() < START_WITHIN {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let ok = Command::new(bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-d", url, "-c", "SELECT 1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Stops the server at once (SIGQUIT to the postmaster: immediate shutdown) and waits for it.
fn stop(data: &Path, child: &mut Child) {
    if let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid"))
        && let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok())
    {
        // SAFETY: kill has no memory preconditions; a stale pid at worst gets ESRCH.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One test's database; holds the cluster up while it lives.
pub struct PgDatabase {
    pub cluster: Arc<PgCluster>,
    pub name: String,
}

impl PgDatabase {
    /// A new database on the shared cluster.
    pub fn new() -> PgDatabase {
        PgCluster::shared().database()
    }

    /// This database's URL, password included.
    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }

    pub fn psql(&self, sql: &str) -> String {
        self.cluster.psql(&self.name, sql)
    }
}

/// A command line run by `sh -c`, as the `postgres` user in a private mount namespace when
/// this process is root, else as this user.
fn as_postgres(script: &str, scratch: &Path) -> Command {
    if !is_root() {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        return c;
    }
    // The null device lives in the cluster's folder (removed with it) and is bound over
    // /dev/null only inside the namespace; `exec` hands the namespace's process to runuser.
    let quoted = script.replace('\'', r"'\''");
    let null = scratch.join(format!("null-{}", NEXT_DB.fetch_add(1, Ordering::SeqCst)));
    let wrapper = format!(
        "set -e; mknod -m 666 '{0}' c 1 3; mount --bind '{0}' /dev/null; \
         exec runuser -u postgres -- sh -c '{quoted}'",
        null.display()
    );
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &wrapper]);
    c
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .expect("chown runs");
    assert!(
        status.success(),
        "cannot give {} to the postgres user (is the postgresql package installed? \
         `apt-get install postgresql`)",
        path.display()
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("addr").port()
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    hex::encode(bytes)
}
