"""The tool never needs the network: commands run in an empty network namespace, and no HTTP
client library is ever loaded.

To add a command: one entry in COMMANDS (its arguments, built from the fixture paths). A command
the CLI does not have (yet) is skipped, not failed.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from probes.canary import ROOT, child_env

# Top-level names (or dotted prefixes) of HTTP and other network client libraries.
NETWORK_CLIENTS = ("requests", "urllib3", "httpx", "httpcore", "aiohttp", "http.client",
                   "urllib.request", "httplib2", "pycurl", "tornado", "websocket", "websockets",
                   "grpc", "ftplib", "smtplib", "poplib", "imaplib", "xmlrpc.client", "socks",
                   "huggingface_hub", "botocore", "boto3", "paramiko", "telnetlib", "webbrowser")

STORY = ("Lily went to the park with her mother. In the park Lily saw a big dog.\n"
         "The dog was happy and Lily played with the dog all day. Call 555-0100.\n")

# name: (argument builder, needs the test model)
COMMANDS = {
    "doctor": (lambda p: ["doctor", "--json"], False),
    "extract": (lambda p: ["extract", p["pdf"]], False),
    "redact": (lambda p: ["redact", "--rules-only", p["txt"]], False),
    "summarize": (lambda p: ["summarize", "--no-cache", "--model", p["model"], "--max-tokens",
                             "8", p["txt"]], True),
    "ask": (lambda p: ["ask", "--model", p["model"], "--max-tokens", "8", p["txt"],
                       "Where did Lily play with the dog?"], True),
}

RUNNER = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
from docassist.cli import cli
from docassist import guard
code = 0
try:
    cli(args, prog_name="docassist")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
with open(out, "w") as f:
    json.dump({"rc": code, "modules": sorted(sys.modules),
               "installed": guard.status()["installed"]}, f)
"""


def network_namespaces():
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("offline")
    (d / "story.txt").write_text(STORY)
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(w=0, text=STORY)
    pdf.output(str(d / "story.pdf"))
    return {"dir": d, "txt": str(d / "story.txt"), "pdf": str(d / "story.pdf")}


def run_command(name, inputs, request, netns):
    from docassist.cli import cli
    if name not in cli.commands:
        pytest.skip(f"the CLI has no `{name}` command yet")
    build, needs_model = COMMANDS[name]
    paths = dict(inputs)
    if needs_model:
        paths["model"] = str(request.getfixturevalue("stories260k"))
    home = inputs["dir"] / f"home-{name}-{netns}"
    env = child_env(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
                    XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"))
    env.pop("DOCASSIST_MODEL", None)
    out = inputs["dir"] / f"result-{name}-{netns}.json"
    argv = [sys.executable, "-c", textwrap.dedent(RUNNER), str(out)] + build(paths)
    if netns:
        argv = ["unshare", "-rn"] + argv
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.exists(), proc.stderr[-2000:]
    result = json.loads(out.read_text())
    result["stderr"] = proc.stderr
    result["exit"] = proc.returncode
    return result


def loaded_clients(modules):
    return sorted(m for m in modules for c in NETWORK_CLIENTS if m == c or m.startswith(c + "."))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_runs_offline_without_network_clients(name, inputs, request):
    """Inside ``unshare -rn`` where permitted (else on the host, still checking the modules)."""
    r = run_command(name, inputs, request, netns=network_namespaces())
    assert r["installed"] is True
    assert r["rc"] == 0 and r["exit"] == 0, r["stderr"][-2000:]
    assert loaded_clients(r["modules"]) == []


def test_the_client_list_can_fail():
    # The check above must see a client when one is there.
    r = subprocess.run([sys.executable, "-c", "import sys, urllib.request, json;"
                        "print(json.dumps(sorted(sys.modules)))"], capture_output=True, text=True)
    assert "urllib.request" in loaded_clients(json.loads(r.stdout))


def test_empty_namespace_really_has_no_network():
    # The negative control for the namespace runs: there, even an unguarded connect fails.
    if not network_namespaces():
        pytest.skip("unshare -rn is not permitted here")
    code = ("import socket\ntry:\n socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
            "except OSError as e: print(type(e).__name__)")
    r = subprocess.run(["unshare", "-rn", sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=30)
    assert r.stdout.strip() == "OSError" or r.stdout.strip().endswith("Error"), r.stderr


@pytest.mark.skipif(os.environ.get("DOCASSIST_NETNS_SUITE") != "1",
                    reason="opt-in (minutes): DOCASSIST_NETNS_SUITE=1 runs the whole suite "
                           "under unshare -rn; or run tests/probes/offline_suite.sh")
def test_whole_suite_in_a_network_namespace():
    if not network_namespaces():
        pytest.skip("unshare -rn is not permitted here")
    script = Path(__file__).parent / "probes" / "offline_suite.sh"
    env = child_env(DOCASSIST_NETNS_SUITE="0")
    r = subprocess.run(["sh", str(script), "-q", "-x", "-p", "no:cacheprovider"],
                       capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
