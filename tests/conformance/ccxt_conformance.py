"""Conformance of `crbot sim` with ccxt (see README.md for the version): a trader's ccxt script
pointed at the local exchange works with only the base URL changed.

Usage: python ccxt_conformance.py PATH_TO_CRBOT

What is changed, and why: every `https://api.binance.com` URL of ccxt's `binance` class is
replaced by the sim's REST URL (that is the base URL), and the documented ccxt option
`fetchMarkets: {"types": ["spot"]}` is set, because ccxt's default also loads futures
markets from fapi.binance.com and dapi.binance.com, hosts the sim (a spot exchange) does not
stand in for. Nothing else: margin pairs and currencies are fetched as against Binance.

Checks markets, tickers, book, trades, OHLCV, balance, market and limit orders, cancel,
open and closed orders, my trades, fees and error mapping. Exit status 0 only if every check
passed.
"""

import sys
from decimal import Decimal

import ccxt

from simproc import Sim, attempt, check, expect_raise, summary

BINANCE = "https://api.binance.com"


def exchange(sim):
    ex = ccxt.binance(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    for name, url in list(ex.urls["api"].items()):
        if isinstance(url, str) and url.startswith(BINANCE):
            ex.urls["api"][name] = sim.rest + url[len(BINANCE):]
    return ex


def market_data(ex):
    markets = attempt("load_markets", ex.load_markets) or {}
    check("load_markets: the six spot symbols", len(markets) == 6, list(markets))
    btc = markets.get("BTC/USDT", {})
    check("market BTC/USDT is spot", btc.get("spot") is True and btc.get("id") == "BTCUSDT", btc.get("id"))
    check("market precision from the filters",
          btc.get("precision", {}).get("price") == 0.01 and btc.get("precision", {}).get("amount") == 0.00001,
          btc.get("precision"))
    check("market limits from the filters",
          btc.get("limits", {}).get("cost", {}).get("min") == 5.0
          and btc.get("limits", {}).get("amount", {}).get("min") == 0.00001,
          btc.get("limits"))

    t = attempt("fetch_ticker", lambda: ex.fetch_ticker("BTC/USDT")) or {}
    check("ticker: bid < ask and a last price", (t.get("bid") or 0) < (t.get("ask") or 0) and (t.get("last") or 0) > 0, t)
    tickers = attempt("fetch_tickers", ex.fetch_tickers) or {}
    check("fetch_tickers: every symbol", len(tickers) == 6, list(tickers))

    book = attempt("fetch_order_book", lambda: ex.fetch_order_book("ETH/USDT", 5)) or {}
    bids, asks = book.get("bids", []), book.get("asks", [])
    check("book: 5 levels a side, not crossed",
          len(bids) == 5 and len(asks) == 5 and bids[0][0] < asks[0][0], book)

    trades = attempt("fetch_trades", lambda: ex.fetch_trades("BTC/USDT", limit=10)) or []
    check("fetch_trades: 10, oldest first",
          len(trades) == 10 and all(a["timestamp"] <= b["timestamp"] for a, b in zip(trades, trades[1:])),
          [x.get("timestamp") for x in trades])
    check("fetch_trades: sides and prices", all(x["side"] in ("buy", "sell") and x["price"] > 0 for x in trades))

    for method in ("publicGetTrades", "publicGetHistoricalTrades"):
        rows = attempt(f"fetch_trades via {method}",
                       lambda: ex.fetch_trades("BTC/USDT", limit=3, params={"fetchTradesMethod": method})) or []
        ids = [int(x["id"]) for x in rows]
        check(f"fetch_trades via {method}: 3 consecutive ids", len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3)), ids)
    rolling = attempt("fetch_ticker rolling 1h",
                      lambda: ex.fetch_ticker("BTC/USDT", {"rolling": True, "windowSize": "1h"})) or {}
    info = rolling.get("info", {})
    check("rolling ticker: a window of about an hour",
          3_600_000 <= int(info.get("closeTime", 0)) - int(info.get("openTime", 0)) < 3_660_000, info)

    ohlcv = attempt("fetch_ohlcv", lambda: ex.fetch_ohlcv("BTC/USDT", "1m", limit=5)) or []
    check("fetch_ohlcv: 5 contiguous minutes",
          len(ohlcv) == 5 and all(b[0] - a[0] == 60_000 for a, b in zip(ohlcv, ohlcv[1:])), ohlcv)
    check("fetch_ohlcv: high >= low", all(r[2] >= r[3] for r in ohlcv))

    status = attempt("fetch_status", ex.fetch_status) or {}
    check("fetch_status: ok", status.get("status") == "ok", status)
    currencies = attempt("fetch_currencies", ex.fetch_currencies) or {}
    check("fetch_currencies: the sim's assets", {"BTC", "USDT", "ETH"} <= set(currencies), list(currencies))


def trading(ex, sim):
    bal = attempt("fetch_balance", ex.fetch_balance) or {}
    check("balance: 10000 USDT free", bal.get("USDT", {}).get("free") == 10000.0, bal.get("USDT"))

    fee = attempt("fetch_trading_fee", lambda: ex.fetch_trading_fee("BTC/USDT")) or {}
    check("fetch_trading_fee: 0.1 %", fee.get("maker") == 0.001 and fee.get("taker") == 0.001, fee)
    fees = attempt("fetch_trading_fees", ex.fetch_trading_fees) or {}
    check("fetch_trading_fees: every symbol", len(fees) == 6, list(fees))

    buy = attempt("market buy", lambda: ex.create_order("BTC/USDT", "market", "buy", 0.002)) or {}
    check("market buy: closed and filled", buy.get("status") == "closed" and buy.get("filled") == 0.002, buy)
    check("market buy: fee in BTC", (buy.get("fee") or {}).get("currency") == "BTC", buy.get("fee"))
    fill_ids = [int(f["id"]) for f in buy.get("trades", []) if f.get("id")]

    # The account's own fill is on the public tape (aggregate trades cover trade id ranges).
    tape = attempt("fetch_trades after the fill", lambda: ex.fetch_trades("BTC/USDT", limit=50)) or []
    covered = [x for x in tape if fill_ids and int(x["info"]["f"]) <= fill_ids[-1] <= int(x["info"]["l"])]
    check("the fill is on the public tape", covered, (fill_ids, [x["info"] for x in tape[-3:]]))

    last = ex.fetch_ticker("BTC/USDT")["last"]
    price = float((Decimal(str(last)) * Decimal("0.95")).quantize(Decimal("0.01")))
    lim = attempt("limit buy", lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.001, price)) or {}
    check("limit buy: open", lim.get("status") == "open" and lim.get("price") == price, lim)
    opened = attempt("fetch_open_orders", lambda: ex.fetch_open_orders("BTC/USDT")) or []
    check("open orders: the limit order", [o["id"] for o in opened] == [lim.get("id")], [o["id"] for o in opened])
    canceled = attempt("cancel_order", lambda: ex.cancel_order(lim["id"], "BTC/USDT")) or {}
    check("cancel: canceled", canceled.get("status") == "canceled", canceled)
    fetched = attempt("fetch_order", lambda: ex.fetch_order(lim["id"], "BTC/USDT")) or {}
    check("fetch_order: canceled", fetched.get("status") == "canceled", fetched)
    closed = attempt("fetch_closed_orders", lambda: ex.fetch_closed_orders("BTC/USDT")) or []
    check("closed orders: the market buy", buy.get("id") in [o["id"] for o in closed], [o["id"] for o in closed])
    left = attempt("fetch_open_orders again", lambda: ex.fetch_open_orders("BTC/USDT"))
    check("no order left open", left == [], left)

    mine = attempt("fetch_my_trades", lambda: ex.fetch_my_trades("BTC/USDT")) or []
    check("my trades: the market buy's fill", [t["order"] for t in mine] == [buy.get("id")] * len(mine) and mine, mine)
    check("my trades: taker, with a fee", all(t["takerOrMaker"] == "taker" and t["fee"]["cost"] > 0 for t in mine))

    sell = attempt("market sell", lambda: ex.create_order("BTC/USDT", "market", "sell", 0.001)) or {}
    check("market sell: fee in USDT", (sell.get("fee") or {}).get("currency") == "USDT", sell.get("fee"))

    # ccxt maps Binance's -1013 (filter failure) to BadRequest.
    expect_raise("too small an order is BadRequest (-1013 NOTIONAL)",
                 lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.00001, price), ccxt.BadRequest)
    expect_raise("more than the balance is InsufficientFunds",
                 lambda: ex.create_order("BTC/USDT", "market", "buy", 1), ccxt.InsufficientFunds)
    expect_raise("cancelling it again is OrderNotFound",
                 lambda: ex.cancel_order(lim["id"], "BTC/USDT"), ccxt.OrderNotFound)
    # A stop-limit sell (ccxt's unified stop: `stopPrice` with a limit order), triggered by
    # the last price when the market falls through it.
    now = Decimal(str(ex.fetch_ticker("BTC/USDT")["last"]))
    stop_px = float((now * Decimal("0.98")).quantize(Decimal("0.01")))
    limit_px = float((now * Decimal("0.97")).quantize(Decimal("0.01")))
    stop = attempt("stop-limit sell", lambda: ex.create_order(
        "BTC/USDT", "limit", "sell", 0.0005, limit_px, {"stopPrice": stop_px})) or {}
    placed = attempt("fetch_order of the stop", lambda: ex.fetch_order(stop["id"], "BTC/USDT")) or {}
    check("stop: a STOP_LOSS_LIMIT waiting", placed.get("info", {}).get("type") == "STOP_LOSS_LIMIT"
          and placed.get("status") == "open" and placed.get("info", {}).get("isWorking") is False, placed.get("info"))
    attempt("move the market below the stop",
            lambda: sim.set_price("BTCUSDT", (now * Decimal("0.975")).quantize(Decimal("0.01"))))
    done = attempt("fetch_order after the move", lambda: ex.fetch_order(stop["id"], "BTC/USDT")) or {}
    check("stop: triggered and filled at its limit or better",
          done.get("status") == "closed" and (done.get("average") or 0) >= limit_px, done.get("info"))

    bad = ccxt.binance({"apiKey": ex.apiKey, "secret": "x" * 64, "options": {"fetchMarkets": {"types": ["spot"]}}})
    bad.urls["api"] = ex.urls["api"]
    bad.markets, bad.markets_by_id, bad.symbols = ex.markets, ex.markets_by_id, ex.symbols
    expect_raise("a wrong secret is AuthenticationError", bad.fetch_balance, ccxt.AuthenticationError)


def main():
    crbot = sys.argv[1] if len(sys.argv) > 1 else "target/debug/crbot"
    sim = Sim(crbot)
    try:
        ex = exchange(sim)
        market_data(ex)
        trading(ex, sim)
    finally:
        sim.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
