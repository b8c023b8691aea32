"""Canary listeners on loopback for the guard's tests: they record every byte that arrives.

A probe sends a unique token; the assertion is whether that token reached a canary, so a probe
that merely claims success or failure cannot fool the test.
"""
import os
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PROBE = Path(__file__).resolve().parent / "probe.py"

HTTP_REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def child_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra)
    return env


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def mount_namespaces():
    """Whether this user may run a command in a private mount namespace (the DNS probe)."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class Canary:
    """TCP (IPv4 and IPv6) and UDP listeners plus a fake DNS server on a random 127/8 address."""

    def __init__(self):
        self.blobs = []
        self._lock = threading.Lock()
        self._threads = []
        self.host = "127.0.0.1"
        self.tcp_sock = self._listen(socket.AF_INET, self.host)
        self.tcp = self.tcp_sock.getsockname()[1]
        self.tcp6_sock = self._listen(socket.AF_INET6, "::1") if ipv6_loopback() else None
        self.tcp6 = self.tcp6_sock.getsockname()[1] if self.tcp6_sock else None
        self.udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_sock.bind((self.host, 0))
        self.udp = self.udp_sock.getsockname()[1]
        self._spawn(self._udp_loop, self.udp_sock, False)
        self.dns_sock = None
        self.dns_host = None
        for _ in range(5):  # port 53 on a random loopback address, if this user may bind it
            host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((host, 53))
            except OSError:
                s.close()
                continue
            self.dns_sock, self.dns_host = s, host
            self._spawn(self._udp_loop, s, True)
            break

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _listen(self, family, host):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(128)
        self._spawn(self._accept_loop, s)
        return s

    def _keep(self, data):
        with self._lock:
            self.blobs.append(bytes(data))

    def _accept_loop(self, server):
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            self._keep(b"<connection>")
            self._spawn(self._serve, conn)

    def _serve(self, conn):
        data = b""
        conn.settimeout(5)
        try:
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
                if data.startswith(b"GET ") and b"\r\n\r\n" in data:
                    conn.sendall(HTTP_REPLY)
                    break
        except OSError:
            pass
        finally:
            self._keep(data)
            conn.close()

    def _udp_loop(self, sock, answer_dns):
        while True:
            try:
                data, peer = sock.recvfrom(65536)
            except OSError:
                return
            self._keep(data)
            if answer_dns and len(data) > 12:
                # NXDOMAIN, echoing the question: the resolver stops waiting at once.
                reply = data[:2] + b"\x81\x83" + data[4:6] + b"\x00" * 6 + data[12:]
                try:
                    sock.sendto(reply, peer)
                except OSError:
                    pass

    def received(self, token):
        needle = token.encode()
        with self._lock:
            return any(needle in b for b in self.blobs)

    def config(self, token):
        return {"host": self.host, "tcp": self.tcp, "udp": self.udp, "tcp6": self.tcp6,
                "token": token}

    def close(self):
        for s in (self.tcp_sock, self.tcp6_sock, self.udp_sock, self.dns_sock):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def python():
    return sys.executable
