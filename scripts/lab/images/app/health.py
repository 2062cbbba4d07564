#!/usr/bin/env python3
"""HEALTHCHECK probe: GET http://127.0.0.1:PORT/health (PORT from APP_LISTEN); prints what it saw."""
import http.client
import os
import sys

port = int(os.environ.get("APP_LISTEN", "0.0.0.0:3000").rpartition(":")[2])
try:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    conn.request("GET", "/health")
    status = conn.getresponse().status
except OSError as err:
    print("health: 127.0.0.1:%d: %s" % (port, err))
    sys.exit(1)
print("health: 127.0.0.1:%d/health answered %d" % (port, status))
sys.exit(0 if status == 200 else 1)
