#!/usr/bin/env python3
"""Runs the wsgate image as an operator would and checks what they rely on.

A unix-socket echo service on the host is mounted into the container (so no traffic leaves
loopback); the gateway's listener and admin ports are published on 127.0.0.1 at ports podman
picks. Checked: the image's metadata (non-root user, exposed ports, stop signal, healthcheck),
/readyz and /metrics through the published admin port, the HEALTHCHECK command, WebSocket echo
through the published port, then `podman stop` (SIGTERM): every live client gets 1001, the
container exits 0, and its JSON log says the drain was clean.
"""
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from websockets.asyncio.client import connect

IMAGE = sys.argv[1]
SESSIONS = 20


def podman(*args, check=True):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise SystemExit(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def expect(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


async def echo_service(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def main():
    inspect = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    config = inspect["Config"]
    expect(config.get("User") == "10001:10001", f"runs as a non-root user ({config.get('User')})")
    expect({"8080/tcp", "9090/tcp"} <= set(config.get("ExposedPorts", {})), "exposes 8080 and 9090")
    expect(config.get("StopSignal") == "SIGTERM", "stop signal SIGTERM")
    health = inspect.get("Healthcheck") or config.get("Healthcheck") or {}  # podman keeps it at the top level
    expect("/healthz" in " ".join(health.get("Test", [])), f"has a HEALTHCHECK on /healthz ({health.get('Test')})")
    expect("WSGATE_CONFIG=/etc/wsgate/wsgate.yaml" in config.get("Env", []), "config path in WSGATE_CONFIG")

    with tempfile.TemporaryDirectory(prefix="wsgate-ct-") as work:
        os.chmod(work, 0o755)
        socket_dir = os.path.join(work, "backend")
        os.mkdir(socket_dir, 0o777)
        os.chmod(socket_dir, 0o777)
        server = await asyncio.start_unix_server(echo_service, path=os.path.join(socket_dir, "echo.sock"))
        os.chmod(os.path.join(socket_dir, "echo.sock"), 0o777)
        # The configuration directory is laid out and updated as the kubelet does a ConfigMap:
        # wsgate.yaml -> ..data/wsgate.yaml, and an update renames a new ..data link into place.
        config_dir = os.path.join(work, "config")
        os.mkdir(config_dir, 0o755)
        versions = []
        config_text = """
listeners: [{address: "0.0.0.0:8080"}]
admin: {address: "0.0.0.0:9090"}
server: {drain_timeout: 15s}
routes:
  - {path: /echo, backend: "unix:/backend/echo.sock", origins: any}
"""

        def write_config(text):
            version = f"..{len(versions) + 1}"
            versions.append(version)
            os.mkdir(os.path.join(config_dir, version), 0o755)
            with open(os.path.join(config_dir, version, "wsgate.yaml"), "w") as f:
                f.write(text)
            os.chmod(os.path.join(config_dir, version, "wsgate.yaml"), 0o644)
            os.symlink(version, os.path.join(config_dir, "..data_tmp"))
            os.rename(os.path.join(config_dir, "..data_tmp"), os.path.join(config_dir, "..data"))
            if not os.path.lexists(os.path.join(config_dir, "wsgate.yaml")):
                os.symlink("..data/wsgate.yaml", os.path.join(config_dir, "wsgate.yaml"))
        write_config(config_text)
        name = f"wsgate-ct-{os.getpid()}"
        podman("run", "-d", "--name", name, "-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090",
               "-v", f"{socket_dir}:/backend", "-v", f"{config_dir}:/etc/wsgate:ro",
               "--read-only", "--cap-drop", "ALL", IMAGE)
        try:
            def published(port):
                out = podman("port", name, f"{port}/tcp").stdout.strip().splitlines()[0]
                return int(out.rsplit(":", 1)[1])
            port, admin = published(8080), published(9090)
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline:
                try:
                    status, _ = http_get(admin, "/readyz")
                    if status == 200:
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.2)
            expect(status == 200, f"/readyz answers 200 through the published admin port {admin}")
            expect(http_get(port, "/healthz")[0] == 200, "/healthz on the published listener port")
            expect(podman("healthcheck", "run", name, check=False).returncode == 0, "the image's HEALTHCHECK passes")

            # Hot reload inside the container: a new route appears without a restart.
            write_config(config_text + '  - {path: /again, backend: "unix:/backend/echo.sock", origins: any}\n')
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "configuration reloaded" not in podman("logs", name).stderr:
                await asyncio.sleep(0.2)
            async with connect(f"ws://127.0.0.1:{port}/again", open_timeout=10) as ws:
                await ws.send(b"reloaded")
                expect(await asyncio.wait_for(ws.recv(), 10) == b"reloaded", "a ConfigMap-style update (..data link swapped) is reloaded in the running container (new route answers)")

            clients = []
            for index in range(SESSIONS):
                ws = await connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10)
                await ws.send(f"hello {index}".encode())
                reply = await asyncio.wait_for(ws.recv(), 10)
                if reply != f"hello {index}".encode():
                    raise SystemExit(f"FAILED: echo {index} came back as {reply!r}")
                clients.append(ws)
            expect(True, f"{SESSIONS} WebSocket sessions echo through the published port {port}")
            _, metrics = http_get(admin, "/metrics")
            expect('wsgate_sessions_active{route="/echo",backend="unix",protocol="http/1.1"} ' + str(SESSIONS) in metrics,
                   f"/metrics counts {SESSIONS} active sessions")

            stopped = time.monotonic()
            stop = await asyncio.create_subprocess_exec("podman", "stop", "-t", "30", name,
                                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

            async def close_code(ws):
                try:
                    await asyncio.wait_for(ws.wait_closed(), 20)
                except asyncio.TimeoutError:
                    return None
                return ws.close_code
            codes = await asyncio.gather(*(close_code(ws) for ws in clients))
            await stop.wait()
            expect(codes == [1001] * SESSIONS, f"every client got 1001 Going Away ({sorted(set(map(str, codes)))})")
            exit_code = int(podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip())
            elapsed = time.monotonic() - stopped
            expect(exit_code == 0, f"the container exited 0 after SIGTERM, in {elapsed:.1f} s (drain_timeout 15 s, stop timeout 30 s)")
            logs = podman("logs", name).stderr + podman("logs", name).stdout
            lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
            expect(len(lines) > 0 and len(lines) == len([l for l in logs.splitlines() if l.strip()]), f"{len(lines)} log lines, all JSON")
            messages = [line.get("message", "") for line in lines]
            expect(f"drained: {SESSIONS} closed cleanly" in messages, "the log says the drain was clean")
            ended = [line for line in lines if line.get("message") == "session ended"]
            ended = [line for line in ended if line.get("route") == "/echo"]
            expect(len(ended) == SESSIONS and all(line.get("close_code") == "1001" for line in ended), f"{SESSIONS} access log lines with close_code 1001")
        finally:
            if os.environ.get("KEEP_CONTAINER") is None:
                podman("rm", "-f", name, check=False)
            server.close()

asyncio.run(main())
size = int(podman("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout.strip())
print(f"container test passed (image {size / 1e6:.0f} MB)")
