#!/usr/bin/env python3
"""Headless Chromium on the demo page served by wsgate, driven over the DevTools protocol.

    chromium_demo.py ORIGIN SCREENSHOT.png

Opens ORIGIN + "/", waits for both sockets, then uses the page as a person would: sends /time and
a chat line through the console form, clicks the /who chip and "Measure ×20". Waits until the
page shows the answers, saves a screenshot, and prints "RESULT: <json>" with what the page shows
(badges, the console instance, the lines of the log by kind, the counters). "ERROR: <why>" else.
"""
import asyncio
import base64
import json
import re
import shutil
import sys
import tempfile

from websockets.asyncio.client import connect

SNAPSHOT = """(() => {
  const lines = (kind) => [...document.querySelectorAll('#console-log .line.' + kind + ' .text')].map((e) => e.textContent);
  return {
    console: document.getElementById('console-state').dataset.state,
    echo: document.getElementById('echo-state').dataset.state,
    instance: document.getElementById('console-instance').textContent,
    echoes: [...document.querySelectorAll('#echo-log .line.reply .text')].map((e) => e.textContent),
    chat: lines('chat'), replies: lines('reply'), system: lines('sys'), sent: lines('out'), errors: lines('err'),
    rttCount: Number(document.getElementById('rtt-count').textContent),
    rttAvg: document.getElementById('rtt-avg').textContent,
    messagesIn: Number(document.getElementById('stat-in').textContent),
    messagesOut: Number(document.getElementById('stat-out').textContent),
    compression: document.getElementById('stat-ext').textContent,
  };
})()"""


def submit(line: str) -> str:
    return (f"(() => {{ const input = document.getElementById('console-input'); input.value = {json.dumps(line)};"
            " document.getElementById('console-form').requestSubmit(); return true; })()")


def click(selector: str) -> str:
    return f"(() => {{ document.querySelector({json.dumps(selector)}).click(); return true; }})()"


async def main(origin: str, screenshot: str) -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("ERROR: chromium is not installed")
        return 2
    profile = tempfile.mkdtemp(prefix="wsgate-chromium-")
    process = await asyncio.create_subprocess_exec(
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--hide-scrollbars",
        "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1360,860", "about:blank",
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

            async def evaluate(expression, session):
                result = await call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
                return result["result"].get("value")

            async def until(what, predicate, session, timeout=15):
                for _ in range(int(timeout * 10)):
                    try:
                        snapshot = await evaluate(SNAPSHOT, session)
                        if snapshot and predicate(snapshot):
                            return snapshot
                    except RuntimeError:
                        pass  # context destroyed mid-navigation: ask again
                    await asyncio.sleep(0.1)
                raise TimeoutError(f"{what}: page shows {json.dumps(snapshot)}")

            target = await call("Target.createTarget", {"url": origin + "/"})
            session = (await call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))["sessionId"]
            await call("Emulation.setDeviceMetricsOverride", {"width": 1360, "height": 860, "deviceScaleFactor": 1, "mobile": False}, session)
            try:
                await until("both sockets open and the console's greeting shown",
                            lambda s: s["console"] == "open" and s["echo"] == "open" and s["instance"].startswith("console-"), session)
                await evaluate(submit("/time"), session)
                await evaluate(submit("hello from chromium"), session)
                await evaluate(click(".chips [data-line='/who']"), session)
                await evaluate(click("#echo-burst"), session)
                await evaluate("document.getElementById('echo-input').value = 'echo from chromium'; document.getElementById('echo-form').requestSubmit()", session)
                snapshot = await until("the answers shown",
                                       lambda s: any(r.startswith("time: ") for r in s["replies"])
                                       and any(r.startswith("who: ") for r in s["replies"])
                                       and any(c.endswith("> hello from chromium") for c in s["chat"]) and s["rttCount"] >= 20
                                       and "echo from chromium" in s["echoes"], session)
                await asyncio.sleep(1.1)  # the traffic panel refreshes every second
                snapshot = await evaluate(SNAPSHOT, session)
            except TimeoutError as error:
                print(f"ERROR: {error}")
                return 1
            finally:
                shot = await call("Page.captureScreenshot", {"format": "png"}, session)
                with open(screenshot, "wb") as file:
                    file.write(base64.b64decode(shot["data"]))
            print("RESULT: " + json.dumps(snapshot), flush=True)
            await call("Browser.close")
        return 0
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
