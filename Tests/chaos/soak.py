#!/usr/bin/env python3
"""The chaos soak: a wsgate process with every kind of route, clients and backends that misbehave at
random moments, and well-behaved sessions beside them that check every byte they get back.

    soak.py --wsgate PATH [--duration SECONDS] [--rounds N] [--seed S] [--max-handshake SECONDS]

Routes: ws, ws with permessage-deflate, wss, tcp, unix, tcp with line framing, a pool, static files,
and backends that misbehave (a WebSocket service that answers its handshake badly or drops
mid-frame, a TCP service that closes or resets at random, a pool target that dies and comes back).
Fronts: HTTP/1.1, h2c (prior knowledge) and TLS h2 (RFC 8441), TLS HTTP/1.1.

The load runs for `--rounds` rounds of `--duration` seconds; after each, the load stops and the
gateway's descriptors and resident memory are read once it has settled. Checks, each a pass or a
failure: every well-behaved session (handshake within --max-handshake, every echo byte-exact, a
clean close) and download (every byte), the process alive after each round, descriptors back to
their idle count, and memory that does not keep growing once the load has stopped.

Prints the seed first and "N passed, M failed" last; exits 1 on any failure. A failure names the
seed of the client that saw it (rerun with --seed to get the same choices; timing still varies).
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
import h2raw  # noqa: E402 - hand-written HTTP/2 frames, shared with the attack peers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STATIC_SIZE = 3 * 1024 * 1024 + 17


# ---------------------------------------------------------------- WebSocket frames (client side)

def ws_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        header = bytes([first, bit | n])
    elif n < 65536:
        header = bytes([first, bit | 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    # XOR through a big integer: fast enough in Python for the sizes used here.
    repeated = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big") if n else b""
    return header + key + masked


class FrameReader:
    """Server frames (unmasked) from a byte stream, assembled into messages."""

    def __init__(self, inflate: bool):
        self.buffer = bytearray()
        self.inflater = zlib.decompressobj(-15) if inflate else None
        self.fragments = []
        self.opcode = None
        self.compressed = False

    def feed(self, data: bytes):
        """(opcode, payload) per complete message or control frame."""
        self.buffer += data
        out = []
        while len(self.buffer) >= 2:
            b0, b1 = self.buffer[0], self.buffer[1]
            n, offset = b1 & 0x7F, 2
            if b1 & 0x80:
                raise ValueError("masked frame from the server")
            if n == 126:
                if len(self.buffer) < 4:
                    break
                n, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif n == 127:
                if len(self.buffer) < 10:
                    break
                n, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            if len(self.buffer) < offset + n:
                break
            payload = bytes(self.buffer[offset:offset + n])
            del self.buffer[:offset + n]
            fin, opcode = bool(b0 & 0x80), b0 & 0x0F
            if opcode >= 8:
                out.append((opcode, payload))
                continue
            if opcode != 0:
                self.opcode, self.fragments, self.compressed = opcode, [], bool(b0 & 0x40)
            self.fragments.append(payload)
            if fin:
                message = b"".join(self.fragments)
                if self.compressed:
                    message = self.inflater.decompress(message + b"\x00\x00\xff\xff")
                out.append((self.opcode, message))
        return out


def deflate_message(payload: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)  # a fresh context per message (client_no_context_takeover)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


# ---------------------------------------------------------------- transports

class H1Transport:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes):
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> bytes:
        return await self.reader.read(65536)

    def abort(self):
        self.writer.transport.abort()

    def close(self):
        self.writer.close()


def client_tls(alpn):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    return context


async def open_h1(front, path: str, extensions: str = None, timeout: float = 10, source: str = None, headers=()):
    """An HTTP/1.1 WebSocket handshake; (transport, response status, response headers). `source`: the
    client's own address (another 127.x address is another client IP to the gateway)."""
    host, port, tls = front
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=client_tls(["http/1.1"]) if tls else None,
                                                                    local_addr=(source, 0) if source else None), timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *headers]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if status == 101:
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise ValueError("wrong Sec-WebSocket-Accept")
    return H1Transport(reader, writer), status, headers


class H2Connection:
    """One HTTP/2 connection (h2c prior knowledge or TLS ALPN h2) with its streams' inbound queues."""

    def __init__(self, reader, writer):
        import h2.config
        import h2.connection
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(1 << 24)
        self.queues = {}
        self.responses = {}
        self.window_changed = asyncio.Event()
        self.connect_enabled = asyncio.Event()
        self.closed = False
        self.task = None

    @classmethod
    async def open(cls, front, timeout: float = 10, source: str = None):
        host, port, tls = front
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=client_tls(["h2"]) if tls else None,
                                                                        local_addr=(source, 0) if source else None), timeout)
        connection = cls(reader, writer)
        connection.flush()
        connection.task = asyncio.ensure_future(connection.pump())
        return connection

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    async def pump(self):
        import h2.events
        import h2.settings
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for event in self.conn.receive_data(data):
                    if isinstance(event, h2.events.RemoteSettingsChanged):
                        setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                        if setting is not None and setting.new_value == 1:
                            self.connect_enabled.set()
                    elif isinstance(event, h2.events.ResponseReceived):
                        self.responses[event.stream_id] = dict(event.headers)
                        # An empty chunk marks the response's arrival for request(); None ends the stream.
                        self.queues.setdefault(event.stream_id, asyncio.Queue()).put_nowait(b"")
                    elif isinstance(event, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        self.queues.setdefault(event.stream_id, asyncio.Queue()).put_nowait(event.data)
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                        self.queues.setdefault(event.stream_id, asyncio.Queue()).put_nowait(None)
                    elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                        self.window_changed.set()
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        break
                self.flush()
        except Exception:  # noqa: BLE001 - any end of the connection ends its streams
            pass
        self.closed = True
        for queue in self.queues.values():
            queue.put_nowait(None)
        self.window_changed.set()

    async def request(self, headers, end_stream: bool, timeout: float = 10):
        """Opens a stream; returns (stream id, response headers)."""
        stream = self.conn.get_next_available_stream_id()
        queue = self.queues.setdefault(stream, asyncio.Queue())
        self.conn.send_headers(stream, headers, end_stream=end_stream)
        self.flush()
        first = await asyncio.wait_for(queue.get(), timeout)
        if first is None and stream not in self.responses:
            raise ConnectionError("stream ended before a response")
        if first:  # data before the response marker cannot happen; keep it anyway
            queue.put_nowait(first)
        return stream, self.responses.get(stream, {})

    async def send(self, stream: int, data: bytes):
        view = memoryview(data)
        while view:
            if self.closed:
                raise ConnectionError("connection closed")
            room = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size)
            if room <= 0:
                self.window_changed.clear()
                await asyncio.wait_for(self.window_changed.wait(), 10)
                continue
            self.conn.send_data(stream, bytes(view[:room]))
            view = view[room:]
            self.flush()
            await self.writer.drain()

    def reset(self, stream: int):
        try:
            self.conn.reset_stream(stream, error_code=8)
            self.flush()
        except Exception:  # noqa: BLE001
            pass

    def close(self, abort=False):
        if self.task:
            self.task.cancel()
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()


class H2StreamTransport:
    def __init__(self, connection: H2Connection, stream: int):
        self.connection, self.stream = connection, stream

    async def send(self, data: bytes):
        await self.connection.send(self.stream, data)

    async def recv(self) -> bytes:
        data = await self.connection.queues[self.stream].get()
        return data or b""

    def abort(self):
        self.connection.close(abort=True)

    def close(self):
        self.connection.close()


async def open_h2(front, path: str, extensions: str = None, timeout: float = 10):
    host, port, tls = front
    connection = await H2Connection.open(front, timeout)
    await asyncio.wait_for(connection.connect_enabled.wait(), timeout)
    headers = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https" if tls else "http"),
               (":path", path), (":authority", f"{host}:{port}"), ("sec-websocket-version", "13")]
    if extensions:
        headers.append(("sec-websocket-extensions", extensions))
    stream, response = await connection.request(headers, end_stream=False, timeout=timeout)
    return H2StreamTransport(connection, stream), int(response.get(":status", "0")), response


# ---------------------------------------------------------------- the gateway under test

class Gateway:
    def __init__(self, binary: str, config: str, log: str, open_files: int = None):
        """`open_files`: the process's open-file limit, soft and hard (wsgate raises its soft limit to
        the hard one, and derives max_connections from it)."""
        import resource

        def limit_files():
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.log_path = log
        self.process = subprocess.Popen([binary, "--config", config], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                        preexec_fn=limit_files if open_files else None)
        self.ports = {}

    def wait_listening(self, hosts, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = open(self.log_path, encoding="utf-8", errors="replace").read()
            for host in hosts:
                match = re.search(r'address"?[=:]"?' + re.escape(host) + r":(\d+)", text)
                if match:
                    self.ports[host] = int(match.group(1))
            if len(self.ports) == len(hosts):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("wsgate did not start:\n" + self.log_tail())

    def alive(self) -> bool:
        return self.process.poll() is None

    def descriptors(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.process.pid}/fd"))
        except OSError:
            return -1

    def rss_kib(self) -> int:
        try:
            for line in open(f"/proc/{self.process.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return -1

    def describe_sockets(self) -> str:
        """The gateway's sockets as `ss` sees them (state, local and peer address), for a leak report."""
        try:
            output = subprocess.run(["ss", "-tanpx"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return "(ss not available)"
        mine = [line for line in output.splitlines() if f"pid={self.process.pid}," in line]
        return "gateway sockets:\n" + "\n".join("  " + " ".join(line.split()[:6]) for line in mine)

    def log_tail(self, count=4000) -> str:
        try:
            return open(self.log_path, encoding="utf-8", errors="replace").read()[-count:]
        except OSError:
            return ""

    def stop(self):
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def write_config(directory: str, backends: dict, certs: str) -> str:
    web = os.path.join(directory, "web")
    os.makedirs(web, exist_ok=True)
    with open(os.path.join(web, "big.bin"), "wb") as file:
        file.write(static_bytes())
    yaml = f"""
server:
  handshake_timeout: 3s
  close_timeout: 2s
listeners:
  - address: "127.0.0.1:0"
  - address: "127.0.0.4:0"
    tls: {{certificate: {certs}/server.pem, key: {certs}/server.key}}
routes:
  - path: /ws
    backend: "ws://127.0.0.1:{backends['ws']}/"
  - path: /wsz
    backend: "ws://127.0.0.1:{backends['ws']}/"
    compression: on
  - path: /wss
    backend: "wss://127.0.0.1:{backends['wss']}/"
    backend_tls: {{ca: {certs}/ca.pem, server_name: localhost}}
  - path: /tcp
    backend: "tcp://127.0.0.1:{backends['tcp']}"
  - path: /unix
    backend: "unix:{backends['unix']}"
  - path: /lines
    backend: "tcp://127.0.0.1:{backends['tcp']}"
    framing: lines
    message_type: text
  - path: /pool
    backends: ["tcp://127.0.0.1:{backends['tcp']}", "tcp://127.0.0.1:{backends['tcp2']}"]
  - path: /files
    static: {web}
  - path: /flaky-ws
    backend: "ws://127.0.0.1:{backends['flaky_ws']}/"
    limits: {{connect_timeout: 1s}}
  - path: /flaky-tcp
    backend: "tcp://127.0.0.1:{backends['flaky_tcp']}"
    framing: lines
  - path: /flaky-pool
    backends: ["tcp://127.0.0.1:{backends['comeback']}", "tcp://127.0.0.1:{backends['tcp']}"]
    health_check: {{interval: 1s, timeout: 500ms, rise: 1, fall: 1}}
"""
    path = os.path.join(directory, "soak.yaml")
    with open(path, "w") as file:
        file.write(yaml)
    return path


def static_bytes() -> bytes:
    return bytes((i * 7 + (i >> 11)) & 0xFF for i in range(STATIC_SIZE))


# ---------------------------------------------------------------- well-behaved clients

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.handshakes = []

    def ok(self):
        self.passed += 1

    def fail(self, what: str):
        self.failed += 1
        self.failures.append(what)
        print(f"FAIL {what}", flush=True)


async def well_behaved_session(fronts, rng: random.Random, seed: int, results: Results, max_handshake: float):
    route = rng.choice(["/ws", "/wsz", "/wss", "/tcp", "/unix", "/lines", "/pool"])
    front_name = rng.choice(list(fronts))
    front = fronts[front_name]
    h2 = front_name.startswith("h2")
    compressed = route == "/wsz" and rng.random() < 0.7
    extensions = "permessage-deflate; client_no_context_takeover; server_no_context_takeover" if compressed else None
    what = f"well-behaved {route} over {front_name} (seed {seed})"
    started = time.monotonic()
    transport = None
    try:
        transport, status, headers = await (open_h2 if h2 else open_h1)(front, route, extensions)
        took = time.monotonic() - started
        results.handshakes.append(took)
        if status != (200 if h2 else 101):
            return results.fail(f"{what}: handshake status {status}")
        if took > max_handshake:
            return results.fail(f"{what}: handshake took {took:.2f} s")
        inflate = "permessage-deflate" in headers.get("sec-websocket-extensions", "")
        reader = FrameReader(inflate)
        async def receive_message():
            while not pending_messages:
                data = await asyncio.wait_for(transport.recv(), 10)
                if not data:
                    raise ConnectionError("connection ended")
                for opcode, payload in reader.feed(data):
                    if opcode == 9 or opcode == 10:
                        continue
                    pending_messages.append((opcode, payload))
            return pending_messages.pop(0)

        pending_messages = []
        for _ in range(rng.randint(1, 12)):
            size = rng.choice([0, 1, 125, 126, rng.randint(1, 4096), rng.randint(4096, 70000)])
            if route == "/lines":
                payload = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(max(size, 1) % 3000 or 1))
                opcode = 1
            else:
                payload = rng.randbytes(size) if route not in ("/tcp", "/unix", "/pool") else rng.randbytes(max(size, 1))
                opcode = 2
            wire = deflate_message(payload) if inflate and rng.random() < 0.8 else payload
            rsv1 = wire is not payload
            pieces = rng.randint(1, 3) if len(wire) > 3 else 1
            cuts = sorted(rng.sample(range(1, len(wire)), pieces - 1)) if pieces > 1 else []
            bounds = [0] + cuts + [len(wire)]
            frames = b""
            for index in range(len(bounds) - 1):
                frames += ws_frame(opcode if index == 0 else 0, wire[bounds[index]:bounds[index + 1]],
                                   fin=index == len(bounds) - 2, rsv1=rsv1 and index == 0)
            if rng.random() < 0.2:
                frames = ws_frame(9, b"ping") + frames
            await transport.send(frames)
            if route in ("/tcp", "/unix", "/pool"):
                # A byte stream: the service's reads decide the message boundaries, bytes must match in order.
                got = bytearray()
                while len(got) < len(payload):
                    got += (await receive_message())[1]
                if bytes(got) != payload:
                    return results.fail(f"{what}: {len(payload)}-byte stream echo differs")
            else:
                got_opcode, got_payload = await receive_message()
                if got_opcode != opcode or got_payload != payload:
                    return results.fail(f"{what}: {len(payload)}-byte message came back as {len(got_payload)} bytes, opcode {got_opcode}")
        await transport.send(ws_frame(8, struct.pack("!H", 1000)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(transport.recv(), 10)
            if not data:
                return results.fail(f"{what}: connection ended without a close frame")
            closes = [payload for opcode, payload in reader.feed(data) if opcode == 8]
            if closes:
                code = struct.unpack("!H", closes[0][:2])[0] if len(closes[0]) >= 2 else None
                if code != 1000:
                    return results.fail(f"{what}: closed with {code}")
                return results.ok()
        return results.fail(f"{what}: no close answer")
    except Exception as error:  # noqa: BLE001 - a failure of this session, reported as such
        return results.fail(f"{what}: {type(error).__name__} {error}")
    finally:
        if transport:
            transport.close()


async def well_behaved_download(fronts, rng: random.Random, seed: int, results: Results, expected_hash: str):
    front_name = rng.choice(list(fronts))
    front = fronts[front_name]
    what = f"download over {front_name} (seed {seed})"
    digest = hashlib.sha256()
    size = 0
    try:
        if front_name.startswith("h2"):
            connection = await H2Connection.open(front)
            try:
                host, port, tls = front
                stream, response = await connection.request([(":method", "GET"), (":scheme", "https" if tls else "http"),
                                                             (":path", "/files/big.bin"), (":authority", f"{host}:{port}")], end_stream=True)
                if response.get(":status") != "200":
                    return results.fail(f"{what}: status {response.get(':status')}")
                while True:
                    data = await asyncio.wait_for(connection.queues[stream].get(), 10)
                    if data is None:
                        break
                    digest.update(data)
                    size += len(data)
            finally:
                connection.close()
        else:
            host, port, tls = front
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=client_tls(["http/1.1"]) if tls else None), 10)
            try:
                writer.write(f"GET /files/big.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                if not head.startswith(b"HTTP/1.1 200"):
                    return results.fail(f"{what}: {head[:40]!r}")
                remaining = STATIC_SIZE
                while remaining:
                    data = await asyncio.wait_for(reader.read(min(remaining, 65536)), 10)
                    if not data:
                        break
                    digest.update(data)
                    size += len(data)
                    remaining -= len(data)
            finally:
                writer.close()
        if size != STATIC_SIZE or digest.hexdigest() != expected_hash:
            return results.fail(f"{what}: {size} bytes, hash {'matches' if digest.hexdigest() == expected_hash else 'differs'}")
        results.ok()
    except Exception as error:  # noqa: BLE001
        results.fail(f"{what}: {type(error).__name__} {error}")


# ---------------------------------------------------------------- misbehaving clients

MISBEHAVIOURS = ["partial_head", "mid_frame", "no_read_flood", "garbage", "ping_burst", "drop_download",
                 "h2_reset_ws", "h2_drop_ws", "h2_drop_download", "h2_many_streams", "flaky_backend",
                 "close_and_vanish", "tls_garbage", "half_message", "hpack_bomb", "ping_flood_no_read",
                 "h2_connect_reset_storm"]
# --exclude: misbehaviours left out of this run (and its worker processes).
EXCLUDED: set = set()


async def misbehave(fronts, rng: random.Random, counts: dict):
    """One hostile or clumsy client; whatever the gateway answers is fine as long as it survives."""
    action = rng.choice([name for name in MISBEHAVIOURS if name not in EXCLUDED])
    counts[action] = counts.get(action, 0) + 1
    front_name = rng.choice(list(fronts))
    front = fronts[front_name]
    host, port, tls = front
    route = rng.choice(["/ws", "/wsz", "/wss", "/tcp", "/unix", "/lines", "/pool", "/flaky-ws", "/flaky-tcp", "/flaky-pool"])
    transport = None
    try:
        if action == "partial_head":
            reader, writer = await asyncio.open_connection(host, port, ssl=client_tls(["http/1.1"]) if tls else None)
            head = f"GET {route} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".encode()
            writer.write(head[:rng.randint(1, len(head))])
            await asyncio.sleep(rng.random() * 0.5)
            writer.transport.abort() if rng.random() < 0.5 else writer.close()
        elif action == "garbage":
            reader, writer = await asyncio.open_connection(host, port, ssl=client_tls(["http/1.1", "h2"]) if tls else None)
            writer.write(rng.randbytes(rng.randint(1, 3000)))
            await asyncio.sleep(rng.random() * 0.2)
            writer.transport.abort()
        elif action == "tls_garbage":
            reader, writer = await asyncio.open_connection(host, fronts["h2-tls"][1] if "h2-tls" in fronts else port)
            writer.write(b"\x16\x03\x01" + rng.randbytes(rng.randint(0, 400)))
            await asyncio.sleep(rng.random() * 0.2)
            writer.transport.abort()
        elif action in ("drop_download", "h2_drop_download"):
            if action == "h2_drop_download" or front_name.startswith("h2"):
                connection = await H2Connection.open(front)
                stream, _ = await connection.request([(":method", "GET"), (":scheme", "https" if tls else "http"),
                                                     (":path", "/files/big.bin"), (":authority", "x")], end_stream=True)
                await asyncio.sleep(rng.random() * 0.05)
                if rng.random() < 0.5:
                    connection.reset(stream)
                    await asyncio.sleep(rng.random() * 0.05)
                connection.close(abort=rng.random() < 0.5)
            else:
                reader, writer = await asyncio.open_connection(host, port, ssl=client_tls(["http/1.1"]) if tls else None)
                writer.write(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                await reader.read(rng.randint(1, 200000))
                writer.transport.abort() if rng.random() < 0.5 else writer.close()
        elif action in ("hpack_bomb", "h2_connect_reset_storm"):
            # Hand-written frames: header blocks decoding to 1-4 MB each from a few KB (HPACK table
            # references), or extended CONNECTs each reset in the same write.
            h2_front = fronts["h2-tls"] if tls and "h2-tls" in fronts else fronts["h2c"]
            reader, writer = await asyncio.open_connection(h2_front[0], h2_front[1], ssl=client_tls(["h2"]) if h2_front[2] else None)
            writer.write(h2raw.PREFACE + h2raw.frame(h2raw.SETTINGS, 0, 0, b""))
            await asyncio.wait_for(reader.read(65536), 5)  # the server's SETTINGS
            writer.write(h2raw.frame(h2raw.SETTINGS, h2raw.ACK, 0, b""))  # acknowledged: extended CONNECT is on
            if action == "hpack_bomb":
                references = rng.randint(250, 1000)
                out = bytearray()
                for index in range(rng.randint(5, 40)):
                    block = h2raw.request_block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/healthz"), (b":authority", b"x")])
                    block += (h2raw.literal(b"x-bomb", b"b" * 4000, indexing=True) + b"\xbe" * (references - 1)) if index == 0 else b"\xbe" * references
                    out += h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS | h2raw.END_STREAM, 1 + 2 * index, block)
                writer.write(bytes(out))
            else:
                block = h2raw.request_block([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
                                             (b":path", rng.choice([b"/ws", b"/tcp", b"/flaky-ws"])), (b":authority", b"x"),
                                             (b"sec-websocket-version", b"13")])
                writer.write(b"".join(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, 1 + 2 * i, block)
                                      + h2raw.frame(h2raw.RST_STREAM, 0, 1 + 2 * i, struct.pack("!I", h2raw.CANCEL))
                                      for i in range(rng.randint(20, 200))))
            await writer.drain()
            try:
                await asyncio.wait_for(reader.read(rng.randint(1, 100000)), rng.random())
            except asyncio.TimeoutError:
                pass
            writer.transport.abort() if rng.random() < 0.5 else writer.close()
        elif action == "h2_many_streams":
            connection = await H2Connection.open(front)
            await asyncio.wait_for(connection.connect_enabled.wait(), 5)
            for _ in range(rng.randint(2, 20)):
                stream = connection.conn.get_next_available_stream_id()
                connection.conn.send_headers(stream, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https" if tls else "http"),
                                                      (":path", rng.choice(["/ws", "/tcp", "/flaky-ws", "/wss"])), (":authority", "x"),
                                                      ("sec-websocket-version", "13")])
                if rng.random() < 0.5:
                    connection.conn.reset_stream(stream, error_code=8)
            connection.flush()
            await asyncio.sleep(rng.random() * 0.5)
            connection.close(abort=rng.random() < 0.5)
        else:
            opener = open_h2 if (front_name.startswith("h2") or action.startswith("h2_")) else open_h1
            if opener is open_h2 and not front_name.startswith("h2"):
                front = fronts["h2c"]
            transport, status, _ = await opener(front, route, "permessage-deflate" if rng.random() < 0.3 else None, timeout=5)
            if status not in (101, 200):
                transport.close()
                return
            if action == "mid_frame":
                frame = ws_frame(2, rng.randbytes(rng.randint(10, 100000)))
                await transport.send(frame[:rng.randint(1, len(frame) - 1)])
                await asyncio.sleep(rng.random() * 0.2)
            elif action == "half_message":
                await transport.send(ws_frame(1, b"part one ", fin=False) + ws_frame(0, rng.randbytes(100), fin=False))
                await asyncio.sleep(rng.random() * 0.2)
            elif action == "no_read_flood":
                end = time.monotonic() + rng.random() * 1.5
                while time.monotonic() < end:
                    await asyncio.wait_for(transport.send(ws_frame(2, rng.randbytes(rng.randint(1, 65536)))), 1)
            elif action == "ping_flood_no_read":
                # Pings, never reading a pong: the gateway may hold one pong, not one per ping.
                pings = b"".join(ws_frame(9, rng.randbytes(125)) for _ in range(400))
                end = time.monotonic() + rng.random() * 1.5
                while time.monotonic() < end:
                    await asyncio.wait_for(transport.send(pings), 1)
            elif action == "ping_burst":
                await transport.send(b"".join(ws_frame(9, b"p") for _ in range(rng.randint(1, 500))))
                await asyncio.sleep(rng.random() * 0.3)
            elif action == "close_and_vanish":
                await transport.send(ws_frame(8, struct.pack("!H", rng.choice([1000, 1001, 3000, 4999]))))
            elif action in ("h2_reset_ws", "h2_drop_ws", "flaky_backend"):
                for _ in range(rng.randint(0, 5)):
                    await transport.send(ws_frame(1, b"hello\n"))
                    await asyncio.sleep(rng.random() * 0.05)
                if action == "h2_reset_ws" and isinstance(transport, H2StreamTransport):
                    transport.connection.reset(transport.stream)
                    await asyncio.sleep(rng.random() * 0.1)
            transport.abort() if rng.random() < 0.5 else transport.close()
            transport = None
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError, ssl.SSLError):
        counts["refused_or_cut"] = counts.get("refused_or_cut", 0) + 1
    except Exception as error:  # noqa: BLE001 - the client library's own protocol errors
        counts[type(error).__name__] = counts.get(type(error).__name__, 0) + 1
    finally:
        if transport:
            transport.abort()


# ---------------------------------------------------------------- backends (a process of their own)

async def ws_echo(connection):
    """A WebSocket echo service (websockets' server handler); also the attacks' backend."""
    try:
        async for message in connection:
            await connection.send(message)
    except Exception:  # noqa: BLE001
        pass


async def tcp_echo(reader, writer):
    """A TCP echo service (asyncio's server callback); also the attacks' backend."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:  # noqa: BLE001
        pass
    finally:
        writer.close()


async def run_backends(certs: str, directory: str):
    import websockets.asyncio.server as ws_server

    rng = random.Random()

    async def flaky_ws(reader, writer):
        """A WebSocket service that answers its handshake badly, or well and then breaks mid-frame."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head)
            accept = base64.b64encode(hashlib.sha1((key.group(1) if key else b"") + GUID).digest())
            choice = rng.randrange(7)
            if choice == 0:
                pass  # closes at once
            elif choice == 1:
                writer.write(rng.randbytes(rng.randint(1, 500)))
            elif choice == 2:
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            elif choice == 3:
                await asyncio.sleep(rng.random() * 3)  # says nothing
            elif choice == 4:
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                for _ in range(rng.randint(0, 20)):
                    writer.write(ws_frame(rng.choice([1, 2, 9]), b"x" * rng.randint(0, 300), mask=False))
                    await writer.drain()
                    await asyncio.sleep(rng.random() * 0.05)
                if rng.random() < 0.5:
                    writer.write(ws_frame(2, b"y" * 5000, mask=False)[:rng.randint(1, 4000)])  # mid-frame
                elif rng.random() < 0.5:
                    writer.write(rng.randbytes(50))  # not a frame at all
            await writer.drain()
            if rng.random() < 0.5:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
        except Exception:  # noqa: BLE001
            pass
        writer.close()

    async def flaky_tcp(reader, writer):
        """Echoes for a while, then closes, resets, half-closes, or stops reading."""
        try:
            end = time.monotonic() + rng.random() * 1.0
            while time.monotonic() < end:
                data = await asyncio.wait_for(reader.read(65536), max(0.01, end - time.monotonic()))
                if not data:
                    break
                writer.write(data + rng.randbytes(rng.randint(0, 100)))
                await writer.drain()
        except Exception:  # noqa: BLE001
            pass
        choice = rng.randrange(4)
        try:
            if choice == 0:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if choice == 1:
                writer.write_eof()
                await asyncio.sleep(rng.random())
            if choice == 2:
                await asyncio.sleep(rng.random() * 2)  # stops reading
        except Exception:  # noqa: BLE001
            pass
        writer.close()

    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(f"{certs}/server.pem", f"{certs}/server.key")
    ws = await ws_server.serve(ws_echo, "127.0.0.1", 0, max_size=None, compression=None)
    wss = await ws_server.serve(ws_echo, "127.0.0.1", 0, ssl=server_tls, max_size=None, compression=None)
    tcp = await asyncio.start_server(tcp_echo, "127.0.0.1", 0)
    tcp2 = await asyncio.start_server(tcp_echo, "127.0.0.1", 0)
    unix_path = os.path.join(directory, "echo.sock")
    await asyncio.start_unix_server(tcp_echo, unix_path)
    flaky = await asyncio.start_server(flaky_ws, "127.0.0.1", 0)
    flaky_t = await asyncio.start_server(flaky_tcp, "127.0.0.1", 0)
    comeback_port = free_port()
    ports = {"ws": port_of(ws), "wss": port_of(wss), "tcp": port_of(tcp), "tcp2": port_of(tcp2), "unix": unix_path,
             "flaky_ws": port_of(flaky), "flaky_tcp": port_of(flaky_t), "comeback": comeback_port}
    print(json.dumps(ports), flush=True)

    # The pool target that dies (listener and connections gone) and comes back, again and again.
    while True:
        writers = []

        async def tracked_echo(reader, writer):
            writers.append(writer)
            await tcp_echo(reader, writer)

        try:
            server = await asyncio.start_server(tracked_echo, "127.0.0.1", comeback_port, reuse_address=True)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        await asyncio.sleep(1 + rng.random() * 2)
        server.close()
        for writer in writers:
            writer.transport.abort()
        await asyncio.sleep(0.5 + rng.random() * 1.5)


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the run

async def load(fronts, seed: int, duration: float, results: Results, counts: dict, gateway: Gateway, expected_hash: str,
               good_workers: int, bad_workers: int, max_handshake: float):
    end = time.monotonic() + duration
    master = random.Random(seed)

    async def good(index: int):
        while time.monotonic() < end and gateway.alive():
            case_seed = master.randrange(1 << 32)
            rng = random.Random(case_seed)
            if rng.random() < 0.12:
                await well_behaved_download(fronts, rng, case_seed, results, expected_hash)
            else:
                await well_behaved_session(fronts, rng, case_seed, results, max_handshake)

    # The misbehaving clients run in processes of their own: a busy client loop would otherwise
    # delay the well-behaved handshakes it times.
    workers = [subprocess.Popen([sys.executable, __file__, "--misbehave", json.dumps(fronts), "--seed", str(master.randrange(1 << 32)),
                                 "--duration", str(duration), "--bad", str(max(1, bad_workers // 2)),
                                 "--exclude", ",".join(sorted(EXCLUDED))], stdout=subprocess.PIPE, text=True)
               for _ in range(2 if bad_workers else 0)]
    await asyncio.gather(*[good(i) for i in range(good_workers)])
    for worker in workers:
        output, _ = await asyncio.get_running_loop().run_in_executor(None, worker.communicate)
        for name, count in json.loads(output.strip().splitlines()[-1] if output.strip() else "{}").items():
            counts[name] = counts.get(name, 0) + count


async def misbehave_for(fronts, seed: int, duration: float, workers: int) -> dict:
    end = time.monotonic() + duration
    master = random.Random(seed)
    counts = {}

    async def bad():
        while time.monotonic() < end:
            await misbehave(fronts, random.Random(master.randrange(1 << 32)), counts)

    await asyncio.gather(*[bad() for _ in range(workers)])
    return counts


def settle(gateway: Gateway, idle_fds: int, timeout: float) -> int:
    """Waits until the gateway's descriptors are back near idle (or the timeout); returns the count."""
    deadline = time.time() + timeout
    count = gateway.descriptors()
    while time.time() < deadline and count > idle_fds + 2:
        time.sleep(0.25)
        count = gateway.descriptors()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wsgate", default=os.path.join(ROOT, ".build/release/wsgate"))
    parser.add_argument("--duration", type=float, default=60, help="seconds of load per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--good", type=int, default=8, help="well-behaved clients at once")
    parser.add_argument("--bad", type=int, default=32, help="misbehaving clients at once")
    parser.add_argument("--max-handshake", type=float, default=1.0, help="seconds a well-behaved handshake may take")
    parser.add_argument("--settle", type=float, default=20, help="seconds the gateway gets to let go of a round's connections")
    parser.add_argument("--backends", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--misbehave", help=argparse.SUPPRESS)
    parser.add_argument("--exclude", default="", help="misbehaviours to leave out, comma-separated (" + ", ".join(MISBEHAVIOURS) + ")")
    parser.add_argument("--certs", help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [name for name in args.exclude.split(",") if name and name not in MISBEHAVIOURS]
    if unknown:
        parser.error(f"--exclude: unknown misbehaviour {', '.join(unknown)}")
    EXCLUDED.update(name for name in args.exclude.split(",") if name)
    if args.backends:
        asyncio.run(run_backends(args.certs, args.directory))
        return 0
    if args.misbehave:
        fronts = {name: tuple(front) for name, front in json.loads(args.misbehave).items()}
        print(json.dumps(asyncio.run(misbehave_for(fronts, args.seed, args.duration, args.bad))), flush=True)
        return 0

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"chaos soak: seed {seed}, {args.rounds} round(s) of {args.duration:g} s, wsgate {args.wsgate}", flush=True)
    directory = tempfile.mkdtemp(prefix="wsgate-soak-")
    certs = os.path.join(directory, "certs")
    subprocess.run(["bash", os.path.join(ROOT, "Tests/peers/make-certs.sh"), certs], check=True)
    backends_process = subprocess.Popen([sys.executable, __file__, "--backends", "--certs", certs, "--directory", directory],
                                        stdout=subprocess.PIPE, text=True)
    gateway = None
    results = Results()
    try:
        backends = json.loads(backends_process.stdout.readline())
        config = write_config(directory, backends, certs)
        gateway = Gateway(args.wsgate, config, os.path.join(directory, "wsgate.log"))
        gateway.wait_listening(["127.0.0.1", "127.0.0.4"])
        plain, secure = gateway.ports["127.0.0.1"], gateway.ports["127.0.0.4"]
        fronts = {"http1": ("127.0.0.1", plain, False), "h2c": ("127.0.0.1", plain, False),
                  "http1-tls": ("127.0.0.4", secure, True), "h2-tls": ("127.0.0.4", secure, True)}
        expected_hash = hashlib.sha256(static_bytes()).hexdigest()
        counts = {}

        # Warm-up: well-behaved clients only, so the idle figures include what a first session allocates.
        asyncio.run(load(fronts, seed ^ 0x5EED, min(3, args.duration), results, counts, gateway, expected_hash, args.good, 0, 10))
        time.sleep(3)  # the warm-up's last connections close
        idle_fds = gateway.descriptors()
        idle_rss = gateway.rss_kib()
        print(f"idle after warm-up: {idle_fds} descriptors, {idle_rss / 1024:.1f} MiB resident", flush=True)
        settled_rss = []
        for round_index in range(args.rounds):
            started = time.time()
            peak_rss = 0

            async def watched():
                nonlocal peak_rss
                task = asyncio.ensure_future(load(fronts, seed + round_index, args.duration, results, counts, gateway, expected_hash,
                                                  args.good, args.bad, args.max_handshake))
                while not task.done():
                    peak_rss = max(peak_rss, gateway.rss_kib())
                    await asyncio.sleep(0.5)
                await task

            asyncio.run(watched())
            if not gateway.alive():
                results.fail(f"round {round_index + 1}: wsgate exited with status {gateway.process.returncode}")
                break
            results.ok()
            fds = settle(gateway, idle_fds, args.settle)
            if fds <= idle_fds + 2:
                results.ok()
            else:
                results.fail(f"round {round_index + 1}: {fds} descriptors {args.settle:g} s after the load stopped (idle: {idle_fds})")
                print(gateway.describe_sockets(), flush=True)
                print(f"backends: {json.dumps(backends)}", flush=True)
            # Memory once the load has stopped: sampled for a few seconds, it must not be climbing.
            samples = []
            for _ in range(6):
                samples.append(gateway.rss_kib())
                time.sleep(0.5)
            if samples[-1] <= samples[0] + 2048:
                results.ok()
            else:
                results.fail(f"round {round_index + 1}: resident memory still growing after the load stopped: {samples} KiB")
            settled_rss.append(samples[-1])
            print(f"round {round_index + 1}: {time.time() - started:.0f} s, peak {peak_rss / 1024:.1f} MiB, after it {samples[-1] / 1024:.1f} MiB "
                  f"and {fds} descriptors; {results.passed} passed, {results.failed} failed so far", flush=True)
        # Across rounds: what stays after each round must not keep climbing (a leak per session would).
        if len(settled_rss) >= 3:
            if settled_rss[-1] <= settled_rss[0] * 1.2 + 8192:
                results.ok()
            else:
                results.fail(f"resident memory after each round keeps growing: {settled_rss} KiB")
        handshakes = sorted(results.handshakes)
        if handshakes:
            print(f"well-behaved handshakes: {len(handshakes)}, median {handshakes[len(handshakes) // 2] * 1000:.1f} ms, "
                  f"max {handshakes[-1] * 1000:.1f} ms", flush=True)
        print(f"misbehaving clients: {json.dumps(dict(sorted(counts.items())))}", flush=True)
    except Exception as error:  # noqa: BLE001 - the soak itself could not run: a failure
        results.fail(f"soak: {type(error).__name__} {error}")
    finally:
        if gateway and results.failed:
            print("---- wsgate log (tail)\n" + gateway.log_tail(), flush=True)
        if gateway:
            gateway.stop()
        backends_process.kill()
        backends_process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{results.passed} passed, {results.failed} failed (seed {seed})", flush=True)
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
