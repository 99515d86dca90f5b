//! Fault switches of the local exchange, so that tests can see how a client copes.
//!
//! Grammar of `--faults SPEC` (comma-separated, whitespace ignored), the same names as the JSON
//! fields of `POST /sim/control/faults`:
//!
//! | switch | effect |
//! |---|---|
//! | `drop_ws_now` | close every WebSocket connection (streams and WebSocket API) once, now |
//! | `drop_ws_every_secs=N` | close every WebSocket connection every N seconds |
//! | `order_delay_ms=N` | place each new order, then hold its answer N ms (the order IS placed) |
//! | `order_503=N` | place the next N new orders, then answer HTTP 503 `-1007` (the order IS placed) |
//! | `next_429=N` | answer the next N requests with 429 `-1003` |
//! | `clock_offset_ms=N` | server clock N ms ahead (negative: behind) of the machine clock |
//! | `malformed_ws_every=N` | replace every N-th stream frame with a malformed (non-JSON) frame |
//!
//! Owns: parsing and the shared switch board. Must not: act on the faults itself; the REST and
//! WebSocket layers read the switches.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The switches. `Default` is "no faults".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub drop_ws_now: bool,
    pub drop_ws_every_secs: Option<u64>,
    pub order_delay_ms: Option<u64>,
    pub order_503: u32,
    pub next_429: u32,
    pub clock_offset_ms: i64,
    pub malformed_ws_every: Option<u64>,
}

/// A fault spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad fault switch `{0}`: expected drop_ws_now, drop_ws_every_secs=N, order_delay_ms=N, order_503=N, next_429=N, clock_offset_ms=N or malformed_ws_every=N"
)]
pub struct FaultSpecError(pub String);

impl Faults {
    /// Parses the `--faults` grammar above.
    pub fn parse(spec: &str) -> Result<Faults, FaultSpecError> {
        let mut f = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let err = || FaultSpecError(item.to_string());
            let num = |v: Option<&str>| -> Result<u64, FaultSpecError> {
                v.ok_or_else(err)?.parse().map_err(|_| err())
            };
            match name {
                "drop_ws_now" => f.drop_ws_now = true,
                "drop_ws_every_secs" => f.drop_ws_every_secs = Some(num(value)?.max(1)),
                "order_delay_ms" => f.order_delay_ms = Some(num(value)?),
                "order_503" => f.order_503 = value.map(|_| num(value)).transpose()?.unwrap_or(1) as u32,
                "next_429" => f.next_429 = value.map(|_| num(value)).transpose()?.unwrap_or(1) as u32,
                "clock_offset_ms" => f.clock_offset_ms = value.ok_or_else(err)?.parse().map_err(|_| err())?,
                "malformed_ws_every" => f.malformed_ws_every = Some(num(value)?.max(1)),
                _ => return Err(err()),
            }
        }
        Ok(f)
    }
}

/// The live switch board, shared by the server and handed to Rust callers (`SimHandle::faults`).
#[derive(Debug, Clone)]
pub struct FaultControl {
    inner: Arc<Mutex<Faults>>,
    drops: Arc<watch::Sender<u64>>,
}

impl FaultControl {
    pub fn new(initial: Faults) -> Self {
        let (tx, _) = watch::channel(0u64);
        let fc = FaultControl {
            inner: Arc::new(Mutex::new(Faults::default())),
            drops: Arc::new(tx),
        };
        fc.set(initial);
        fc
    }

    /// Replaces every switch (a `drop_ws_now` in it fires once).
    pub fn set(&self, mut faults: Faults) {
        if faults.drop_ws_now {
            faults.drop_ws_now = false;
            self.drop_ws_now();
        }
        if let Ok(mut g) = self.inner.lock() {
            *g = faults;
        }
    }

    pub fn get(&self) -> Faults {
        self.inner.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Closes every WebSocket connection now.
    pub fn drop_ws_now(&self) {
        self.drops.send_modify(|g| *g += 1);
    }

    /// Receiver that changes whenever connections must be dropped.
    pub fn drop_signal(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    pub fn clock_offset_ms(&self) -> i64 {
        self.inner.lock().map(|g| g.clock_offset_ms).unwrap_or(0)
    }

    /// Takes one forced 429, if any is armed.
    pub fn take_429(&self) -> bool {
        self.take(|f| &mut f.next_429)
    }

    /// Takes one forced 503, if any is armed.
    pub fn take_503(&self) -> bool {
        self.take(|f| &mut f.order_503)
    }

    fn take(&self, field: impl Fn(&mut Faults) -> &mut u32) -> bool {
        match self.inner.lock() {
            Ok(mut g) => {
                let n = field(&mut g);
                if *n > 0 {
                    *n -= 1;
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_switch() {
        let f = Faults::parse("drop_ws_every_secs=30, order_503=2,next_429,clock_offset_ms=-1500,order_delay_ms=700,malformed_ws_every=3")
            .unwrap_or_default();
        assert_eq!(f.drop_ws_every_secs, Some(30));
        assert_eq!(f.order_503, 2);
        assert_eq!(f.next_429, 1);
        assert_eq!(f.clock_offset_ms, -1500);
        assert_eq!(f.order_delay_ms, Some(700));
        assert_eq!(f.malformed_ws_every, Some(3));
    }

    #[test]
    fn rejects_unknown_switches() {
        assert!(Faults::parse("explode=1").is_err());
        assert!(Faults::parse("order_delay_ms=abc").is_err());
    }

    #[test]
    fn forced_answers_are_consumed_once_each() {
        let fc = FaultControl::new(Faults {
            next_429: 1,
            ..Faults::default()
        });
        assert!(fc.take_429());
        assert!(!fc.take_429());
    }
}
