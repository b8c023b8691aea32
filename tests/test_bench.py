"""The engine speed benchmark (benchmarks/bench.py): quant mixes against llama.cpp's rules, the
random model files, and a whole run on a tiny shape through the real GPU path (figures present
and positive; no timing thresholds: speed depends on the machine)."""
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench  # noqa: E402

from docassist.engine.gguf import read_gguf  # noqa: E402
from docassist.engine.quants import GGMLType as T, tensor_nbytes  # noqa: E402
from quantize_helpers import llama_cpp_tensor_type  # noqa: E402

TINY = bench.Shape("tiny", dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn=96, vocab=300, ctx=128)
LLAMA_CPP_FTYPE = {"q4_0_mix": "Q4_0", "q4_k_m": "Q4_K_M", "q8_0": "Q8_0", "f16": "F16"}


@pytest.mark.parametrize("shape", ["110m", "tinyllama", "7b"])
@pytest.mark.parametrize("quant", sorted(LLAMA_CPP_FTYPE))
def test_quant_mixes_follow_llama_cpp(shape, quant):
    s = bench.SHAPES[shape]
    for name, ne in bench.tensor_shapes(s).items():
        assert bench.tensor_type(quant, name, ne, s.n_layers) == \
            llama_cpp_tensor_type(LLAMA_CPP_FTYPE[quant], name, ne, s.n_layers), name


def test_q4_k_m_of_7b_has_the_expected_q6_k_layers():
    s = bench.SHAPES["7b"]
    q6 = sorted(i for i in range(32)
                if bench.tensor_type("q4_k_m", f"blk.{i}.ffn_down.weight", (s.ffn, s.dim), 32) == T.Q6_K)
    assert q6 == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    assert bench.tensor_type("q4_k_m", "blk.5.attn_q.weight", (4096, 4096), 32) == T.Q4_K
    assert bench.tensor_type("q4_k_m", "output.weight", (4096, 32000), 32) == T.Q6_K
    assert bench.tensor_type("q4_0", "output.weight", (4096, 32000), 32) == T.Q4_0


def test_7b_q4_0_size_is_llama_cpp_size():
    # all-Q4_0 Llama-2-7B: 6.74e9 weights at 4.5 bits (+ f32 norms) = 3.53 GiB stored
    s = bench.SHAPES["7b"]
    total = sum(tensor_nbytes(bench.tensor_type("q4_0", n, ne, s.n_layers), ne)
                for n, ne in bench.tensor_shapes(s).items())
    assert abs(total / 2**30 - 3.53) < 0.02


def test_random_model_file_has_the_shape_and_types(tmp_path):
    path, secs = bench.ensure_model(TINY, "q4_k_m", tmp_path)
    assert secs is not None and path.exists()
    assert bench.ensure_model(TINY, "q4_k_m", tmp_path) == (path, None)  # cached
    with read_gguf(path) as g:
        assert g.metadata["llama.embedding_length"] == 64
        assert g.metadata["llama.attention.head_count_kv"] == 2
        assert len(g.metadata["tokenizer.ggml.tokens"]) == 300
        assert g.tensors["blk.1.attn_k.weight"].shape == (64, 32)
        # 64 is not a whole number of 256-element super-blocks: llama.cpp's fallbacks
        assert g.tensors["blk.0.attn_q.weight"].ggml_type == T.Q5_0
        assert g.tensors["output.weight"].ggml_type == T.Q8_0
        assert g.tensors["blk.0.ffn_norm.weight"].ggml_type == T.F32


def _positive(d, *keys):
    for k in keys:
        assert d[k] > 0, (k, d[k])


def test_whole_run_on_a_tiny_shape(tmp_path, capsys):
    path, _ = bench.ensure_model(TINY, "q4_0", tmp_path)
    out = tmp_path / "out.json"
    rc = bench.main(["--model", f"{path},{path}", "--prompt", "8", "--decode", "3", "--contexts", "0,16",
                     "--copy-mib", "1", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "dec@16 t/s" in printed and "copy" in printed
    rec = json.loads(out.read_text())
    for k in ("date", "adapter", "driver", "backend", "features", "command", "wgpu"):
        assert rec[k] not in (None, ""), k
    assert "--decode 3" in rec["command"]
    assert rec["failures"] == []
    _positive(rec["copy_bandwidth"], "bytes", "gb_s", "iterations")
    assert len(rec["results"]) == 2
    r = rec["results"][0]
    _positive(r, "weights_bytes", "largest_tensor_bytes", "weights_read_per_token", "file_bytes")
    assert r["weights_read_per_token"] < r["weights_bytes"]  # one embedding row, not the table
    _positive(r["load"], "load_s", "gpu_allocated", "peak_rss", "context_length")
    _positive(r["prefill"], "tok_s", "seconds")
    assert r["prefill"]["tokens"] == 8
    assert [d["context"] for d in r["decode"]] == [0, 16]
    for d in r["decode"]:
        _positive(d, "tok_s", "bytes_per_token", "effective_gb_s", "fraction_of_copy_bw", "kv_bytes_per_token")
        assert d["steps"] == 3
    # the KV cache read grows with the context
    assert r["decode"][1]["kv_bytes_per_token"] > r["decode"][0]["kv_bytes_per_token"]


def test_prefill_from_a_later_position(tmp_path, capsys):
    # --prompt-at: the prompt starts at a position (a long document's later chunk), the context
    # sized for it, the table says where
    path, _ = bench.ensure_model(TINY, "q4_0", tmp_path)
    out = tmp_path / "out.json"
    rc = bench.main(["--model", str(path), "--prompt", "8", "--prompt-at", "40", "--decode", "2", "--contexts", "0",
                     "--copy-mib", "1", "--ctx-len", "32", "--json", str(out)])
    assert rc == 0
    assert "prefill@40 t/s" in capsys.readouterr().out
    r = json.loads(out.read_text())["results"][0]
    assert r["prefill"]["start"] == 40 and r["prefill"]["tokens"] == 8 and r["prefill"]["tok_s"] > 0
    assert r["load"]["context_length"] >= 48


def test_q8_0_kv_cache_option(tmp_path):
    # --kv q8_0: the model runs with the q8_0 cache and the KV bytes a token reads are counted at
    # 1.125 bytes a value (f16: 2); heads of 32 (a q8_0 cache's blocks)
    path, _ = bench.ensure_model(bench.Shape("tiny32", dim=128, n_layers=2, n_heads=4, n_kv_heads=2, ffn=96, vocab=300,
                                             ctx=128), "q4_0", tmp_path)
    out = {}
    for kv in ("q8_0", "f16"):
        out[kv] = tmp_path / f"{kv}.json"
        assert bench.main(["--model", str(path), "--prompt", "8", "--decode", "2", "--contexts", "32", "--copy-mib",
                           "1", "--kv", kv, "--json", str(out[kv])]) == 0
    r = {kv: json.loads(p.read_text()) for kv, p in out.items()}
    assert r["q8_0"]["settings"]["kv_cache"] == "q8_0"
    kvb = {kv: x["results"][0]["decode"][0]["kv_bytes_per_token"] for kv, x in r.items()}
    assert kvb["q8_0"] * 16 == kvb["f16"] * 9


def test_a_failing_configuration_is_reported_and_the_rest_run(tmp_path):
    good, _ = bench.ensure_model(TINY, "q4_0", tmp_path)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 40)
    rec = bench.run([("broken", bad, None), ("tiny", good, None)], prompt=0, decode=1, contexts=[0],
                    copy_bytes=1 << 20, argv=["bench"], log=lambda *a: None)
    assert [f["config"] for f in rec["failures"]] == ["broken"]
    assert [r["model"] for r in rec["results"]] == ["tiny"]
    assert "prefill" not in rec["results"][0]


def test_bad_arguments_exit_with_one_line():
    with pytest.raises(SystemExit) as e:
        bench.main(["--model", "13b"])
    assert "unknown model" in str(e.value)
    with pytest.raises(SystemExit) as e:
        bench.main(["--quant", "q3_k_s"])
    assert "unknown quant" in str(e.value)


def test_timeout_stops_a_run_that_does_not_finish(tmp_path):
    # a watchdog for kernels that never finish: the run exits 1 with every thread's stack, and the
    # JSON written so far stays (here: a decode far longer than the timeout)
    import subprocess

    path, _ = bench.ensure_model(TINY, "q4_0", tmp_path)
    out = tmp_path / "out.json"
    p = subprocess.run([sys.executable, str(BENCH / "bench.py"), "--model", f"{path}", "--prompt", "0",
                        "--decode", "100000", "--contexts", "0", "--copy-mib", "1", "--json", str(out),
                        "--timeout", "20"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    assert "Timeout" in p.stderr and "File " in p.stderr
    assert json.loads(out.read_text())["copy_bandwidth"]["gb_s"] > 0


def test_decode_breakdown_runs_on_a_tiny_model(tmp_path, capsys, monkeypatch):
    # the per-class cost tool: every class of the step is listed with its dispatch count
    monkeypatch.setenv("DOCASSIST_SPLIT_KEYS", "64")
    sys.path.insert(0, str(BENCH))
    import decode_breakdown
    path = tmp_path / "tiny.gguf"
    bench.write_random_model(path, TINY, "q8_0", seed=1)
    out = tmp_path / "b.json"
    assert decode_breakdown.main([str(path), "--contexts", "0,70", "--steps", "2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for r in res["results"]:
        assert r["step_ms"] > 0
        assert sum(v["dispatches"] for v in r["classes"].values()) == r["dispatches"]
    assert "attn_merge@4" in res["results"][1]["classes"]     # 71 keys: two attention splits of 64
    # a decode step as the pipelined stream runs it: the argmax writes the next input, no lookup
    assert "argmax_embed@1" in res["results"][0]["classes"]
    assert not any(k.startswith("embed@") for k in res["results"][0]["classes"])
    assert "context 70" in capsys.readouterr().out


def test_product_and_peak_benchmarks_run(monkeypatch, tmp_path):
    # the kernel benchmarks (mmq_bench, matvec_bench, attn_bench, peak_rates) on small shapes through the real
    # GPU path: every variant timed, and variants that compute the same thing agree (the
    # comparison a benchmark run relies on to catch a variant that computes something else, on
    # inputs that are not zero)
    import matvec_bench
    import mmq_bench
    import peak_rates

    monkeypatch.setattr(mmq_bench, "SHAPES", [("tiny", 128, 256, False), ("tiny-glu", 128, 256, True)])
    r = mmq_bench.run(["q4_0", "q6_k"], 24, mmq_bench.parse_variants("base:;pf:PF=1,CVT=1;kb:PF=1,KB=1"), reps=1,
                      tn=16)
    assert len(r["results"]) == 12 and all(x["us"] > 0 for x in r["results"])
    assert all(x["max_rel_diff_vs_first"] < 1e-5 and x["max_abs_out"] > 0 for x in r["results"])
    shapes = mmq_bench.parse_shapes("a:64:128:0,b:96:64:1")
    assert shapes == [("a", 64, 128, False), ("b", 96, 64, True)]
    r = mmq_bench.run(["q8_0"], 20, mmq_bench.parse_variants("base:"), reps=1, tn=16, shapes=shapes)
    assert [(x["product"], x["rows"]) for x in r["results"]] == [("a", 64), ("b", 96)]
    monkeypatch.setattr(matvec_bench, "SHAPES", {"tiny": (256, 512, False)})
    monkeypatch.setattr(matvec_bench, "L2_BYTES", 1 << 16)
    r = matvec_bench.run(["tiny:q4_k"], matvec_bench.parse_variants("base:;r2:R=2;bad:SUBS=4"), reps=2)
    assert [x["variant"] for x in r["results"]] == ["base", "r2", "bad"] and all(x["gbs"] > 0 for x in r["results"])
    assert r["results"][0]["max_abs_out"] > 0 and r["results"][1]["max_rel_diff_vs_first"] < 1e-5
    assert r["results"][2]["max_rel_diff_vs_first"] > 1e-2    # Q4_K takes 1 or 2 sub-blocks: 4 is caught
    import attn_bench

    r = attn_bench.run(40, [0, 70], attn_bench.parse_variants("a:entry=prefill,PK=16;b:entry=prefill32,TK=16"),
                       reps=1, nh=4, nkv=2, hd=64)
    assert [(x["position"], x["variant"]) for x in r["results"]] == [(0, "a"), (0, "b"), (70, "a"), (70, "b")]
    assert all(x["us"] > 0 and x["max_abs_out"] > 0 and x["max_rel_diff_vs_first"] < 1e-5 for x in r["results"])
    r = peak_rates.run(workgroups=2, iters=16)
    assert [x["mode"] for x in r["results"]] == ["dot4I8Packed", "fma", "both"]
    assert r["results"][0]["int8_tops"] > 0 and r["results"][1]["f32_tflops"] > 0
    f = peak_rates.float_rates(workgroups=2, iters=16)
    assert [x["mode"] for x in f][:2] == ["f32", "vec4<f32>"] and all(x["tflops"] > 0 for x in f)


def test_cli_bench_measures_a_users_model(tmp_path, stories260k):
    # `docassist bench`: the engine's speed with the user's own model, as text and as JSON; the
    # figures are the benchmark's (pipelined decode, its fraction of the copy-bandwidth bound)
    import json

    from click.testing import CliRunner

    from docassist.cli import cli

    r = CliRunner().invoke(cli, ["bench", "--model", str(stories260k), "--prompt", "16", "--decode", "4",
                                 "--contexts", "0,32"])
    assert r.exit_code == 0, r.output
    out = r.output.splitlines()
    assert [ln.split()[0] for ln in out] == ["adapter", "model", "copy", "load", "prompt", "generate", "generate"]
    assert "from position 0 " in out[5] and "from position 32 " in out[6] and "% of the bound" in out[6]
    r = CliRunner().invoke(cli, ["bench", "--model", str(stories260k), "--prompt", "8", "--decode", "3",
                                 "--contexts", "5", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["prefill"]["tokens"] == 8 and d["prefill"]["tok_s"] > 0 and d["copy_bandwidth"]["gb_s"] > 0
    (dec,) = d["decode"]
    assert dec["context"] == 5 and dec["steps"] == 3 and dec["pipelined_tok_s"] > 0
    assert dec["pipelined_fraction_of_bound"] == pytest.approx(dec["pipelined_tok_s"] / dec["bound_tok_s"])
    assert d["load"]["load_s"] > 0 and d["weights_read_per_token"] > 0


def test_cli_bench_refuses_bad_input(tmp_path, stories260k):
    # bad positions: a usage error (2); a truncated model: the model error (6), one line, no traceback
    from click.testing import CliRunner

    from docassist.cli import cli

    for bad in ("0,-1", "x", ","):
        r = CliRunner().invoke(cli, ["bench", "--model", str(stories260k), "--contexts", bad])
        assert r.exit_code == 2 and "--contexts" in r.output, (bad, r.output)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(stories260k.read_bytes()[:-500])
    r = CliRunner().invoke(cli, ["bench", "--model", str(cut)])
    assert r.exit_code == 6 and "truncated" in r.output and "Traceback" not in r.output
