#!/usr/bin/env python3
"""noVNC (Debian's, served by the gateway) in headless Chromium, connecting through the gateway.

    chromium_novnc.py ORIGIN WS_PATH

Opens ORIGIN + "/vnc.html?autoconnect=true&path=WS_PATH" and waits up to 20 s for noVNC's own
connected state (the `noVNC_connected` class its UI puts on the document once the RFB handshake
with the server is done), then presses the UI's disconnect button. Prints
"CONNECTED <status text>" or "ERROR: <why>".
"""
import asyncio
import json
import sys

from cdp import run

STATE = "[document.documentElement.classList.contains('noVNC_connected'), document.getElementById('noVNC_status') ? document.getElementById('noVNC_status').textContent : '']"


def main(origin: str, path: str) -> int:
    async def body(browser) -> int:
        url = f"{origin}/vnc.html?autoconnect=true&reconnect=false&resize=off&path={path.lstrip('/')}"
        session = await browser.open(url, loaded_prefix=origin)
        connected, status = False, ""
        for _ in range(200):
            connected, status = await browser.evaluate(STATE, session)
            if connected:
                break
            await asyncio.sleep(0.1)
        if not connected:
            print(f"ERROR: not connected after 20 s (status: {status!r})")
            return 1
        # The UI's own disconnect, which closes the WebSocket (without a code: 1005).
        await browser.evaluate("document.getElementById('noVNC_disconnect_button').click(); true", session)
        await asyncio.sleep(0.5)
        print(f"CONNECTED {json.dumps(status)}", flush=True)
        return 0
    return run(body, window=(1024, 768))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
