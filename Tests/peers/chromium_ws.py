#!/usr/bin/env python3
"""Headless Chromium as a WebSocket client, driven over the DevTools protocol (Python `websockets`).

    chromium_ws.py ORIGIN WS_PATH MESSAGE

Opens ORIGIN + "/healthz" in a tab (so the browser holds a connection to the gateway, HTTP/2 when
TLS ALPN offers it), then runs in that page: new WebSocket(ORIGIN with wss/ws + WS_PATH), sends
MESSAGE, waits for the echo and closes with 1000. Prints "ECHO: <text> EXTENSIONS: <negotiated>"
or "ERROR: <why>".
The test CA is not installed: certificate errors are ignored (--ignore-certificate-errors).
"""
import asyncio
import json
import re
import shutil
import sys
import tempfile

from websockets.asyncio.client import connect

SCRIPT = """
new Promise((resolve) => {
  const ws = new WebSocket(%s);
  const timer = setTimeout(() => resolve("ERROR: timeout"), 10000);
  ws.onopen = () => ws.send(%s);
  ws.onmessage = (event) => { clearTimeout(timer); ws.close(1000); resolve("ECHO: " + event.data + " EXTENSIONS: " + ws.extensions); };
  ws.onerror = () => { clearTimeout(timer); resolve("ERROR: websocket error"); };
})
"""


async def main(origin: str, path: str, message: str) -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("ERROR: chromium is not installed")
        return 2
    profile = tempfile.mkdtemp(prefix="wsgate-chromium-")
    process = await asyncio.create_subprocess_exec(
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
        "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        endpoint = None
        while endpoint is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            if not line:
                print("ERROR: chromium exited")
                return 2
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = match.group(1) if match else None
        async with connect(endpoint, max_size=None) as cdp:
            ids = iter(range(1, 1_000_000))

            async def call(method, params=None, session=None):
                request_id = next(ids)
                message = {"id": request_id, "method": method, "params": params or {}}
                if session:
                    message["sessionId"] = session
                await cdp.send(json.dumps(message))
                while True:
                    reply = json.loads(await cdp.recv())
                    if reply.get("id") == request_id:
                        if "error" in reply:
                            raise RuntimeError(f"{method}: {reply['error']}")
                        return reply["result"]

            target = await call("Target.createTarget", {"url": origin + "/healthz"})
            session = (await call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))["sessionId"]
            # Wait until the tab shows the gateway's page (the navigation replaces the first context).
            loaded = json.dumps(origin)
            for _ in range(200):
                try:
                    state = await call("Runtime.evaluate", {
                        "expression": f"document.readyState === 'complete' && location.href.startsWith({loaded})",
                        "returnByValue": True}, session)
                    if state["result"].get("value") is True:
                        break
                except RuntimeError:
                    pass  # context destroyed mid-navigation: ask again
                await asyncio.sleep(0.1)
            url = ("wss" if origin.startswith("https") else "ws") + origin[origin.index(":"):] + path
            result = await call("Runtime.evaluate", {
                "expression": SCRIPT % (json.dumps(url), json.dumps(message)),
                "awaitPromise": True, "returnByValue": True}, session)
            print(result["result"].get("value"), flush=True)
            await asyncio.sleep(0.3)  # let the close handshake finish before the browser goes
            await call("Browser.close")
        return 0
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3])))
