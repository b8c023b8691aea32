"""The probe matrix: every way out we know of, each in its own process, against loopback canaries.

Modes: ``none`` is the negative control (everything must arrive, or the probe proves nothing);
``full`` is docassist.guard.install(); ``kernel`` and ``hook`` are each layer alone, so either
one failing is visible even while the other one still holds.
"""
import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from probes.canary import PROBE, ROOT, Canary, child_env, mount_namespaces, python

PROBES = ["socket", "urllib", "http_client", "asyncio", "udp", "ipv6", "dns", "subprocess",
          "os_system", "ctypes", "multiprocessing"]
MODES = ["none", "full", "kernel", "hook"]


def _run(canary, probe, mode, resolv):
    token = f"dacanary-{probe.replace('_', '-')}-{mode}-{uuid.uuid4().hex[:12]}"
    argv = [python(), str(PROBE), probe, mode, json.dumps(canary.config(token))]
    if probe == "dns":
        # A private mount namespace whose resolv.conf names the canary as the name server.
        argv = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                str(resolv)] + argv
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=ROOT,
                          env=child_env())
    return {"token": token, "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    canary = Canary()
    resolv = None
    if canary.dns_host and mount_namespaces():
        resolv = tmp_path_factory.mktemp("dns") / "resolv.conf"
        resolv.write_text(f"nameserver {canary.dns_host}\noptions timeout:2 attempts:1\n")
    jobs = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for probe in PROBES:
            if probe == "ipv6" and canary.tcp6 is None:
                continue
            if probe == "dns" and resolv is None:
                continue
            for mode in MODES:
                jobs[probe, mode] = pool.submit(_run, canary, probe, mode, resolv)
        results = {key: job.result() for key, job in jobs.items()}
    # Late arrivals (a child that outlived its parent) still count: settle, then judge.
    import time
    time.sleep(0.3)
    for r in results.values():
        r["arrived"] = canary.received(r["token"])
    canary.close()
    return results


def _get(matrix, probe, mode):
    if (probe, mode) not in matrix:
        reason = {"ipv6": "no IPv6 loopback here",
                  "dns": "needs a private mount namespace and port 53 on loopback"}[probe]
        pytest.skip(reason)
    return matrix[probe, mode]


@pytest.mark.parametrize("probe", PROBES)
def test_negative_control_gets_out(matrix, probe):
    r = _get(matrix, probe, "none")
    assert r["arrived"], f"{probe} without the guard never reached the canary: {r}"
    assert r["rc"] == 0, r


@pytest.mark.parametrize("probe", PROBES)
def test_full_guard_stops_it(matrix, probe):
    r = _get(matrix, probe, "full")
    assert not r["arrived"], f"{probe} got through the guard: {r}"
    # The attempt was recorded and the process ended with the dedicated exit code and one line.
    assert r["rc"] == 9, r
    assert "docassist: error: the privacy guard blocked" in r["stderr"], r["stderr"]


@pytest.mark.parametrize("probe", PROBES)
def test_kernel_layer_alone_stops_it(matrix, probe):
    r = _get(matrix, probe, "kernel")
    assert not r["arrived"], f"{probe} got past the seccomp filter: {r}"
    assert "kernel layer unavailable" not in r["stderr"]


@pytest.mark.parametrize("probe", PROBES)
def test_audit_hook_alone_stops_it(matrix, probe):
    r = _get(matrix, probe, "hook")
    assert not r["arrived"], f"{probe} got past the audit hook: {r}"
    assert r["rc"] == 9, r
    assert json.loads(r["stdout"].splitlines()[-1])["error"].startswith("NetworkBlocked"), r
