#!/usr/bin/env python3
"""Connects to a WebSocket URL with Python `websockets` (which answers pings by itself), sends
nothing, and waits for the server to close. Prints {"code", "reason", "seconds", "closed_at"} as JSON:
seconds from before the connect, closed_at the wall-clock time of the close (epoch seconds).

    ws_wait_close.py URL [TIMEOUT_SECONDS]
"""
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url: str, timeout: float) -> None:
    started = time.monotonic()
    async with connect(url, ping_interval=None, open_timeout=10) as ws:
        try:
            await asyncio.wait_for(ws.recv(), timeout)
        except ConnectionClosed:
            pass
        except asyncio.TimeoutError:
            print(json.dumps({"code": None, "reason": "timeout", "seconds": time.monotonic() - started}))
            return
        print(json.dumps({"code": ws.close_code, "reason": ws.close_reason, "seconds": round(time.monotonic() - started, 3), "closed_at": time.time()}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 30))
