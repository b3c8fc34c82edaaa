"""HTTP/2 frames written and read by hand, for clients that must send what a well-behaved HTTP/2
library will not (HPACK references, a stream reset in the write that opened it, a request never
ended). Used by h2_hpack_bomb.py, h2_connect_reset.py, h2_half_open.py and the chaos soak.

    sock = connect(host, port)          # preface + SETTINGS; the server's SETTINGS acknowledged
    sock.sendall(frame(HEADERS, END_HEADERS, 1, request_block([(b":method", b"GET"), ...])))
    reader = FrameReader(sock)
    for kind, flags, stream, payload in reader.frames(): ...
"""
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0, 1, 3, 4, 7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL = 8


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def literal(name: bytes, value: bytes, indexing: bool = False) -> bytes:
    """A literal header field (RFC 7541 §6.2), never Huffman-coded; with `indexing` it enters the
    dynamic table, where the first entry is index 62 (one byte to name it again: 0xbe)."""
    def string(text: bytes) -> bytes:
        if len(text) < 127:
            return bytes([len(text)]) + text
        rest, out = len(text) - 127, bytearray([127])  # a 7-bit prefix integer (§5.1)
        while rest >= 128:
            out.append((rest & 0x7F) | 0x80)
            rest >>= 7
        out.append(rest)
        return bytes(out) + text
    return bytes([0x40 if indexing else 0x00]) + string(name) + string(value)


def request_block(fields) -> bytes:
    return b"".join(literal(name, value) for name, value in fields)


class FrameReader:
    """Frames off a socket as they complete; a server SETTINGS is acknowledged as it is read."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.closed_at = None

    def feed(self, data: bytes):
        self.buffer += data

    def frames(self):
        """The frames complete in what has been fed, in order: (kind, flags, stream, payload)."""
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buffer[9:9 + length])
            del self.buffer[:9 + length]
            if kind == SETTINGS and not flags & ACK:
                self.sock.sendall(frame(SETTINGS, ACK, 0, b""))
            yield kind, flags, stream, payload

    def read_until(self, deadline: float):
        """Frames as they arrive, until `deadline` (a time.monotonic() value) passes or the server
        closes the connection; `closed_at` then says when it did."""
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(max(0.01, left))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            if not data:
                self.closed_at = time.monotonic()
                return
            self.feed(data)
            yield from self.frames()


def connect(host: str, port: int, timeout: float = 10) -> socket.socket:
    """An h2c connection (prior knowledge) whose server SETTINGS have been read and acknowledged, so
    the server's own settings (ENABLE_CONNECT_PROTOCOL among them) are in force."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, b""))
    reader = FrameReader(sock)
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed before the server's SETTINGS")
        reader.feed(data)
        if any(kind == SETTINGS and not flags & ACK for kind, flags, _, _ in reader.frames()):
            return sock
