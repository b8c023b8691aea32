"""No-network guard: make "documents never leave this machine" checkable.

``install()`` puts three layers in place, in this order, and none of them can be taken back:

1. Environment: proxy variables are removed and the usual model-hub / telemetry variables are set
   to offline, so a library that would phone home is told not to before it is even imported.
2. Kernel (Linux): a seccomp filter, assembled here by hand as classic BPF and installed with
   ``prctl(PR_SET_NO_NEW_PRIVS)`` + ``seccomp(SECCOMP_SET_MODE_FILTER, TSYNC|LOG)``. ``socket()``
   and ``socketpair()`` fail with EACCES for every address family except AF_UNIX and AF_NETLINK
   (the GPU stack may talk to udev over netlink; netlink cannot reach another machine), so no
   internet, IPv6, packet or vsock socket can exist. io_uring (which can open sockets without
   ``socket()``), ptrace, process_vm_readv/writev and pidfd_getfd (ways to borrow another
   process's network) fail with EPERM. The i386 ABI (``int 0x80``) is covered too, its multiplexed
   ``socketcall`` refused outright; x32 system calls are refused; an unknown ABI gets EPERM for
   everything. The filter binds every thread (TSYNC: existing ones too) and every child, and no
   code in the process, Python or native, can lift it.
3. In-process (every platform): a ``sys.addaudithook`` hook that raises ``NetworkBlocked`` for
   internet sockets, DNS look-ups, ``sendto``/``sendmsg``, URL openers, process creation
   (subprocess, os.system, exec*, posix_spawn, fork, multiprocessing), ``webbrowser``, new
   sub-interpreters and native libraries outside an allow-list (ctypes and cffi). Python's own
   documentation says audit hooks are not a sandbox; this layer is there to name what was tried
   and to stop it before any byte is built, the kernel layer is the guarantee.

The kernel layer answers with an errno (and the kernel's audit log records it where seccomp
logging is enabled); it also covers what raises no audit event, e.g. a ctypes call through a raw
function pointer or native code. Every attempt the audit hook sees is recorded, and the CLI
turns a record into exit code 9 (``EXIT_NETWORK_BLOCKED``) and one line naming the attempt, even
when library code swallowed the exception; an ``atexit`` handler registered first (so it runs
last) does the same for attempts made after the command returned, and after it has run the hook
itself ends the process. With ``--audit-log FILE`` each attempt is also appended to FILE as one
JSON line.

There is no switch to turn any of this off. One case is deliberately left alone: when the CLI
module is imported inside a pytest process (CliRunner tests), ``install_for_cli()`` leaves that
process unguarded, because the test runner must keep spawning children and opening loopback
listeners for the guard's own tests; those tests run every probe and CLI command in a child
interpreter where the guard is fully installed. ``install()`` itself never defers.

This module imports only the standard library (and docassist.errors), so it can run before numpy,
wgpu or sentencepiece are loaded.
"""
import atexit
import json
import os
import re
import socket
import sys
import threading
import time

from docassist.errors import NetworkBlocked

# --- what the in-process layer allows -----------------------------------------------------------

# Native libraries the tool needs, matched on the file name (ctypes / cffi dlopen). The Vulkan
# loader and GPU drivers are normally loaded by wgpu-native through the dynamic linker (no Python
# event), the patterns are there for the cases where Python loads them.
ALLOWED_LIBRARY_PATTERNS = (
    r"wgpu_native",
    r"vulkan",
    r"^VkLayer_",
    r"^libnvidia-",
    r"^libdrm",
    r"sentencepiece",
    r"^lib(c|m|dl|pthread|rt)\.so(\.[0-9]+)*$",
    r"^lib(c|m|System\.B)\.dylib$",
)
# numpy's own bundled libraries live under .../numpy/ or .../numpy.libs/.
_NUMPY_DIR = re.compile(r"[/\\]numpy(\.libs)?[/\\]")

# libc symbols a ctypes caller may not look up or call: they open sockets, resolve names, start
# processes, or reach them indirectly (syscall, dlsym).
DENIED_SYMBOLS = frozenset("""
    socket socketpair connect sendto sendmsg sendmmsg bind listen accept accept4
    getaddrinfo gethostbyname gethostbyname2 gethostbyname_r gethostbyname2_r gethostbyaddr
    gethostbyaddr_r getnameinfo res_query res_search res_send res_nquery res_nsearch res_nsend
    fork vfork _Fork clone clone3 execve execv execvp execvpe execl execlp execle fexecve execveat
    system popen posix_spawn posix_spawnp syscall dlopen dlmopen dlsym dlvsym
    io_uring_setup io_uring_enter io_uring_register ptrace process_vm_readv process_vm_writev
    pidfd_getfd
""".split())

# Proxy variables would point a library at a relay; the others tell hubs and telemetry to stay
# offline. Setting them costs nothing and covers libraries we do not even use.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "socks_proxy",
                   "rsync_proxy", "grpc_proxy", "wss_proxy", "ws_proxy")
OFFLINE_VARIABLES = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "DISABLE_TELEMETRY": "1",
}

# What an administrator can use where the kernel layer is not available.
ADMIN_ALTERNATIVES = (
    "run it in an empty network namespace: unshare -rn docassist ...",
    "systemd: PrivateNetwork=yes (or IPAddressDeny=any) in the service unit",
    "containers: docker run --network none ...",
    "a host firewall rule dropping this user's outgoing traffic "
    "(e.g. nft/iptables -m owner --uid-owner)",
)

# --- state (module level: one guard per process) ------------------------------------------------

_LOCK = threading.Lock()
_STATE = {
    "installed": False,
    "deferred": None,        # why install_for_cli() left this process unguarded
    "environment": None,
    "seccomp": {"active": False, "detail": "not installed"},
    "audit_hook": {"active": False},
    "inherited_sockets": [],
    "loaded_before": [],
    "audit_log": None,
}
_LOAD_AFTER = ("numpy", "wgpu", "sentencepiece", "pypdf", "cffi", "_cffi_backend", "rich",
               "urllib.request", "http.client", "requests", "urllib3", "httpx", "aiohttp")
_ATTEMPTS = []              # dicts, in order; appended by the hook (list.append is atomic)
_REPORTED = [0]             # how many attempts the CLI has already turned into an exit
_FINAL = [False]            # set once the exit check has run: later attempts exit at once


# --- recording ---------------------------------------------------------------------------------

def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_log_line(path, attempt):
    # O_APPEND: one write per line, so concurrent attempts do not interleave within a line.
    line = json.dumps(attempt, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _record(layer, event, what):
    attempt = {"time": _now(), "pid": os.getpid(), "layer": layer, "event": event,
               "what": what[:300]}
    _ATTEMPTS.append(attempt)
    path = _STATE["audit_log"]
    if path:
        try:
            _write_log_line(path, attempt)
        except OSError:
            pass  # the refusal itself still stands and is reported on stderr
    return attempt


def set_audit_log(path):
    """Append every blocked attempt to ``path`` as a JSON line (also those recorded so far)."""
    from docassist.errors import InputError
    path = os.path.abspath(os.fspath(path))  # later chdir must not move the log
    try:  # fail now, on the command line's terms, rather than silently at the first attempt
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        for attempt in list(_ATTEMPTS):
            _write_log_line(path, attempt)
    except OSError as err:
        raise InputError(f"cannot write the audit log {path}: {err.strerror}") from None
    _STATE["audit_log"] = path


def attempts():
    """The blocked attempts so far (copies)."""
    return [dict(a) for a in _ATTEMPTS]


def _message(first, count):
    more = f" (and {count - 1} more attempt{'s' if count > 2 else ''})" if count > 1 else ""
    return (f"the privacy guard blocked {first['what']} [{first['event']}]{more}; "
            "documents never leave this machine")


def blocked_error():
    """A NetworkBlocked describing the attempts not yet reported, or None; marks them reported."""
    count = len(_ATTEMPTS)
    if count <= _REPORTED[0]:
        return None
    first = _ATTEMPTS[_REPORTED[0]]
    err = NetworkBlocked(_message(first, count - _REPORTED[0]))
    _REPORTED[0] = count
    return err


def _exit_if_blocked():
    # Registered before anything else, so atexit runs it last: attempts made by other exit
    # handlers are seen. os._exit because the exit status is otherwise already decided.
    err = blocked_error()
    if err is None:
        _FINAL[0] = True  # from now on the hook itself ends the process (see _make_hook)
        return
    _report_and_exit(err)


def _report_and_exit(err):
    try:
        sys.stdout.flush()
    except Exception:
        pass
    try:
        sys.stderr.write(f"docassist: error: {err}\n")
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(err.exit_code)


# --- layer 1: environment ----------------------------------------------------------------------

def _scrub_environment():
    cleared = []
    for name in PROXY_VARIABLES:
        for variant in (name, name.upper()):
            if variant in os.environ:
                del os.environ[variant]
                cleared.append(variant)
    for name, value in OFFLINE_VARIABLES.items():
        os.environ[name] = value
    return {"active": True, "cleared": cleared, "set": dict(OFFLINE_VARIABLES)}


# --- layer 2: seccomp --------------------------------------------------------------------------

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# Per ABI: system calls whose first argument is an address family, and system calls refused.
_ABIS = {
    "x86_64": {"arch": AUDIT_ARCH_X86_64, "seccomp": 317, "family": (41, 53),
               # io_uring_setup/enter/register, ptrace, process_vm_readv/writev, pidfd_getfd
               "deny": (425, 426, 427, 101, 310, 311, 438)},
    "i386": {"arch": AUDIT_ARCH_I386, "family": (359, 360),
             "deny": (425, 426, 427, 26, 347, 348, 438),
             "deny_eacces": (102,)},  # socketcall: arguments behind a pointer, refuse it all
    "aarch64": {"arch": AUDIT_ARCH_AARCH64, "seccomp": 277, "family": (198, 199),
                "deny": (425, 426, 427, 117, 270, 271, 438)},
}
_ALLOWED_FAMILIES = (getattr(socket, "AF_UNIX", 1), 16)  # 16 = AF_NETLINK; both absent on Windows

EPERM, EACCES = 1, 13
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2

# Classic BPF opcodes used below.
_LD_W_ABS = 0x20   # A = *(u32 *)(seccomp_data + k)
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_OFF_NR, _OFF_ARCH, _OFF_ARG0_LOW = 0, 4, 16  # args[0] low word (little-endian hosts)


def _assemble(program):
    """Resolve labels: ``program`` holds ("label", name), ("ld", off), ("ret", k) and
    ("jeq"/"jge", k, true_label, false_label_or_None). Returns [(code, jt, jf, k)]."""
    labels, flat = {}, []
    for ins in program:
        if ins[0] == "label":
            labels[ins[1]] = len(flat)
        else:
            flat.append(ins)
    out = []
    for i, ins in enumerate(flat):
        if ins[0] == "ld":
            out.append((_LD_W_ABS, 0, 0, ins[1]))
        elif ins[0] == "ret":
            out.append((_RET_K, 0, 0, ins[1]))
        else:
            op, k, t, f = ins
            jt = labels[t] - i - 1 if t else 0
            jf = labels[f] - i - 1 if f else 0
            if not (0 <= jt < 256 and 0 <= jf < 256):
                raise ValueError("BPF jump out of range")
            out.append((_JEQ_K if op == "jeq" else _JGE_K, jt, jf, k))
    return out


def build_filter(native):
    """The seccomp program for the ``native`` ABI (a key of _ABIS), as (code, jt, jf, k) tuples."""
    abis = [native] + (["i386"] if native == "x86_64" else [])
    prog = [("ld", _OFF_ARCH)]
    for name in abis:
        prog.append(("jeq", _ABIS[name]["arch"], "abi_" + name, None))
    prog.append(("ret", SECCOMP_RET_ERRNO | EPERM))          # an ABI we do not know: refuse all
    for name in abis:
        abi = _ABIS[name]
        prog += [("label", "abi_" + name), ("ld", _OFF_NR)]
        if name == "x86_64":
            prog.append(("jge", X32_SYSCALL_BIT, "deny_eperm", None))  # x32 calls, same arch
        for nr in abi["family"]:
            prog.append(("jeq", nr, "check_family", None))
        for nr in abi.get("deny_eacces", ()):
            prog.append(("jeq", nr, "deny_eacces", None))
        for nr in abi["deny"]:
            prog.append(("jeq", nr, "deny_eperm", None))
        prog.append(("ret", SECCOMP_RET_ALLOW))
    prog += [("label", "check_family"), ("ld", _OFF_ARG0_LOW)]
    for fam in _ALLOWED_FAMILIES:
        prog.append(("jeq", fam, "allow", None))
    prog += [("label", "deny_eacces"), ("ret", SECCOMP_RET_ERRNO | EACCES),
             ("label", "deny_eperm"), ("ret", SECCOMP_RET_ERRNO | EPERM),
             ("label", "allow"), ("ret", SECCOMP_RET_ALLOW)]
    return _assemble(prog)


def _native_abi():
    machine = os.uname().machine if hasattr(os, "uname") else ""
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
            "arm64": "aarch64"}.get(machine.lower())


def _fprog(insns):
    """struct sock_fprog {unsigned short len; struct sock_filter *filter;} over ``insns``; the
    array is kept alive on the returned object."""
    import ctypes

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    array = (SockFilter * len(insns))(*[SockFilter(*i) for i in insns])
    fprog = SockFprog(len(insns), array)
    fprog._keep = array
    return fprog


def _install_seccomp():
    """Install the kernel filter; returns the layer's status dict. Never raises."""
    if not sys.platform.startswith("linux"):
        return {"active": False, "detail": f"not available on {sys.platform} (Linux only)"}
    abi = _native_abi()
    if abi is None or sys.byteorder != "little":
        return {"active": False, "detail": f"no filter for this CPU ({os.uname().machine})"}
    import ctypes

    insns = build_filter(abi)
    fprog = _fprog(insns)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.restype = ctypes.c_int
    libc.syscall.restype = ctypes.c_long
    ul = ctypes.c_ulong
    if libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ul(1), ul(0), ul(0), ul(0)) != 0:
        err = ctypes.get_errno()
        return {"active": False,
                "detail": f"prctl(PR_SET_NO_NEW_PRIVS) refused: {os.strerror(err)}"}
    flags_used = None
    for flags, names in ((SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG, "TSYNC|LOG"),
                         (SECCOMP_FILTER_FLAG_TSYNC, "TSYNC")):
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(_ABIS[abi]["seccomp"]),
                          ctypes.c_long(SECCOMP_SET_MODE_FILTER), ctypes.c_long(flags),
                          ctypes.byref(fprog))
        if rc == 0:
            flags_used = names
            break
        err = ctypes.get_errno()
        if rc > 0:  # TSYNC: the id of a thread that could not be synchronised
            return {"active": False, "detail": f"thread {rc} could not take the filter (TSYNC)"}
        if err == 38:  # ENOSYS: a kernel before seccomp() (3.17); prctl has no TSYNC
            flags_used = _load_filter_prctl(libc, fprog)
            if flags_used is None:
                return {"active": False, "detail": "seccomp() missing and the prctl fallback "
                                                   "refused (or other threads already run)"}
            break
        if err != 22:  # EINVAL: flag unknown to this kernel, try without LOG
            return {"active": False, "detail": f"seccomp() refused: {os.strerror(err)}"}
    if flags_used is None:
        return {"active": False, "detail": "seccomp() refused the filter flags (kernel too old)"}
    # Self-test: the kernel must now refuse an internet socket.
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except PermissionError:
        pass
    else:
        s.close()
        return {"active": False, "detail": "filter installed but socket(AF_INET) still works"}
    return {"active": True, "abi": abi, "flags": flags_used, "instructions": len(insns),
            "detail": f"seccomp filter on every thread and child ({abi}, {flags_used})",
            "refuses": "socket()/socketpair() except AF_UNIX and AF_NETLINK (EACCES); io_uring, "
                       "ptrace, process_vm_*, pidfd_getfd, x32 and unknown ABIs (EPERM)"
                       + ("; i386 socketcall (EACCES)" if abi == "x86_64" else "")}


def _load_filter_prctl(libc, fprog):
    """Old kernels: prctl(PR_SET_SECCOMP) binds only the calling thread, so it is used only
    while this process has a single thread (/proc/self/task); threads created later inherit it."""
    import ctypes
    try:
        if len(os.listdir("/proc/self/task")) != 1:
            return None
    except OSError:
        return None
    ul = ctypes.c_ulong
    rc = libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ul(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                    ul(0), ul(0))
    return "prctl, single thread" if rc == 0 else None


def kernel_filter_state():
    """What /proc says about this process's seccomp state (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            lines = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    return {"mode": lines.get("Seccomp", "").strip(),
            "filters": lines.get("Seccomp_filters", "").strip(),
            "no_new_privs": lines.get("NoNewPrivs", "").strip()}


# --- inherited internet sockets ----------------------------------------------------------------

def _neutralize_inherited_sockets():
    """An internet socket handed to us (e.g. stdout redirected to /dev/tcp/...) would carry
    output off the machine without any socket() call: replace it with /dev/null and record it."""
    found = []
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return found
    for fd in fds:
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=os.dup(fd))
            family = s.family
            s.close()
        except OSError:
            continue
        if family in _ALLOWED_FAMILIES:
            continue
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, fd)
        os.close(devnull)
        name = getattr(family, "name", str(family))
        found.append({"fd": fd, "family": name})
        _record("startup", "inherited-socket", f"an inherited {name} socket on fd {fd}")
    return found


# --- layer 3: the audit hook -------------------------------------------------------------------

def _library_allowed(name):
    if name is None:  # dlopen(NULL): the process itself; symbol look-ups are checked instead
        return True
    path = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    if _NUMPY_DIR.search(path):
        return True
    base = os.path.basename(path)
    return any(re.search(p, base) for p in ALLOWED_LIBRARY_PATTERNS)


def _denied_addresses():
    """Addresses of the denied libc functions, so a ctypes call through a raw pointer is caught."""
    try:
        import ctypes
        libc = ctypes.CDLL(None)
    except (ImportError, OSError):
        return frozenset()
    out = set()
    for name in DENIED_SYMBOLS:
        try:
            out.add(ctypes.cast(getattr(libc, name), ctypes.c_void_p).value)
        except AttributeError:
            pass
    out.discard(None)
    return frozenset(out)


def _family_name(family):
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return f"address family {family}"


def _describe_socket(family):
    name = _family_name(family)
    if name in ("AF_INET", "AF_INET6"):
        return f"an internet socket ({name})"
    if name == "AF_PACKET":
        return "a raw packet socket (AF_PACKET)"
    return f"a socket of family {name}"


def _fmt_address(addr):
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return repr(addr)


def _make_hook(denied_addresses):
    """The hook is a closure over everything it needs, so nothing reachable from the module
    (or interpreter shutdown clearing globals) can switch it off."""
    af_unix = _ALLOWED_FAMILIES[0]
    allowed_families = _ALLOWED_FAMILIES
    denied_symbols = DENIED_SYMBOLS
    library_allowed = _library_allowed
    record, describe_socket, fmt = _record, _describe_socket, _fmt_address
    blocked = NetworkBlocked
    final, report_and_exit, pending_error = _FINAL, _report_and_exit, blocked_error

    def sock_family(sock):
        try:
            return sock.family
        except Exception:
            return None

    def check(event, args):
        """None if allowed, else a short description of the attempt."""
        if event == "socket.__new__":
            family = args[1]
            if family == af_unix:
                return None
            if family == -1:  # socket.socket() without a family creates AF_INET
                return "an internet socket (AF_INET)"
            return describe_socket(family)
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"):
            if sock_family(args[0]) in allowed_families:
                return None
            verb = {"socket.connect": "a connection to", "socket.bind": "binding to"}.get(
                event, "sending to")
            return f"{verb} {fmt(args[1])}"
        if event == "socket.getaddrinfo":
            return f"an address look-up of {args[0]!r}"
        if event in ("socket.gethostbyname", "socket.gethostbyaddr"):
            return f"a DNS look-up of {args[0]!r}"
        if event == "socket.getnameinfo":
            return f"a reverse look-up of {fmt(args[0])}"
        if event == "urllib.Request":
            return f"opening the URL {str(args[0])[:200]}"
        if event in ("http.client.connect", "ftplib.connect", "smtplib.connect", "poplib.connect",
                     "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open"):
            return f"a connection to {args[1]}:{args[2]}"
        if event == "webbrowser.open":
            return f"opening a web browser on {str(args[0])[:200]}"
        if event == "subprocess.Popen":
            return f"starting a process {str(args[1])[:200]}"
        if event == "os.system":
            return f"running a shell command {str(args[0])[:200]!r}"
        if event in ("os.exec", "os.posix_spawn", "os.spawn"):
            return f"starting a process {str(args[0] if event != 'os.spawn' else args[1])[:200]}"
        if event in ("os.fork", "os.forkpty"):
            return "forking a process"
        if event == "os.startfile":
            return f"opening {args[0]!r} in another program"
        if event == "docassist.guard.fork_exec":
            return f"starting a process {str(args[0])[:200]} (fork_exec)"
        if event == "cpython.PyInterpreterState_New":
            return "creating a sub-interpreter (it would start without this guard)"
        if event in ("ctypes.dlopen", "cffi.dlopen"):
            if library_allowed(args[0]):
                return None
            return f"loading the native library {args[0]!r}"
        if event == "ctypes.dlsym":
            name = args[1]
            if isinstance(name, bytes):
                name = name.decode("ascii", "replace")
            if name in denied_symbols:
                return f"looking up the native function {name}()"
            return None
        if event == "ctypes.call_function":
            # Only ctypes' private call helper raises this; an ordinary call through a raw
            # function pointer raises no event at all, and only the kernel layer stops it.
            if args[0] in denied_addresses:
                return "calling a denied native function through a raw pointer"
            return None
        return None

    watched = frozenset("""
        socket.__new__ socket.connect socket.sendto socket.sendmsg socket.bind socket.getaddrinfo
        socket.gethostbyname socket.gethostbyaddr socket.getnameinfo urllib.Request
        http.client.connect ftplib.connect smtplib.connect poplib.connect imaplib.open
        nntplib.connect telnetlib.Telnet.open webbrowser.open subprocess.Popen os.system os.exec
        os.posix_spawn os.spawn os.fork os.forkpty os.startfile docassist.guard.fork_exec
        cpython.PyInterpreterState_New ctypes.dlopen cffi.dlopen ctypes.dlsym ctypes.call_function
    """.split())

    def hook(event, args):
        if event not in watched:  # the common path: one set look-up per audit event
            return
        what = check(event, args)
        if what is not None:
            record("audit-hook", event, what)
            if final[0]:  # interpreter shutdown, after the exit check: nobody else will report
                report_and_exit(pending_error())
            raise blocked(f"the privacy guard blocked {what} [{event}]")

    return hook


def _patch_fork_exec():
    """multiprocessing (spawn, forkserver) starts children through _posixsubprocess.fork_exec,
    which raises no audit event of its own on this Python: give it one."""
    try:
        import _posixsubprocess
    except ImportError:
        return False
    original = _posixsubprocess.fork_exec
    audit = sys.audit

    def fork_exec(*args, **kwargs):
        audit("docassist.guard.fork_exec", args[0] if args else None)
        return original(*args, **kwargs)

    _posixsubprocess.fork_exec = fork_exec
    return True


class _CffiLoaderFinder:
    """cffi's dlopen raises no audit event. When ``_cffi_backend`` is imported, wrap its
    ``load_library`` (what ``FFI.dlopen`` calls) so that it raises ``cffi.dlopen``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "_cffi_backend":
            return None
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        inner = spec.loader

        class Loader:
            def create_module(self, spec):
                return inner.create_module(spec)

            def exec_module(self, module):
                inner.exec_module(module)
                _wrap_cffi(module)

        spec.loader = Loader()
        return spec


def _wrap_cffi(module):
    original = getattr(module, "load_library", None)
    if original is None or getattr(original, "_docassist_guarded", False):
        return
    audit = sys.audit

    def load_library(name, flags=0, *rest):
        audit("cffi.dlopen", name)
        return original(name, flags, *rest)

    load_library._docassist_guarded = True
    module.load_library = load_library


def _install_cffi_wrapper():
    if "_cffi_backend" in sys.modules:
        _wrap_cffi(sys.modules["_cffi_backend"])
    sys.meta_path.insert(0, _CffiLoaderFinder())


# --- public entry points -----------------------------------------------------------------------

def install():
    """Install every layer available here. Idempotent; nothing can uninstall it.
    Returns status()."""
    with _LOCK:
        if _STATE["installed"]:
            return status()
        # Libraries that should only ever load under the guard; any here loaded before it.
        _STATE["loaded_before"] = sorted(m for m in _LOAD_AFTER if m in sys.modules)
        _STATE["environment"] = _scrub_environment()
        _STATE["seccomp"] = _install_seccomp()
        if sys.platform.startswith("linux"):
            _STATE["inherited_sockets"] = _neutralize_inherited_sockets()
        _STATE["audit_hook"] = _install_audit_hook()
        _STATE["installed"] = True
        _STATE["deferred"] = None
    return status()


def _install_audit_hook():
    """The in-process layer alone (install() calls it; the guard's tests also probe it alone)."""
    atexit.register(_exit_if_blocked)  # registered before any library can: atexit runs it last
    denied = _denied_addresses()
    fork_exec = _patch_fork_exec()
    _install_cffi_wrapper()
    sys.addaudithook(_make_hook(denied))
    return {
        "active": True,
        "refuses": "internet sockets (AF_INET, AF_INET6, AF_PACKET, ...; AF_UNIX allowed), "
                   "DNS look-ups, sendto/sendmsg, URL openers, process creation (subprocess, "
                   "os.system, exec*, posix_spawn, fork, multiprocessing), webbrowser, "
                   "sub-interpreters, native libraries outside the allow-list (ctypes, cffi), "
                   "denied libc functions through ctypes",
        "allowed_libraries": list(ALLOWED_LIBRARY_PATTERNS) + ["numpy's own libraries"],
        "multiprocessing_covered": fork_exec,
    }


def _test_runner_owns_process():
    # Only an import of pytest itself counts: nothing a document or an environment variable
    # holds can make this true, and the guard's tests run the CLI in child processes.
    return "_pytest" in sys.modules


def install_for_cli():
    """What the CLI calls at import: install(), except inside a pytest process (see module doc)."""
    if not _STATE["installed"] and _test_runner_owns_process():
        _STATE["deferred"] = "the test runner (pytest) owns this process; its tests run the " \
                             "CLI in guarded child processes"
        return status()
    return install()


def status():
    """Which layers are active, what they refuse, and the attempts blocked so far."""
    seccomp = dict(_STATE["seccomp"])
    out = {
        "installed": _STATE["installed"],
        "deferred": _STATE["deferred"],
        "layers": {
            "environment": _STATE["environment"] or {"active": False},
            "kernel_seccomp": seccomp,
            "audit_hook": dict(_STATE["audit_hook"]),
        },
        "kernel_state": kernel_filter_state(),
        "inherited_sockets_closed": list(_STATE["inherited_sockets"]),
        "loaded_before_guard": list(_STATE["loaded_before"]),
        "blocked_attempts": attempts(),
        "audit_log": _STATE["audit_log"],
    }
    if not seccomp.get("active"):
        out["alternatives"] = list(ADMIN_ALTERNATIVES)
    return out


# --- doctor ------------------------------------------------------------------------------------

def gpu_report():
    """The engine's adapter report, or why there is none. Never raises."""
    from docassist.errors import DocassistError
    try:
        from docassist.engine.gpu import adapter_report
    except ImportError:
        return {"status": "unknown (engine not available)"}
    try:
        return dict(adapter_report())
    except DocassistError as err:
        return {"status": "error", "error": str(err), "exit_code": err.exit_code}


def doctor_report():
    return {"guard": status(), "gpu": gpu_report()}


def _render_value(value, indent):
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, list) and v and not any(isinstance(x, (dict, list)) for x in v):
                lines.append(f"{pad}{k}: {', '.join(str(x) for x in v)}")
            elif isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines += _render_value(v, indent + 1)
            else:
                lines.append(f"{pad}{k}: {v if v not in (None, [], {}) else '-'}")
        return lines
    if isinstance(value, list):
        lines = []
        for v in value:
            if isinstance(v, dict):
                lines.append(f"{pad}- " + ", ".join(f"{k}={x}" for k, x in v.items()))
            else:
                lines.append(f"{pad}- {v}")
        return lines
    return [f"{pad}{value}"]


def render_doctor(report):
    """Plain text lines for ``docassist doctor``."""
    g = report["guard"]
    lines = ["Privacy guard"]
    if g["deferred"]:
        lines.append(f"  NOT INSTALLED in this process: {g['deferred']}")
    layers = g["layers"]
    env = layers["environment"]
    lines.append("  environment: " + ("active: proxy variables cleared "
                                      f"({', '.join(env['cleared']) or 'none were set'}), "
                                      "hub/telemetry variables set offline"
                                      if env.get("active") else "not active"))
    k = layers["kernel_seccomp"]
    lines.append("  kernel filter (seccomp): " + ("active: " + k["detail"] if k.get("active")
                                                  else "NOT active: " + k.get("detail", "")))
    if k.get("active"):
        lines.append(f"    refuses: {k['refuses']}")
    ks = g["kernel_state"]
    if ks:
        lines.append(f"    /proc/self/status: Seccomp={ks['mode']} filters={ks['filters']} "
                     f"NoNewPrivs={ks['no_new_privs']}")
    a = layers["audit_hook"]
    lines.append("  in-process audit hook: " + ("active" if a.get("active") else "NOT active"))
    if a.get("active"):
        lines.append(f"    refuses: {a['refuses']}")
        lines.append(f"    native libraries allowed: {', '.join(a['allowed_libraries'])}")
    if g.get("alternatives"):
        lines.append("  Without the kernel layer, an administrator can still cut the network:")
        lines += [f"    - {alt}" for alt in g["alternatives"]]
    if g["inherited_sockets_closed"]:
        lines.append("  inherited internet sockets replaced by /dev/null:")
        lines += _render_value(g["inherited_sockets_closed"], 2)
    if g["loaded_before_guard"]:
        lines.append("  WARNING: loaded before the guard: " + ", ".join(g["loaded_before_guard"]))
    lines.append(f"  blocked attempts: {len(g['blocked_attempts']) or 'none'}")
    gpu = report["gpu"]
    if gpu.get("status") == "unknown (engine not available)":
        lines.append("GPU: unknown (engine not available)")
    else:
        lines.append("GPU")
        lines += _render_value(gpu, 1)
    return lines
