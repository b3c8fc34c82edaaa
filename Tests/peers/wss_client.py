#!/usr/bin/env python3
"""wss:// client for the integration tests (Python `websockets`): connects with a test CA, sends
each MESSAGE, prints each echo as "echo: ...", closes with 1000 and prints "closed CODE".
A refused handshake prints "status CODE"; a failed TLS handshake prints "tls error: ...".

    wss_client.py URL CAFILE [--client CERT KEY] MESSAGE...
"""
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def main(url: str, cafile: str, messages: list[str]) -> None:
    context = ssl.create_default_context(cafile=cafile)
    if messages[:1] == ["--client"]:
        context.load_cert_chain(messages[1], messages[2])
        messages = messages[3:]
    try:
        async with connect(url, ssl=context, compression=None) as ws:
            for message in messages:
                await ws.send(message)
                print(f"echo: {await ws.recv()}", flush=True)
            await ws.close(1000)
            print(f"closed {ws.close_code}", flush=True)
    except InvalidStatus as error:
        print(f"status {error.response.status_code}", flush=True)
    except (ssl.SSLError, ConnectionError, EOFError) as error:
        print(f"tls error: {error}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
