//! The risk-limits panel: the day's P&L, drawdown and trades as gauges against their limits,
//! and when the day resets.
//!
//! Owns: the panel and its text gauges. Must not: draw a P&L or drawdown figure while the
//! equity is incomplete; it says "unknown" instead.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::common::{dp2, duration, hm, money2, panel, signed2, usage_style};
use crate::domain::plain;
use crate::engine::snapshot::{EquityStatus, Snapshot};
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// A text gauge `[█████░░░░░]` filled to `ratio` (0..=1).
fn gauge(theme: &Theme, ratio: Decimal, width: usize) -> String {
    let (full, empty) = theme.gauge_chars();
    let r = ratio.clamp(Decimal::ZERO, Decimal::ONE);
    let filled = (r * Decimal::from(width as u64))
        .round()
        .to_usize()
        .unwrap_or(0)
        .min(width);
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    s.extend(std::iter::repeat_n(full, filled));
    s.extend(std::iter::repeat_n(empty, width - filled));
    s.push(']');
    s
}

pub(super) fn draw_limits(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let l = &snap.limits;
    let usage = l.usage();
    let bar_w = 16;
    let gauge_line = |label: &'static str, ratio: Decimal, text: String, text_style: Style| {
        Line::from(vec![
            Span::raw(format!("{label:<9}")),
            Span::styled(gauge(theme, ratio, bar_w), usage_style(theme, ratio)),
            Span::raw(" "),
            Span::styled(text, text_style),
        ])
    };
    let day_style = theme.signed(l.day_pnl.is_negative(), l.day_pnl.is_zero());
    // With an incomplete equity there is no P&L: say so rather than draw a stale figure.
    let incomplete = snap.equity_status.is_incomplete();
    // Before the first equity (start-up, no network yet) the figures are unknown, not zero.
    let pending = matches!(snap.equity_status, EquityStatus::Pending) || snap.equity.is_none();
    let unknown = if theme.ascii { "-" } else { "–" };
    let (day_text, dd_text) = if incomplete {
        (
            format!("unknown (equity incomplete) / -{}%", dp2(l.daily_loss_limit_pct)),
            format!("unknown / {}%", dp2(l.drawdown_limit_pct)),
        )
    } else if pending {
        (
            format!("{unknown} (no equity yet) / -{}%", dp2(l.daily_loss_limit_pct)),
            format!("{unknown} / {}%", dp2(l.drawdown_limit_pct)),
        )
    } else {
        (
            format!(
                "{} {}% / -{}%",
                money2(&l.day_pnl),
                signed2(l.day_pnl_pct),
                dp2(l.daily_loss_limit_pct)
            ),
            format!("{}% / {}%", dp2(l.drawdown_pct), dp2(l.drawdown_limit_pct)),
        )
    };
    let (day_style, dd_style) = if incomplete {
        (theme.warning(), theme.warning())
    } else if pending {
        (theme.dim(), theme.dim())
    } else {
        (day_style, theme.plain())
    };
    let lines = vec![
        gauge_line("Day P&L", usage[0].1, day_text, day_style),
        gauge_line("Drawdown", usage[1].1, dd_text, dd_style),
        // A standby has no count of the account's trades (the leader has): unknown, not 0.
        if snap.standby.is_some() {
            gauge_line(
                "Trades",
                Decimal::ZERO,
                format!("{unknown} / {} today", l.trades_limit),
                theme.dim(),
            )
        } else {
            gauge_line(
                "Trades",
                usage[2].1,
                format!("{} / {} today", l.trades_used, l.trades_limit),
                theme.plain(),
            )
        },
        Line::from(Span::styled(
            format!(
                "resets {} UTC (in {}) size<={}% R/R>={}",
                hm(l.daily_reset_ms),
                duration(l.daily_reset_ms - snap.now_ms),
                plain(l.position_size_limit_pct),
                plain(l.min_risk_reward)
            ),
            theme.dim(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(panel(theme, " Risk limits (L change) ", false)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASCII: Theme = Theme {
        color: false,
        ascii: true,
        ..Theme::DEFAULT
    };

    #[test]
    fn gauge_fills_to_the_rounded_ratio_and_clamps_outside_zero_to_one() {
        assert_eq!(gauge(&ASCII, Decimal::new(5, 1), 4), "[##..]");
        assert_eq!(gauge(&ASCII, Decimal::new(62, 2), 5), "[###..]");
        assert_eq!(gauge(&ASCII, Decimal::new(-1, 0), 3), "[...]");
        assert_eq!(gauge(&ASCII, Decimal::new(2, 0), 3), "[###]");
    }
}
