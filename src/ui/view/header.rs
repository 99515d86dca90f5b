//! The header: mode badge, trading state, clock and kill key on the first row; stream health,
//! clock offset, rate limits and equity on the second; the day's P&L, drawdown, trades and
//! fees against their limits on the third; and, when there are any, the warnings. A standby's
//! snapshot (`Snapshot::standby`) shows a STANDBY badge, the trading state only when it was read
//! from the shared journal, and the leader instead of the limits row (its figures are not known
//! here, so none is drawn).
//!
//! Owns: the header's rows. Must not: hide the trading state or the kill key, whatever else
//! the row has to leave out; they are what a trader must see first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::common::{clock, dp2, duration, hm, money2, signed2, usage_style};
use crate::domain::{Mode, Money, plain};
use crate::engine::snapshot::{
    EquityStatus, Snapshot, StandbyBanner, StreamHealth, StreamStatus, TradingState,
};
use crate::portfolio::FeeTally;
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub(super) fn draw_header(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    draw_state_row(app, snap, frame, area);
    let third = match &snap.standby {
        Some(banner) => standby_line(theme, banner),
        None => Line::from(fit(limit_spans(theme, snap), area.width)),
    };
    let mut lines = vec![Line::from(fit(connection_spans(theme, snap), area.width)), third];
    if area.height > 3 {
        lines.push(warning_line(theme, snap));
    }
    let rest = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    frame.render_widget(Paragraph::new(lines), rest);
}

/// The first row: mode and trading state on the left, the UTC clock and the kill key on the
/// right.
fn draw_state_row(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let kill = app
        .config
        .keymap
        .kill_key()
        .map_or_else(|| "none".into(), |k| k.label(theme.ascii));
    let right_text = format!("{} UTC  {kill} KILL ", clock(snap.now_ms));
    let mut line1 = vec![
        Span::styled(mode_label(snap.mode), theme.mode_badge(snap.mode)),
        Span::raw(" "),
    ];
    match &snap.standby {
        Some(banner) => {
            line1.push(Span::styled(" STANDBY ", theme.reducing_badge()));
            line1.push(Span::raw(" "));
            if banner.trading_known || app.kill_sent {
                line1.extend(state_spans(app, &snap.header.trading));
            } else {
                line1.push(Span::styled(" state unknown (journal not read)", theme.warning()));
            }
        }
        None => line1.extend(state_spans(app, &snap.header.trading)),
    }
    let right_width = right_text.chars().count() as u16;
    // The state's reason gives way to the clock: cut with an ellipsis, a space before the clock.
    let ellipsis = if theme.ascii { "..." } else { "…" };
    cut_reason(
        &mut line1,
        usize::from(area.width.saturating_sub(right_width + 1)),
        ellipsis,
    );
    let [left, _, right_area] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(right_width),
    ])
    .areas(Rect { height: 1, ..area });
    frame.render_widget(Paragraph::new(Line::from(line1)), left);
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(right_text, theme.title())).right_aligned()),
        right_area,
    );
}

/// Shortens the first row's last span, the state's reason, so the row fits `width` columns,
/// ending it with `ellipsis`; drops it when not even two letters fit. A badge (` HALTED `,
/// padded on both sides) is never cut: the trading state is what a trader must see first.
fn cut_reason(spans: &mut Vec<Span<'static>>, width: usize, ellipsis: &str) {
    let total: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let is_badge = spans.last().is_none_or(|s| s.content.ends_with(' '));
    if total <= width || is_badge {
        return;
    }
    let Some(last) = spans.pop() else { return };
    let before = total - last.content.chars().count();
    let room = width.saturating_sub(before);
    let keep = room.saturating_sub(ellipsis.chars().count());
    if keep >= 2 {
        let text: String = last.content.chars().take(keep).collect();
        spans.push(Span::styled(format!("{}{ellipsis}", text.trim_end()), last.style));
    }
}

/// The trading-state badge and why. After the kill key the screen shows HALTED at once, before
/// the engine confirms it.
fn state_spans(app: &App, trading: &TradingState) -> Vec<Span<'static>> {
    let theme = &app.config.theme;
    let mut state: Vec<Span> = Vec::new();
    match trading {
        TradingState::Halted { reason, since_ms } => {
            state.push(Span::styled(" HALTED ", theme.halted_badge()));
            state.push(Span::styled(
                format!(" {reason} since {}", clock(*since_ms)),
                theme.negative(),
            ));
        }
        _ if app.kill_sent => {
            state.push(Span::styled(" HALTED ", theme.halted_badge()));
            state.push(Span::styled(" kill sent, confirming...", theme.negative()));
        }
        TradingState::Reducing { reason, until_ms, .. } => {
            state.push(Span::styled(" REDUCING ", theme.reducing_badge()));
            let until = until_ms.map_or_else(
                || "until re-armed".to_string(),
                |t| format!("until {} UTC", hm(t)),
            );
            state.push(Span::styled(format!(" {reason}, {until}"), theme.warning()));
        }
        TradingState::Active => state.push(Span::styled(" ACTIVE ", theme.active_badge())),
    }
    state
}

/// A standby's third row: who leads, where, since when; the account's figures are the leader's.
fn standby_line(theme: &Theme, banner: &StandbyBanner) -> Line<'static> {
    let leader = match (&banner.leader, &banner.leader_address) {
        (Some(who), Some(at)) => format!("leader {who} at {at}"),
        (Some(who), None) => format!("leader {who} (address unknown)"),
        (None, _) => "leader unknown".to_string(),
    };
    let since = banner
        .leader_since_ms
        .map(|t| format!(" since {} UTC", clock(t)))
        .unwrap_or_default();
    let lost = banner
        .lost
        .as_ref()
        .map(|why| format!(" (this engine lost the lease: {why})"))
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(
            format!("STANDBY, {leader}{since}{lost}: "),
            theme.warning().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "balances, positions and P&L are the leader's, not shown here; the kill key halts it",
            theme.dim(),
        ),
    ])
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => " LIVE ",
        Mode::Testnet => " TESTNET ",
        Mode::Demo => " DEMO ",
        Mode::Paper => " PAPER ",
        Mode::Sim => " SIM ",
    }
}

/// A piece of a header row and how much it matters: 0 is never dropped, higher numbers go
/// first when the row is too narrow. A number is dropped whole, never cut.
type Group = (u8, Vec<Span<'static>>);

/// The groups that fit `width`, in their order: the least important (then the rightmost of
/// equal importance) leave first.
fn fit(mut groups: Vec<Group>, width: u16) -> Vec<Span<'static>> {
    let w = |g: &Group| g.1.iter().map(|s| s.content.chars().count()).sum::<usize>();
    while groups.iter().map(w).sum::<usize>() > usize::from(width) {
        let Some((i, _)) = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.0 > 0)
            .max_by_key(|(i, g)| (g.0, *i))
        else {
            break;
        };
        groups.remove(i);
    }
    groups.into_iter().flat_map(|g| g.1).collect()
}

/// The second row: streams, clock offset, rate limits and equity (or why it is not known).
/// Narrow, the rate limits go first, then the clock offset; streams and equity stay.
fn connection_spans(theme: &Theme, snap: &Snapshot) -> Vec<Group> {
    let h = &snap.header;
    let mut groups: Vec<Group> = Vec::new();
    let stale = snap.watchlist.iter().filter(|w| w.stale).count();
    if h.market_stream.status == StreamStatus::Connected && stale > 0 && stale == snap.watchlist.len() {
        // Connected, yet no quote arrives: the connection is not the market.
        groups.push((
            0,
            vec![
                Span::raw("mkt "),
                Span::styled("STALE", theme.warning().add_modifier(Modifier::BOLD)),
                Span::raw("  "),
            ],
        ));
    } else {
        // Some stale: the watchlist marks which (`~`).
        groups.push((0, stream_spans(theme, "mkt", h.market_stream)));
    }
    groups.push((1, stream_spans(theme, "usr", h.user_stream)));
    if snap.standby.is_some() {
        // A standby has no exchange session: no clock offset or rate-limit figures to show.
        groups.push((0, equity_spans(theme, snap)));
        return groups;
    }
    groups.push((
        3,
        vec![Span::raw(format!(
            "clk {}  ",
            h.clock_offset_ms
                .map_or_else(|| "?".into(), |o| format!("{o:+}ms"))
        ))],
    ));
    let r = h.rate_limits;
    groups.push((
        4,
        vec![Span::raw(format!("wt {}/{}  ", r.weight_used, r.weight_limit))],
    ));
    groups.push((
        4,
        vec![Span::raw(format!(
            "ord {}/{}  ",
            r.orders_10s, r.orders_10s_limit
        ))],
    ));
    groups.push((0, equity_spans(theme, snap)));
    groups
}

/// `eq …`: the equity, or why it is not known.
fn equity_spans(theme: &Theme, snap: &Snapshot) -> Vec<Span<'static>> {
    match (&snap.equity_status, &snap.equity) {
        (EquityStatus::Incomplete { .. }, _) => vec![Span::styled(
            "eq UNKNOWN (unpriced)",
            theme.warning().add_modifier(Modifier::BOLD),
        )],
        (EquityStatus::Complete { held }, Some(eq)) if !held.is_empty() => {
            let oldest = held.iter().map(|(_, age)| *age).max().unwrap_or(0);
            vec![
                Span::raw(format!("eq {} ", eq.display_2dp())),
                Span::styled(format!("(held prices, {}s)", oldest / 1000), theme.warning()),
            ]
        }
        (_, Some(eq)) => vec![Span::raw(format!("eq {}", eq.display_2dp()))],
        (_, None) => vec![Span::styled(
            format!("eq {}", if theme.ascii { "-" } else { "–" }),
            theme.dim(),
        )],
    }
}

fn stream_spans(theme: &Theme, name: &'static str, h: StreamHealth) -> Vec<Span<'static>> {
    let (text, style) = match h.status {
        StreamStatus::Connected => ("ok".to_string(), theme.positive()),
        StreamStatus::Connecting => ("connecting".to_string(), theme.warning()),
        StreamStatus::Reconnecting { attempt } => (format!("retry#{attempt}"), theme.warning()),
        StreamStatus::Down => ("DOWN".to_string(), theme.negative().add_modifier(Modifier::BOLD)),
    };
    let mut v = vec![Span::raw(format!("{name} ")), Span::styled(text, style)];
    if let (StreamStatus::Connected, Some(ms)) = (h.status, h.latency_ms) {
        v.push(Span::raw(format!(" {ms}ms")));
    }
    v.push(Span::raw("  "));
    v
}

/// The third row: the day's P&L, drawdown and trades against their limits, then today's fees.
/// With an incomplete equity the P&L and drawdown are `?`: a stale figure would mislead. Before
/// the first equity (start-up, no network yet) they are unknown, `–`, never `0.00`.
fn limit_spans(theme: &Theme, snap: &Snapshot) -> Vec<Group> {
    let incomplete = snap.equity_status.is_incomplete();
    let pending = matches!(snap.equity_status, EquityStatus::Pending) || snap.equity.is_none();
    let unknown = if theme.ascii { "-" } else { "–" };
    let l = &snap.limits;
    let day_ratio = l.usage()[0].1;
    let day_text = if incomplete {
        "? (equity incomplete)".to_string()
    } else if pending {
        format!("{unknown} (no equity yet)")
    } else {
        format!("{} {}%", money2(&l.day_pnl), signed2(l.day_pnl_pct))
    };
    let dd_text = if incomplete {
        format!("DD ?/{}%", plain(l.drawdown_limit_pct))
    } else if pending {
        format!("DD {unknown}/{}%", plain(l.drawdown_limit_pct))
    } else {
        format!("DD {}/{}%", dp2(l.drawdown_pct), plain(l.drawdown_limit_pct))
    };
    let day = vec![
        Span::raw("day "),
        Span::styled(
            day_text,
            if pending {
                theme.dim()
            } else {
                theme.signed(l.day_pnl.is_negative(), l.day_pnl.is_zero())
            },
        ),
        Span::styled(
            format!("/-{}%", plain(l.daily_loss_limit_pct)),
            usage_style(theme, day_ratio),
        ),
        Span::raw(" "),
    ];
    let resets = vec![Span::raw(format!(
        "resets {}Z ({}) ",
        hm(l.daily_reset_ms),
        duration(l.daily_reset_ms - snap.now_ms)
    ))];
    let dd = vec![
        Span::raw(" "),
        Span::styled(dd_text, usage_style(theme, l.usage()[1].1)),
        Span::raw("  "),
    ];
    let trades = vec![Span::styled(
        format!("trades {}/{}", l.trades_used, l.trades_limit),
        usage_style(theme, l.usage()[2].1),
    )];
    // Narrow, the fees go first, then when the day resets; the P&L, drawdown and trades
    // against their limits stay.
    vec![
        (0, day),
        (3, resets),
        (0, dd),
        (1, trades),
        (4, fee_spans(theme, &snap.fees_today)),
    ]
}

/// `  fees today 0.33 USDT +0.00030000 BNB unpriced`: today's fees at their fill-time value,
/// and loudly what had no price then. Nothing when no fee was paid today.
fn fee_spans(theme: &Theme, fees: &FeeTally) -> Vec<Span<'static>> {
    if fees.paid.is_empty() {
        return Vec::new();
    }
    let value: Vec<String> = fees
        .value
        .iter()
        .map(|(a, v)| Money::new(*v, a.clone()).display())
        .collect();
    let mut spans = vec![Span::raw(format!(
        "  fees today {}",
        if value.is_empty() {
            "0".to_string()
        } else {
            value.join(" + ")
        }
    ))];
    if !fees.complete() {
        let unpriced: Vec<String> = fees
            .unpriced
            .iter()
            .map(|(a, v)| Money::new(*v, a.clone()).display())
            .collect();
        spans.push(Span::styled(
            format!(" +{} unpriced", unpriced.join(" +")),
            theme.warning(),
        ));
    }
    spans
}

/// The fourth row: every warning on one line, an incomplete equity first.
fn warning_line(theme: &Theme, snap: &Snapshot) -> Line<'static> {
    let mut w: Vec<String> = snap.header.warnings.clone();
    if let EquityStatus::Incomplete { unpriced, .. } = &snap.equity_status {
        let names: Vec<String> = unpriced.iter().map(|(a, _)| a.to_string()).collect();
        w.insert(
            0,
            format!(
                "equity INCOMPLETE, no price for {}: P&L and drawdown unknown, entries refused",
                names.join(", ")
            ),
        );
    }
    let unprotected = snap.unprotected();
    if !unprotected.is_empty() {
        let names: Vec<String> = unprotected.iter().map(|s| s.to_string()).collect();
        // First: of every warning, a position nothing protects costs the most when ignored.
        w.insert(0, format!("NO STOP on the exchange: {}", names.join(", ")));
    }
    if !snap.unpriced_assets.is_empty() {
        let names: Vec<String> = snap.unpriced_assets.iter().map(|a| a.to_string()).collect();
        w.push(format!("not in equity (no USDT market): {}", names.join(", ")));
    }
    Line::from(Span::styled(
        format!("! {}", w.join("  ! ")),
        theme.warning().add_modifier(Modifier::BOLD),
    ))
}
