"""Echo pairs over inet sockets on the loopback: UDP and TCP, each role in its own tree.

    python -m harness.workloads.inet udp|tcp server --port-file F [--events E]
    python -m harness.workloads.inet udp|tcp client --port-file F [--events E] [--interval ...]

The server binds 127.0.0.1 port 0 (the kernel picks a free one, so runs never collide) and
writes the port to --port-file; the client reads it there.
"""

from __future__ import annotations

import argparse
import socket
import sys

from harness.workloads.client import run_client, run_socket_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, REPLY, frame, parse, recv_exact
from harness.workloads.rendezvous import publish, read_published
from harness.workloads.tree import loop_arguments, serve_frames

HOST = "127.0.0.1"


def serve_udp(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    events.emit("start", port=port)
    print(f"udp server listening on {HOST}:{port}", flush=True)
    publish(args.port_file, str(port))
    while True:
        data, peer = sock.recvfrom(args.size)
        seq, _ = parse(data)
        events.emit("received", seq, peer=list(peer))
        try:
            sock.sendto(frame(seq, REPLY, args.size), peer)
        except OSError as exc:
            events.emit("error", seq, error=f"sendto {peer}: {exc}")


def serve_tcp(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    events.emit("start", port=port)
    print(f"tcp server listening on {HOST}:{port}", flush=True)
    publish(args.port_file, str(port))
    while True:
        conn, _ = listener.accept()
        with conn:
            serve_frames(lambda: recv_exact(conn, args.size), conn.sendall, events)


def client_udp(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    server = (HOST, int(read_published(args.port_file)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))  # a fixed return address for the server's replies
    print(f"udp client {sock.getsockname()} -> {server}", flush=True)

    def send(seq: int) -> None:
        sock.sendto(frame(seq, GREETING, args.size), server)

    def recv(timeout: float) -> bytes:
        sock.settimeout(timeout)
        return sock.recv(args.size)

    return run_client(send, recv, events, args)


def client_tcp(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    server = (HOST, int(read_published(args.port_file)))
    sock = socket.create_connection(server, timeout=5.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"tcp client {sock.getsockname()} -> {server}", flush=True)
    return run_socket_client(sock, events, args, stream=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.inet")
    parser.add_argument("transport", choices=("udp", "tcp"))
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--port-file", required=True, help="where the server writes its port")
    loop_arguments(parser)
    args = parser.parse_args(argv)
    roles = {
        ("udp", "server"): serve_udp, ("udp", "client"): client_udp,
        ("tcp", "server"): serve_tcp, ("tcp", "client"): client_tcp,
    }
    return roles[(args.transport, args.role)](args)


if __name__ == "__main__":
    sys.exit(main())
