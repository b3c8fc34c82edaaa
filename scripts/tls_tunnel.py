#!/usr/bin/env python3
"""Plain TCP in, TLS out: lets a ws:// only client (kosoku) test wsgate's TLS listener.

    tls_tunnel.py --connect HOST:PORT --ca CAFILE [--server-name NAME] [--port 0]

Prints "listening PORT" once ready. Every accepted connection gets its own verified TLS connection
(ALPN http/1.1) to the target; bytes are copied both ways until either side closes.
"""
import argparse
import asyncio
import ssl


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main(args: argparse.Namespace) -> None:
    host, port = args.connect.rsplit(":", 1)
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(["http/1.1"])

    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                host, int(port), ssl=context, server_hostname=args.server_name)
        except (OSError, ssl.SSLError):
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--server-name", default="localhost")
    ap.add_argument("--port", type=int, default=0)
    asyncio.run(main(ap.parse_args()))
