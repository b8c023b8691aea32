"""Config file, model registry and model choice; `docassist models ...` through the CLI."""
import json
import shutil

import pytest
from click.testing import CliRunner

from docassist import config
from docassist.cli import cli
from docassist.errors import EXIT_INPUT, EXIT_MODEL, InputError, ModelError


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("DOCASSIST_HOME", str(h))
    monkeypatch.delenv("DOCASSIST_MODEL", raising=False)
    monkeypatch.delenv("DOCASSIST_PROMPTS", raising=False)
    return h


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_add_records_file_facts_and_first_is_default(home, stories260k):
    r = run("models", "add", str(stories260k), "--name", "tiny", "--json")
    assert r.exit_code == 0, r.output
    e = json.loads(r.stdout)
    assert e["name"] == "tiny" and e["default"] is True
    assert e["size"] == stories260k.stat().st_size
    assert e["sha256"] == config.sha256_file(stories260k)
    assert (e["architecture"], e["quantization"], e["context_length"]) == ("llama", "F32", 512)
    saved = json.loads((home / "models.json").read_text())
    assert saved["default"] == "tiny" and saved["models"]["tiny"]["path"] == str(stories260k.resolve())


def test_list_info_default_remove(home, stories260k):
    assert run("models", "add", str(stories260k)).exit_code == 0
    assert run("models", "add", str(stories260k), "--name", "second").exit_code == 0
    listed = json.loads(run("models", "list", "--json").stdout)
    assert listed["default"] == "stories260K"
    assert [m["name"] for m in listed["models"]] == ["second", "stories260K"]
    assert run("models", "default", "second").exit_code == 0
    assert "(default)" in run("models", "info", "second").stdout
    plain = run("models", "list").stdout.splitlines()
    assert any(line.startswith("*") and "second" in line for line in plain)
    r = run("models", "remove", "second")
    assert r.exit_code == 0 and "removed second" in r.stdout
    assert config.Registry().default == "stories260K"  # the default moves to what is left
    assert stories260k.exists()  # the file itself is never touched


def test_duplicate_name_and_unknown_name(home, stories260k):
    assert run("models", "add", str(stories260k)).exit_code == 0
    r = run("models", "add", str(stories260k))
    assert r.exit_code == EXIT_MODEL and "already registered" in r.stderr
    r = run("models", "info", "nope")
    assert r.exit_code == EXIT_MODEL and "no model named 'nope'" in r.stderr
    assert "Traceback" not in r.output


def test_add_refuses_old_truncated_and_non_gguf(home, shared_models, tmp_path):
    r = run("models", "add", str(shared_models / "stories260K" / "stories260K.ggufv1.gguf"))
    assert r.exit_code == EXIT_MODEL and "version 1" in r.stderr
    cut = tmp_path / "cut.gguf"
    cut.write_bytes((shared_models / "stories260K" / "stories260K.gguf").read_bytes()[:600_000])
    r = run("models", "add", str(cut))
    assert r.exit_code == EXIT_MODEL and "truncated" in r.stderr
    txt = tmp_path / "notes.gguf"
    txt.write_text("hello")
    r = run("models", "add", str(txt))
    assert r.exit_code == EXIT_MODEL and "not a GGUF" in r.stderr
    assert not (home / "models.json").exists()  # nothing recorded for a bad file


def test_resolution_order(home, stories260k, tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="docassist models add PATH"):
        config.resolve_model(None)
    other = tmp_path / "other.gguf"
    shutil.copyfile(stories260k, other)
    reg = config.Registry()
    reg.add(stories260k, "tiny")
    reg.add(other, "other")
    assert config.resolve_model(None) == stories260k.resolve()            # registry default
    (home / "config.toml").write_text('model = "other"\n')
    assert config.resolve_model(None) == other.resolve()                 # config file
    monkeypatch.setenv("DOCASSIST_MODEL", "tiny")
    assert config.resolve_model(None) == stories260k.resolve()           # environment
    assert config.resolve_model("other") == other.resolve()              # --model NAME
    assert config.resolve_model(str(other)) == other.resolve()           # --model PATH
    with pytest.raises(ModelError, match="neither a registered model"):
        config.resolve_model("missing-model")
    other.unlink()
    with pytest.raises(ModelError, match="file is gone"):
        config.resolve_model("other")


def test_no_model_is_one_clear_line(home, tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("Some text about harbors.\n")
    for args in (["summarize", str(doc)], ["ask", str(doc), "What?"], ["chat"]):
        r = run(*args)
        assert r.exit_code == EXIT_MODEL, r.output
        assert r.stderr.strip().splitlines()[-1] == \
            "docassist: error: no model configured; add one with `docassist models add PATH`"


def test_config_file_defaults_and_errors(home):
    assert config.load_config()["length"] == "medium"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('length = "short"\nstyle = "paragraph"\n'
                                      'password_prompt = false\n')
    cfg = config.load_config()
    assert (cfg["length"], cfg["style"], cfg["password_prompt"]) == ("short", "paragraph", False)
    (home / "config.toml").write_text('lenght = "short"\n')
    with pytest.raises(InputError, match="unknown key 'lenght'"):
        config.load_config()
    (home / "config.toml").write_text('length = "huge"\n')
    with pytest.raises(InputError, match="length must be one of"):
        config.load_config()
    (home / "config.toml").write_text('kv_cache = "q4"\n')
    with pytest.raises(InputError, match="kv_cache must be one of auto, f16, q8_0"):
        config.load_config()
    (home / "config.toml").write_text('length = \n')
    r = run("summarize", "x.txt")
    assert r.exit_code == EXIT_INPUT and "config file" in r.stderr


def test_write_atomic_leaves_no_temp(tmp_path):
    p = tmp_path / "d" / "f.json"
    config.write_atomic(p, "one")
    config.write_atomic(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in p.parent.iterdir()] == ["f.json"]


def test_config_kv_cache_reaches_the_engine(home, monkeypatch):
    # kv_cache = "q8_0" in the config file: the task commands load the model with that cache
    from docassist import engine
    from docassist.tasks import common

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('kv_cache = "q8_0"\n')
    seen = {}

    class Loaded:
        name, context_length = "m", 64

    def fake_load(path, **kw):
        seen.update(kw)
        return Loaded()

    monkeypatch.setattr(engine, "load_model", fake_load)
    model = home / "m.gguf"
    model.write_bytes(b"GGUF")
    common.load_model(str(model), config.load_config())
    assert seen["kv_dtype"] == "q8_0"
