"""Shared by the ccxt and python-binance conformance scripts: start `crbot sim` on a free
loopback port with a throw-away state file, read its banner line (URLs and keys), record
checks, and stop the sim with SIGTERM, checking that it exits 0."""

import json
import os
import signal
import urllib.request
import subprocess
import tempfile

CHECKS = []


def check(name, cond, detail=""):
    CHECKS.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  ({detail})"), flush=True)


def attempt(name, fn):
    """Runs `fn`; a raised exception is a failed check named `name`. Returns fn's value or None."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - any failure of the client is a failed check
        check(name, False, f"{type(e).__name__}: {e}")
        return None


def expect_raise(name, fn, kind):
    """`fn` must raise `kind` (the client's mapping of Binance's error code)."""
    try:
        fn()
    except kind:
        check(name, True)
        return
    except Exception as e:  # noqa: BLE001
        check(name, False, f"raised {type(e).__name__}: {e}")
        return
    check(name, False, "no error raised")


class Sim:
    def __init__(self, crbot):
        self.state = os.path.join(tempfile.mkdtemp(), "sim-state.json")
        self.proc = subprocess.Popen(
            [crbot, "sim", "--addr", "127.0.0.1:0", "--seed", "7", "--state", self.state],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        self.fields = dict(part.split("=", 1) for part in line.split(" "))
        self.rest = self.fields["rest"]
        self.api_key = self.fields["api_key"]
        self.api_secret = self.fields["api_secret"]

    def set_price(self, symbol, price):
        """Moves a market now through the sim's control endpoint (its own key, loopback only)."""
        req = urllib.request.Request(
            self.rest + "/sim/control/price",
            data=json.dumps({"symbol": symbol, "price": str(price)}).encode(),
            headers={"X-MBX-APIKEY": self.api_key, "content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = -9
        check("sim exits 0 on SIGTERM", code == 0, f"exit {code}")


def summary():
    failed = [n for n, ok in CHECKS if not ok]
    print(f"{len(CHECKS) - len(failed)}/{len(CHECKS)} checks passed")
    return 1 if failed else 0
