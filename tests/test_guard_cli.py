"""The guard as the CLI uses it: installed by itself, reported by doctor, exit code 9.

Every command runs in a child interpreter: the guard cannot be installed in the test runner's own
process (it would stop the runner's listeners and children), see docassist/guard.py.
"""
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from docassist import guard
from probes.canary import ROOT, Canary, child_env

LINUX_X86_64 = sys.platform.startswith("linux") and guard._native_abi() == "x86_64"


@pytest.fixture
def canary():
    c = Canary()
    yield c
    c.close()


def token():
    return f"dacanary-cli-{uuid.uuid4().hex[:12]}"


def py(code, *args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=child_env(), **kw)


def settle(canary, tok):
    time.sleep(0.2)
    return canary.received(tok)


def test_doctor_json_reports_every_layer():
    r = subprocess.run([sys.executable, "-m", "docassist", "doctor", "--json"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=child_env())
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    g = rep["guard"]
    assert g["installed"] is True and g["deferred"] is None
    assert g["layers"]["audit_hook"]["active"] is True
    assert g["layers"]["environment"]["active"] is True
    assert g["layers"]["kernel_seccomp"]["active"] is LINUX_X86_64
    if LINUX_X86_64:
        assert g["kernel_state"]["mode"] == "2" and "alternatives" not in g
    else:
        assert any("unshare -rn" in a for a in g["alternatives"])
    assert g["blocked_attempts"] == []
    # The CLI installs the guard before numpy, wgpu, sentencepiece, pypdf... are imported.
    assert g["loaded_before_guard"] == []
    assert isinstance(rep["gpu"], dict) and rep["gpu"]


def test_loaded_before_guard_is_reported():
    # The check above can fail: a library imported ahead of the guard is named.
    r = py("""
        import json, numpy
        from docassist import guard
        print(json.dumps(guard.install()["loaded_before_guard"]))
    """)
    assert json.loads(r.stdout) == ["numpy"], r.stderr


def test_doctor_text_names_layers_and_gpu():
    r = subprocess.run([sys.executable, "-m", "docassist", "doctor"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=child_env())
    assert r.returncode == 0, r.stderr
    assert "in-process audit hook: active" in r.stdout
    kernel = "kernel filter (seccomp): active" if LINUX_X86_64 else "kernel filter (seccomp): NOT"
    assert kernel in r.stdout
    assert "GPU" in r.stdout


def test_doctor_says_when_the_kernel_refuses():
    # A process whose seccomp() is already refused: install() must degrade and say so.
    r = py("""
        import json
        from docassist import guard
        guard._install_seccomp = lambda: {"active": False, "detail": "kernel refused (test)"}
        guard.install()
        print("\\n".join(guard.render_doctor(guard.doctor_report())))
    """)
    assert r.returncode == 0, r.stderr
    assert "kernel filter (seccomp): NOT active: kernel refused (test)" in r.stdout
    for alt in ("unshare -rn", "PrivateNetwork=", "--network none", "firewall"):
        assert alt in r.stdout


def test_console_script_installs_the_guard():
    exe = shutil.which("docassist")
    if exe is None:
        pytest.skip("docassist is not installed as a console script here")
    r = subprocess.run([exe, "doctor", "--json"], capture_output=True, text=True, timeout=120,
                       env=child_env())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["guard"]["installed"] is True


@pytest.mark.parametrize("when", ["registered-before-import", "registered-in-command"])
def test_atexit_code_cannot_connect(canary, when):
    tok = token()
    r = py("""
        import atexit, socket, sys
        host, port, tok, when = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        def leak():
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(tok.encode())
        if when == "registered-before-import":
            atexit.register(leak)
        from docassist.cli import cli, main
        import click
        @cli.command("noop")
        def noop():
            if when == "registered-in-command":
                atexit.register(leak)
            click.echo("done")
        sys.argv = ["docassist", "noop"]
        main()
    """, canary.host, str(canary.tcp), tok, when)
    assert not settle(canary, tok)
    assert r.stdout.strip() == "done"
    assert r.returncode == 9, r.stderr
    assert "docassist: error: the privacy guard blocked" in r.stderr


def test_swallowed_attempt_still_exits_9_and_is_logged(canary, tmp_path):
    tok = token()
    log = tmp_path / "audit.jsonl"
    r = py("""
        import socket, sys
        host, port, tok, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        from docassist.cli import cli
        import click
        @cli.command("leaky")
        def leaky():
            # Library code that catches everything and carries on.
            for target in ((host, port), ("::1", port)):
                try:
                    s = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET)
                    s.connect(target); s.sendall(tok.encode())
                except Exception:
                    pass
            click.echo("carried on")
        cli(["--audit-log", log, "leaky"], prog_name="docassist")
    """, canary.host, str(canary.tcp), tok, str(log))
    assert not settle(canary, tok)
    assert r.returncode == 9, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("docassist: error: the privacy guard blocked an internet socket")
    assert "(and 1 more attempt)" in lines[0]
    entries = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["socket.__new__", "socket.__new__"]
    assert {e["layer"] for e in entries} == {"audit-hook"}
    assert all(e["pid"] > 0 and e["time"].endswith("Z") for e in entries)


def test_process_creation_in_a_command_exits_9():
    r = py("""
        import subprocess
        from docassist.cli import cli
        @cli.command("shell")
        def shell():
            subprocess.run(["true"])
        cli(["shell"], prog_name="docassist")
    """)
    assert r.returncode == 9, r.stderr
    assert "starting a process" in r.stderr and "Traceback" not in r.stderr


def test_foreign_native_library_and_find_library_are_refused():
    r = py("""
        import ctypes, ctypes.util, json
        from docassist import guard
        # A raw pointer to libc's socket(), taken before the guard. Calling through it raises no
        # audit event at all (Python's hooks are not a sandbox): the kernel layer refuses it.
        raw_socket = ctypes.cast(ctypes.CDLL(None).socket, ctypes.c_void_p).value
        guard.install()
        out = {}
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)
        call_raw = proto(raw_socket)
        for name, fn in [("ctypes_libz", lambda: ctypes.CDLL("libz.so.1")),
                         ("cffi_libz", lambda: __import__("cffi").FFI().dlopen("libz.so.1")),
                         ("find_library", lambda: ctypes.util.find_library("z")),
                         ("libc", lambda: ctypes.CDLL("libc.so.6")),
                         ("libc_connect", lambda: ctypes.CDLL("libc.so.6").connect),
                         ("raw_pointer", lambda: "fd" if call_raw(2, 1, 0) >= 0 else "refused"),
                         ("libc_getpid", lambda: ctypes.CDLL(None).getpid())]:
            try:
                res = fn(); out[name] = res if isinstance(res, str) else "allowed"
            except Exception as e:
                out[name] = type(e).__name__
        print(json.dumps(out))
    """)
    out = json.loads(r.stdout)
    assert out == {"ctypes_libz": "NetworkBlocked", "cffi_libz": "NetworkBlocked",
                   "find_library": "NetworkBlocked", "libc": "allowed",
                   "libc_connect": "NetworkBlocked", "libc_getpid": "allowed",
                   "raw_pointer": "refused" if LINUX_X86_64 else "fd"}
    assert r.returncode == 9


def test_inherited_internet_stdout_carries_nothing(canary):
    # `docassist doctor > /dev/tcp/host/port`: the shell hands us a connected TCP socket.
    s = socket.create_connection((canary.host, canary.tcp))
    try:
        r = subprocess.run([sys.executable, "-m", "docassist", "doctor"], stdout=s.fileno(),
                           stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT,
                           env=child_env())
    finally:
        s.close()
    time.sleep(0.3)
    with canary._lock:
        payload = b"".join(b for b in canary.blobs if b != b"<connection>")
    assert payload == b""
    assert r.returncode == 9, r.stderr
    assert "inherited AF_INET socket on fd 1" in r.stderr


def test_unwritable_audit_log_is_a_bad_input(tmp_path):
    r = subprocess.run([sys.executable, "-m", "docassist", "--audit-log",
                        str(tmp_path / "missing" / "log.jsonl"), "doctor"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=child_env())
    assert r.returncode == 3
    assert r.stderr.startswith("docassist: error: cannot write the audit log")


def test_cli_import_under_pytest_defers_but_install_never_does():
    r = py("""
        import json, _pytest
        import docassist.cli
        from docassist import guard
        before = guard.status()
        guard.install()
        after = guard.status()
        print(json.dumps([before["installed"], bool(before["deferred"]), after["installed"],
                          after["layers"]["audit_hook"]["active"]]))
    """)
    assert json.loads(r.stdout) == [False, True, True, True], r.stderr


def test_proxy_variables_are_cleared_and_hubs_set_offline():
    env = child_env(HTTPS_PROXY="http://proxy.example:3128", http_proxy="http://p:1",
                    HF_HUB_OFFLINE="0")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json, os
        from docassist import guard
        guard.install()
        print(json.dumps({k: os.environ.get(k) for k in
                          ("HTTPS_PROXY", "http_proxy", "HF_HUB_OFFLINE", "DO_NOT_TRACK")}))
    """)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert json.loads(r.stdout) == {"HTTPS_PROXY": None, "http_proxy": None,
                                    "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}


def test_sub_interpreters_are_refused():
    r = py("""
        import json
        from docassist import guard
        guard.install()
        try:
            import _xxsubinterpreters as si
        except ImportError:
            print(json.dumps("no-module")); raise SystemExit
        try:
            si.create(); print(json.dumps("allowed"))
        except Exception as e:  # the C code turns the hook's refusal into a RuntimeError
            print(json.dumps([type(e).__name__, [a["event"] for a in guard.attempts()]]))
    """)
    out = json.loads(r.stdout)
    if out == "no-module":
        pytest.skip("no sub-interpreter module in this Python")
    assert out == ["RuntimeError", ["cpython.PyInterpreterState_New"]]
    assert r.returncode == 9 and "sub-interpreter" in r.stderr
