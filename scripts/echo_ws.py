#!/usr/bin/env python3
"""WebSocket echo backend for the conformance run (Python `websockets`, an independent peer).

Prints "listening PORT" once ready; with --port 0 the OS picks the port. --compression deflate
negotiates permessage-deflate when offered; --announce first sends each client the
Sec-WebSocket-Extensions the server answered ("none" if none), as a text message.
"""
import argparse
import asyncio
import signal

from websockets.asyncio.server import serve


ANNOUNCE = False


async def echo(ws):
    if ANNOUNCE:
        await ws.send(ws.response.headers.get("Sec-WebSocket-Extensions", "none"))
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int, compression: str) -> None:
    # A parent may have blocked these (a test process running the gateway's signal handling does):
    # without this, SIGTERM from whoever started us would be ignored and we would outlive them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    async with serve(echo, host, port, max_size=None, compression=None if compression == "none" else "deflate",
                     ping_interval=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening {bound}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--compression", choices=["none", "deflate"], default="none")
    ap.add_argument("--announce", action="store_true")
    args = ap.parse_args()
    ANNOUNCE = args.announce
    asyncio.run(main(args.host, args.port, args.compression))
