//! The state file of the local exchange (`--state FILE`): the account (balances, orders, order
//! lists, trades, id counters) and the default API key, as JSON, written atomically (temporary
//! file, fsync, rename) so that a crash never leaves half a file.
//!
//! Owns: the file format. Must not: hold the file open or write anywhere but next to `path`.
//! The file holds the sim's own generated secret (it is a local test exchange's key, and the
//! file is created with mode 0600 on Unix).

use std::collections::BTreeMap;
use std::io::Write;

use rust_decimal::Decimal;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SimError;
use super::engine::AccountState;
use crate::secret::SecretString;

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u32,
    api_key: String,
    api_secret: String,
    account: AccountState,
    /// Mid price per symbol at the time of writing: a restarted market continues from there.
    #[serde(default)]
    prices: BTreeMap<String, Decimal>,
}

/// What a state file gives back.
#[derive(Debug)]
pub struct Saved {
    pub key: (String, SecretString),
    pub account: AccountState,
    pub prices: BTreeMap<String, Decimal>,
}

fn err(path: &Path, reason: impl ToString) -> SimError {
    SimError::State {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads the state file; `None` when it does not exist.
pub fn load(path: &Path) -> Result<Option<Saved>, SimError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, e)),
    };
    let f: FileV1 =
        serde_json::from_str(&text).map_err(|e| err(path, format!("not a sim state file: {e}")))?;
    if f.version != 1 {
        return Err(err(path, format!("unknown version {}", f.version)));
    }
    Ok(Some(Saved {
        key: (f.api_key, SecretString::new(f.api_secret)),
        account: f.account,
        prices: f.prices,
    }))
}

/// Writes the state file atomically.
pub fn save(
    path: &Path,
    key: &(String, SecretString),
    account: &AccountState,
    prices: &BTreeMap<String, Decimal>,
) -> Result<(), SimError> {
    let f = FileV1 {
        version: 1,
        api_key: key.0.clone(),
        api_secret: key.1.expose().to_string(),
        account: account.clone(),
        prices: prices.clone(),
    };
    let text = serde_json::to_vec_pretty(&f).map_err(|e| err(path, e))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "sim-state".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&tmp).map_err(|e| err(path, e))?;
        file.write_all(&text).map_err(|e| err(path, e))?;
        file.sync_all().map_err(|e| err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_account_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let account = AccountState {
            next_order_id: 17,
            ..AccountState::default()
        };
        let prices = BTreeMap::from([("BTCUSDT".to_string(), Decimal::from(90_000))]);
        save(
            &path,
            &("KEY".into(), SecretString::from("SECRET")),
            &account,
            &prices,
        )
        .unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.key.0, "KEY");
        assert_eq!(back.key.1.expose(), "SECRET");
        assert_eq!(back.account.next_order_id, 17);
        assert_eq!(back.prices, prices);
        assert!(load(&dir.path().join("missing.json")).unwrap().is_none());
    }
}
