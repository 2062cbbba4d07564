#!/usr/bin/env python3
"""The container lab's upstream app: a small HTTP server whose behaviour is chosen by env or args.

  --listen HOST:PORT   (APP_LISTEN, default 0.0.0.0:3000)  where to listen
  --mode MODE          (APP_MODE, default healthy):
      healthy          200 "ok from HOSTNAME"
      slow             every answer waits --delay seconds (APP_DELAY, default 5)
      crash            exits with --exit-code (APP_EXIT_CODE, default 1) on the first request
      exit             exits with --exit-code right after start (a restart loop under a policy)
      hog-on-request   serves, but each request allocates --hog-mb MiB per 0.2 s until killed
      hog              allocates --hog-mb MiB per 0.2 s (APP_HOG_MB, default 64) until killed
      unhealthy        answers 500 on every path, /health included (the HEALTHCHECK fails)
      listen-nothing   sleeps without listening (a published port with no process behind it)

/health answers like any path, except that it is neither slow nor hogs. Every request is logged to stderr.
"""
import argparse
import http.server
import os
import socket
import sys
import time


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default=os.environ.get("APP_LISTEN", "0.0.0.0:3000"))
    p.add_argument("--mode", default=os.environ.get("APP_MODE", "healthy"))
    p.add_argument("--delay", type=float, default=float(os.environ.get("APP_DELAY", "5")))
    p.add_argument("--exit-code", type=int, default=int(os.environ.get("APP_EXIT_CODE", "1")))
    p.add_argument("--hog-mb", type=int, default=int(os.environ.get("APP_HOG_MB", "64")))
    return p.parse_args()


ARGS = parse()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        mode = ARGS.mode
        if mode == "crash":
            sys.stderr.write("app: crashing on request %s\n" % self.path)
            sys.stderr.flush()
            os._exit(ARGS.exit_code)
        if self.path.startswith("/health") and mode in ("slow", "hog-on-request"):
            mode = "healthy"  # the probe sees a live process; the site's requests do not
        if mode == "hog-on-request":
            hog = []
            while True:
                hog.append(bytearray(ARGS.hog_mb * 1024 * 1024))
                sys.stderr.write("app: request %s holds %d MiB\n" % (self.path, len(hog) * ARGS.hog_mb))
                sys.stderr.flush()
                time.sleep(0.2)
        if mode == "slow":
            time.sleep(ARGS.delay)
        status = 200
        if mode == "unhealthy":
            status = 500
        body = ("ok from %s (%s)\n" % (socket.gethostname(), mode)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        sys.stderr.write("app: %s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()


def main():
    mode = ARGS.mode
    sys.stderr.write("app: mode %s, listen %s\n" % (mode, ARGS.listen))
    sys.stderr.flush()
    if mode == "exit":
        os._exit(ARGS.exit_code)
    if mode == "listen-nothing":
        while True:
            time.sleep(3600)
    if mode == "hog":
        hog = []
        while True:
            hog.append(bytearray(ARGS.hog_mb * 1024 * 1024))
            sys.stderr.write("app: holding %d MiB\n" % (len(hog) * ARGS.hog_mb))
            sys.stderr.flush()
            time.sleep(0.2)
    host, _, port = ARGS.listen.rpartition(":")
    server = http.server.ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
