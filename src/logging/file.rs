//! The log file: `<dir>/crbot.YYYY-MM-DD.log`, a new one each UTC day, the newest
//! [`KEEP_LOG_FILES`](super::KEEP_LOG_FILES) kept, readable by the owner only.
//!
//! Owns: opening, rotating, pruning and the permissions of the log files and their folder.
//! Must not: write a URL's password or query values (every write goes through
//! [`redact_urls`]), or leave a log file readable by others, whoever created it first.
//!
//! Logs carry order ids, symbols, sizes and balances: the same private trading history as the
//! journal, so they get the journal's permissions (file 0600, folder 0700). Permissions are
//! set on every open, not only on creation, so a file or folder left with wider permissions by
//! an older version (or by hand) is tightened too.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

use crate::config::redact_urls;

const PREFIX: &str = "crbot.";
const SUFFIX: &str = ".log";

/// A log file that rotates at 00:00 UTC. Written by the logging thread only.
#[derive(Debug)]
pub struct DailyFile {
    dir: PathBuf,
    keep: usize,
    current: Option<(NaiveDate, File)>,
    today: fn() -> NaiveDate,
}

impl DailyFile {
    /// Makes `dir` (private) and opens today's file, so that a folder that cannot be written is
    /// reported at start-up rather than lost in the logging thread.
    pub fn open(dir: &Path, keep: usize) -> io::Result<DailyFile> {
        DailyFile::with_clock(dir, keep, || Utc::now().date_naive())
    }

    fn with_clock(dir: &Path, keep: usize, today: fn() -> NaiveDate) -> io::Result<DailyFile> {
        std::fs::create_dir_all(dir)?;
        set_mode(dir, 0o700)?;
        let mut file = DailyFile {
            dir: dir.to_path_buf(),
            keep,
            current: None,
            today,
        };
        file.roll()?;
        Ok(file)
    }

    /// The file for `day`.
    pub fn path_for(dir: &Path, day: NaiveDate) -> PathBuf {
        dir.join(format!("{PREFIX}{}{SUFFIX}", day.format("%Y-%m-%d")))
    }

    /// The file being written now.
    fn roll(&mut self) -> io::Result<&mut File> {
        let today = (self.today)();
        if self.current.as_ref().is_none_or(|(day, _)| *day != today) {
            let path = DailyFile::path_for(&self.dir, today);
            let file = open_private(&path)?;
            self.current = Some((today, file));
            self.prune();
        }
        match &mut self.current {
            Some((_, file)) => Ok(file),
            None => Err(io::Error::other("no log file is open")),
        }
    }

    /// Removes the oldest log files beyond `keep`. Best effort: a file that cannot be removed
    /// is tried again at the next rotation.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut logs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
            })
            .collect();
        // The date in the name sorts as text.
        logs.sort();
        let excess = logs.len().saturating_sub(self.keep);
        for old in &logs[..excess] {
            let _ = std::fs::remove_file(old);
        }
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.roll()?;
        // The formatter hands over whole events; only text holding a URL needs rewriting.
        if buf.windows(3).any(|w| w == b"://") {
            let text = String::from_utf8_lossy(buf);
            file.write_all(redact_urls(&text).as_bytes())?;
        } else {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Opens `path` for appending, created 0600, and narrows an existing file to 0600.
fn open_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    set_mode(path, 0o600)?;
    Ok(file)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    static DAY: AtomicI64 = AtomicI64::new(0);

    fn test_day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
            + chrono::Days::new(u64::try_from(DAY.load(Ordering::SeqCst)).unwrap_or(0))
    }

    #[test]
    fn files_and_folder_are_private_also_after_rotation_and_when_they_existed_wider() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let first = DailyFile::path_for(&dir, test_day());
        std::fs::write(&first, "old line\n").expect("existing file");
        std::fs::set_permissions(&first, std::fs::Permissions::from_mode(0o644)).expect("chmod");

        let mut log = DailyFile::with_clock(&dir, 2, test_day).expect("open");
        log.write_all(b"day one\n").expect("write");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&first), 0o600);

        for day in 1..=3 {
            DAY.store(day, Ordering::SeqCst);
            log.write_all(b"next day\n").expect("write");
            let path = DailyFile::path_for(&dir, test_day());
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["crbot.2026-01-03.log", "crbot.2026-01-04.log"]);
    }

    #[test]
    fn a_url_password_never_reaches_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = DailyFile::open(dir.path(), 3).expect("open");
        log.write_all(b"GET https://u:hunter2@h/x?token=abc failed\n")
            .expect("write");
        log.flush().expect("flush");
        let text =
            std::fs::read_to_string(DailyFile::path_for(dir.path(), Utc::now().date_naive())).expect("read");
        assert_eq!(text, "GET https://u:***@h/x?token=*** failed\n");
    }
}
