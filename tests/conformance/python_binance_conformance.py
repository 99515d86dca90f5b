"""Conformance of `crbot sim` with python-binance (see README.md for the version): a trader's
python-binance script pointed at the local exchange works with only the base URL changed.

Usage: python python_binance_conformance.py PATH_TO_CRBOT

What is changed: python-binance builds its URLs from the class attributes `API_URL`
(`https://api.binance.com/api`), `MARGIN_API_URL` (`…/sapi`) and `WS_API_URL` (the WebSocket
API); a subclass sets them to the sim's. Nothing else (the client's own start-up ping goes to
the sim).

Checks markets, tickers, book, recent/historical/aggregate trades, klines, balance, market and
limit orders, cancel, open and all orders, my trades, fees and error codes; iceberg and
self-trade prevention parameters and `get_prevented_matches`, and the default mode (EXPIRE_MAKER)
of an order naming none expiring the account's resting order; OCO (`create_oco_order`), OTO and
OTOCO (`v3_post_order_list_oto`/`_otoco`), `v3_get_order_list`, `get_open_oco_orders`,
`v3_delete_order_list`, and the WebSocket API's `ws_create_oto_order`; and the user socket
(`BinanceSocketManager.user_socket`, which python-binance 1.0.37 subscribes through the
WebSocket API's `userDataStream.subscribe.signature`): a limit order's NEW, its TRADE when the
market crosses it, and the balance change. Exit status 0 only if every check passed.
"""

import asyncio
import sys
from decimal import Decimal

from binance import AsyncClient, BinanceSocketManager
from binance.client import Client
from binance.exceptions import BinanceAPIException

from simproc import Sim, attempt, check, summary


def client(sim, base=Client):
    class SimClient(base):
        API_URL = sim.rest + "/api"
        MARGIN_API_URL = sim.rest + "/sapi"
        WS_API_URL = sim.fields["ws_api"]

    return SimClient


def lists_and_flags(c):
    """Iceberg, self-trade prevention, OCO, OTO and OTOCO as python-binance sends them."""
    attempt("market buy for the sells below", lambda: c.order_market_buy(symbol="BTCUSDT", quantity="0.002"))
    ask = c.get_order_book(symbol="BTCUSDT", limit=5)["asks"][0][0]
    ice = attempt("iceberg LIMIT sell", lambda: c.create_order(
        symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.0004", price=ask,
        icebergQty="0.0002")) or {}
    check("iceberg: icebergQty on the order", Decimal(ice.get("icebergQty", "0")) == Decimal("0.0002"), ice)
    # A buy at the iceberg's price meets it first (the account's own order).
    stp = attempt("buy with selfTradePreventionMode=EXPIRE_TAKER", lambda: c.create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0002", price=ask,
        selfTradePreventionMode="EXPIRE_TAKER")) or {}
    check("STP: the taker EXPIRED_IN_MATCH", stp.get("status") == "EXPIRED_IN_MATCH"
          and stp.get("preventedMatchId") is not None, stp)
    pm = attempt("get_prevented_matches", lambda: c.get_prevented_matches(
        symbol="BTCUSDT", orderId=stp.get("orderId"))) or []
    check("prevented matches: the iceberg is the maker", pm and pm[0].get("makerOrderId") == ice.get("orderId"), pm)
    # A buy naming no mode has the symbol's default, EXPIRE_MAKER, as on Binance: it expires
    # the iceberg and trades on with the book (unless the market filled the iceberg first).
    if (attempt("get the iceberg", lambda: c.get_order(symbol="BTCUSDT", orderId=ice["orderId"])) or {}).get(
            "status") == "NEW":
        dflt = attempt("buy naming no selfTradePreventionMode", lambda: c.create_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0002", price=ask)) or {}
        check("STP default: the taker reports EXPIRE_MAKER and fills",
              dflt.get("selfTradePreventionMode") == "EXPIRE_MAKER" and dflt.get("status") == "FILLED", dflt)
        after = attempt("get the iceberg again", lambda: c.get_order(symbol="BTCUSDT", orderId=ice["orderId"])) or {}
        filled_before = after.get("status") == "FILLED" and after.get("updateTime", 0) < dflt.get("transactTime", 0)
        check("STP default: the iceberg EXPIRED_IN_MATCH (unless the market filled it before the buy)",
              after.get("status") == "EXPIRED_IN_MATCH" or filled_before, after)
        if after.get("status") in ("NEW", "PARTIALLY_FILLED"):
            attempt("cancel the iceberg", lambda: c.cancel_order(symbol="BTCUSDT", orderId=ice["orderId"]))

    last = Decimal(c.get_symbol_ticker(symbol="BTCUSDT")["price"])
    at = lambda k: str((last * Decimal(k)).quantize(Decimal("0.01")))  # noqa: E731
    oco = attempt("create_oco_order", lambda: c.create_oco_order(
        symbol="BTCUSDT", side="SELL", quantity="0.0003", aboveType="LIMIT_MAKER", abovePrice=at("1.05"),
        belowType="STOP_LOSS_LIMIT", belowStopPrice=at("0.95"), belowPrice=at("0.94"),
        belowTimeInForce="GTC")) or {}
    check("OCO: two orders", oco.get("contingencyType") == "OCO" and len(oco.get("orders", [])) == 2, oco)
    oto = attempt("v3_post_order_list_oto", lambda: c.v3_post_order_list_oto(
        symbol="BTCUSDT", workingType="LIMIT", workingSide="BUY", workingPrice=at("0.9"),
        workingQuantity="0.0003", workingTimeInForce="GTC", pendingType="LIMIT_MAKER", pendingSide="SELL",
        pendingPrice=at("1.1"), pendingQuantity="0.0002")) or {}
    check("OTO: working NEW, pending PENDING_NEW",
          [r.get("status") for r in oto.get("orderReports", [])] == ["NEW", "PENDING_NEW"], oto)
    otoco = attempt("v3_post_order_list_otoco", lambda: c.v3_post_order_list_otoco(
        symbol="BTCUSDT", workingType="LIMIT", workingSide="BUY", workingPrice=at("0.9"),
        workingQuantity="0.0003", workingTimeInForce="GTC", pendingSide="SELL", pendingQuantity="0.0002",
        pendingAboveType="LIMIT_MAKER", pendingAbovePrice=at("1.1"), pendingBelowType="STOP_LOSS",
        pendingBelowStopPrice=at("0.85"))) or {}
    check("OTOCO: three orders", len(otoco.get("orderReports", [])) == 3, otoco)
    got = attempt("v3_get_order_list", lambda: c.v3_get_order_list(orderListId=oto.get("orderListId"))) or {}
    check("order list: the OTO", got.get("contingencyType") == "OTO", got)
    lists = attempt("get_open_oco_orders", c.get_open_oco_orders) or []
    check("open order lists: all three", len(lists) == 3, lists)
    for name, lst in (("OCO", oco), ("OTO", oto), ("OTOCO", otoco)):
        done = attempt(f"cancel the {name}", lambda lst=lst: c.v3_delete_order_list(
            symbol="BTCUSDT", orderListId=lst.get("orderListId"))) or {}
        check(f"{name} cancelled: ALL_DONE", done.get("listOrderStatus") == "ALL_DONE", done)


async def user_socket(sim):
    """The user socket sees a limit order's NEW, then its TRADE and the balance change; the
    WebSocket API places an OTO."""
    c = await client(sim, AsyncClient).create(sim.api_key, sim.api_secret)
    try:
        bm = BinanceSocketManager(c)
        async with bm.user_socket() as us:
            last = Decimal((await c.get_symbol_ticker(symbol="BTCUSDT"))["price"])
            price = str((last * Decimal("0.99")).quantize(Decimal("0.01")))
            placed = await c.order_limit_buy(symbol="BTCUSDT", quantity="0.0005", price=price)

            async def until(pred):
                while True:
                    ev = await asyncio.wait_for(us.recv(), 10)
                    if pred(ev):
                        return ev

            new = await until(lambda e: e.get("e") == "executionReport" and e.get("i") == placed["orderId"])
            check("user socket: NEW", new.get("x") == "NEW" and new.get("X") == "NEW", new)
            sim.set_price("BTCUSDT", (last * Decimal("0.98")).quantize(Decimal("0.01")))
            trade = await until(lambda e: e.get("e") == "executionReport" and e.get("x") == "TRADE")
            check("user socket: TRADE", trade.get("i") == placed["orderId"] and trade.get("X") == "FILLED", trade)
            pos = await until(lambda e: e.get("e") == "outboundAccountPosition")
            check("user socket: the balance change", any(b["a"] == "BTC" for b in pos.get("B", [])), pos)
            working = str((last * Decimal("0.9")).quantize(Decimal("0.01")))
            oto = await c.ws_create_oto_order(
                symbol="BTCUSDT", workingType="LIMIT", workingSide="BUY", workingPrice=working,
                workingQuantity="0.0003", workingTimeInForce="GTC", pendingType="MARKET", pendingSide="SELL",
                pendingQuantity="0.0002")
            check("ws_create_oto_order: an OTO", oto.get("contingencyType") == "OTO", oto)
            ls = await until(lambda e: e.get("e") == "listStatus")
            check("user socket: listStatus of the OTO", ls.get("c") == "OTO", ls)
    except Exception as e:  # noqa: BLE001
        check("user socket", False, f"{type(e).__name__}: {e}")
    finally:
        await c.close_connection()


def expect_code(name, fn, code):
    try:
        fn()
    except BinanceAPIException as e:
        check(name, e.code == code, f"got {e.code} {e.message}")
        return
    except Exception as e:  # noqa: BLE001
        check(name, False, f"raised {type(e).__name__}: {e}")
        return
    check(name, False, "no error raised")


def market_data(c):
    info = attempt("get_exchange_info", c.get_exchange_info) or {}
    check("exchange info: six symbols", len(info.get("symbols", [])) == 6)
    sym = attempt("get_symbol_info", lambda: c.get_symbol_info("BTCUSDT")) or {}
    check("symbol info: filters", {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"} <= {f["filterType"] for f in sym.get("filters", [])})
    t = attempt("get_ticker", lambda: c.get_ticker(symbol="BTCUSDT")) or {}
    check("24 h ticker: bid < ask", Decimal(t.get("bidPrice", "0")) < Decimal(t.get("askPrice", "0")), t)
    check("get_all_tickers: six prices", len(attempt("get_all_tickers", c.get_all_tickers) or []) == 6)
    book = attempt("get_order_book", lambda: c.get_order_book(symbol="ETHUSDT", limit=5)) or {}
    check("order book: 5 levels a side", len(book.get("bids", [])) == 5 and len(book.get("asks", [])) == 5, book)
    recent = attempt("get_recent_trades", lambda: c.get_recent_trades(symbol="BTCUSDT", limit=5)) or []
    ids = [x["id"] for x in recent]
    check("recent trades: 5 consecutive ids", len(ids) == 5 and ids == list(range(ids[0], ids[0] + 5)), ids)
    hist = attempt("get_historical_trades",
                   lambda: c.get_historical_trades(symbol="BTCUSDT", fromId=ids[0], limit=2)) or []
    check("historical trades from an id", [x["id"] for x in hist] == ids[:2], hist)
    aggs = attempt("get_aggregate_trades", lambda: c.get_aggregate_trades(symbol="BTCUSDT", limit=5)) or []
    check("aggregate trades: 5, with trade id ranges",
          len(aggs) == 5 and all(a["f"] <= a["l"] for a in aggs) and aggs[-1]["l"] == ids[-1], aggs)
    kl = attempt("get_klines", lambda: c.get_klines(symbol="BTCUSDT", interval="1m", limit=5)) or []
    check("klines: 5 contiguous minutes", len(kl) == 5 and all(b[0] - a[0] == 60_000 for a, b in zip(kl, kl[1:])))
    avg = attempt("get_avg_price", lambda: c.get_avg_price(symbol="BTCUSDT")) or {}
    check("avg price: 5 minutes", avg.get("mins") == 5, avg)
    st = attempt("get_system_status", c.get_system_status) or {}
    check("system status: normal", st.get("status") == 0, st)


def trading(c, sim):
    usdt = attempt("get_asset_balance", lambda: c.get_asset_balance("USDT")) or {}
    check("balance: 10000 USDT", Decimal(usdt.get("free", "0")) == Decimal("10000"), usdt)
    fee = attempt("get_trade_fee", lambda: c.get_trade_fee(symbol="BTCUSDT")) or [{}]
    check("trade fee: 0.1 %", fee[0].get("takerCommission") == "0.001", fee)
    coins = attempt("get_all_coins_info", c.get_all_coins_info) or []
    check("coins: the sim's assets", {"BTC", "USDT"} <= {x["coin"] for x in coins})

    buy = attempt("order_market_buy", lambda: c.order_market_buy(symbol="BTCUSDT", quantity="0.002")) or {}
    fills = buy.get("fills", [])
    check("market buy: FILLED, fills add up",
          buy.get("status") == "FILLED" and sum(Decimal(f["qty"]) for f in fills) == Decimal("0.002"), buy)
    recent = attempt("recent trades after the fill", lambda: c.get_recent_trades(symbol="BTCUSDT", limit=50)) or []
    check("the fill is on the public tape",
          fills and fills[-1]["tradeId"] in [x["id"] for x in recent], [x["id"] for x in recent[-3:]])

    last = Decimal(c.get_symbol_ticker(symbol="BTCUSDT")["price"])
    price = str((last * Decimal("0.95")).quantize(Decimal("0.01")))
    lim = attempt("order_limit_buy", lambda: c.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=price)) or {}
    check("limit buy: NEW", lim.get("status") == "NEW", lim)
    opened = attempt("get_open_orders", lambda: c.get_open_orders(symbol="BTCUSDT")) or []
    check("open orders: the limit order", [o["orderId"] for o in opened] == [lim.get("orderId")], opened)
    canceled = attempt("cancel_order", lambda: c.cancel_order(symbol="BTCUSDT", orderId=lim["orderId"])) or {}
    check("cancel: CANCELED", canceled.get("status") == "CANCELED", canceled)
    got = attempt("get_order", lambda: c.get_order(symbol="BTCUSDT", orderId=lim["orderId"])) or {}
    check("get_order: CANCELED", got.get("status") == "CANCELED", got)
    every = attempt("get_all_orders", lambda: c.get_all_orders(symbol="BTCUSDT")) or []
    check("all orders: both", [o["orderId"] for o in every] == [buy.get("orderId"), lim.get("orderId")], every)
    mine = attempt("get_my_trades", lambda: c.get_my_trades(symbol="BTCUSDT")) or []
    check("my trades: the buy's fills", [t["id"] for t in mine] == [f["tradeId"] for f in fills], mine)
    sell = attempt("order_market_sell", lambda: c.order_market_sell(symbol="BTCUSDT", quantity="0.001")) or {}
    check("market sell: commission in USDT",
          sell.get("fills") and sell["fills"][0]["commissionAsset"] == "USDT", sell)
    test = attempt("create_test_order",
                   lambda: c.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"))
    check("test order: {}", test == {}, test)

    ack = attempt("order with newOrderRespType=ACK", lambda: c.create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price=price,
        newOrderRespType="ACK")) or {}
    check("ACK: ids only", "orderId" in ack and "status" not in ack, ack)
    attempt("cancel the ACK order", lambda: c.cancel_order(symbol="BTCUSDT", orderId=ack["orderId"]))

    # A STOP_LOSS_LIMIT sell, triggered by the last price when the market falls through it.
    now = Decimal(c.get_symbol_ticker(symbol="BTCUSDT")["price"])
    stop_px, limit_px = (str((now * Decimal(k)).quantize(Decimal("0.01"))) for k in ("0.98", "0.97"))
    stop = attempt("STOP_LOSS_LIMIT sell", lambda: c.create_order(
        symbol="BTCUSDT", side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.0005",
        price=limit_px, stopPrice=stop_px)) or {}
    waiting = attempt("get_order of the stop", lambda: c.get_order(symbol="BTCUSDT", orderId=stop["orderId"])) or {}
    check("stop: NEW, not working", waiting.get("status") == "NEW" and waiting.get("isWorking") is False, waiting)
    attempt("move the market below the stop",
            lambda: sim.set_price("BTCUSDT", (now * Decimal("0.975")).quantize(Decimal("0.01"))))
    done = attempt("get_order after the move", lambda: c.get_order(symbol="BTCUSDT", orderId=stop["orderId"])) or {}
    check("stop: FILLED at its limit or better",
          done.get("status") == "FILLED"
          and Decimal(done.get("cummulativeQuoteQty", "0")) >= Decimal(limit_px) * Decimal("0.0005"), done)

    expect_code("too small an order: -1013",
                lambda: c.order_limit_buy(symbol="BTCUSDT", quantity="0.00001", price=price), -1013)
    expect_code("more than the balance: -2010",
                lambda: c.order_market_buy(symbol="BTCUSDT", quantity="1"), -2010)
    expect_code("cancel a cancelled order: -2011",
                lambda: c.cancel_order(symbol="BTCUSDT", orderId=lim["orderId"]), -2011)
    expect_code("unknown symbol: -1121", lambda: c.get_recent_trades(symbol="NOPEUSDT"), -1121)


def main():
    crbot = sys.argv[1] if len(sys.argv) > 1 else "target/debug/crbot"
    sim = Sim(crbot)
    try:
        c = attempt("client start-up (ping)", lambda: client(sim)(sim.api_key, sim.api_secret))
        if c is not None:
            market_data(c)
            trading(c, sim)
            lists_and_flags(c)
        asyncio.run(user_socket(sim))
    finally:
        sim.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
