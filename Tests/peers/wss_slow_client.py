#!/usr/bin/env python3
"""A wss:// session that lasts: N messages, one per second, then close 1000 (certificate reload test).

    wss_slow_client.py URL CAFILE N
"""
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect


async def main(url: str, cafile: str, count: int) -> None:
    context = ssl.create_default_context(cafile=cafile)
    async with connect(url, ssl=context, compression=None) as ws:
        for i in range(count):
            await ws.send(f"message {i}")
            print(f"echo: {await ws.recv()}", flush=True)
            await asyncio.sleep(1)
        await ws.close(1000)
        print(f"closed {ws.close_code}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
