//! Formatting shared by the panels and the history's rows: a P&L with its sign, an order's
//! purpose as the screen names it.
//!
//! Owns: those words and figures. Must not: draw or hold state (the views style them).

use rust_decimal::Decimal;

use crate::domain::{OrderPurpose, display_fixed};

/// Two decimals with an explicit `+` on a gain; zero carries no sign.
pub fn signed2(d: Decimal) -> String {
    let text = display_fixed(d, 2);
    if text.starts_with('-') || text.trim_start_matches(['0', '.']).is_empty() {
        text
    } else {
        format!("+{text}")
    }
}

/// An order's purpose as the screen names it.
pub fn purpose_label(p: OrderPurpose) -> &'static str {
    match p {
        OrderPurpose::Entry => "entry",
        OrderPurpose::StopLoss => "stop-loss",
        OrderPurpose::TakeProfit => "take-profit",
        OrderPurpose::Exit => "exit",
        OrderPurpose::Flatten => "flatten",
        OrderPurpose::External => "external",
    }
}
