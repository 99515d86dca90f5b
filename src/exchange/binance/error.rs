//! The client's errors and order outcomes under their old names.
//!
//! Owns: nothing of its own any more. The errors and the three-way order outcome are domain
//! values (`crate::domain::broker`), so the engine and the kill switch read them without
//! depending on the client. Must not: grow new items; these names stay only for the callers
//! not yet moved to the domain names.

pub use crate::domain::broker::{
    BrokerError as ClientError, CODE_CANCEL_REJECTED, CODE_INVALID_TIMESTAMP, CODE_NO_SUCH_ORDER,
    OrderOutcome, UNKNOWN_CODES,
};
