#!/usr/bin/env python3
"""Headless Chromium as a WebSocket client, driven over the DevTools protocol (Python `websockets`).

    chromium_ws.py ORIGIN WS_PATH MESSAGE

Opens ORIGIN + "/healthz" in a tab (so the browser holds a connection to the gateway, HTTP/2 when
TLS ALPN offers it), then runs in that page: new WebSocket(ORIGIN with wss/ws + WS_PATH), sends
MESSAGE, waits for the echo and closes with 1000. Prints "ECHO: <text> EXTENSIONS: <negotiated>"
or "ERROR: <why>".
"""
import asyncio
import json
import sys

from cdp import run

SCRIPT = """
new Promise((resolve) => {
  const ws = new WebSocket(%s);
  const timer = setTimeout(() => resolve("ERROR: timeout"), 10000);
  ws.onopen = () => ws.send(%s);
  ws.onmessage = (event) => { clearTimeout(timer); ws.close(1000); resolve("ECHO: " + event.data + " EXTENSIONS: " + ws.extensions); };
  ws.onerror = () => { clearTimeout(timer); resolve("ERROR: websocket error"); };
})
"""


def main(origin: str, path: str, message: str) -> int:
    async def body(browser) -> int:
        # The tab holds a connection to the gateway (HTTP/2 when TLS ALPN offers it) first.
        session = await browser.open(origin + "/healthz", loaded_prefix=origin)
        url = ("wss" if origin.startswith("https") else "ws") + origin[origin.index(":"):] + path
        result = await browser.evaluate(SCRIPT % (json.dumps(url), json.dumps(message)), session, await_promise=True)
        print(result, flush=True)
        await asyncio.sleep(0.3)  # let the close handshake finish before the browser goes
        return 0
    return run(body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
