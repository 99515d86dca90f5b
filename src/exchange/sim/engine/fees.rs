//! Commissions: the account's rate on the asset a fill brings in, or, with BNB fees on and
//! enough BNB held, the discounted fee in BNB (rule in `engine`'s module doc).
//!
//! Owns: the fee of one fill and the asset that pays it. Must not: move balances (the fill
//! that is booked does).

use rust_decimal::Decimal;

use super::Engine;

const BNB: &str = "BNB";
const BNB_USDT: &str = "BNBUSDT";
/// The discount on commissions paid in BNB (Binance's standard spot discount is 25 %).
pub const BNB_FEE_DISCOUNT: Decimal = Decimal::from_parts(25, 0, 0, false, 2);

impl Engine {
    /// The commission of one fill and the asset that pays it: BNB when `bnb_commission` says
    /// so, else the asset the fill brings in (the base for a buy, the quote for a sell) at the
    /// account's rate, rounded to 8 decimals.
    pub(super) fn commission(
        &self,
        buy: bool,
        qty: Decimal,
        quote_amt: Decimal,
        base: &str,
        quote: &str,
    ) -> (Decimal, String) {
        let rate = self.commission_rate;
        match self.bnb_commission(quote, quote_amt) {
            Some(fee) => (fee, BNB.to_string()),
            None if buy => ((qty * rate).round_dp(8), base.to_string()),
            None => ((quote_amt * rate).round_dp(8), quote.to_string()),
        }
    }

    /// The commission in BNB for a fill worth `quote_amt` of `quote`, when BNB fees are on and
    /// the free BNB covers it; `None` means the usual asset pays.
    fn bnb_commission(&self, quote: &str, quote_amt: Decimal) -> Option<Decimal> {
        if !self.bnb_fees || quote != "USDT" {
            return None;
        }
        let m = self.market.get(BNB_USDT)?;
        let (bid, ask) = (m.best_bid().0, m.best_ask().0);
        if bid.is_zero() || ask.is_zero() {
            return None;
        }
        let mid = (bid + ask) / Decimal::TWO;
        let fee = (quote_amt * self.commission_rate * (Decimal::ONE - BNB_FEE_DISCOUNT) / mid).round_dp(8);
        (self.balance(BNB).free >= fee).then_some(fee)
    }
}
