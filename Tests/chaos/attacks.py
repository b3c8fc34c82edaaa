#!/usr/bin/env python3
"""Exhaustion attacks on a wsgate process, one at a time, at the scale that once exhausted it, with a
legitimate client beside each one.

    attacks.py --wsgate PATH [--only NAME,...] [--seconds S]

The gateway runs with an open-file limit of 1,024 (so its derived max_connections is 480),
max_connections_per_ip 200 and a 3 s handshake timeout. Attackers connect from 127.0.0.2; the
legitimate client, from 127.0.0.1, opens a WebSocket session (echo checked) and downloads a small
static file every quarter second throughout.

Each attack passes when:
  - the process is alive after it;
  - every probe was served, each in under 1 s;
  - resident memory stayed under 2x the idle baseline plus 64 KiB per session the attack may hold;
  - descriptors stayed under the open-file limit, and came back to their idle count afterwards;
  - the gateway refused as it should (the status, reset or close each attack names).

Prints a line of figures per attack, then "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import asyncio
import base64
import collections
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
import h2raw  # noqa: E402
from soak import FrameReader, Gateway, H2Connection, open_h1, settle, tcp_echo, ws_echo, ws_frame  # noqa: E402

ATTACKER = "127.0.0.2"
OPEN_FILES = 1024
PER_IP = 200
HANDSHAKE_TIMEOUT = 3
ADMIN_IDLE = 10
SESSION_BUDGET_KIB = 64
# bcrypt at cost 10 (a valid hash whose password no guess matches; only wrong passwords are sent).
HTPASSWD = "ann:$2b$10$i3zxE5nV6ThXPhhanyULhOFBjXzvmCLx6cU7DbBRmpE47gN4mX/aK\n"


# ---------------------------------------------------------------- raw HTTP/2 over asyncio

class RawH2:
    """An h2c connection written frame by frame (h2raw), read with h2raw's FrameReader (which
    acknowledges the server's SETTINGS as they are read)."""

    def __init__(self, reader, writer):
        from hpack import Decoder
        self.reader, self.writer = reader, writer
        self.frames = h2raw.FrameReader(types.SimpleNamespace(sendall=writer.write))
        self.ready = collections.deque()
        self.decoder = Decoder()  # the server's header blocks (its :status values are table-indexed after the first)

    @classmethod
    async def open(cls, target, source=ATTACKER, timeout=5):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(target[0], target[1], local_addr=(source, 0)), timeout)
        connection = cls(reader, writer)
        writer.write(h2raw.PREFACE + h2raw.frame(h2raw.SETTINGS, 0, 0, b""))
        while True:
            frame = await asyncio.wait_for(connection.next(), timeout)
            if frame is None:
                raise ConnectionError("closed before the server's SETTINGS")
            if frame[0] == h2raw.SETTINGS and not frame[1] & h2raw.ACK:
                return connection

    async def next(self):
        """The next frame (kind, flags, stream, payload), or None at the end of the connection."""
        while not self.ready:
            data = await self.reader.read(65536)
            if not data:
                return None
            self.frames.feed(data)
            self.ready.extend(self.frames.frames())
        return self.ready.popleft()

    def close(self):
        self.writer.transport.abort()


def tally_refusal(counts: collections.Counter, connection: RawH2, frame):
    """Counts the ways an HTTP/2 server says no: a 4xx/5xx response, RST_STREAM or GOAWAY by code."""
    kind, flags, _, payload = frame
    if kind == h2raw.HEADERS:
        if flags & 0x8:  # PADDED
            payload = payload[1:len(payload) - payload[0]]
        if flags & 0x20:  # PRIORITY
            payload = payload[5:]
        try:
            status = dict(connection.decoder.decode(payload)).get(":status", "")
        except Exception:  # noqa: BLE001 - a block this client cannot decode: counted, not fatal
            status = "undecodable"
        if status[:1] in ("4", "5"):
            counts[f"status {status}"] += 1
    elif kind == h2raw.RST_STREAM and len(payload) >= 4:
        counts[f"RST_STREAM {struct.unpack('!I', payload[:4])[0]}"] += 1
    elif kind == h2raw.GOAWAY and len(payload) >= 8:
        counts[f"GOAWAY {struct.unpack('!I', payload[4:8])[0]}"] += 1


def connect_block(path: bytes) -> bytes:
    return h2raw.request_block([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
                                (b":path", path), (b":authority", b"x"), (b"sec-websocket-version", b"13")])


# ---------------------------------------------------------------- the attacks (each in a process of its own)

async def hpack_bomb(target, admin, seconds):
    """6 connections, each sending 1 MB of HPACK references to one 4 KB header-table entry: header
    lists that would decode to 4 GB per connection. Refusal: 431, RST_STREAM or GOAWAY."""
    counts, sent = collections.Counter(), [0]

    async def one():
        budget = 1 << 20
        end = time.monotonic() + seconds
        while budget > 0 and time.monotonic() < end:
            try:
                connection = await RawH2.open(target)
            except (OSError, asyncio.TimeoutError, ConnectionError):
                await asyncio.sleep(0.1)
                continue
            stream = 1
            try:
                while budget > 0:
                    # Each block in one frame of at most 16,384 bytes (the default SETTINGS_MAX_FRAME_SIZE).
                    block = h2raw.request_block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/healthz"), (b":authority", b"x")])
                    if stream == 1:
                        block += h2raw.literal(b"x-bomb", b"b" * 4000, indexing=True)
                    references = min(16384 - len(block), budget)
                    block += b"\xbe" * references
                    connection.writer.write(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS | h2raw.END_STREAM, stream, block))
                    await asyncio.wait_for(connection.writer.drain(), 5)
                    budget -= references
                    sent[0] += references
                    stream += 2
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:  # the answers to what was sent
                    frame = await asyncio.wait_for(connection.next(), max(0.01, deadline - time.monotonic()))
                    if frame is None:
                        break
                    tally_refusal(counts, connection, frame)
            except (OSError, asyncio.TimeoutError, ConnectionError):
                pass
            finally:
                connection.close()

    await asyncio.gather(*[one() for _ in range(6)])
    return {"sessions": 0, "reference_bytes_sent": sent[0], "refusals": counts,
            "refused": any(name.startswith(("status 431", "RST_STREAM", "GOAWAY")) for name in counts)}


async def ping_flood(target, admin, seconds):
    """A client that sends pings (400 x 125 B per write) and never reads, over HTTP/1.1; then one over
    HTTP/2 that reads but never opens its flow-control window, so no pong can be sent to it. Each for
    half the time. Refusal: none needed; the gateway holds one pong, not one per ping."""
    pings = b"".join(ws_frame(9, os.urandom(125)) for _ in range(400))
    sent = {"http1": 0, "http2": 0}
    transport, status, _ = await open_h1(target, "/ws", source=ATTACKER)
    if status != 101:
        return {"sessions": 1, "refused": False, "error": f"HTTP/1.1 handshake: {status}"}
    end = time.monotonic() + seconds / 2
    try:
        while time.monotonic() < end:
            try:
                await asyncio.wait_for(transport.send(pings), 1)
                sent["http1"] += len(pings)
            except asyncio.TimeoutError:
                pass  # the gateway stopped reading; keep trying
    except (OSError, ConnectionError):
        pass
    transport.abort()

    connection = await H2Connection.open(target, source=ATTACKER)
    connection.conn.acknowledge_received_data = lambda *args, **kwargs: None  # never opens its window
    await asyncio.wait_for(connection.connect_enabled.wait(), 5)
    stream, response = await connection.request([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                                 (":path", "/ws"), (":authority", "x"), ("sec-websocket-version", "13")], end_stream=False)
    if response.get(":status") != "200":
        return {"sessions": 1, "refused": False, "error": f"HTTP/2 handshake: {response}"}
    end = time.monotonic() + seconds / 2
    try:
        while time.monotonic() < end and not connection.closed:
            try:
                await asyncio.wait_for(connection.send(stream, pings), 1)
                sent["http2"] += len(pings)
            except asyncio.TimeoutError:
                pass
    except (OSError, ConnectionError):
        pass
    connection.close(abort=True)
    return {"sessions": 2, "refused": None, "ping_mib_sent": {k: round(v / 1048576, 1) for k, v in sent.items()}}


async def connect_reset_storm(target, admin, seconds):
    """4 connections opening extended CONNECT streams to a service that never accepts, each reset:
    100 in the write that opens them, then 100 reset in the next write (their connects have begun).
    Refusal: the connects keep their slots until they complete, so the per-IP limit answers 429
    (or the process's, 503) instead of the process running out of descriptors."""
    counts, streams = collections.Counter(), [0]
    end = time.monotonic() + seconds
    block = connect_block(b"/silent")

    async def one():
        while time.monotonic() < end:
            try:
                connection = await RawH2.open(target)
            except (OSError, asyncio.TimeoutError, ConnectionError):
                await asyncio.sleep(0.1)
                continue

            async def drain():
                while (frame := await connection.next()) is not None:
                    tally_refusal(counts, connection, frame)

            reading = asyncio.ensure_future(drain())
            stream = 1
            try:
                while time.monotonic() < end and not reading.done():
                    ids = range(stream, stream + 200, 2)
                    connection.writer.write(b"".join(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, i, block)
                                                     + h2raw.frame(h2raw.RST_STREAM, 0, i, struct.pack("!I", h2raw.CANCEL)) for i in ids))
                    ids = range(stream + 200, stream + 400, 2)
                    connection.writer.write(b"".join(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, i, block) for i in ids))
                    await asyncio.wait_for(connection.writer.drain(), 5)
                    await asyncio.sleep(0.02)
                    connection.writer.write(b"".join(h2raw.frame(h2raw.RST_STREAM, 0, i, struct.pack("!I", h2raw.CANCEL)) for i in ids))
                    await asyncio.wait_for(connection.writer.drain(), 5)
                    streams[0] += 200
                    stream += 400
            except (OSError, asyncio.TimeoutError, ConnectionError):
                pass
            finally:
                connection.close()
                reading.cancel()

    await asyncio.gather(*[one() for _ in range(4)])
    return {"sessions": PER_IP, "streams_reset": streams[0], "refusals": counts,
            "refused": counts["status 429"] + counts["status 503"] > 0}


async def sessions_past_the_limit(target, admin, seconds):
    """10 HTTP/2 connections from one address asking for 100 WebSocket sessions each (1,000 against
    max_connections_per_ip 200), held for the attack's time. Refusal: at most 200 accepted (the
    connections count too), the rest 429; the accepted ones echo."""
    connections, statuses = [], collections.Counter()
    for _ in range(10):
        connection = await H2Connection.open(target, source=ATTACKER)
        await asyncio.wait_for(connection.connect_enabled.wait(), 5)
        connections.append(connection)
    accepted = []

    async def session(connection):
        stream = connection.conn.get_next_available_stream_id()
        queue = connection.queues.setdefault(stream, asyncio.Queue())
        connection.conn.send_headers(stream, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                              (":path", "/ws"), (":authority", "x"), ("sec-websocket-version", "13")])
        connection.flush()
        try:
            await asyncio.wait_for(queue.get(), 15)
        except asyncio.TimeoutError:
            statuses["no answer"] += 1
            return
        status = connection.responses.get(stream, {}).get(":status", "reset")
        statuses[status] += 1
        if status == "200":
            accepted.append((connection, stream))

    # Streams in order per connection (stream ids must rise), connections side by side.
    async def per_connection(connection):
        await asyncio.gather(*[session(connection) for _ in range(100)])

    await asyncio.gather(*[per_connection(connection) for connection in connections])
    echoed = 0
    for connection, stream in accepted[:20]:  # the accepted sessions work
        payload = os.urandom(32)
        await connection.send(stream, ws_frame(2, payload))
        reader = FrameReader(False)
        try:
            while (data := await asyncio.wait_for(connection.queues[stream].get(), 5)) is not None:
                if any(opcode == 2 and message == payload for opcode, message in reader.feed(data)):
                    echoed += 1
                    break
        except asyncio.TimeoutError:
            pass
    await asyncio.sleep(max(0, seconds - 10))
    for connection in connections:
        connection.close(abort=True)
    return {"sessions": PER_IP, "statuses": statuses, "echoed_of_20": echoed,
            "refused": 0 < statuses.get("200", 0) <= PER_IP and echoed == min(20, len(accepted))
            and set(statuses) <= {"200", "429"}}


async def password_flood(target, admin, seconds):
    """64 clients guessing passwords (HTTP Basic, bcrypt cost 10) as fast as they are answered.
    Refusal: 401, and 503 beyond the 32 checks in flight; file reads never wait behind them."""
    statuses = collections.Counter()
    end = time.monotonic() + seconds

    async def guesser(index):
        attempt = 0
        while time.monotonic() < end:
            attempt += 1
            credential = base64.b64encode(f"ann:guess-{index}-{attempt}".encode()).decode()
            try:
                transport, status, _ = await open_h1(target, "/private", source=ATTACKER, headers=[f"Authorization: Basic {credential}"])
                transport.abort()
                statuses[str(status)] += 1
            except (OSError, asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                statuses["cut"] += 1

    await asyncio.gather(*[guesser(i) for i in range(64)])
    return {"sessions": 0, "statuses": statuses, "refused": set(statuses) <= {"401", "503"} and "401" in statuses}


async def idle_states(target, admin, seconds):
    """States a peer can leave open: 100 HTTP/1.1 requests whose body never comes, 50 HTTP/2
    connections with one half-open stream, 50 admin connections with half a request. Refusal: each
    closed by the gateway within its timeout (3 s handshake, 10 s admin) plus 2 s."""
    async def wait_closed(reader, started, limit):
        try:
            while await asyncio.wait_for(reader.read(65536), limit):
                pass
            return time.monotonic() - started
        except (asyncio.TimeoutError, ConnectionError, OSError):
            return None if time.monotonic() - started >= limit else time.monotonic() - started

    async def body_never_comes():
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(*target[:2], local_addr=(ATTACKER, 0))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly part of it")
        took = await wait_closed(reader, started, 30)
        writer.transport.abort()
        return took

    async def half_open_stream():
        started = time.monotonic()
        connection = await RawH2.open(target)
        connection.writer.write(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, 1, h2raw.request_block(
            [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/files/probe.txt"), (b":authority", b"x")])))
        try:
            while await asyncio.wait_for(connection.next(), 30) is not None:
                pass
            took = time.monotonic() - started
        except asyncio.TimeoutError:
            took = None
        connection.close()
        return took

    async def half_admin_request():
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(*admin, local_addr=(ATTACKER, 0))
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        took = await wait_closed(reader, started, 30)
        writer.transport.abort()
        return took

    groups = {"http1_body": ([body_never_comes() for _ in range(100)], HANDSHAKE_TIMEOUT + 2),
              "http2_half_open": ([half_open_stream() for _ in range(50)], HANDSHAKE_TIMEOUT + 2),
              "admin_half_request": ([half_admin_request() for _ in range(50)], ADMIN_IDLE + 2)}
    results = await asyncio.gather(*[asyncio.gather(*tasks) for tasks, _ in groups.values()])
    report, refused = {}, True
    for (name, (_, limit)), times in zip(groups.items(), results):
        closed = [t for t in times if t is not None]
        report[name] = {"closed": f"{len(closed)}/{len(times)}", "slowest_s": round(max(closed), 2) if closed else None, "bound_s": limit}
        refused &= len(closed) == len(times) and max(closed) <= limit
    return {"sessions": 0, "closed_by_gateway": report, "refused": refused}


async def close_code_labels(target, admin, seconds):
    """300 sessions each closing with its own code (3000–3149, 4000–4149). Refusal: the close-count
    metric keeps a closed set of code labels (1000–1015, 3xxx, 4xxx, other)."""
    async def one(code):
        transport, status, _ = await open_h1(target, "/ws", source=ATTACKER)
        if status != 101:
            return
        await transport.send(ws_frame(8, struct.pack("!H", code)))
        try:
            while await asyncio.wait_for(transport.recv(), 5):
                pass
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        transport.abort()

    codes = list(range(3000, 3150)) + list(range(4000, 4150))
    for start in range(0, len(codes), 50):
        await asyncio.gather(*[one(code) for code in codes[start:start + 50]])
    await asyncio.sleep(1)
    reader, writer = await asyncio.open_connection(*admin)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = (await asyncio.wait_for(reader.read(-1), 10)).decode("utf-8", "replace")
    writer.close()
    labels = sorted({match for match in re.findall(r'wsgate_session_closes_total\{[^}]*route="/ws"[^}]*\}', text)})
    codes_seen = sorted({re.search(r'code="([^"]*)"', label).group(1) for label in labels})
    allowed = {str(code) for code in range(1000, 1016)} | {"3xxx", "4xxx", "other"}
    return {"sessions": 50, "series": len(labels), "codes": codes_seen,
            "refused": set(codes_seen) <= allowed and "3xxx" in codes_seen and "4xxx" in codes_seen}


ATTACKS = {"hpack_bomb": hpack_bomb, "ping_flood": ping_flood, "connect_reset_storm": connect_reset_storm,
           "sessions_past_the_limit": sessions_past_the_limit, "password_flood": password_flood,
           "idle_states": idle_states, "close_code_labels": close_code_labels}


# ---------------------------------------------------------------- backends and the legitimate client

async def run_backends():
    import websockets.asyncio.server as ws_server

    ws = await ws_server.serve(ws_echo, "127.0.0.1", 0, max_size=None, compression=None)
    tcp = await asyncio.start_server(tcp_echo, "127.0.0.1", 0)
    print(json.dumps({"ws": ws.sockets[0].getsockname()[1], "tcp": tcp.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Future()


async def probe_once(front):
    """One WebSocket echo and one static file, as a legitimate client; seconds each took."""
    started = time.monotonic()
    transport, status, _ = await open_h1(front, "/ws", timeout=5)
    try:
        if status != 101:
            raise ValueError(f"WebSocket handshake answered {status}")
        payload = os.urandom(16)
        await transport.send(ws_frame(2, payload))
        reader, got = FrameReader(False), None
        while got is None:
            data = await asyncio.wait_for(transport.recv(), 5)
            if not data:
                raise ConnectionError("closed before the echo")
            got = next((message for opcode, message in reader.feed(data) if opcode == 2), None)
        if got != payload:
            raise ValueError("wrong echo")
        await transport.send(ws_frame(8, struct.pack("!H", 1000)))
    finally:
        transport.abort()
    session = time.monotonic() - started
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(front[0], front[1]), 5)
    writer.write(b"GET /files/probe.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await asyncio.wait_for(reader.read(-1), 5)
    writer.close()
    if not response.startswith(b"HTTP/1.1 200") or not response.endswith(b"probe\n"):
        raise ValueError(f"static file answered {response[:40]!r}")
    return session, time.monotonic() - started


def write_config(directory: str, backends: dict, silent_port: int) -> str:
    web = os.path.join(directory, "web")
    os.makedirs(web)
    with open(os.path.join(web, "probe.txt"), "w") as file:
        file.write("probe\n")
    with open(os.path.join(directory, "users.htpasswd"), "w") as file:
        file.write(HTPASSWD)
    path = os.path.join(directory, "attacks.yaml")
    with open(path, "w") as file:
        file.write(f"""
server:
  handshake_timeout: {HANDSHAKE_TIMEOUT}s
  close_timeout: 2s
limits:
  max_connections_per_ip: {PER_IP}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.3:0"
routes:
  - path: /ws
    backend: "ws://127.0.0.1:{backends['ws']}/"
  - path: /silent
    backend: "tcp://127.0.0.1:{silent_port}"
  - path: /private
    backend: "tcp://127.0.0.1:{backends['tcp']}"
    auth: {{basic_htpasswd: {directory}/users.htpasswd}}
  - path: /files
    static: {web}
""")
    return path


def cpu_seconds(gateway: Gateway) -> float:
    """The gateway's CPU time so far (user + system), from /proc."""
    try:
        fields = open(f"/proc/{gateway.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def under_attack(name: str, front, admin, seconds: float, gateway: Gateway):
    """Runs one attack in a process of its own; probes and samples the gateway beside it."""
    process = await asyncio.create_subprocess_exec(sys.executable, __file__, "--attack", name, "--front", json.dumps(front),
                                                   "--admin", json.dumps(admin), "--seconds", str(seconds),
                                                   stdout=asyncio.subprocess.PIPE)
    probes = {"count": 0, "failures": [], "session_max": 0.0, "file_max": 0.0}
    peaks = {"rss": 0, "fds": 0}
    done = asyncio.Event()

    async def probing():
        while not done.is_set():
            try:
                session, file = await asyncio.wait_for(probe_once(front), 10)
                probes["session_max"] = max(probes["session_max"], session)
                probes["file_max"] = max(probes["file_max"], file)
            except Exception as error:  # noqa: BLE001 - any failure of the legitimate client counts
                probes["failures"].append(f"{type(error).__name__} {error}")
            probes["count"] += 1
            await asyncio.sleep(0.25)

    async def sampling():
        while not done.is_set():
            peaks["rss"] = max(peaks["rss"], gateway.rss_kib())
            peaks["fds"] = max(peaks["fds"], gateway.descriptors())
            await asyncio.sleep(0.1)

    tasks = [asyncio.ensure_future(probing()), asyncio.ensure_future(sampling())]
    output, _ = await process.communicate()
    done.set()
    await asyncio.gather(*tasks)
    lines = output.decode().strip().splitlines()
    return (json.loads(lines[-1]) if lines else {"error": "the attack printed nothing"}), probes, peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wsgate", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), ".build/release/wsgate"))
    parser.add_argument("--only", default="", help="attacks to run, comma-separated (" + ", ".join(ATTACKS) + ")")
    parser.add_argument("--seconds", type=float, default=30, help="length of each timed attack (at most 60)")
    parser.add_argument("--attack", help=argparse.SUPPRESS)
    parser.add_argument("--front", help=argparse.SUPPRESS)
    parser.add_argument("--admin", help=argparse.SUPPRESS)
    parser.add_argument("--backends", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backends:
        asyncio.run(run_backends())
        return 0
    if args.attack:
        result = asyncio.run(ATTACKS[args.attack](tuple(json.loads(args.front)), tuple(json.loads(args.admin)), min(args.seconds, 60)))
        print(json.dumps(result), flush=True)
        return 0
    chosen = [name for name in args.only.split(",") if name] or list(ATTACKS)
    unknown = [name for name in chosen if name not in ATTACKS]
    if unknown:
        parser.error(f"--only: unknown attack {', '.join(unknown)}")

    directory = tempfile.mkdtemp(prefix="wsgate-attacks-")
    backends_process = subprocess.Popen([sys.executable, __file__, "--backends"], stdout=subprocess.PIPE, text=True)
    silent = socket.socket()  # a service that never accepts: its backlog fills, later connects hang
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    gateway, passed, failed = None, 0, 0
    try:
        backends = json.loads(backends_process.stdout.readline())
        gateway = Gateway(args.wsgate, write_config(directory, backends, silent.getsockname()[1]),
                          os.path.join(directory, "wsgate.log"), open_files=OPEN_FILES)
        gateway.wait_listening(["127.0.0.1", "127.0.0.3"])
        front, admin = ("127.0.0.1", gateway.ports["127.0.0.1"], False), ("127.0.0.3", gateway.ports["127.0.0.3"])
        for _ in range(5):  # warm-up: the idle figures include what a first session allocates
            asyncio.run(probe_once(front))
        time.sleep(1)
        idle_fds, idle_rss = gateway.descriptors(), gateway.rss_kib()
        print(f"wsgate {args.wsgate}: idle {idle_fds} descriptors, {idle_rss / 1024:.1f} MiB resident; open-file limit {OPEN_FILES}", flush=True)
        for name in chosen:
            started, cpu_before = time.monotonic(), cpu_seconds(gateway)
            result, probes, peaks = asyncio.run(under_attack(name, front, admin, args.seconds, gateway))
            cpu = cpu_seconds(gateway) - cpu_before
            fds_after = settle(gateway, idle_fds, 20) if gateway.alive() else -1
            rss_bound = 2 * idle_rss + SESSION_BUDGET_KIB * result.get("sessions", 0)
            checks = {
                "alive": gateway.alive(),
                "probes served": not probes["failures"] and probes["count"] > 0,
                "probes under 1 s": max(probes["session_max"], probes["file_max"]) < 1.0,
                "memory bounded": peaks["rss"] <= rss_bound,
                "descriptors bounded": peaks["fds"] < OPEN_FILES,
                "descriptors released": 0 <= fds_after <= idle_fds + 2,
            }
            if result.get("refused") is not None or "error" in result:  # None: the attack needs no refusal
                checks["refused as it should"] = bool(result.get("refused")) and "error" not in result
            figures = {key: value for key, value in result.items() if key not in ("refused", "sessions")}
            print(f"{name} ({time.monotonic() - started:.0f} s, gateway CPU {cpu:.1f} s): RSS {idle_rss / 1024:.1f} -> peak {peaks['rss'] / 1024:.1f} MiB "
                  f"(bound {rss_bound / 1024:.1f}), descriptors peak {peaks['fds']} of {OPEN_FILES}, {fds_after} after; "
                  f"{probes['count']} probes, slowest session {probes['session_max'] * 1000:.0f} ms, file {probes['file_max'] * 1000:.0f} ms; "
                  f"{json.dumps(figures)}", flush=True)
            for check, ok in checks.items():
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print(f"FAIL {name}: {check}" + (f" ({probes['failures'][:3]})" if check == "probes served" else ""), flush=True)
            if not gateway.alive():
                break
    except Exception as error:  # noqa: BLE001 - the run itself broke: a failure
        failed += 1
        print(f"FAIL attacks: {type(error).__name__} {error}", flush=True)
    finally:
        if gateway and failed:
            print("---- wsgate log (tail)\n" + gateway.log_tail(), flush=True)
        if gateway:
            gateway.stop()
        backends_process.kill()
        backends_process.wait()
        silent.close()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
