"""The kernel layer: the hand-assembled seccomp program, and what it does in a real process.

The BPF program is checked twice: by a small interpreter here (every ABI branch, including the
i386 and x32 ones this machine cannot easily exercise), and by the kernel in child processes.
"""
import subprocess
import sys
import textwrap

import pytest

from docassist import guard
from probes.canary import ROOT, child_env

LINUX_X86_64 = sys.platform.startswith("linux") and guard._native_abi() == "x86_64"

ALLOW = guard.SECCOMP_RET_ALLOW
EPERM = guard.SECCOMP_RET_ERRNO | guard.EPERM
EACCES = guard.SECCOMP_RET_ERRNO | guard.EACCES


def run_bpf(program, nr, arch, arg0=0):
    """Classic BPF, just the instructions the guard emits, over a struct seccomp_data."""
    data = {0: nr & 0xFFFFFFFF, 4: arch, 16: arg0 & 0xFFFFFFFF}
    acc, pc = 0, 0
    for _ in range(len(program) + 1):
        code, jt, jf, k = program[pc]
        if code == 0x20:
            acc, pc = data[k], pc + 1
        elif code == 0x15:
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x35:
            pc += 1 + (jt if acc >= k else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not return")


@pytest.mark.parametrize("native", ["x86_64", "aarch64"])
def test_filter_program_decisions(native):
    prog = guard.build_filter(native)
    assert len(prog) < 64 and all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in prog)
    abi = guard._ABIS[native]
    arch = abi["arch"]
    socket_nr, socketpair_nr = abi["family"]
    for fam, want in [(2, EACCES), (10, EACCES), (17, EACCES), (40, EACCES), (0, EACCES),
                      (1, ALLOW), (16, ALLOW), (2 | (1 << 32), EACCES)]:
        assert run_bpf(prog, socket_nr, arch, fam) == want, (native, fam)
        assert run_bpf(prog, socketpair_nr, arch, fam) == want, (native, fam)
    for nr in abi["deny"]:
        assert run_bpf(prog, nr, arch) == EPERM
    # Ordinary system calls pass: read, write, mmap, ioctl (the GPU driver's), futex, seccomp.
    for nr in (0, 1, 9, 16, 63, 64, 98, 202, abi["seccomp"]):
        if nr not in abi["deny"] and nr not in abi["family"]:
            assert run_bpf(prog, nr, arch) == ALLOW, nr
    # An ABI the filter does not know is refused wholesale.
    assert run_bpf(prog, 0, 0x12345678) == EPERM


def test_filter_program_i386_and_x32_on_x86_64():
    prog = guard.build_filter("x86_64")
    i386 = guard.AUDIT_ARCH_I386
    assert run_bpf(prog, 102, i386) == EACCES          # socketcall: refused outright
    assert run_bpf(prog, 359, i386, 2) == EACCES       # socket(AF_INET)
    assert run_bpf(prog, 359, i386, 1) == ALLOW        # socket(AF_UNIX)
    assert run_bpf(prog, 425, i386) == EPERM           # io_uring_setup
    assert run_bpf(prog, 4, i386) == ALLOW             # write
    x86 = guard.AUDIT_ARCH_X86_64
    assert run_bpf(prog, guard.X32_SYSCALL_BIT | 41, x86, 1) == EPERM
    assert run_bpf(prog, guard.X32_SYSCALL_BIT | 1, x86) == EPERM
    # The i386 numbers mean other things natively, and must not be confused.
    assert run_bpf(prog, 102, x86) == ALLOW            # getuid on x86_64


def run_child(code, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=child_env())


needs_kernel_layer = pytest.mark.skipif(not LINUX_X86_64, reason="seccomp filter for x86_64 Linux")


@needs_kernel_layer
def test_kernel_filter_in_a_real_process():
    r = run_child("""
        import ctypes, errno, json, socket, subprocess, sys, threading
        from docassist import guard
        # A thread that exists before the filter: TSYNC must cover it too.
        go, done, seen = threading.Event(), threading.Event(), {}
        def early():
            go.wait()
            for name, fam in [("inet", socket.AF_INET), ("inet6", socket.AF_INET6),
                              ("packet", 17), ("vsock", 40)]:
                try:
                    socket.socket(fam, socket.SOCK_DGRAM if fam != 17 else socket.SOCK_RAW).close()
                    seen[name] = "allowed"
                except OSError as e:
                    seen[name] = errno.errorcode.get(e.errno, e.errno)
            done.set()
        threading.Thread(target=early).start()
        state = guard._install_seccomp()
        go.set(); done.wait(10)
        out = {"state": state, "early_thread": seen}
        a, b = socket.socketpair(); a.send(b"x"); out["unix_pair"] = b.recv(1).decode()
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close(); out["netlink"] = "ok"
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def sysc(*args):
            ctypes.set_errno(0)
            rc = libc.syscall(*[ctypes.c_long(a) for a in args])
            return rc, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())
        params = ctypes.create_string_buffer(120)
        out["io_uring_setup"] = sysc(425, 4, ctypes.addressof(params))
        out["x32_getpid"] = sysc(0x40000000 | 39)
        out["ptrace"] = sysc(101, 0, 0, 0, 0)
        out["pidfd_getfd"] = sysc(438, 0, 0, 0)
        out["getpid"] = sysc(39)[0] > 0
        # Children inherit it: a fresh interpreter, no guard of its own.
        out["child"] = subprocess.run([sys.executable, "-c",
            "import socket\\ntry:\\n socket.socket(); print('allowed')\\n"
            "except OSError as e: print(e.errno)"],
            capture_output=True, text=True).stdout.strip()
        out["status"] = guard.kernel_filter_state()
        print(json.dumps(out))
    """)
    assert r.returncode == 0, r.stderr
    import json
    out = json.loads(r.stdout)
    assert out["state"]["active"], out["state"]
    assert out["early_thread"] == {"inet": "EACCES", "inet6": "EACCES", "packet": "EACCES",
                                   "vsock": "EACCES"}
    assert out["unix_pair"] == "x" and out["netlink"] == "ok"
    assert out["io_uring_setup"] == [-1, "EPERM"]
    assert out["x32_getpid"] == [-1, "EPERM"]
    assert out["ptrace"] == [-1, "EPERM"]
    assert out["pidfd_getfd"] == [-1, "EPERM"]
    assert out["getpid"] is True
    assert out["child"] == "13"  # EACCES
    assert out["status"]["mode"] == "2" and out["status"]["no_new_privs"] == "1"


@needs_kernel_layer
def test_negative_control_kernel_probes_without_filter():
    # Without the filter the same calls behave differently, so the assertions above can fail.
    r = run_child("""
        import socket
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
        print("ok")
    """)
    assert r.stdout.strip() == "ok", r.stderr


GPU_ROUND_TRIP = """
    import json, sys
    from docassist import guard
    state = guard.install()
    import numpy as np
    import wgpu, wgpu.utils
    from wgpu.utils.compute import compute_with_buffers
    src = '''
    @group(0) @binding(0) var<storage, read> a: array<f32>;
    @group(0) @binding(1) var<storage, read_write> b: array<f32>;
    @compute @workgroup_size(64)
    fn main(@builtin(global_invocation_id) i: vec3<u32>) {
        if (i.x < arrayLength(&a)) { b[i.x] = a[i.x] * 3.0 - 1.0; }
    }
    '''
    x = np.random.default_rng(7).standard_normal(4096).astype(np.float32)
    out = compute_with_buffers({0: x}, {1: (x.size, "f")}, src, n=(x.size // 64, 1, 1))
    y = np.frombuffer(out[1], dtype=np.float32)
    print(json.dumps({"seccomp": state["layers"]["kernel_seccomp"]["active"],
                      "hook": state["layers"]["audit_hook"]["active"],
                      "max_err": float(np.max(np.abs(y - (x * 3 - 1)))),
                      "attempts": guard.attempts()}))
"""


def test_gpu_compute_round_trip_with_guard_installed():
    r = run_child(GPU_ROUND_TRIP)
    if r.returncode != 0 and "adapter" in r.stderr.lower() and "privacy guard" not in r.stderr:
        pytest.skip(f"no WebGPU adapter here: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["hook"] and out["seccomp"] == LINUX_X86_64
    assert out["max_err"] < 1e-5
    assert out["attempts"] == []


def test_stack_libraries_work_under_the_guard(tmp_path, stories260k):
    """pypdf, rich, click, sentencepiece and numpy, imported and used after install()."""
    tok = stories260k.parent / "tok512.model"
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="Guarded page one")
    pdf.output(str(tmp_path / "doc.pdf"))
    r = run_child(f"""
        import io, json
        from docassist import guard
        guard.install()
        import numpy as np, sentencepiece as spm, pypdf, click, rich
        from rich.console import Console
        from click.testing import CliRunner
        sp = spm.SentencePieceProcessor(model_file={str(tok)!r})
        ids = sp.encode("Once upon a time")
        text = pypdf.PdfReader({str(tmp_path / 'doc.pdf')!r}).pages[0].extract_text()
        buf = io.StringIO(); Console(file=buf, force_terminal=True).print("[bold]ok[/bold]")
        @click.command()
        @click.argument("n", type=int)
        def twice(n): click.echo(n * 2)
        res = CliRunner().invoke(twice, ["21"])
        m = np.linalg.inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
        print(json.dumps({{"ids": ids, "text": text, "rich": "ok" in buf.getvalue(),
                          "click": res.output.strip(), "inv": m.tolist(),
                          "attempts": guard.attempts()}}))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["ids"] == [403, 407, 261, 378]
    assert "Guarded page one" in out["text"]
    assert out["rich"] and out["click"] == "42"
    assert out["inv"] == [[0.5, 0.0], [0.0, 0.25]]
    assert out["attempts"] == []


def test_install_is_idempotent():
    r = run_child("""
        import json, sys
        from docassist import guard
        first = guard.install()
        second = guard.install()
        state = guard.kernel_filter_state()
        print(json.dumps({"filters": state["filters"] if state else None,
                          "same": first["layers"] == second["layers"]}))
    """)
    assert r.returncode == 0, r.stderr
    import json
    out = json.loads(r.stdout)
    assert out["same"] is True
    if LINUX_X86_64:
        assert out["filters"] == "1"


@needs_kernel_layer
def test_old_kernel_fallback_prctl_filter():
    # Kernels before seccomp() (3.17) get the same program through prctl(PR_SET_SECCOMP), only
    # while the process has one thread (prctl cannot synchronise threads).
    r = run_child("""
        import ctypes, json, socket, threading
        from docassist import guard
        libc = ctypes.CDLL(None, use_errno=True)
        u = ctypes.c_ulong
        assert libc.prctl(ctypes.c_int(guard.PR_SET_NO_NEW_PRIVS), u(1), u(0), u(0), u(0)) == 0
        prog = guard._fprog(guard.build_filter("x86_64"))
        t = threading.Thread(target=threading.Event().wait, args=(0.5,)); t.start()
        with_thread = guard._load_filter_prctl(libc, prog)
        t.join()
        import os, time
        for _ in range(200):  # the OS thread outlives join() by a moment
            if len(os.listdir("/proc/self/task")) == 1:
                break
            time.sleep(0.01)
        alone = guard._load_filter_prctl(libc, prog)
        try:
            socket.socket(); inet = "allowed"
        except OSError as e:
            inet = e.errno
        print(json.dumps([with_thread, alone, inet]))
    """)
    assert r.returncode == 0, r.stderr
    import json
    assert json.loads(r.stdout) == [None, "prctl, single thread", 13]


INT80 = """
    import ctypes, json, sys
    from docassist import guard
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    # One page below 4 GiB (MAP_32BIT): i386 system calls take 32-bit pointers.
    page = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)
    # push rbx; mov eax,edi; mov ebx,esi; mov ecx,edx; xor edx,edx; int 0x80; pop rbx; ret
    code = bytes([0x53, 0x89, 0xF8, 0x89, 0xF3, 0x89, 0xD1, 0x31, 0xD2, 0xCD, 0x80, 0x5B, 0xC3])
    ctypes.memmove(page, code, len(code))
    int80 = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_long)(page)
    args = page + 64
    def socketcall(family):  # socketcall(SYS_SOCKET, {family, SOCK_STREAM, 0})
        ctypes.memmove(args, (ctypes.c_uint32 * 3)(family, 1, 0), 12)
        return int80(102, 1, args)
    if sys.argv[1] == "filter":
        assert guard._install_seccomp()["active"]
    print(json.dumps({"socketcall_inet": socketcall(2), "socketcall_unix": socketcall(1),
                      "socket_inet": int80(359, 2, 1), "socket_unix": int80(359, 1, 1),
                      "getpid": int80(20, 0, 0) > 0}))
"""


@needs_kernel_layer
def test_i386_abi_through_int80():
    """The 32-bit entry point (int 0x80 from a 64-bit process): the filter's i386 branch."""
    import json
    plain = subprocess.run([sys.executable, "-c", textwrap.dedent(INT80), "plain"],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, env=child_env())
    if plain.returncode != 0:
        pytest.skip(f"cannot run i386 code here: {plain.stderr[-300:]}")
    base = json.loads(plain.stdout)
    if base["socketcall_inet"] == -38:
        pytest.skip("kernel without i386 emulation")
    assert base["socketcall_inet"] >= 0 and base["socket_inet"] >= 0  # the negative control
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(INT80), "filter"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env=child_env())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["socketcall_inet"] == -13 and out["socketcall_unix"] == -13  # refused outright
    assert out["socket_inet"] == -13                                          # EACCES
    assert out["socket_unix"] >= 0 and out["getpid"] is True
