"""Headless Chromium driven over the DevTools protocol (Python `websockets`), for the browser tests.

    async with Chromium(window=(1360, 860)) as browser:
        session = await browser.open("http://127.0.0.1:8080/")
        value = await browser.evaluate("document.title", session)

The test CA is not installed: certificate errors are ignored (--ignore-certificate-errors).
"""
import asyncio
import json
import os
import re
import shutil
import tempfile

from websockets.asyncio.client import connect


class ChromiumMissing(Exception):
    pass


class Chromium:
    def __init__(self, window=None):
        self.window = window
        self.process = None
        self.profile = None
        self.cdp = None
        self.ids = iter(range(1, 1_000_000))

    async def __aenter__(self):
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if not browser:
            raise ChromiumMissing("chromium is not installed")
        self.profile = tempfile.mkdtemp(prefix="wsgate-chromium-")
        arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--hide-scrollbars",
                     "--remote-debugging-port=0", f"--user-data-dir={self.profile}"]
        if self.window:
            arguments.append(f"--window-size={self.window[0]},{self.window[1]}")
        # Its own temporary files (the singleton socket directory) go in the profile, removed with it.
        self.process = await asyncio.create_subprocess_exec(
            browser, *arguments, "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "TMPDIR": self.profile})
        endpoint = None
        while endpoint is None:
            line = (await asyncio.wait_for(self.process.stderr.readline(), 30)).decode()
            if not line:
                raise ChromiumMissing("chromium exited")
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = match.group(1) if match else None
        self.cdp = await connect(endpoint, max_size=None).__aenter__()
        return self

    async def __aexit__(self, *exc):
        try:
            if self.cdp:
                try:
                    await self.call("Browser.close")
                except Exception:
                    pass
                await self.cdp.__aexit__(None, None, None)
        finally:
            if self.process and self.process.returncode is None:
                self.process.kill()
            if self.process:
                await self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    async def call(self, method, params=None, session=None):
        request_id = next(self.ids)
        message = {"id": request_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.cdp.send(json.dumps(message))
        while True:
            reply = json.loads(await self.cdp.recv())
            if reply.get("id") == request_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, expression, session, await_promise=False):
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise}, session)
        return result["result"].get("value")

    async def open(self, url, loaded_prefix=None):
        """A new tab on `url`, once the page there (starting with `loaded_prefix`) has loaded."""
        target = await self.call("Target.createTarget", {"url": url})
        session = (await self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))["sessionId"]
        if self.window:
            await self.call("Emulation.setDeviceMetricsOverride",
                            {"width": self.window[0], "height": self.window[1], "deviceScaleFactor": 1, "mobile": False}, session)
        prefix = json.dumps(loaded_prefix or url)
        for _ in range(200):
            try:
                if await self.evaluate(f"document.readyState === 'complete' && location.href.startsWith({prefix})", session) is True:
                    return session
            except RuntimeError:
                pass  # context destroyed mid-navigation: ask again
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{url} did not load")


def run(body, window=None) -> int:
    """Runs `await body(browser)` in a fresh headless Chromium and returns its exit status; a missing
    Chromium or a page that does not load prints "ERROR: <why>" and returns 2."""
    async def main() -> int:
        try:
            async with Chromium(window=window) as browser:
                return await body(browser)
        except (ChromiumMissing, TimeoutError) as error:
            print(f"ERROR: {error}")
            return 2
    return asyncio.run(main())
