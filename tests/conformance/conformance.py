"""Conformance of `crbot sim` checked by a client nobody on the crbot project wrote: Binance's
official Python SDK (`binance-sdk-spot`, see README.md for the version).

Usage: python conformance.py PATH_TO_CRBOT

Starts `crbot sim` on a free loopback port, drives it through the SDK's REST client (ping,
time, exchangeInfo, account, LIMIT and MARKET orders, query, cancel, cancel-all, myTrades,
a bad signature and a stale timestamp), asserts the answers, stops the sim with SIGTERM and
checks that it exits cleanly. Exit status 0 only if every check passed.
"""

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import ROUND_DOWN, Decimal

import binance_common.utils as sdk_utils
from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketAPI
from binance_common.errors import BadRequestError, UnauthorizedError
from binance_sdk_spot.rest_api.models import (
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import Spot
from binance_sdk_spot.websocket_api.models import OrderPlaceSideEnum, OrderPlaceTypeEnum

CHECKS = []


class ShapeWarnings(logging.Handler):
    """Counts the SDK's warnings about answers that do not match its response models."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        msg = record.getMessage()
        if "did not match the declared types" in msg:
            self.messages.append(msg)


SHAPES = ShapeWarnings()
logging.getLogger().addHandler(SHAPES)


def check(name, cond, detail=""):
    CHECKS.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({detail})"), flush=True)


def expect_error(name, fn, code, kinds=(BadRequestError, UnauthorizedError)):
    try:
        fn()
    except kinds as e:
        check(name, e.status_code == code, f"got {e.status_code} {e.error_message}")
        return
    except Exception as e:  # noqa: BLE001 - any other failure is a failed check
        check(name, False, f"unexpected {type(e).__name__}: {e}")
        return
    check(name, False, "no error raised")


def start_sim(crbot, state):
    proc = subprocess.Popen(
        [crbot, "sim", "--addr", "127.0.0.1:0", "--seed", "7", "--state", state],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    fields = dict(part.split("=", 1) for part in line.split(" "))
    return proc, fields


def client(base, key, secret):
    cfg = ConfigurationRestAPI(api_key=key, api_secret=secret, base_path=base, retries=0)
    return Spot(config_rest_api=cfg).rest_api


def main():
    crbot = sys.argv[1] if len(sys.argv) > 1 else "target/debug/crbot"
    state = os.path.join(tempfile.mkdtemp(), "sim-state.json")
    proc, f = start_sim(crbot, state)
    try:
        run(f)
        asyncio.run(run_ws(f))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -9
    check("sim exits 0 on SIGTERM", code == 0, f"exit {code}")
    check("sim saved its state file", os.path.exists(state))
    check("every answer matches the SDK's response models", not SHAPES.messages, SHAPES.messages)
    failed = [n for n, ok in CHECKS if not ok]
    print(f"{len(CHECKS) - len(failed)}/{len(CHECKS)} checks passed")
    return 1 if failed else 0


def run(f):
    base, key, secret = f["rest"], f["api_key"], f["api_secret"]
    api = client(base, key, secret)

    r = api.ping()
    check("ping answers 200", r.status == 200)
    check("weight header present", any(k.lower() == "x-mbx-used-weight-1m" for k in r.headers))

    t = api.time().data()
    check("time is the machine clock", abs(t.server_time - int(time.time() * 1000)) < 5000, t.server_time)

    info = api.exchange_info(symbol="BTCUSDT").data()
    sym = info.symbols[0]
    check("exchangeInfo names the symbol", sym.symbol == "BTCUSDT")
    ftypes = [flt.actual_instance.filter_type if hasattr(flt, "actual_instance") else flt.filter_type for flt in sym.filters]
    for name in ["PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL", "PERCENT_PRICE_BY_SIDE", "MAX_NUM_ORDERS"]:
        check(f"exchangeInfo has {name}", name in ftypes, ftypes)
    check("exchangeInfo rateLimits", len(info.rate_limits) >= 1)

    acct = api.get_account().data()
    usdt = [b for b in acct.balances if b.asset == "USDT"]
    check("account shows 10000 USDT", usdt and Decimal(usdt[0].free) == Decimal("10000"), usdt)

    last = Decimal(api.ticker_price(symbol="BTCUSDT").data().actual_instance.price)
    below = (last * Decimal("0.95")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)

    lim = api.new_order(
        symbol="BTCUSDT",
        side=NewOrderSideEnum["BUY"],
        type=NewOrderTypeEnum["LIMIT"],
        time_in_force=NewOrderTimeInForceEnum["GTC"],
        quantity=Decimal("0.001"),
        price=below,
        new_client_order_id="conf-limit-1",
    ).data()
    check("LIMIT order is NEW", lim.status == "NEW", lim.status)
    check("LIMIT keeps the client id", lim.client_order_id == "conf-limit-1")

    q = api.get_order(symbol="BTCUSDT", order_id=lim.order_id).data()
    check("query finds the order", q.order_id == lim.order_id and q.status == "NEW")
    check("query price is the limit", Decimal(q.price) == below, q.price)

    x = api.delete_order(symbol="BTCUSDT", order_id=lim.order_id).data()
    check("cancel answers CANCELED", x.status == "CANCELED")
    check("cancel names the original id", x.orig_client_order_id == "conf-limit-1")
    expect_error("cancel again is -2011", lambda: api.delete_order(symbol="BTCUSDT", order_id=lim.order_id), -2011)
    expect_error("query of an unknown order is -2013", lambda: api.get_order(symbol="BTCUSDT", order_id=987654), -2013)

    mkt = api.new_order(
        symbol="BTCUSDT", side=NewOrderSideEnum["BUY"], type=NewOrderTypeEnum["MARKET"], quantity=Decimal("0.002")
    ).data()
    check("MARKET order fills", mkt.status == "FILLED", mkt.status)
    fill_qty = sum(Decimal(fl.qty) for fl in mkt.fills)
    check("MARKET fills add up", fill_qty == Decimal("0.002"), fill_qty)
    check("buy commission in base asset", all(fl.commission_asset == "BTC" for fl in mkt.fills))

    trades = api.my_trades(symbol="BTCUSDT").data()
    check("myTrades lists the fills", len(trades) == len(mkt.fills), len(trades))
    check("myTrades belong to the order", all(tr.order_id == mkt.order_id for tr in trades))

    for i in range(2):
        api.new_order(
            symbol="BTCUSDT",
            side=NewOrderSideEnum["BUY"],
            type=NewOrderTypeEnum["LIMIT"],
            time_in_force=NewOrderTimeInForceEnum["GTC"],
            quantity=Decimal("0.001"),
            price=below - i,
        )
    open_before = api.get_open_orders(symbol="BTCUSDT").data()
    check("two open orders", len(open_before) == 2, len(open_before))
    cancelled = api.delete_open_orders(symbol="BTCUSDT").data()
    check("cancel-all returns both", len(cancelled) == 2, len(cancelled))
    check("no open orders left", len(api.get_open_orders(symbol="BTCUSDT").data()) == 0)

    expect_error("filter failure is -1013", lambda: api.new_order(
        symbol="BTCUSDT", side=NewOrderSideEnum["BUY"], type=NewOrderTypeEnum["LIMIT"],
        time_in_force=NewOrderTimeInForceEnum["GTC"], quantity=Decimal("0.000001"), price=below), -1013)

    wrong = client(base, key, "x" * 64)
    expect_error("bad signature is -1022", lambda: wrong.get_account(), -1022)

    # The SDK stamps requests with binance_common.utils.get_timestamp: make it two minutes late.
    real_timestamp = sdk_utils.get_timestamp
    sdk_utils.get_timestamp = lambda: real_timestamp() - 120_000
    try:
        expect_error("stale timestamp is -1021", lambda: api.get_account(), -1021)
    finally:
        sdk_utils.get_timestamp = real_timestamp
    unknown = client(base, "A" * 64, secret)
    expect_error("unknown key is -2015", lambda: unknown.get_account(), -2015)


def event_fields(event):
    """A user-data event as the SDK parsed it: its model name under "model", then its fields."""
    inner = getattr(event, "actual_instance", event)
    fields = inner.model_dump(by_alias=True) if hasattr(inner, "model_dump") else dict(inner or {})
    fields["model"] = type(inner).__name__
    return fields


async def run_ws(f):
    cfg = ConfigurationWebSocketAPI(api_key=f["api_key"], api_secret=f["api_secret"], stream_url=f["ws_api"])
    conn = await Spot(config_ws_api=cfg).websocket_api.create_connection()
    try:
        res = await conn.user_data_stream_subscribe_signature()
        sub = res.response.data().result.subscription_id
        check("ws: userDataStream.subscribe.signature gives a subscription", sub == 0, sub)
        events = []
        res.stream.on("message", lambda e: events.append(event_fields(e)))

        st = (await conn.session_status()).data().result
        check("ws: session.status shows the user data stream", st.user_data_stream is True, st)

        placed = await conn.order_place(
            symbol="BTCUSDT",
            side=OrderPlaceSideEnum["BUY"],
            type=OrderPlaceTypeEnum["MARKET"],
            quantity=Decimal("0.001"),
            new_client_order_id="conf-ws-1",
        )
        result = placed.data().result
        check("ws: order.place fills a MARKET order", result.status == "FILLED", result.status)
        check("ws: responses carry rateLimits", len(placed.rate_limits or []) >= 1)

        for _ in range(50):
            if any(e.get("x") == "TRADE" for e in events):
                break
            await asyncio.sleep(0.1)
        reports = [e for e in events if e["model"] == "ExecutionReport"]
        kinds = [e.get("x") for e in reports]
        check("ws: executionReport NEW then TRADE", kinds[:1] == ["NEW"] and "TRADE" in kinds, kinds)
        check("ws: executionReport names the client id", all(e.get("c") == "conf-ws-1" for e in reports), reports)
        check("ws: outboundAccountPosition follows",
              any(e["model"] == "OutboundAccountPosition" for e in events), [e["model"] for e in events])
    finally:
        await conn.close_connection(close_session=True)


if __name__ == "__main__":
    sys.exit(main())
