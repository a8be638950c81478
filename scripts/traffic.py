#!/usr/bin/env python3
"""HTTP-like traffic for pawscope sample recordings.

server mode: listen on PORT of ADDR; for every connection read one request
(up to the blank line "\\r\\n\\r\\n"), answer with a small response carrying
Content-Length, then close:
  --close server  close at once (the server sends the first FIN and so holds
                  TIME_WAIT once the client's FIN arrives);
  --close client  wait for the client's EOF, then close (the client closes
                  first and holds TIME_WAIT).

client mode: connect COUNT times to ADDR:PORT, send one request, read the
whole response, close; pause GAP + random(0..JITTER) ms between connects.
Prints one JSON line at the end:
  {"attempts": N, "successes": N, "failures": N,
   "failures_by_kind": {"timeout": N, "refused": N, "reset": N,
                        "addr_not_available": N, "other": N}}
(kinds with a zero count are left out; addr_not_available is connect()
failing with EADDRNOTAVAIL: no free local port for the destination).
With --port-usage the line also has
  "port_usage": {"attempts": N, "addr_not_available": N,
                 "first_addr_not_available_s": S or null, "local_ports_used": N}
where S is the time of the first EADDRNOTAVAIL in seconds since the start of
the first connect, and local_ports_used counts the distinct local ports of the
connects that got through connect().

Standard library only.
"""

import argparse
import errno
import json
import random
import socket
import sys
import threading
import time

BODY = b"pawscope sample body\n"
SERVER_IO_TIMEOUT = 30.0
MAX_REQUEST = 16384


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def read_request(conn):
    """Read up to and including the first blank line; return the bytes."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > MAX_REQUEST:
            return None
    return buf


def drain_to_eof(conn):
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return


def handle(conn, close_mode):
    try:
        conn.settimeout(SERVER_IO_TIMEOUT)
        req = read_request(conn)
        if req is None:
            return
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        head += b"Content-Length: %d\r\n" % len(BODY)
        if close_mode == "server":
            head += b"Connection: close\r\n"
        conn.sendall(head + b"\r\n" + BODY)
        if close_mode == "client":
            drain_to_eof(conn)
    except OSError:
        pass
    finally:
        conn.close()


def run_server(args):
    fam = family_of(args.addr)
    lsock = socket.socket(fam, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.addr, args.port))
    lsock.listen(args.backlog)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="ascii") as f:
            f.write("ready\n")
    while True:
        try:
            conn, _ = lsock.accept()
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(0.05)
                continue
            raise
        t = threading.Thread(target=handle, args=(conn, args.close), daemon=True)
        t.start()


def classify(exc):
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        return "timeout"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "refused"
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "reset"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return "addr_not_available"
    return "other"


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError("response without Content-Length")


def one_exchange(args, fam, host_header, local_ports):
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        sock.settimeout(args.connect_timeout)
        sock.connect((args.addr, args.port))
        local_ports.add(sock.getsockname()[1])
        req = ("GET /%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: pawscope-sample\r\n\r\n"
               % (args.index, host_header)).encode("ascii")
        sock.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "EOF before response head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        want = content_length(head)
        while len(body) < want:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "EOF inside response body")
            body += chunk
        if args.close == "server":
            # The server closes first: read its FIN before closing.
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
    finally:
        sock.close()


def run_client(args):
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random("%d:%d" % (seed, args.index))
    fam = family_of(args.addr)
    host_header = ("[%s]" % args.addr) if fam == socket.AF_INET6 else args.addr
    kinds = {"timeout": 0, "refused": 0, "reset": 0, "addr_not_available": 0, "other": 0}
    successes = 0
    local_ports = set()
    first_start = None
    first_addr_not_available = None
    # Stagger the clients' starts within one jitter interval.
    time.sleep(rng.uniform(0, args.jitter_ms) / 1000.0)
    for i in range(args.count):
        if i:
            time.sleep((args.gap_ms + rng.uniform(0, args.jitter_ms)) / 1000.0)
        if first_start is None:
            first_start = time.monotonic()
        try:
            one_exchange(args, fam, host_header, local_ports)
            successes += 1
        except (OSError, ValueError) as e:
            kind = classify(e)
            kinds[kind] += 1
            if kind == "addr_not_available" and first_addr_not_available is None:
                first_addr_not_available = time.monotonic() - first_start
    failures = args.count - successes
    result = {
        "attempts": args.count,
        "successes": successes,
        "failures": failures,
        "failures_by_kind": {k: v for k, v in kinds.items() if v},
    }
    if args.port_usage:
        result["port_usage"] = {
            "attempts": args.count,
            "addr_not_available": kinds["addr_not_available"],
            "first_addr_not_available_s": (None if first_addr_not_available is None
                                           else round(first_addr_not_available, 3)),
            "local_ports_used": len(local_ports),
        }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)

    s = sub.add_parser("server", help="serve requests")
    s.add_argument("--addr", required=True)
    s.add_argument("--port", type=int, default=80)
    s.add_argument("--close", choices=("server", "client"), default="server")
    s.add_argument("--backlog", type=int, default=128)
    s.add_argument("--ready-file", help="written once the socket listens")

    c = sub.add_parser("client", help="make requests")
    c.add_argument("--addr", required=True)
    c.add_argument("--port", type=int, default=80)
    c.add_argument("--close", choices=("server", "client"), default="server")
    c.add_argument("--count", type=int, default=15)
    c.add_argument("--gap-ms", type=float, default=200)
    c.add_argument("--jitter-ms", type=float, default=100)
    c.add_argument("--connect-timeout", type=float, default=4)
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the pauses (combined with --index); default random")
    c.add_argument("--index", type=int, default=0, help="client number")
    c.add_argument("--port-usage", action="store_true",
                   help="add port_usage (local ports, EADDRNOTAVAIL) to the result")

    args = p.parse_args()
    if args.mode == "server":
        run_server(args)
    else:
        run_client(args)


if __name__ == "__main__":
    main()
