#!/usr/bin/env python3
"""A DNS stub that answers NXDOMAIN to every query (UDP and TCP).

The test Docker daemon is started with `--dns` pointing here, so that Docker's embedded DNS
never forwards a container's unknown name to the host's real resolver: every name that is not
a container on the same network fails fast and stays on this machine.

Usage: dns-nxdomain.py ADDRESS [PORT]   (IP_FREEBIND: the address may appear later)
"""
import socket
import struct
import sys
import threading

IP_FREEBIND = 15


def answer(query: bytes) -> bytes | None:
    if len(query) < 12:
        return None
    ident, flags = struct.unpack("!HH", query[:4])
    if flags & 0x8000:  # a response, not a query
        return None
    rd = flags & 0x0100
    # QR=1, opcode copied, RD copied, RA=1, RCODE=3 (NXDOMAIN); question echoed, no records.
    out_flags = 0x8000 | (flags & 0x7800) | rd | 0x0080 | 3
    qdcount = struct.unpack("!H", query[4:6])[0]
    # Echo the question section as it was sent (up to the end of the first question).
    pos = 12
    if qdcount:
        while pos < len(query) and query[pos] != 0:
            pos += 1 + query[pos]
        pos += 5
    question = query[12:pos] if qdcount and pos <= len(query) else b""
    return struct.pack("!HHHHHH", ident, out_flags, 1 if question else 0, 0, 0, 0) + question


def serve_udp(addr: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(4096)
        reply = answer(data)
        if reply:
            s.sendto(reply, peer)


def serve_tcp(addr: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        conn.settimeout(2)
        try:
            head = conn.recv(2)
            if len(head) == 2:
                (n,) = struct.unpack("!H", head)
                data = conn.recv(n)
                reply = answer(data)
                if reply:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            conn.close()


def main() -> None:
    addr = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 53
    threading.Thread(target=serve_tcp, args=(addr, port), daemon=True).start()
    serve_udp(addr, port)


if __name__ == "__main__":
    main()
