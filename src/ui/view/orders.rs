//! The open-orders panel: every open order, protective OCO legs included, with its state (a
//! spinner while it is pending or UNKNOWN) and what it is for.
//!
//! Owns: the orders table, the short order-type names and the order-state cell. Must not:
//! hide an order in state UNKNOWN; it is drawn loudly until reconciliation settles it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::TableState;

use super::common::{Col, filter_note, fitted_table, panel, purpose_label, px, record_region};
use crate::domain::{LocalOrderState, OrderStatus, OrderType, Side};
use crate::engine::snapshot::Snapshot;
use crate::ui::app::{App, Focus};
use crate::ui::theme::Theme;

fn short_type(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "MKT",
        OrderType::Limit => "LMT",
        OrderType::LimitMaker => "LMT_MKR",
        OrderType::StopLoss => "STOP",
        OrderType::StopLossLimit => "STOP_LMT",
        OrderType::TakeProfit => "TP",
        OrderType::TakeProfitLimit => "TP_LMT",
    }
}

fn order_state(theme: &Theme, state: LocalOrderState, now_ms: i64) -> (String, Style) {
    match state {
        LocalOrderState::Unknown => (format!("{} UNKNOWN", theme.spinner(now_ms)), theme.warning()),
        LocalOrderState::Pending | LocalOrderState::Sending => (
            format!("{} {}", theme.spinner(now_ms), state.as_code()),
            theme.accent(),
        ),
        LocalOrderState::Exchange(OrderStatus::Rejected) => ("REJECTED".into(), theme.warning()),
        LocalOrderState::Exchange(s) => (s.as_wire().to_string(), theme.plain()),
        LocalOrderState::NotSent => ("NOT_SENT".into(), theme.dim()),
    }
}

pub(super) fn draw_orders(app: &App, snap: &Snapshot, frame: &mut Frame, area: Rect) {
    let theme = &app.config.theme;
    let cols = [
        Col {
            header: "Client id",
            right: false,
            drop: 3,
        },
        Col {
            header: "Symbol",
            right: false,
            drop: 0,
        },
        Col {
            header: "Side",
            right: false,
            drop: 0,
        },
        Col {
            header: "Type",
            right: false,
            drop: 0,
        },
        Col {
            header: "Price",
            right: true,
            drop: 0,
        },
        Col {
            header: "Stop",
            right: true,
            drop: 0,
        },
        Col {
            header: "Qty",
            right: true,
            drop: 0,
        },
        // Which order protects what matters more than how much of it filled (the state says
        // PARTIALLY_FILLED): on a narrow screen Filled goes first.
        Col {
            header: "Filled",
            right: true,
            drop: 2,
        },
        Col {
            header: "State",
            right: false,
            drop: 0,
        },
        Col {
            header: "Purpose",
            right: false,
            drop: 1,
        },
    ];
    let shown = app.visible(Focus::Orders, snap);
    let rows = shown
        .iter()
        .filter_map(|i| snap.orders.get(*i))
        .map(|o| {
            let (state, state_style) = order_state(theme, o.state, snap.now_ms);
            let oco = if o.order_list_id.is_some() { " OCO" } else { "" };
            let p = theme.plain();
            let side_style = theme.signed(o.side == Side::Sell, false);
            let cells = vec![
                (o.client_order_id.to_string(), p),
                (o.symbol.to_string(), p),
                (o.side.as_wire().to_string(), side_style),
                (short_type(o.order_type).to_string(), p),
                (px(o.price, snap.tick(&o.symbol)), p),
                (px(o.stop_price, snap.tick(&o.symbol)), p),
                (o.qty.to_string(), p),
                (o.executed_qty.to_string(), p),
                (state, state_style),
                (format!("{}{oco}", purpose_label(o.purpose)), p),
            ];
            (cells, p)
        })
        .collect();
    let focused = app.focus == Focus::Orders;
    let block = panel(
        theme,
        format!(
            " Open orders ({}){} ",
            snap.orders.len(),
            filter_note(app, Focus::Orders)
        ),
        focused,
    );
    let table = fitted_table(theme, &cols, rows, block.inner(area).width)
        .block(block)
        .row_highlight_style(if focused { theme.selected() } else { theme.plain() });
    let mut state = TableState::default().with_selected(app.shown_selection(Focus::Orders, snap));
    frame.render_stateful_widget(table, area, &mut state);
    record_region(app, Focus::Orders, area, state.offset());
}
