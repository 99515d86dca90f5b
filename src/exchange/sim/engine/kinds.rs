//! The closed sets of the local exchange's orders, each with its Binance wire name: side, order
//! type, time in force, order status, response type, execution type and the two statuses of an
//! order list.
//!
//! Owns: the wire names (serde, `as_str` and `parse` use the same string, so the state file, the
//! JSON answers and the parsed parameters cannot disagree) and the questions asked of a type
//! (is it a stop, does it rest at a limit price). Must not: pick the error for an unknown name
//! (each parameter has its own code, so `parse` answers `None` and the caller decides), or use
//! `crate::domain`'s enums: the sim is written from Binance's docs apart from crbot's own code,
//! so that a wrong wire name on one side cannot hide on the other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A fieldless enum whose values serialize to, print as and parse from their wire names.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact string Binance uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// The value of a wire name; `None` for any other string (case matters).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Buy or sell.
    Side { Buy => "BUY", Sell => "SELL" }
);

wire_enum!(
    /// The order types the sim serves, in the order `exchangeInfo` lists them.
    OrderType {
        Limit => "LIMIT",
        LimitMaker => "LIMIT_MAKER",
        Market => "MARKET",
        StopLoss => "STOP_LOSS",
        StopLossLimit => "STOP_LOSS_LIMIT",
        TakeProfit => "TAKE_PROFIT",
        TakeProfitLimit => "TAKE_PROFIT_LIMIT",
    }
);

impl OrderType {
    /// Waits for a stop price before it works (the four STOP_LOSS and TAKE_PROFIT types).
    pub fn is_stop(self) -> bool {
        matches!(
            self,
            OrderType::StopLoss
                | OrderType::StopLossLimit
                | OrderType::TakeProfit
                | OrderType::TakeProfitLimit
        )
    }

    /// A stop-loss (rather than take-profit) stop: a buy triggers when the price rises to
    /// the stop, a sell when it falls to it.
    pub fn is_stop_loss(self) -> bool {
        matches!(self, OrderType::StopLoss | OrderType::StopLossLimit)
    }

    /// Carries a limit price and can rest on the book once working.
    pub fn is_limit_like(self) -> bool {
        matches!(
            self,
            OrderType::Limit | OrderType::LimitMaker | OrderType::StopLossLimit | OrderType::TakeProfitLimit
        )
    }

    /// A stop that becomes a limit order (the `_LIMIT` stops), which needs a time in force.
    pub fn is_stop_limit(self) -> bool {
        matches!(self, OrderType::StopLossLimit | OrderType::TakeProfitLimit)
    }
}

wire_enum!(
    /// How long a working order may rest.
    TimeInForce { Gtc => "GTC", Ioc => "IOC", Fok => "FOK" }
);

wire_enum!(
    /// The statuses this engine gives an order.
    OrderStatus {
        New => "NEW",
        PendingNew => "PENDING_NEW",
        PartiallyFilled => "PARTIALLY_FILLED",
        Filled => "FILLED",
        Canceled => "CANCELED",
        Expired => "EXPIRED",
        ExpiredInMatch => "EXPIRED_IN_MATCH",
    }
);

impl OrderStatus {
    /// Still on the book, waiting for its stop, or (`PENDING_NEW`) the pending order of an
    /// OTO/OTOCO list waiting for its working order to fill.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::PendingNew
        )
    }
}

wire_enum!(
    /// `newOrderRespType`: how much a new-order response says.
    RespType { Ack => "ACK", Result => "RESULT", Full => "FULL" }
);

wire_enum!(
    /// The execution type (`x`) of an `executionReport`.
    ExecType {
        New => "NEW",
        Trade => "TRADE",
        Canceled => "CANCELED",
        Expired => "EXPIRED",
        TradePrevention => "TRADE_PREVENTION",
    }
);

wire_enum!(
    /// `contingencyType` of an order list: `OCO`, or `OTO` (OTO and OTOCO lists alike).
    ContingencyType { Oco => "OCO", Oto => "OTO" }
);

impl Default for ContingencyType {
    /// Lists saved before OTO lists were served are OCOs.
    fn default() -> Self {
        ContingencyType::Oco
    }
}

wire_enum!(
    /// `selfTradePreventionMode`: what happens when an order of the account would trade with
    /// another of its own orders (Binance's STP FAQ). The taker's mode decides.
    StpMode {
        None => "NONE",
        ExpireTaker => "EXPIRE_TAKER",
        ExpireMaker => "EXPIRE_MAKER",
        ExpireBoth => "EXPIRE_BOTH",
    }
);

impl Default for StpMode {
    /// Orders saved before self-trade prevention was served named none: they get the symbol's
    /// default, EXPIRE_MAKER, as every order that names none does.
    fn default() -> Self {
        StpMode::ExpireMaker
    }
}

wire_enum!(
    /// `listStatusType` of an order list.
    ListStatusType { ExecStarted => "EXEC_STARTED", AllDone => "ALL_DONE" }
);

wire_enum!(
    /// `listOrderStatus` of an order list.
    ListOrderStatus { Executing => "EXECUTING", AllDone => "ALL_DONE" }
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + Serialize + for<'de> Deserialize<'de>,
    {
        for v in all {
            let wire = v.to_string();
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(wire.clone())
            );
            assert_eq!(
                serde_json::from_value::<T>(wire.clone().into()).unwrap(),
                *v,
                "{wire}"
            );
        }
    }

    #[test]
    fn every_value_serializes_and_parses_as_its_wire_name() {
        round_trips(Side::ALL);
        round_trips(OrderType::ALL);
        round_trips(TimeInForce::ALL);
        round_trips(OrderStatus::ALL);
        round_trips(RespType::ALL);
        round_trips(ExecType::ALL);
        round_trips(ListStatusType::ALL);
        round_trips(ListOrderStatus::ALL);
        round_trips(ContingencyType::ALL);
        round_trips(StpMode::ALL);
        for t in OrderType::ALL {
            assert_eq!(OrderType::parse(t.as_str()), Some(*t));
        }
    }

    #[test]
    fn wire_names_are_binance_spelling_and_case_sensitive() {
        assert_eq!(OrderStatus::PartiallyFilled.as_str(), "PARTIALLY_FILLED");
        assert_eq!(OrderType::StopLossLimit.as_str(), "STOP_LOSS_LIMIT");
        assert_eq!(OrderType::LimitMaker.as_str(), "LIMIT_MAKER");
        assert_eq!(Side::parse("buy"), None);
        assert_eq!(TimeInForce::parse("GTX"), None);
        assert_eq!(OrderType::parse("TRAILING_STOP_MARKET"), None);
    }

    #[test]
    fn exchange_info_lists_the_order_types_in_binance_order() {
        let names: Vec<&str> = OrderType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT"
            ]
        );
    }

    #[test]
    fn type_questions_match_the_wire_name_rules() {
        for t in OrderType::ALL {
            let w = t.as_str();
            assert_eq!(
                t.is_stop(),
                w.starts_with("STOP_LOSS") || w.starts_with("TAKE_PROFIT"),
                "{w}"
            );
            assert_eq!(t.is_stop_loss(), w.starts_with("STOP_LOSS"), "{w}");
            assert_eq!(t.is_stop_limit(), w.ends_with("_LIMIT"), "{w}");
        }
    }
}
