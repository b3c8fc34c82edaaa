#!/usr/bin/env python3
"""Headless Chromium as an MQTT-over-WebSocket client (DevTools protocol, as chromium_ws.py).

    chromium_mqtt.py ORIGIN WS_PATH

Opens ORIGIN + "/healthz", then runs in that page: new WebSocket(URL, ["mqtt"]) — Chromium fails
a handshake that offered subprotocols and got none back — sends an MQTT 3.1.1 CONNECT and waits
for the broker's CONNACK. Prints "PROTOCOL: <answered> CONNACK: <hex>" or "ERROR: <why>".
"""
import asyncio
import json
import sys

from cdp import run

SCRIPT = """
new Promise((resolve) => {
  const ws = new WebSocket(%s, ["mqtt"]);
  ws.binaryType = "arraybuffer";
  const timer = setTimeout(() => resolve("ERROR: timeout"), 10000);
  ws.onopen = () => ws.send(new Uint8Array([0x10, 0x12, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02,
      0x00, 0x3c, 0x00, 0x06, 0x63, 0x68, 0x72, 0x6f, 0x6d, 0x65]));
  ws.onmessage = (event) => {
    clearTimeout(timer);
    const hex = Array.from(new Uint8Array(event.data)).map((b) => b.toString(16).padStart(2, "0")).join("");
    ws.close(1000);
    resolve("PROTOCOL: " + ws.protocol + " CONNACK: " + hex);
  };
  ws.onerror = () => { clearTimeout(timer); resolve("ERROR: websocket error"); };
})
"""


def main(origin: str, path: str) -> int:
    async def body(browser) -> int:
        session = await browser.open(origin + "/healthz", loaded_prefix=origin)
        url = ("wss" if origin.startswith("https") else "ws") + origin[origin.index(":"):] + path
        print(await browser.evaluate(SCRIPT % json.dumps(url), session, await_promise=True), flush=True)
        await asyncio.sleep(0.3)  # let the close handshake finish before the browser goes
        return 0
    return run(body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
