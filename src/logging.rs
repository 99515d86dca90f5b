//! Logging: `tracing` to a daily-rotating file in the data folder, and a ring of recent lines
//! for the screen's log pane.
//!
//! Owns: the process-wide subscriber (installed once), the file writer and the [`LogRing`].
//! Must not: write to stdout or stderr (the screen owns the terminal; a stray line would tear the
//! TUI), or format a secret other than through its redacted `Debug`/`Display` (`***`).
//!
//! Files are `<data dir>/crbot.YYYY-MM-DD.log`, rotated at 00:00 UTC, the last
//! [`KEEP_LOG_FILES`] kept, owner-only like the journal (file 0600, folder 0700), with URL
//! passwords and query values hidden; JSON lines in production, plain text otherwise. The file
//! is written by a background thread: a slow disk never delays the engine or the kill switch,
//! and if the queue ever fills, lines are dropped rather than blocking.

mod file;
mod ring;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use file::DailyFile;
pub use ring::{LogLine, LogRing, RingLayer};

/// How many daily files are kept.
pub const KEEP_LOG_FILES: usize = 30;

/// How many lines the log pane's ring keeps.
pub const RING_CAPACITY: usize = 2000;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("logging is already set up in this process")]
    AlreadyInitialised,
    #[error("log filter `{filter}` is not valid: {reason}")]
    Filter { filter: String, reason: String },
    #[error("cannot write logs in {path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

/// Keeps the file writer alive; drop it at exit to flush the last lines.
#[derive(Debug)]
pub struct LogGuard {
    _worker: WorkerGuard,
    ring: LogRing,
    dir: PathBuf,
}

impl LogGuard {
    /// The ring the log pane reads.
    pub fn ring(&self) -> LogRing {
        self.ring.clone()
    }

    /// The folder holding the log files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the process-wide subscriber: a rotating file in `data_dir` (JSON lines when `json`)
/// and the ring. `filter` uses `tracing`'s syntax (`info`, `crbot=debug,info`). A second call
/// in the same process returns [`LogError::AlreadyInitialised`].
pub fn init(data_dir: &Path, json: bool, filter: &str) -> Result<LogGuard, LogError> {
    // Non-ASCII never reaches the parser: tracing-subscriber 0.3 can panic on it (see
    // `config::log_filter`, which refuses such values before they get here).
    if !filter.is_ascii() {
        return Err(LogError::Filter {
            filter: filter.escape_default().to_string(),
            reason: "a filter is ASCII only".into(),
        });
    }
    let env_filter = EnvFilter::builder().parse(filter).map_err(|e| LogError::Filter {
        filter: filter.to_string(),
        reason: e.to_string(),
    })?;
    if INSTALLED
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(LogError::AlreadyInitialised);
    }
    let result = install(data_dir, json, env_filter);
    if result.is_err() {
        // Nothing was installed: a later attempt (say, with another folder) may succeed.
        INSTALLED.store(false, Ordering::SeqCst);
    }
    result
}

fn install(data_dir: &Path, json: bool, env_filter: EnvFilter) -> Result<LogGuard, LogError> {
    let appender = DailyFile::open(data_dir, KEEP_LOG_FILES).map_err(|e| LogError::Io {
        path: data_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("crbot-log")
        .finish(appender);
    let ring = LogRing::new(RING_CAPACITY);
    let subscriber = Registry::default()
        .with(file_layer(writer, json))
        .with(ring.layer())
        .with(env_filter);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadyInitialised)?;
    Ok(LogGuard {
        _worker: worker,
        ring,
        dir: data_dir.to_path_buf(),
    })
}

/// The file format: JSON lines or plain text, never ANSI colours.
pub fn file_layer<W>(writer: W, json: bool) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true);
    if json {
        base.json().with_current_span(true).boxed()
    } else {
        base.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A writer collecting output in memory.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    const VALUE: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP";

    fn log_with_secret(json: bool) -> (String, Vec<LogLine>) {
        let buf = Buf::default();
        let ring = LogRing::new(8);
        let subscriber = Registry::default()
            .with(file_layer(buf.clone(), json))
            .with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            let secret = SecretString::from(VALUE);
            tracing::info!(api_secret = ?secret, shown = %secret, "signing");
        });
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        (text, ring.recent(8))
    }

    #[test]
    fn a_secret_field_prints_as_stars_in_the_file_and_the_ring() {
        for json in [false, true] {
            let (text, lines) = log_with_secret(json);
            assert!(text.contains("***"), "{text}");
            assert!(!text.contains(VALUE), "secret leaked into the file: {text}");
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].message, "signing api_secret=*** shown=***");
        }
    }

    #[test]
    fn production_files_are_json_lines_and_others_plain_text() {
        let (json, _) = log_with_secret(true);
        let first = json.lines().next().expect("a line");
        let v: serde_json::Value = serde_json::from_str(first).expect("a JSON line");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["fields"]["message"], "signing");
        let (plain, _) = log_with_secret(false);
        assert!(plain.contains("INFO") && plain.contains("signing"), "{plain}");
        assert!(serde_json::from_str::<serde_json::Value>(plain.trim()).is_err());
    }

    #[test]
    fn a_bad_filter_is_refused_before_anything_is_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = init(dir.path(), false, "crbot=[").expect_err("bad filter");
        assert!(matches!(err, LogError::Filter { .. }), "{err:?}");
    }

    const CHILD_ENV: &str = "CRBOT_LOGGING_INIT_CHILD";
    const CHILD_TEST: &str = "logging::tests::init_installs_once_and_writes_only_to_the_file";

    /// The global subscriber is per process, so the real `init` runs in a child process (this
    /// test binary re-executed) and never disturbs the other tests.
    #[test]
    fn init_installs_once_and_writes_only_to_the_file() {
        if let Some(dir) = std::env::var_os(CHILD_ENV) {
            let dir = PathBuf::from(dir);
            let guard = init(&dir, true, "info").expect("first init");
            tracing::info!(order = "cr-1", "hello from the child");
            tracing::debug!("filtered out");
            let second = init(&dir, false, "debug");
            assert!(matches!(second, Err(LogError::AlreadyInitialised)), "{second:?}");
            assert_eq!(guard.ring().recent(10).len(), 1);
            drop(guard);
            println!("\nCHILD OK");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("CHILD OK"),
            "{stdout}\n{stderr}"
        );
        assert!(!stdout.contains("hello from the child") && !stderr.contains("hello from the child"));
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0]
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(name.starts_with("crbot.") && name.ends_with(".log"), "{name}");
        let text = std::fs::read_to_string(&files[0]).expect("read log");
        let line: serde_json::Value =
            serde_json::from_str(text.lines().next().expect("a line")).expect("json");
        assert_eq!(line["fields"]["message"], "hello from the child");
        assert_eq!(line["fields"]["order"], "cr-1");
        assert!(!text.contains("filtered out"));
    }
}
