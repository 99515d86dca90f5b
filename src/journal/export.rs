//! CSV export of the journal (`crbot journal export --csv DIR`).
//!
//! Owns: RFC 4180 quoting and the column lists of each exported file, and the replay of
//! crbot's own fills through [`crate::portfolio::Positions`] that gives each fill its running
//! position, cost basis and realized P&L (the same booking the console does). Must not: write
//! anything into the journal; it reads through the caller's connection.
//!
//! Columns of an existing file keep their meaning and order; new ones are appended, new files
//! get new names. Decimals are exact (never rounded). The README lists every column.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use rust_decimal::Decimal;

use super::JournalError;
use crate::domain::{Asset, ClientOrderId, Fill, OrderPurpose, Price, Qty, Side, Symbol, plain};
use crate::portfolio::{FillOutcome, Pair, Positions, utc_date};

/// Quotes a field when it holds a comma, a quote or a line break (RFC 4180).
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// The files written and the query behind each (columns are the header, in order).
const FILES: &[(&str, &str)] = &[
    (
        "orders.csv",
        "SELECT client_order_id, order_id, order_list_id, symbol, side, type, price, stop_price, qty, \
         executed_qty, cum_quote_qty, state, purpose, created_ms, updated_ms, last_error \
         FROM orders ORDER BY created_ms, rowid",
    ),
    (
        "risk_events.csv",
        "SELECT time_ms, source, symbol, side, ticket, approved, codes, reason \
         FROM risk_events ORDER BY id",
    ),
    (
        "equity_curve.csv",
        "SELECT time_ms, equity, asset FROM equity_curve ORDER BY time_ms, id",
    ),
];

/// Writes every file of [`FILES`] into `dir` (created if missing); returns the paths written.
pub fn export(conn: &Connection, dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| JournalError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, sql) in FILES {
        let path = dir.join(name);
        let sql = if *name == "equity_curve.csv" {
            equity_sql(conn)?
        } else {
            sql.to_string()
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
        let mut stmt = conn.prepare(&sql)?;
        let header: Vec<String> = stmt.column_names().map(quote).collect();
        writeln!(out, "{}", header.join(",")).map_err(io(&path))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mut fields = Vec::with_capacity(columns);
            for i in 0..columns {
                fields.push(quote(&field_text(row.get_ref(i)?)));
            }
            writeln!(out, "{}", fields.join(",")).map_err(io(&path))?;
        }
        out.flush().map_err(io(&path))?;
        written.push(path);
    }
    written.extend(export_books(conn, dir)?);
    for table in optional_tables(conn)? {
        let path = dir.join(format!("{table}.csv"));
        let sql = format!("SELECT * FROM \"{table}\" ORDER BY rowid");
        let (header, rows) = query_rows(conn, &sql)?;
        write_csv(&path, &header, &rows)?;
        written.push(path);
    }
    Ok(written)
}

/// `equity_curve.csv`'s query: its first columns, then whatever columns later migrations added
/// to the table (per-asset detail, an unpriced flag), so that the export carries what the
/// journal has without this file knowing their names.
fn equity_sql(conn: &Connection) -> Result<String, JournalError> {
    let mut columns = vec!["time_ms".to_string(), "equity".to_string(), "asset".to_string()];
    for c in column_names(conn, "equity_curve")? {
        if !columns.contains(&c) && c != "id" {
            columns.push(format!("\"{c}\""));
        }
    }
    Ok(format!(
        "SELECT {} FROM equity_curve ORDER BY time_ms, id",
        columns.join(", ")
    ))
}

/// Quote assets a symbol name may end with, longest first where one is a suffix of another
/// (`FDUSD` before `USD`). The journal stores symbols, not their assets; a symbol ending in none
/// of these gets no running columns rather than a guessed split.
const QUOTE_ASSETS: &[&str] = &[
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "GBP",
];

/// The base and quote assets of a symbol, from the end of its name.
pub fn pair_of(symbol: &Symbol) -> Option<Pair> {
    let name = symbol.as_str();
    QUOTE_ASSETS.iter().find_map(|q| {
        let base = name.strip_suffix(q).filter(|b| !b.is_empty())?;
        Some(Pair {
            base: Asset::new(base).ok()?,
            quote: Asset::new(q).ok()?,
        })
    })
}

/// What the orders table says about the order behind a fill.
struct OrderInfo {
    order_list_id: Option<i64>,
    purpose: Option<OrderPurpose>,
}

/// `entry`, `exit`, `protection` or `kill_flatten`: what an auditor groups fills by.
fn purpose_class(p: OrderPurpose) -> &'static str {
    match p {
        OrderPurpose::Entry => "entry",
        OrderPurpose::Exit => "exit",
        OrderPurpose::StopLoss | OrderPurpose::TakeProfit => "protection",
        OrderPurpose::Flatten => "kill_flatten",
        OrderPurpose::External => "external",
    }
}

/// The columns `trades.csv` had before the fee and running columns were appended.
const TRADE_COLUMNS: &[&str] = &[
    "symbol",
    "trade_id",
    "order_id",
    "client_order_id",
    "side",
    "price",
    "qty",
    "commission",
    "commission_asset",
    "time_ms",
    "is_maker",
];

/// Appended to `trades.csv`, in this order.
const TRADE_APPENDED: &[&str] = &[
    "quote_qty",
    "order_list_id",
    "purpose",
    "purpose_class",
    "quote_asset",
    "fee_price",
    "fee_value_quote",
    "fee_unpriced",
    "position_qty",
    "cost_basis",
    "realized_pnl",
    "realized_pnl_total",
];

/// Writes `trades.csv` (every fill, with its fee valued and the running books of crbot's
/// position after it), `positions.csv` (the books after the last fill) and `fees_daily.csv`.
fn export_books(conn: &Connection, dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let orders = order_info(conn)?;
    let export = trade_rows(conn, &orders)?;
    let trades = dir.join("trades.csv");
    write_csv(&trades, &export.header, &export.rows)?;
    let positions = write_positions(dir, &export.books)?;
    let fees = write_fees_daily(dir, export.daily)?;
    Ok(vec![trades, positions, fees])
}

/// Fees per UTC day, fee asset and quote asset: paid, valued in the quote, unpriced.
type DailyFees = BTreeMap<(String, Asset, Asset), [Decimal; 3]>;

/// `trades.csv` replayed: its header and rows, the books after the last fill, the daily fees.
struct TradeExport {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    books: Positions,
    daily: DailyFees,
}

/// What the export needs of each crbot order: its list and its purpose.
fn order_info(conn: &Connection) -> Result<BTreeMap<String, OrderInfo>, JournalError> {
    let mut orders: BTreeMap<String, OrderInfo> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT client_order_id, order_list_id, purpose FROM orders")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let cid: String = r.get(0)?;
        let purpose: String = r.get(2)?;
        orders.insert(
            cid,
            OrderInfo {
                order_list_id: r.get(1)?,
                purpose: OrderPurpose::from_code(&purpose),
            },
        );
    }
    Ok(orders)
}

/// Every fill as a row of `trades.csv`, with the books replayed along the way and the daily fees.
fn trade_rows(conn: &Connection, orders: &BTreeMap<String, OrderInfo>) -> Result<TradeExport, JournalError> {
    let has_fee_price = column_names(conn, "trades")?.iter().any(|c| c == "fee_price");
    let sql = format!(
        "SELECT {}, {} FROM trades ORDER BY time_ms, id",
        TRADE_COLUMNS.join(", "),
        if has_fee_price { "fee_price" } else { "NULL" }
    );
    let mut header: Vec<String> = TRADE_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(TRADE_APPENDED.iter().map(|c| c.to_string()));
    let mut books = Positions::new();
    let mut daily: DailyFees = BTreeMap::new();
    let mut out_rows = Vec::new();
    let mut stmt = conn.prepare(&sql)?;
    let columns = TRADE_COLUMNS.len();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let mut fields = Vec::with_capacity(header.len());
        for i in 0..columns {
            fields.push(field_text(r.get_ref(i)?));
        }
        let fee_price_text: Option<String> = r.get(columns)?;
        let fill = fill_of(&fields)?;
        let info = fill.client_order_id.as_ref().and_then(|c| orders.get(c.as_str()));
        let purpose = info.and_then(|i| i.purpose);
        let fee_price = fee_price_text
            .as_deref()
            .map(Price::from_str)
            .transpose()
            .map_err(|e| JournalError::Invalid(format!("fee price of trade {}: {e}", fill.trade_id)))?;
        let pair = pair_of(&fill.symbol);
        fields.push(
            fill.price
                .value()
                .checked_mul(fill.qty.value())
                .map(plain)
                .unwrap_or_default(),
        );
        fields.push(
            info.and_then(|i| i.order_list_id)
                .map(|v| v.to_string())
                .unwrap_or_default(),
        );
        fields.push(purpose.map(|p| p.as_code().to_string()).unwrap_or_default());
        fields.push(purpose.map(|p| purpose_class(p).to_string()).unwrap_or_default());
        fields.push(pair.as_ref().map(|p| p.quote.to_string()).unwrap_or_default());
        fields.push(fee_price.map(|p| p.to_string()).unwrap_or_default());
        let own = purpose.is_some_and(|p| p != OrderPurpose::External);
        let outcome = match (&pair, own) {
            (Some(pair), true) => Some(books.apply_fill(&fill, pair, fee_price).map_err(|e| {
                JournalError::Invalid(format!("trade {} on {}: {e}", fill.trade_id, fill.symbol))
            })?),
            _ => None,
        };
        match (&outcome, &pair) {
            (Some(FillOutcome::Applied { realized, fee, .. }), Some(pair)) => {
                let pos = books.get(&fill.symbol);
                fields.push(fee.value.as_ref().map(|v| plain(v.amount())).unwrap_or_default());
                fields.push(if fee.value.is_none() {
                    plain(fee.amount)
                } else {
                    String::new()
                });
                fields.push(pos.map(|p| p.qty().to_string()).unwrap_or_default());
                fields.push(pos.map(|p| plain(p.cost_basis().amount())).unwrap_or_default());
                fields.push(plain(realized.amount()));
                fields.push(pos.map(|p| plain(p.realized_pnl().amount())).unwrap_or_default());
                if !fee.amount.is_zero() {
                    let day = utc_date(fill.time_ms)
                        .map(|d| d.to_string())
                        .unwrap_or_else(|_| fill.time_ms.to_string());
                    let e = daily
                        .entry((day, fee.asset.clone(), pair.quote.clone()))
                        .or_insert([Decimal::ZERO; 3]);
                    e[0] = e[0].saturating_add(fee.amount);
                    match &fee.value {
                        // In the pair's quote asset: `apply_fill` refuses a fee valued in another.
                        Some(v) => e[1] = e[1].saturating_add(v.amount()),
                        None => e[2] = e[2].saturating_add(fee.amount),
                    }
                }
            }
            _ => fields.extend(std::iter::repeat_n(String::new(), 6)),
        }
        out_rows.push(fields);
    }
    Ok(TradeExport {
        header,
        rows: out_rows,
        books,
        daily,
    })
}

/// `positions.csv`: the books after the last fill.
fn write_positions(dir: &Path, books: &Positions) -> Result<PathBuf, JournalError> {
    let exported_ms = chrono::Utc::now().timestamp_millis().to_string();
    let pos_header = [
        "symbol",
        "base_asset",
        "quote_asset",
        "qty",
        "cost_basis",
        "avg_entry",
        "realized_pnl",
        "fees_value_quote",
        "fees_paid",
        "fees_unpriced",
        "pnl_complete",
        "exported_ms",
    ]
    .map(String::from);
    let assets = |m: &BTreeMap<Asset, Decimal>| {
        m.iter()
            .map(|(a, v)| format!("{} {a}", plain(*v)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let pos_rows: Vec<Vec<String>> = books
        .iter()
        .map(|p| {
            vec![
                p.symbol.to_string(),
                p.pair.base.to_string(),
                p.pair.quote.to_string(),
                p.qty().to_string(),
                plain(p.cost_basis().amount()),
                p.avg_entry().map(|v| v.to_string()).unwrap_or_default(),
                plain(p.realized_pnl().amount()),
                plain(p.fees_paid().amount()),
                assets(&p.fees().paid),
                assets(&p.fees().unpriced),
                p.pnl_complete().to_string(),
                exported_ms.clone(),
            ]
        })
        .collect();
    let positions = dir.join("positions.csv");
    write_csv(&positions, &pos_header, &pos_rows)?;
    Ok(positions)
}

/// `fees_daily.csv`: the fees of each UTC day.
fn write_fees_daily(dir: &Path, daily: DailyFees) -> Result<PathBuf, JournalError> {
    let fee_header = [
        "date_utc",
        "fee_asset",
        "paid",
        "value_quote",
        "quote_asset",
        "unpriced",
    ]
    .map(String::from);
    let fee_rows: Vec<Vec<String>> = daily
        .into_iter()
        .map(|((day, asset, quote), [paid, value, unpriced])| {
            vec![
                day,
                asset.to_string(),
                plain(paid),
                plain(value),
                quote.to_string(),
                plain(unpriced),
            ]
        })
        .collect();
    let fees = dir.join("fees_daily.csv");
    write_csv(&fees, &fee_header, &fee_rows)?;
    Ok(fees)
}

/// A fill from the text of [`TRADE_COLUMNS`].
fn fill_of(f: &[String]) -> Result<Fill, JournalError> {
    let bad = |what: &str| JournalError::Invalid(format!("trade row {}/{}: bad {what}", f[0], f[1]));
    Ok(Fill {
        symbol: Symbol::new(&f[0]).map_err(|_| bad("symbol"))?,
        trade_id: f[1].parse().map_err(|_| bad("trade id"))?,
        order_id: f[2].parse().map_err(|_| bad("order id"))?,
        client_order_id: if f[3].is_empty() {
            None
        } else {
            Some(ClientOrderId::new(&f[3]).map_err(|_| bad("client order id"))?)
        },
        side: match f[4].as_str() {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            _ => return Err(bad("side")),
        },
        price: f[5].parse().map_err(|_| bad("price"))?,
        qty: f[6].parse().map_err(|_| bad("qty"))?,
        commission: f[7].parse::<Qty>().map_err(|_| bad("commission"))?,
        commission_asset: Asset::new(&f[8]).map_err(|_| bad("commission asset"))?,
        time_ms: f[9].parse().map_err(|_| bad("time"))?,
        is_maker: f[10] == "1",
    })
}

/// Tables other engineers' migrations may add, exported whole when present: capital flows
/// and any per-asset equity detail (`equity_*` other than `equity_curve`).
fn optional_tables(conn: &Connection) -> Result<Vec<String>, JournalError> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND (name = 'capital_flows' OR (name LIKE 'equity\\_%' ESCAPE '\\' AND name != 'equity_curve')) \
         ORDER BY name",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(names.collect::<Result<Vec<_>, _>>()?)
}

/// A table's columns in their order.
fn column_names(conn: &Connection, table: &str) -> Result<Vec<String>, JournalError> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    Ok(names.collect::<Result<Vec<_>, _>>()?)
}

fn query_rows(conn: &Connection, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>), JournalError> {
    let mut stmt = conn.prepare(sql)?;
    let header: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut fields = Vec::with_capacity(columns);
        for i in 0..columns {
            fields.push(field_text(row.get_ref(i)?));
        }
        out.push(fields);
    }
    Ok((header, out))
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<(), JournalError> {
    let io = |source| JournalError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let line = |fields: &[String]| fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(",");
    writeln!(out, "{}", line(header)).map_err(io)?;
    for r in rows {
        writeln!(out, "{}", line(r)).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Decimals are stored as TEXT, so they come out exactly as recorded.
fn field_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_fields_that_need_it() {
        assert_eq!(quote("BTCUSDT"), "BTCUSDT");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }
}
