//! The order ticket: its fields (one per row in the side panel, a grid of three on the Ticket
//! tab), the live risk verdict with every rule, the orders it would send, and the outcome of the
//! last submission.
//!
//! Owns: the ticket panel. Must not: show a verdict computed for another draft than the one on
//! screen ("checking the ticket..." until the matching preview arrives), or a result that
//! belongs to another submission.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use rust_decimal::Decimal;

use super::common::{order_line, panel, wrapped_rows};
use crate::domain::{OrderPurpose, Side};
use crate::engine::snapshot::{Snapshot, TicketField, TicketOutcome, TicketPreview};
use crate::ui::app::{App, TicketForm};
use crate::ui::keymap::Context;
use crate::ui::theme::Theme;

/// The preview lines for the current draft: verdict, every rule, numbers, outgoing orders.
fn preview_lines(theme: &Theme, snap: &Snapshot, form: &TicketForm, compact: bool) -> Vec<Line<'static>> {
    let preview = snap.ticket_preview.as_ref();
    let draft = form.draft();
    let Some(p) = preview.filter(|p| p.draft == draft) else {
        return vec![Line::from(Span::styled("checking the ticket...", theme.dim()))];
    };
    let mut lines = Vec::new();
    let failed = p.rules.iter().filter(|r| !r.passed).count();
    if p.approved {
        lines.push(Line::from(Span::styled(
            format!("APPROVED: all {} checks pass", p.rules.len()),
            theme.positive().add_modifier(Modifier::BOLD),
        )));
    } else if p.rules.is_empty() {
        // No rule ran: a field is empty or does not parse. "REFUSED: 0 of 0 checks fail" would
        // read as a verdict on an order nobody has finished typing.
        lines.push(Line::from(Span::styled(
            format!(
                "NOT READY: {} to fill or fix",
                crate::domain::plural::count(p.field_errors.len(), "field", "fields")
            ),
            theme.warning().add_modifier(Modifier::BOLD),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            format!("REFUSED: {failed} of {} checks fail", p.rules.len()),
            theme.negative().add_modifier(Modifier::BOLD),
        )));
    }
    for (field, err) in &p.field_errors {
        lines.push(Line::from(Span::styled(
            format!("{}: {err}", field.label()),
            theme.negative(),
        )));
    }
    let (ok, no) = theme.marks();
    let code_w = if compact { 0 } else { 18 };
    for r in p.rules.iter().filter(|r| !compact || !r.passed) {
        let (mark, style) = if r.passed {
            (ok, theme.positive())
        } else {
            (no, theme.negative())
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), style),
            Span::styled(
                format!("{:<code_w$} ", r.code),
                if r.passed { theme.plain() } else { style },
            ),
            Span::raw(rule_detail(&r.code, &r.detail).to_string()),
        ]));
    }
    if compact {
        let passed: Vec<&str> = p
            .rules
            .iter()
            .filter(|r| r.passed)
            .map(|r| r.code.as_str())
            .collect();
        if !passed.is_empty() {
            lines.push(Line::from(vec![
                Span::styled(format!("{ok} "), theme.positive()),
                Span::raw(format!("passed: {}", passed.join(" "))),
            ]));
        }
    }
    let mut nums = Vec::new();
    let equity = snap
        .equity
        .as_ref()
        .map(|e| e.amount())
        .filter(|e| *e > Decimal::ZERO);
    let of_equity = |v: Decimal| {
        equity.map_or_else(String::new, |e| {
            format!(" ({:.2}% eq)", v / e * Decimal::ONE_HUNDRED)
        })
    };
    if let Some(f) = stop_figures(snap, p) {
        if let Some(rr) = f.reward_risk {
            nums.push(format!("R/R {rr:.2}"));
        }
        let unit = snap
            .equity
            .as_ref()
            .map_or_else(String::new, |e| format!(" {}", e.asset()));
        nums.push(format!(
            "loss at stop {:.2}{unit}{}",
            f.loss_at_stop,
            of_equity(f.loss_at_stop)
        ));
    }
    if let Some(n) = p.notional {
        nums.push(format!("notional {}{}", n.display_dp(2), of_equity(n.value())));
    }
    if let Some(f) = &p.fee_estimate {
        nums.push(format!("fee ~{}", f.display_2dp()));
    }
    if let Some(h) = &p.daily_loss_headroom {
        nums.push(format!("loss headroom {}", h.display_2dp()));
    }
    if !nums.is_empty() {
        lines.push(Line::from(nums.join("  ")));
    }
    if !p.orders.is_empty() {
        lines.push(Line::from(Span::styled("would send:", theme.title())));
        for o in &p.orders {
            lines.push(Line::from(format!("  {}", order_line(o))));
        }
    }
    lines
}

/// What the stop-loss of a ticket means in money: the loss if it fills at its limit (its stop
/// when it has none), and reward ÷ risk when there is a take-profit.
struct StopFigures {
    loss_at_stop: Decimal,
    reward_risk: Option<Decimal>,
}

/// From exactly the orders that would leave: the entry (its limit, or for a MARKET entry the
/// side of the book it takes), the stop-loss leg and the take-profit leg.
fn stop_figures(snap: &Snapshot, p: &TicketPreview) -> Option<StopFigures> {
    let entry = p.orders.iter().find(|o| o.purpose == OrderPurpose::Entry)?;
    let stop = p.orders.iter().find(|o| o.purpose == OrderPurpose::StopLoss)?;
    let row = snap.watchlist.iter().find(|w| w.symbol == entry.symbol);
    let entry_px = match entry.price {
        Some(px) => px.value(),
        None => match entry.side {
            Side::Buy => row?.ask?.value(),
            Side::Sell => row?.bid?.value(),
        },
    };
    let trigger = stop.stop_price.or(stop.price)?.value();
    let fill = stop.price.or(stop.stop_price)?.value();
    let sign = if entry.side == Side::Buy {
        Decimal::ONE
    } else {
        -Decimal::ONE
    };
    let qty = entry.qty.value();
    let loss_at_stop = (entry_px - fill) * sign * qty;
    let risk = (entry_px - trigger) * sign;
    let reward_risk = p
        .orders
        .iter()
        .find(|o| o.purpose == OrderPurpose::TakeProfit)
        .and_then(|tp| tp.price)
        .filter(|_| risk > Decimal::ZERO)
        .map(|tp| (tp.value() - entry_px) * sign / risk);
    Some(StopFigures {
        loss_at_stop,
        reward_risk,
    })
}

/// A rule's detail without a leading `CODE: `: the code is drawn in its own column, and the
/// risk engine's reasons start with it (`FAT_FINGER: limit price ...`), which drew it twice.
fn rule_detail<'a>(code: &str, detail: &'a str) -> &'a str {
    detail
        .strip_prefix(code)
        .and_then(|rest| rest.strip_prefix(':'))
        .map_or(detail, str::trim_start)
}

fn result_lines(theme: &Theme, snap: &Snapshot, form: Option<&TicketForm>) -> Vec<Line<'static>> {
    let Some(result) = &snap.ticket_result else {
        return vec![];
    };
    if let Some(f) = form
        && f.submitted.as_ref() != Some(&result.draft)
    {
        return vec![];
    }
    match &result.outcome {
        TicketOutcome::Accepted {
            client_order_id,
            detail,
        } => vec![Line::from(Span::styled(
            format!("ACCEPTED {client_order_id}: {detail}"),
            theme.positive().add_modifier(Modifier::BOLD),
        ))],
        TicketOutcome::Rejected { code, message } => vec![Line::from(Span::styled(
            format!(
                "REJECTED by Binance{}: {message}",
                code.map_or_else(String::new, |c| format!(" ({c})"))
            ),
            theme.negative().add_modifier(Modifier::BOLD),
        ))],
        TicketOutcome::RiskRejected { reasons } => {
            let mut v = vec![Line::from(Span::styled(
                "REFUSED by risk:",
                theme.negative().add_modifier(Modifier::BOLD),
            ))];
            v.extend(reasons.iter().map(|r| {
                Line::from(Span::styled(
                    format!("  {} {}", r.code, rule_detail(&r.code, &r.detail)),
                    theme.negative(),
                ))
            }));
            v
        }
        TicketOutcome::Sent { client_order_id } => vec![Line::from(Span::styled(
            format!("SENT {client_order_id}: waiting for the exchange's answer"),
            theme.warning(),
        ))],
        TicketOutcome::Unknown { client_order_id } => vec![Line::from(Span::styled(
            format!(
                "{} UNKNOWN {client_order_id}: being reconciled with the exchange",
                theme.spinner(snap.now_ms)
            ),
            theme.warning().add_modifier(Modifier::BOLD),
        ))],
    }
}

pub(super) fn draw_ticket(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect, side_by_side: bool) {
    let theme = &app.config.theme;
    let focused = app.context() == Context::Ticket;
    let block = panel(theme, " Order ticket (t) ", focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(form) = &app.ticket else {
        // With an empty watchlist there is no symbol to name (the ticket asks for one).
        let text = match snap.watchlist.get(app.watch_sel) {
            Some(w) => format!("No ticket open. Press t for a ticket on {}.", w.symbol),
            None => "No ticket open. Press t for a ticket.".to_string(),
        };
        let mut lines = vec![Line::from(text)];
        lines.extend(result_lines(theme, snap, None));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    };
    // Narrow: the fields in a grid of three columns above the verdict, so the verdict gets
    // the full width. Wide (the side panel): one field per row.
    let cols: u16 = if side_by_side && inner.width >= 66 { 3 } else { 1 };
    let field_rows = (TicketField::ALL.len() as u16).div_ceil(cols);
    let [fields_area, preview_area] =
        Layout::vertical([Constraint::Length(field_rows + 1), Constraint::Fill(1)]).areas(inner);
    let col_w = fields_area.width / cols;
    let preview = snap.ticket_preview.as_ref().filter(|p| p.draft == form.draft());
    for (i, field) in TicketField::ALL.iter().enumerate() {
        let (row, col) = (i as u16 / cols, i as u16 % cols);
        let y = fields_area.y + row;
        let x = fields_area.x + col * col_w;
        let is_focused = i == form.focused && focused;
        let has_error = preview.is_some_and(|p| p.field_errors.iter().any(|(f, _)| f == field));
        let label_style = if has_error {
            theme.negative().add_modifier(Modifier::BOLD)
        } else if is_focused {
            theme.accent().add_modifier(Modifier::BOLD)
        } else {
            theme.plain()
        };
        let marker = if is_focused { ">" } else { " " };
        let label = Rect {
            x,
            y,
            width: 13.min(col_w),
            height: 1,
        };
        // A toggle names its keys where the trader is: `side b/s`, `type l/m`.
        let text = match field {
            TicketField::Side if is_focused => "side b/s".to_string(),
            TicketField::OrderType if is_focused => "type l/m".to_string(),
            _ => field.label().to_string(),
        };
        frame.render_widget(
            Paragraph::new(Span::styled(format!("{marker}{text:<12}"), label_style)),
            label,
        );
        let value = Rect {
            x: label.right(),
            y,
            width: col_w.saturating_sub(label.width + 1),
            height: 1,
        };
        if let Some(ta) = form.fields.get(i) {
            let mut ta = ta.clone();
            let underline = Style::default().add_modifier(Modifier::UNDERLINED);
            ta.set_style(underline);
            ta.set_cursor_style(if is_focused { theme.selected() } else { underline });
            frame.render_widget(&ta, value);
        }
    }
    let mut lines = result_lines(theme, snap, Some(form));
    let full = preview_lines(theme, snap, form, false);
    let fits = wrapped_rows(&lines, preview_area.width) + wrapped_rows(&full, preview_area.width)
        <= preview_area.height;
    if fits {
        lines.extend(full);
    } else {
        lines.extend(preview_lines(theme, snap, form, true));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), preview_area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_detail_drops_the_code_the_reason_starts_with() {
        assert_eq!(
            rule_detail("FAT_FINGER", "FAT_FINGER: limit price 3400 is 9% from ask"),
            "limit price 3400 is 9% from ask"
        );
    }

    #[test]
    fn rule_detail_keeps_a_reason_that_only_mentions_the_code() {
        assert_eq!(
            rule_detail("BALANCE", "468.08 <= 2410.55 USDT free"),
            "468.08 <= 2410.55 USDT free"
        );
        assert_eq!(rule_detail("BALANCE", "BALANCE_LOW: 3"), "BALANCE_LOW: 3");
    }
}
