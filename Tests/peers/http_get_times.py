#!/usr/bin/env python3
"""Times plain HTTP/1.1 GETs from a process of its own (the test process can stall under load).

    http_get_times.py HOST PORT PATH COUNT [PAUSE_SECONDS]

COUNT requests, each on a fresh connection, PAUSE_SECONDS apart (default 0.1). Prints one JSON object:
{"statuses": [...], "seconds": [...]}, each time from before the connect to the end of the body.
"""
import http.client
import json
import sys
import time


def main() -> int:
    host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
    statuses, seconds = [], []
    for _ in range(count):
        started = time.monotonic()
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        seconds.append(round(time.monotonic() - started, 4))
        statuses.append(response.status)
        connection.close()
        time.sleep(pause)
    print(json.dumps({"statuses": statuses, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
