"""The GGUF reader: metadata and tensors of real files, and one clear error for every bad file."""
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from docassist.engine import load_model
from docassist.engine.gguf import read_gguf, write_gguf
from docassist.engine.quants import GGMLType as T
from docassist.errors import ModelError
from tiny_models import write_tiny_model


def test_reads_stories_metadata_and_tensors(stories260k):
    with read_gguf(stories260k) as g:
        assert g.version == 3
        assert g.metadata["general.architecture"] == "llama"
        assert g.metadata["llama.embedding_length"] == 64
        assert len(g.metadata["tokenizer.ggml.tokens"]) == 512
        t = g.tensors["blk.0.ffn_down.weight"]
        assert t.shape == (172, 64) and t.ggml_type == T.F32
        data = g.data("blk.0.ffn_down.weight")
        assert data.nbytes == 172 * 64 * 4 and not data.flags.writeable


def test_gguf_gguf_package_agrees(stories260k):
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(str(stories260k))
    with read_gguf(stories260k) as g:
        for t in r.tensors:
            ours = g.data(t.name)
            assert np.array_equal(np.asarray(t.data).reshape(-1).view(np.uint8), ours), t.name


def test_writer_round_trip_v2_and_v3(tmp_path):
    meta = {"general.architecture": "llama", "a.u32": 7, "a.f": 0.5, "a.s": "héllo", "a.b": True,
            "a.strs": ["x", "yé", ""], "a.ints": [1, -2, 3], "a.floats": np.array([1.5, 2.5], np.float32)}
    w = np.arange(12, dtype=np.float32)
    for v in (2, 3):
        p = write_gguf(tmp_path / f"v{v}.gguf", meta, [("w", T.F32, (4, 3), w.view(np.uint8))], version=v)
        with read_gguf(p) as g:
            assert g.version == v
            assert g.metadata["a.s"] == "héllo" and g.metadata["a.strs"] == ["x", "yé", ""]
            assert list(g.metadata["a.ints"]) == [1, -2, 3] and g.metadata["a.b"] is True
            assert np.array_equal(g.data("w").view(np.float32), w)


def test_v1_file_is_refused_clearly(shared_models):
    with pytest.raises(ModelError, match="unsupported GGUF version 1"):
        read_gguf(shared_models / "stories260K" / "stories260K.ggufv1.gguf")


def test_truncated_file(tmp_path, stories260k):
    p = tmp_path / "cut.gguf"
    data = stories260k.read_bytes()
    for n in (len(data) - 1000, 5000, 30):
        p.write_bytes(data[:n])
        with pytest.raises(ModelError, match="truncated|corrupt|not a GGUF|too short"):
            read_gguf(p)


def test_not_gguf_and_missing(tmp_path, shared_models):
    with pytest.raises(ModelError, match="not a GGUF model file.*llama2.c"):
        read_gguf(shared_models / "stories260K" / "stories260K.bin")
    (tmp_path / "x.gguf").write_bytes(b"hello world, not a model at all" * 3)
    with pytest.raises(ModelError, match="not a GGUF"):
        read_gguf(tmp_path / "x.gguf")
    with pytest.raises(ModelError, match="not found"):
        read_gguf(tmp_path / "missing.gguf")
    with pytest.raises(ModelError, match="directory"):
        read_gguf(tmp_path)


def test_wrong_architecture_and_unsupported_type(tmp_path, shared_models):
    p = write_tiny_model(tmp_path / "m.gguf")
    with read_gguf(p) as g:
        meta = dict(g.metadata)
        tensors = [(t.name, t.ggml_type, t.shape, np.array(g.data(t.name))) for t in g.tensors.values()]
    meta["general.architecture"] = "gpt2"
    write_gguf(tmp_path / "gpt2.gguf", meta, tensors)
    with pytest.raises(ModelError, match="unsupported architecture 'gpt2'"):
        load_model(tmp_path / "gpt2.gguf")
    meta["general.architecture"] = "llama"
    # an IQ2_XXS tensor (66 bytes per 256 weights): named in the error with its tensor
    bad = [(n, t, s, r) if n != "blk.0.ffn_up.weight" else (n, T.IQ2_XXS, (256, 4), np.zeros(4 * 66, np.uint8))
           for n, t, s, r in tensors]
    write_gguf(tmp_path / "iq.gguf", meta, bad)
    with pytest.raises(ModelError, match="IQ2_XXS") as e:
        load_model(tmp_path / "iq.gguf")
    assert "blk.0.ffn_up.weight" in str(e.value)


def test_cli_generate_and_errors(tmp_path, stories260k, shared_models):
    from docassist.cli import cli
    r = CliRunner().invoke(cli, ["generate", "--model", str(stories260k), "Once upon a time", "-n", "12"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(",") or r.output.startswith(" "), r.output
    v1 = shared_models / "stories260K" / "stories260K.ggufv1.gguf"
    r = CliRunner().invoke(cli, ["generate", "--model", str(v1), "x"])
    assert r.exit_code == 6 and "unsupported GGUF version 1" in r.output and "Traceback" not in r.output
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(stories260k.read_bytes()[:-500])
    r = CliRunner().invoke(cli, ["generate", "--model", str(cut), "x"])
    assert r.exit_code == 6 and "truncated" in r.output
