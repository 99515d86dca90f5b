//! The account endpoints outside `/api/v3` that trading tools read at start-up:
//! `GET /sapi/v1/asset/tradeFee`, `system/status` and `account/status` (always normal; in
//! `rest`'s dispatch), `GET /sapi/v1/capital/config/getall`, the margin pair lists
//! (answered as for an account with no margin: nothing). (`GET /api/v3/myPreventedMatches`,
//! which the WebSocket API also serves, is `ops`'s.)
//!
//! Owns: those answers' JSON. Must not: change the account.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::super::Shared;
use super::super::engine::{ApiError, Params};
use super::super::market::s8;

/// `GET /sapi/v1/asset/tradeFee`: maker and taker rates per symbol (all, or `symbol`).
pub(super) fn trade_fee(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let e = shared.engine();
    if let Some(s) = p.get("symbol")
        && e.market.get(s).is_none()
    {
        return Err(ApiError::bad_symbol());
    }
    let rate = e.commission_rate.normalize().to_string();
    Ok(Value::Array(
        e.market
            .symbols
            .iter()
            .filter(|m| p.get("symbol").is_none_or(|s| s == m.spec.symbol))
            .map(|m| json!({"symbol": m.spec.symbol, "makerCommission": rate, "takerCommission": rate}))
            .collect(),
    ))
}

/// `GET /sapi/v1/capital/config/getall`: every asset of the sim's symbols, with the account's
/// balance. The sim has no chain: deposits and withdrawals are off on its one network.
pub(super) fn coins(shared: &Shared) -> Value {
    let e = shared.engine();
    let mut assets = BTreeSet::new();
    for m in &e.market.symbols {
        assets.insert(m.spec.base);
        assets.insert(m.spec.quote);
    }
    let z = s8(Decimal::ZERO);
    Value::Array(
        assets
            .into_iter()
            .map(|coin| {
                let b = e.balance(coin);
                json!({
                    "coin": coin, "name": coin, "depositAllEnable": false, "withdrawAllEnable": false,
                    "free": s8(b.free), "locked": s8(b.locked), "freeze": z, "withdrawing": z,
                    "ipoing": z, "ipoable": z, "storage": z, "isLegalMoney": false, "trading": true,
                    "networkList": [{
                        "network": coin, "coin": coin, "name": coin, "isDefault": true,
                        "depositEnable": false, "withdrawEnable": false,
                        "depositDesc": "Deposits are not available on the local exchange.",
                        "withdrawDesc": "Withdrawals are not available on the local exchange.",
                        "withdrawIntegerMultiple": "0.00000001", "withdrawFee": "0", "withdrawMin": "0",
                        "withdrawMax": "0", "minConfirm": 0, "unLockConfirm": 0, "sameAddress": false,
                        "estimatedArrivalTime": 0, "busy": false, "resetAddressStatus": false,
                        "specialTips": "", "addressRegex": "", "memoRegex": "", "depositDust": "0"
                    }]
                })
            })
            .collect(),
    )
}
