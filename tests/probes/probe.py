"""One network probe, run in its own interpreter by tests/test_guard_probes.py.

    python probe.py PROBE MODE CONFIG_JSON

MODE is what is installed before the probe runs: ``none`` (the negative control), ``full``
(``docassist.guard.install()``), ``kernel`` (the seccomp filter alone) or ``hook`` (the audit hook
alone). CONFIG_JSON gives the canary addresses and the token to send. The probe tries to get the
token to a canary listener and prints one JSON line saying what happened locally; whether bytes
arrived is decided by the canaries in the test process, not by this script.
"""
import json
import os
import shlex
import socket
import sys


def send_tcp(host, port, token):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(token.encode())


def probe_socket(cfg):
    send_tcp(cfg["host"], cfg["tcp"], cfg["token"])


def probe_urllib(cfg):
    import urllib.request
    urllib.request.urlopen(f"http://{cfg['host']}:{cfg['tcp']}/{cfg['token']}", timeout=5).read()


def probe_http_client(cfg):
    import http.client
    conn = http.client.HTTPConnection(cfg["host"], cfg["tcp"], timeout=5)
    conn.request("GET", "/" + cfg["token"])
    conn.getresponse().read()


def probe_asyncio(cfg):
    import asyncio

    async def go():
        reader, writer = await asyncio.open_connection(cfg["host"], cfg["tcp"])
        writer.write(cfg["token"].encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    asyncio.run(go())


def probe_udp(cfg):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(cfg["token"].encode(), (cfg["host"], cfg["udp"]))


def probe_ipv6(cfg):
    send_tcp("::1", cfg["tcp6"], cfg["token"])


def probe_dns(cfg):
    # The test runs this probe in a mount namespace whose /etc/resolv.conf names the UDP canary
    # as the name server: the query itself carries the token.
    socket.getaddrinfo(f"{cfg['token']}.canary.test", 80, proto=socket.IPPROTO_TCP)


def _child_argv(cfg):
    # The child runs the plain socket probe and installs nothing itself.
    return [sys.executable, os.path.abspath(__file__), "socket", "none", json.dumps(cfg)]


def probe_subprocess(cfg):
    import subprocess
    subprocess.run(_child_argv(cfg), timeout=20, check=False)


def probe_os_system(cfg):
    os.system(" ".join(shlex.quote(a) for a in _child_argv(cfg)))


def probe_ctypes(cfg):
    # socket() + connect() + send() straight from libc: no Python socket object at all.
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "libc socket() failed")
    addr = struct.pack("!HH4s8x", socket.AF_INET, cfg["tcp"], socket.inet_aton(cfg["host"]))
    addr = struct.pack("=H", socket.AF_INET) + addr[2:]  # sin_family is host order
    buf = ctypes.create_string_buffer(addr, len(addr))
    if libc.connect(fd, buf, len(addr)) != 0:
        raise OSError(ctypes.get_errno(), "libc connect() failed")
    data = cfg["token"].encode()
    libc.send(fd, data, len(data), 0)
    libc.close(fd)


def _mp_target(cfg):
    send_tcp(cfg["host"], cfg["tcp"], cfg["token"])


def probe_multiprocessing(cfg):
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_mp_target, args=(cfg,))
    p.start()
    p.join(20)


PROBES = {
    "socket": probe_socket, "urllib": probe_urllib, "http_client": probe_http_client,
    "asyncio": probe_asyncio, "udp": probe_udp, "ipv6": probe_ipv6, "dns": probe_dns,
    "subprocess": probe_subprocess, "os_system": probe_os_system, "ctypes": probe_ctypes,
    "multiprocessing": probe_multiprocessing,
}


def arm(mode):
    if mode == "none":
        return
    from docassist import guard
    if mode == "full":
        guard.install()
    elif mode == "kernel":
        state = guard._install_seccomp()
        if not state["active"]:
            raise SystemExit(f"kernel layer unavailable: {state['detail']}")
    elif mode == "hook":
        guard._install_audit_hook()
    else:
        raise SystemExit(f"unknown mode {mode}")


def main():
    name, mode, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    arm(mode)
    outcome = {"probe": name, "mode": mode, "error": None}
    try:
        PROBES[name](cfg)
    except BaseException as err:  # report, do not hide: the canaries decide
        outcome["error"] = f"{type(err).__name__}: {err}"
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
