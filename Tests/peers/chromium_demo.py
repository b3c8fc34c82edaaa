#!/usr/bin/env python3
"""Headless Chromium on the demo page served by wsgate, driven over the DevTools protocol.

    chromium_demo.py ORIGIN SCREENSHOT.png

Opens ORIGIN + "/", waits for both sockets, then uses the page as a person would: sends /time and
a chat line through the console form, clicks the /who chip and "Measure ×20". Waits until the
page shows the answers, saves a screenshot, and prints "RESULT: <json>" with what the page shows
(badges, the console instance, the lines of the log by kind, the counters). Then opens the
page's "Watch in a new tab" link as a second tab, reloads the first (its session is held and
resumed), says a line there and prints "RESUMED: <json>" with both tabs' consoles. "ERROR: <why>" else.
"""
import asyncio
import base64
import json
import sys

from cdp import Chromium, ChromiumMissing

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


async def until_in(browser, session, what, predicate, timeout=15):
    snapshot = None
    for _ in range(int(timeout * 10)):
        try:
            snapshot = await browser.evaluate(SNAPSHOT, session)
        except RuntimeError:
            snapshot = None  # the page is reloading
        if snapshot and predicate(snapshot):
            return snapshot
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what}: page shows {json.dumps(snapshot)}")


async def main(origin: str, screenshot: str) -> int:
    try:
        async with Chromium(window=(1360, 860)) as browser:
            session = await browser.open(origin + "/")

            async def until(what, predicate, timeout=15):
                snapshot = None
                for _ in range(int(timeout * 10)):
                    snapshot = await browser.evaluate(SNAPSHOT, session)
                    if snapshot and predicate(snapshot):
                        return snapshot
                    await asyncio.sleep(0.1)
                raise TimeoutError(f"{what}: page shows {json.dumps(snapshot)}")

            try:
                await until("both sockets open and the console's greeting shown",
                            lambda s: s["console"] == "open" and s["echo"] == "open" and s["instance"].startswith("console-"))
                await browser.evaluate(submit("/time"), session)
                await browser.evaluate(submit("hello from chromium"), session)
                await browser.evaluate(click(".chips [data-line='/who']"), session)
                await browser.evaluate(click("#echo-burst"), session)
                await browser.evaluate("document.getElementById('echo-input').value = 'echo from chromium';"
                                       " document.getElementById('echo-form').requestSubmit()", session)
                await until("the answers shown",
                            lambda s: any(r.startswith("time: ") for r in s["replies"])
                            and any(r.startswith("who: ") for r in s["replies"])
                            and any(c.endswith("> hello from chromium") for c in s["chat"]) and s["rttCount"] >= 20
                            and "echo from chromium" in s["echoes"])
                await asyncio.sleep(1.1)  # the traffic panel refreshes every second
                snapshot = await browser.evaluate(SNAPSHOT, session)
            finally:
                shot = await browser.call("Page.captureScreenshot", {"format": "png"}, session)
                with open(screenshot, "wb") as file:
                    file.write(base64.b64decode(shot["data"]))
            print("RESULT: " + json.dumps(snapshot), flush=True)

            # A viewer in a second tab, through the page's own link.
            link = await browser.evaluate("document.getElementById('console-watch').href", session)
            viewer = await browser.open(link, loaded_prefix=origin)
            watched = await until_in(browser, viewer, "the viewer watching, with the lines said before it came",
                                     lambda s: s["console"] == "open" and any(c.endswith("> hello from chromium") for c in s["chat"]))
            # The first tab reloads: its session is held, then resumed.
            await browser.call("Page.reload", {}, session)
            await asyncio.sleep(0.5)
            resumed = await until_in(browser, session, "the reloaded page resumed",
                                     lambda s: s["console"] == "open" and any(line.startswith("resumed the session") for line in s["system"]))
            await browser.evaluate(submit("after the reload"), session)
            await browser.evaluate(click(".chips [data-line='/who']"), session)
            resumed = await until_in(browser, session, "the resumed session answering",
                                     lambda s: any(c.endswith("> after the reload") for c in s["chat"]) and sum(r.startswith("who: ") for r in s["replies"]) == 2)
            watched = await until_in(browser, viewer, "the viewer seeing the line said after the reload",
                                     lambda s: any(c.endswith("> after the reload") for c in s["chat"]))
        print("RESUMED: " + json.dumps({"owner": resumed, "viewer": watched}), flush=True)
        return 0
    except (ChromiumMissing, TimeoutError) as error:
        print(f"ERROR: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
