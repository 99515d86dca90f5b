"""Conformance of `crbot sim` with ccxt (see README.md for the version): a trader's ccxt script
pointed at the local exchange works with only the base URL changed.

Usage: python ccxt_conformance.py PATH_TO_CRBOT

What is changed, and why: every `https://api.binance.com` URL of ccxt's `binance` class is
replaced by the sim's REST URL (that is the base URL), and the documented ccxt option
`fetchMarkets: {"types": ["spot"]}` is set, because ccxt's default also loads futures
markets from fapi.binance.com and dapi.binance.com, hosts the sim (a spot exchange) does not
stand in for. Nothing else: margin pairs and currencies are fetched as against Binance.

Checks markets, tickers, book, trades, OHLCV, balance, market and limit orders, cancel,
open and closed orders, my trades, fees and error mapping; ccxt's unified iceberg
(`icebergAmount`) and self-trade prevention (`selfTradePrevention`) parameters; OCO, OTO and
OTOCO lists through ccxt's raw endpoint methods (`privatePostOrderListOco`/`Oto`/`Otoco`,
`privateGetOrderList`, `privateDeleteOrderList`, `privateGetMyPreventedMatches`); and ccxt
pro's `watch_orders`, `watch_my_trades` and `watch_balance`, which subscribe with the
WebSocket API's `userDataStream.subscribe.signature` (ccxt's `urls.api.ws.ws-api.spot`, set
to the sim's WebSocket API URL): an order's NEW and TRADE, the fill and the balance change.
Exit status 0 only if every check passed.
"""

import asyncio
import sys
from decimal import Decimal

import ccxt
import ccxt.pro as ccxtpro

from simproc import Sim, attempt, check, expect_raise, summary

BINANCE = "https://api.binance.com"


def exchange(sim, module=ccxt):
    ex = module.binance(
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


def lists_and_flags(ex, sim):
    """Iceberg and self-trade prevention through ccxt's unified parameters; OCO, OTO and OTOCO
    through its raw endpoint methods (ccxt has no unified call for them)."""
    attempt("market buy for the sells below", lambda: ex.create_order("BTC/USDT", "market", "buy", 0.002))
    book = ex.fetch_order_book("BTC/USDT", 5)
    ask = book["asks"][0][0]
    ice = attempt("iceberg limit sell (icebergAmount)", lambda: ex.create_order(
        "BTC/USDT", "limit", "sell", 0.0004, ask, {"icebergAmount": 0.0002})) or {}
    check("iceberg: icebergQty on the order", Decimal(ice.get("info", {}).get("icebergQty", "0")) == Decimal("0.0002"),
          ice.get("info"))
    # A buy at the iceberg's price meets it first (the account's own order): expire_taker
    # stops the match.
    stp = attempt("buy with selfTradePrevention=expire_taker", lambda: ex.create_order(
        "BTC/USDT", "limit", "buy", 0.0002, ask, {"selfTradePrevention": "expire_taker"})) or {}
    info = stp.get("info", {})
    check("STP: the taker EXPIRED_IN_MATCH with a prevented match",
          info.get("status") == "EXPIRED_IN_MATCH" and info.get("preventedMatchId") is not None, info)
    prevented = attempt("myPreventedMatches", lambda: ex.privateGetMyPreventedMatches(
        {"symbol": "BTCUSDT", "orderId": info.get("orderId")})) or []
    check("myPreventedMatches: taker and maker", prevented and prevented[0].get("makerOrderId") == int(ice.get("id", 0)),
          prevented)
    # (The market may have risen through it since: then there is nothing to cancel.)
    if (attempt("fetch the iceberg", lambda: ex.fetch_order(ice["id"], "BTC/USDT")) or {}).get("status") == "open":
        attempt("cancel the iceberg", lambda: ex.cancel_order(ice["id"], "BTC/USDT"))

    last = Decimal(str(ex.fetch_ticker("BTC/USDT")["last"]))
    at = lambda k: str((last * Decimal(k)).quantize(Decimal("0.01")))  # noqa: E731
    oco = attempt("OCO via privatePostOrderListOco", lambda: ex.privatePostOrderListOco({
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.0003",
        "aboveType": "LIMIT_MAKER", "abovePrice": at("1.05"),
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": at("0.95"), "belowPrice": at("0.94"),
        "belowTimeInForce": "GTC"})) or {}
    check("OCO: two orders", oco.get("contingencyType") == "OCO" and len(oco.get("orders", [])) == 2, oco)
    oto = attempt("OTO via privatePostOrderListOto", lambda: ex.privatePostOrderListOto({
        "symbol": "BTCUSDT", "workingType": "LIMIT", "workingSide": "BUY", "workingPrice": at("0.9"),
        "workingQuantity": "0.0003", "workingTimeInForce": "GTC",
        "pendingType": "LIMIT_MAKER", "pendingSide": "SELL", "pendingPrice": at("1.1"),
        "pendingQuantity": "0.0002"})) or {}
    reports = oto.get("orderReports", [])
    check("OTO: working NEW, pending PENDING_NEW",
          [r.get("status") for r in reports] == ["NEW", "PENDING_NEW"], reports)
    otoco = attempt("OTOCO via privatePostOrderListOtoco", lambda: ex.privatePostOrderListOtoco({
        "symbol": "BTCUSDT", "workingType": "LIMIT", "workingSide": "BUY", "workingPrice": at("0.9"),
        "workingQuantity": "0.0003", "workingTimeInForce": "GTC", "pendingSide": "SELL",
        "pendingQuantity": "0.0002", "pendingAboveType": "LIMIT_MAKER", "pendingAbovePrice": at("1.1"),
        "pendingBelowType": "STOP_LOSS", "pendingBelowStopPrice": at("0.85")})) or {}
    check("OTOCO: three orders", len(otoco.get("orderReports", [])) == 3, otoco)
    got = attempt("privateGetOrderList", lambda: ex.privateGetOrderList({"orderListId": oto.get("orderListId")})) or {}
    check("orderList: the OTO", got.get("contingencyType") == "OTO", got)
    for name, lst in (("OCO", oco), ("OTO", oto), ("OTOCO", otoco)):
        done = attempt(f"cancel the {name}", lambda lst=lst: ex.privateDeleteOrderList(
            {"symbol": "BTCUSDT", "orderListId": lst.get("orderListId")})) or {}
        check(f"{name} cancelled: ALL_DONE", done.get("listOrderStatus") == "ALL_DONE", done)
    check("no order left open after the lists", ex.fetch_open_orders("BTC/USDT") == [])


async def watchers(sim):
    """ccxt pro's user-data watchers see a limit order's NEW, then its TRADE when the market
    crosses it, the fill, and the balance change."""
    ex = exchange(sim, ccxtpro)
    ex.urls["api"]["ws"]["ws-api"]["spot"] = sim.fields["ws_api"]
    try:
        await ex.load_markets()
        # Subscribed (the answer to userDataStream.subscribe.signature received) before the
        # watchers wait and before anything trades.
        await ex.authenticate()
        orders = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
        balance = asyncio.ensure_future(ex.watch_balance())
        trades = asyncio.ensure_future(ex.watch_my_trades("BTC/USDT"))
        await asyncio.sleep(0.1)  # the three futures registered with the connection
        last = Decimal(str((await ex.fetch_ticker("BTC/USDT"))["last"]))
        price = float((last * Decimal("0.99")).quantize(Decimal("0.01")))
        placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.0005, price)
        seen = await asyncio.wait_for(orders, 10)
        check("watch_orders: the order, open (NEW)",
              any(o["id"] == placed["id"] and o["status"] == "open" for o in seen), seen)
        sim.set_price("BTCUSDT", (last * Decimal("0.98")).quantize(Decimal("0.01")))
        filled = []
        for _ in range(5):
            batch = await asyncio.wait_for(ex.watch_orders("BTC/USDT"), 10)
            filled = [o for o in batch if o["id"] == placed["id"] and o["status"] == "closed"]
            if filled:
                break
        check("watch_orders: the order, closed (TRADE)", filled and filled[0]["filled"] == 0.0005, filled)
        mine = await asyncio.wait_for(trades, 10)
        check("watch_my_trades: the fill", any(t["order"] == placed["id"] and t["amount"] == 0.0005 for t in mine),
              mine)
        bal = await asyncio.wait_for(balance, 10)
        check("watch_balance: BTC received", (bal.get("BTC", {}).get("total") or 0) > 0, bal.get("BTC"))
    except Exception as e:  # noqa: BLE001
        check("ccxt pro watchers", False, f"{type(e).__name__}: {e}")
    finally:
        await ex.close()


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
        lists_and_flags(ex, sim)
        asyncio.run(watchers(sim))
    finally:
        sim.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
