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
//! `POST /sim/control/faults` merges: only the switches it names change. `{"reset": true}`
//! clears every switch first (and may be combined with switches to set after the reset); a
//! switch set to `null` (or 0 for the counters) is switched off. Unknown names and values of
//! the wrong type are refused, naming them, and then nothing changes.
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

/// Largest clock offset either way, a year: enough for any skew test, far from overflowing
/// the clock arithmetic.
pub const MAX_CLOCK_OFFSET_MS: i64 = 366 * 86_400_000;

/// The switch names, as in `--faults` and the JSON of `POST /sim/control/faults`.
pub const FAULT_NAMES: [&str; 7] = [
    "drop_ws_now",
    "drop_ws_every_secs",
    "order_delay_ms",
    "order_503",
    "next_429",
    "clock_offset_ms",
    "malformed_ws_every",
];

/// A `POST /sim/control/faults` body that names an unknown switch or gives a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultPatchError(pub String);

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
                "clock_offset_ms" => {
                    let ms: i64 = value.ok_or_else(err)?.parse().map_err(|_| err())?;
                    if ms.abs() > MAX_CLOCK_OFFSET_MS {
                        return Err(err());
                    }
                    f.clock_offset_ms = ms;
                }
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

    /// Changes the switches named in `patch` (the JSON of `POST /sim/control/faults`, see the
    /// module doc) and returns the switches now in force. All or nothing: on an error nothing
    /// changes.
    pub fn merge(
        &self,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Faults, FaultPatchError> {
        use serde_json::Value;
        let unknown: Vec<&str> = patch
            .keys()
            .map(String::as_str)
            .filter(|k| !FAULT_NAMES.contains(k) && *k != "reset")
            .collect();
        if !unknown.is_empty() {
            return Err(FaultPatchError(format!(
                "unknown switch(es) {}; known: reset, {}",
                unknown.join(", "),
                FAULT_NAMES.join(", ")
            )));
        }
        let reset = match patch.get("reset") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(v) => return Err(FaultPatchError(format!("reset: expected true or false, got {v}"))),
        };
        let mut f = if reset { Faults::default() } else { self.get() };
        let bad =
            |name: &str, want: &str, v: &Value| FaultPatchError(format!("{name}: expected {want}, got {v}"));
        let u64_of = |name: &str, v: &Value| v.as_u64().ok_or_else(|| bad(name, "a whole number >= 0", v));
        let opt = |name: &str, v: &Value, min: u64| -> Result<Option<u64>, FaultPatchError> {
            match v {
                Value::Null => Ok(None),
                _ => Ok(Some(u64_of(name, v)?.max(min))),
            }
        };
        let count = |name: &str, v: &Value| -> Result<u32, FaultPatchError> {
            u32::try_from(u64_of(name, v)?).map_err(|_| bad(name, "a count below 2^32", v))
        };
        for (name, v) in patch {
            match name.as_str() {
                "drop_ws_now" => f.drop_ws_now = v.as_bool().ok_or_else(|| bad(name, "true or false", v))?,
                "drop_ws_every_secs" => f.drop_ws_every_secs = opt(name, v, 1)?,
                "order_delay_ms" => {
                    // An hour at most: a larger delay holds a connection, not a test's answer.
                    let d = opt(name, v, 0)?;
                    if d.is_some_and(|d| d > 3_600_000) {
                        return Err(bad(name, "at most 3600000", v));
                    }
                    f.order_delay_ms = d;
                }
                "order_503" => f.order_503 = count(name, v)?,
                "next_429" => f.next_429 = count(name, v)?,
                "clock_offset_ms" => {
                    f.clock_offset_ms = v
                        .as_i64()
                        .filter(|o| o.abs() <= MAX_CLOCK_OFFSET_MS)
                        .ok_or_else(|| bad(name, "a whole number of ms within a year", v))?;
                }
                "malformed_ws_every" => f.malformed_ws_every = opt(name, v, 1)?,
                _ => {}
            }
        }
        self.set(f);
        Ok(self.get())
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

    fn patch(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn merge_changes_only_named_switches_and_refuses_bad_ones_whole() {
        let fc = FaultControl::new(Faults {
            next_429: 2,
            ..Faults::default()
        });
        let f = fc
            .merge(&patch(serde_json::json!({"order_delay_ms": 10})))
            .unwrap();
        assert_eq!((f.next_429, f.order_delay_ms), (2, Some(10)));
        let e = fc
            .merge(&patch(serde_json::json!({"next_429": 0, "boom": 1})))
            .unwrap_err();
        assert!(e.0.contains("boom"), "{e}");
        let e = fc.merge(&patch(serde_json::json!({"next_429": -1}))).unwrap_err();
        assert!(e.0.contains("next_429"), "{e}");
        let e = fc
            .merge(&patch(serde_json::json!({"clock_offset_ms": i64::MAX})))
            .unwrap_err();
        assert!(e.0.contains("clock_offset_ms"), "{e}");
        assert_eq!(fc.get().next_429, 2, "refused patches change nothing");
        let f = fc
            .merge(&patch(serde_json::json!({"order_delay_ms": null})))
            .unwrap();
        assert_eq!(f.order_delay_ms, None);
        let f = fc
            .merge(&patch(serde_json::json!({"reset": true, "order_503": 1})))
            .unwrap();
        assert_eq!(
            f,
            Faults {
                order_503: 1,
                ..Faults::default()
            }
        );
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
