#!/usr/bin/env python3
"""Many HTTP/2 clients that start a file download and walk away, while one downloads it properly.

    h2_download_storm.py HOST PORT PATH SIZE [--clients N] [--concurrency C] [--tls] [--seed S] [--stall SECONDS]

Each misbehaving client opens its own connection (h2c with prior knowledge, or TLS with ALPN h2),
GETs PATH and then, after a random number of bytes (0 up to 1 MiB, often 0 so the drop races the
gateway's first file read): closes the socket, resets the stream, stops reading (a small window
left full) and then leaves, or resets the TCP connection (SO_LINGER 0). A well-behaved client
downloads the whole file again and again beside them and checks its size.

Prints "STORM clients=N drops={...} healthy_ok=K healthy_failed=F seed=S" and exits 1 when a healthy
download failed or the gateway stopped accepting connections.
"""
import argparse
import asyncio
import random
import socket
import ssl
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

MODES = ("close", "reset_stream", "stop_reading", "tcp_reset")


def new_connection(window: int) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    if window > 65535:
        conn.increment_flow_control_window(window - 65535)
    return conn


async def open_socket(args) -> tuple:
    context = None
    if args.tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.wait_for(asyncio.open_connection(args.host, args.port, ssl=context), args.stall)
    return reader, writer


def request(conn: h2.connection.H2Connection, args) -> int:
    stream = conn.get_next_available_stream_id()
    scheme = "https" if args.tls else "http"
    conn.send_headers(stream, [(":method", "GET"), (":scheme", scheme), (":path", args.path), (":authority", f"{args.host}:{args.port}")], end_stream=True)
    return stream


async def misbehave(args, rng: random.Random, counts: dict) -> None:
    mode = rng.choice(MODES)
    # A third leave before any byte arrives: the gateway is opening the file or reading its first chunk.
    after = 0 if rng.random() < 0.33 else rng.randint(1, 1 << 20)
    window = 16384 if mode == "stop_reading" else 1 << 20
    counts[mode] = counts.get(mode, 0) + 1
    try:
        reader, writer = await open_socket(args)
    except (OSError, asyncio.TimeoutError):
        counts["connect_failed"] = counts.get("connect_failed", 0) + 1
        return
    conn = new_connection(window)
    stream = request(conn, args)
    received = 0
    try:
        writer.write(conn.data_to_send())
        if after == 0 and rng.random() < 0.5:
            await asyncio.sleep(rng.random() * 0.005)
        else:
            limit = min(after, 16384) if mode == "stop_reading" else after
            while received < limit:
                data = await asyncio.wait_for(reader.read(65536), 10)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        received += len(event.data)
                        if mode != "stop_reading":
                            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                        limit = 0
                writer.write(conn.data_to_send())
        if mode == "reset_stream":
            conn.reset_stream(stream, error_code=8)
            writer.write(conn.data_to_send())
            await writer.drain()
            await asyncio.sleep(rng.random() * 0.05)
        elif mode == "stop_reading":
            await asyncio.sleep(rng.random() * 0.3)
        elif mode == "tcp_reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, asyncio.TimeoutError, h2.exceptions.ProtocolError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort() if mode == "tcp_reset" else writer.close()


async def download(args) -> int:
    """The whole file, as a well-behaved client takes it; returns its size."""
    reader, writer = await open_socket(args)
    conn = new_connection(1 << 20)
    stream = request(conn, args)
    writer.write(conn.data_to_send())
    received = 0
    status = None
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), args.stall)
            if not data:
                raise ConnectionError(f"closed after {received} bytes")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(":status")
                elif isinstance(event, h2.events.DataReceived):
                    received += len(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    raise ConnectionError(f"stream reset after {received} bytes")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    if status != "200":
                        raise ConnectionError(f"status {status}")
                    return received
            writer.write(conn.data_to_send())
    finally:
        writer.close()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("size", type=int)
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    # Long enough for an unoptimised gateway on a machine whose cores are all busy; a wedged one
    # never answers at all.
    parser.add_argument("--stall", type=float, default=30, help="seconds the healthy client waits for any byte")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    counts: dict = {}
    healthy = {"ok": 0, "failed": 0, "errors": []}
    done = asyncio.Event()

    async def healthy_loop():
        while not done.is_set():
            try:
                size = await download(args)
                if size == args.size:
                    healthy["ok"] += 1
                else:
                    healthy["failed"] += 1
                    healthy["errors"].append(f"got {size} bytes")
            except (OSError, asyncio.TimeoutError, ConnectionError, h2.exceptions.ProtocolError, ssl.SSLError) as error:
                healthy["failed"] += 1
                healthy["errors"].append(repr(error))

    gate = asyncio.Semaphore(args.concurrency)

    async def one(index: int):
        async with gate:
            await misbehave(args, random.Random(rng.randrange(1 << 32)), counts)

    checker = asyncio.create_task(healthy_loop())
    await asyncio.gather(*(one(i) for i in range(args.clients)))
    done.set()
    await checker
    # One more after the storm: the gateway still serves.
    try:
        healthy["ok" if await download(args) == args.size else "failed"] += 1
    except (OSError, asyncio.TimeoutError, ConnectionError, h2.exceptions.ProtocolError, ssl.SSLError) as error:
        healthy["failed"] += 1
        healthy["errors"].append(f"after the storm: {error!r}")
    print(f"STORM clients={args.clients} drops={dict(sorted(counts.items()))} healthy_ok={healthy['ok']} "
          f"healthy_failed={healthy['failed']} seed={seed}", flush=True)
    for error in healthy["errors"][:5]:
        print(f"  healthy download: {error}")
    return 0 if healthy["failed"] == 0 and healthy["ok"] > 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
