#!/usr/bin/env python3
"""Engine speed benchmark: load time, prefill and decode tokens/s, bandwidth use, memory.

Models are random-weight GGUF files with the real shapes and byte layouts of the benchmark models
(Llama-2-7B, TinyLlama 1.1B, a 110M llama2.c shape), written directly from random quant blocks
with sane scales (no download, ~1 GB/s) and cached under benchmarks/cache/. Weights are random,
so the text is noise, but every kernel does the same work as on the real model.

Per configuration (shape x quant mix) it measures:
  load     wall time of load_model from a warm page cache, GPU bytes allocated, peak host RSS
           (all pages, and anonymous pages only: file pages of the memory map are page cache)
  prefill  one forward_argmax over P random tokens after a reset, best of a few, tokens/s (from
           position --prompt-at: a later chunk of a long document, attending to all before it)
  decode   N greedy steps of one token starting at each given context position, tokens/s: the
           pipelined path generation takes (greedy_stream: the argmax fed back on the GPU, tokens
           read several steps behind; best of 3 runs; the table's dec@C and %bound@C) and the synchronous one
           (forward_argmax, 4 bytes read back before the next step; sync@C); where the engine
           draws tokens on the GPU, also the pipelined stream sampling with llama.cpp's default
           settings (sample_stream: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repetition
           penalty 1.1 over 64 tokens; smp@C)
and, once per run, the copy bandwidth of the device (shaders/copy.wgsl, read+write bytes).
Bytes read per decoded token = weights the step must read (every matrix, the norms, one
embedding row) + the KV cache up to the current position; the bound = copy bandwidth / that,
and %bound = tokens/s over it is how close decode is to the memory bound.

    python3 benchmarks/bench.py --model 7b --quant q4_0,q4_k_m --prompt 512 --decode 64 \
        --contexts 0,2048 --json out.json
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import sys
import time
import traceback
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from docassist.engine.gguf import write_gguf  # noqa: E402
from docassist.engine.quants import BLOCK, GGMLType as T, random_blocks  # noqa: E402
# the measurements themselves (bench_prefill: re-exported for scripts that time a prompt alone)
from docassist.engine.speed import bench_model, bench_prefill, copy_bandwidth  # noqa: E402,F401

FORMAT = 1  # bump when the generated files change, so stale cache entries are not reused
DEFAULT_CACHE = HERE / "cache"


# -- shapes and quant mixes -------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    name: str
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn: int
    vocab: int = 32000
    ctx: int = 2048

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * (self.dim // self.n_heads)

    def key(self) -> str:
        """Cache file stem: the name plus a digest of every field (a changed shape is a new file)."""
        h = hashlib.sha1(repr((FORMAT, astuple(self))).encode()).hexdigest()[:8]
        return f"{self.name}-{h}"


SHAPES = {
    "110m": Shape("110m", dim=768, n_layers=12, n_heads=12, n_kv_heads=12, ffn=2048, ctx=1024),
    "tinyllama": Shape("tinyllama", dim=2048, n_layers=22, n_heads=32, n_kv_heads=4, ffn=5632, ctx=2048),
    "7b": Shape("7b", dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, ffn=11008, ctx=4096),
}

# q4_0:     every 2-D weight Q4_0 (how the reference figures in our notes were made)
# q4_0_mix: llama.cpp's Q4_0 file type: output.weight stays Q6_K
# q4_k_m:   llama.cpp's Q4_K_M rules (below)
# q8_0, f16: every 2-D weight of that type (llama.cpp keeps output Q8_0 in its Q8_0 type too)
QUANTS = ("q4_0", "q4_0_mix", "q4_k_m", "q8_0", "f16")
_BASE = {"q4_0": T.Q4_0, "q4_0_mix": T.Q4_0, "q4_k_m": T.Q4_K, "q8_0": T.Q8_0, "f16": T.F16}
# llama.cpp's fallback when a row is not a whole number of 256-element super-blocks
_FALLBACK = {T.Q4_K: T.Q5_0, T.Q6_K: T.Q8_0}


def use_more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's choice of the layers whose attn_v / ffn_down get more bits in *_K_M mixes."""
    return (layer < n_layers // 8 or layer >= 7 * n_layers // 8
            or (layer - n_layers // 8) % 3 == 2)


def tensor_type(quant: str, name: str, ne: tuple, n_layers: int) -> T:
    """The GGML type of tensor `name` (ggml shape `ne`) in quant mix `quant`."""
    if len(ne) == 1:
        return T.F32  # norm vectors stay f32 in every llama.cpp file type
    t = _BASE[quant]
    if name == "output.weight" and quant in ("q4_0_mix", "q4_k_m"):
        t = T.Q6_K
    elif quant == "q4_k_m" and ("attn_v" in name or "ffn_down" in name):
        if use_more_bits(int(name.split(".")[1]), n_layers):
            t = T.Q6_K
    if ne[0] % BLOCK[t][0]:
        t = _FALLBACK.get(t, T.F16)
    if ne[0] % BLOCK[t][0]:
        t = T.F16
    return t


def tensor_shapes(s: Shape) -> dict:
    """name -> ggml shape ne (ne[0] = input dim), in llama.cpp's file order."""
    out = {"token_embd.weight": (s.dim, s.vocab), "output_norm.weight": (s.dim,),
           "output.weight": (s.dim, s.vocab)}
    for i in range(s.n_layers):
        p = f"blk.{i}."
        out.update({p + "attn_norm.weight": (s.dim,), p + "attn_q.weight": (s.dim, s.dim),
                    p + "attn_k.weight": (s.dim, s.kv_dim), p + "attn_v.weight": (s.dim, s.kv_dim),
                    p + "attn_output.weight": (s.dim, s.dim), p + "ffn_norm.weight": (s.dim,),
                    p + "ffn_gate.weight": (s.dim, s.ffn), p + "ffn_up.weight": (s.dim, s.ffn),
                    p + "ffn_down.weight": (s.ffn, s.dim)})
    return out


def synthetic_vocab(n: int) -> dict:
    """tokenizer.ggml.* metadata of an n-piece llama (sentencepiece) vocabulary: <unk>, <s>, </s>,
    the 256 byte pieces, then "▁tok{i}" pieces with decreasing scores. No real text needed."""
    if n < 260:
        raise ValueError(f"a llama vocabulary needs at least 260 pieces, got {n}")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581tok{i}" for i in range(n - len(tokens))]
    scores = np.zeros(n, np.float32)
    scores[259:] = -np.arange(n - 259, dtype=np.float32)
    types = [2, 3, 3] + [6] * 256 + [1] * (n - 259)  # unknown, control, byte, normal
    return {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": np.asarray(types, np.int32),
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.unknown_token_id": 0}


def write_random_model(path, s: Shape, quant: str, seed: int = 0) -> Path:
    """Write a random-weight GGUF of shape `s` in quant mix `quant`. Tensors are generated one at
    a time while writing (a 4 GB file needs ~one tensor of host memory)."""
    if quant not in _BASE:
        raise ValueError(f"unknown quant mix {quant!r} (one of {', '.join(QUANTS)})")
    hd = s.dim // s.n_heads
    meta = {
        "general.architecture": "llama", "general.name": f"random-{s.name}-{quant}",
        "llama.context_length": s.ctx, "llama.embedding_length": s.dim,
        "llama.feed_forward_length": s.ffn, "llama.block_count": s.n_layers,
        "llama.attention.head_count": s.n_heads, "llama.attention.head_count_kv": s.n_kv_heads,
        "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.dimension_count": hd,
        "llama.rope.freq_base": 10000.0,
    }
    meta.update(synthetic_vocab(s.vocab))
    tensors = []
    for i, (name, ne) in enumerate(tensor_shapes(s).items()):
        t = tensor_type(quant, name, ne, s.n_layers)
        if len(ne) == 1:
            raw = (1.0 + 0.1 * np.random.default_rng(seed * 100003 + i).standard_normal(ne[0])).astype(np.float32)
            tensors.append((name, t, ne, raw.view(np.uint8)))
        else:
            tensors.append((name, t, ne, lambda t=t, ne=ne, i=i: random_blocks(
                t, ne[1], ne[0], np.random.default_rng(seed * 100003 + i))))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_gguf(path, meta, tensors)


def ensure_model(s: Shape, quant: str, cache_dir=DEFAULT_CACHE) -> tuple[Path, float | None]:
    """(path, seconds spent writing it, or None when it came from the cache)."""
    path = Path(cache_dir) / f"{s.key()}-{quant}.gguf"
    if path.exists():
        return path, None
    t0 = time.perf_counter()
    write_random_model(path, s, quant)
    return path, time.perf_counter() - t0


# -- run, print, write ------------------------------------------------------------------------

def device_report() -> dict:
    from docassist.engine.gpu import get_gpu

    return get_gpu().report()


def run(configs, *, prompt: int, decode: int, contexts, cache_dir=DEFAULT_CACHE, copy_bytes=None,
        context_length=None, batch: int = 512, argv=None, log=print, prefill_repeats: int = 2,
        on_update=None, prompt_at: int = 0, kv_dtype: str = "auto") -> dict:
    """configs: [(label, Shape or a GGUF path, quant or None)]. Returns the JSON-ready record;
    on_update(record) is called after the copy bandwidth and after each configuration (to save
    partial results)."""
    from docassist.engine.gpu import get_gpu

    import wgpu

    gpu = get_gpu()
    rep = gpu.report()
    cpu_device = "cpu" in str(rep.get("adapter_type", "")).lower() or "llvmpipe" in rep.get("adapter", "")
    if copy_bytes is None:
        copy_bytes = (256 if cpu_device else 1024) << 20
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv)),
        "host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "wgpu": getattr(wgpu, "__version__", "?"),
        "adapter": rep.get("adapter"), "driver": rep.get("driver"), "backend": rep.get("backend"),
        "adapter_type": rep.get("adapter_type"), "vendor": rep.get("vendor"), "features": rep.get("features"),
        "enabled_features": rep.get("enabled_features"), "limits": rep.get("limits"),
        # the kernel shapes the engine chose for this adapter (and any DOCASSIST_* overrides)
        "engine": {"subgroup_lanes": rep.get("subgroup_lanes"), "decode_product": rep.get("decode_product"),
                   "shader_runtime_checks": rep.get("shader_runtime_checks"),
                   "overrides": {k: v for k, v in os.environ.items() if k.startswith("DOCASSIST_")}},
        "settings": {"prompt": prompt, "prompt_at": prompt_at, "decode": decode, "contexts": list(contexts),
                     "batch": batch, "kv_cache": kv_dtype,
                     "context_length": context_length},
        "results": [], "failures": [],
    }
    try:
        record["copy_bandwidth"] = copy_bandwidth(gpu, copy_bytes)
        log(f"copy bandwidth: {record['copy_bandwidth']['gb_s']:.1f} GB/s "
            f"({record['copy_bandwidth']['bytes'] >> 20} MiB buffers, read + write)")
    except Exception as e:
        record["copy_bandwidth"] = None
        record["failures"].append({"config": "copy bandwidth", "error": f"{type(e).__name__}: {e}"})
    copy_gbs = (record["copy_bandwidth"] or {}).get("gb_s")
    if on_update:
        on_update(record)
    for label, shape, quant in configs:
        entry = {"model": label, "quant": quant}
        name = label if quant is None else f"{label} {quant}"
        try:
            if isinstance(shape, Shape):
                path, gen_s = ensure_model(shape, quant, cache_dir)
                entry["shape"] = asdict(shape)
                entry["generate_s"] = gen_s
                if gen_s is not None:
                    log(f"{name}: wrote {path.name} ({path.stat().st_size / 2**30:.2f} GiB) in {gen_s:.1f} s")
            else:
                path = Path(shape)
            entry.update(bench_model(path, prompt=prompt, decode=decode, contexts=contexts, copy_gbs=copy_gbs,
                                     context_length=context_length, batch=batch, prefill_repeats=prefill_repeats,
                                     prompt_at=prompt_at, kv_dtype=kv_dtype))
            record["results"].append(entry)
            log(format_row(entry))
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            record["failures"].append({"config": name, "error": err,
                                       "traceback": traceback.format_exc(limit=6)})
            log(f"{name}: FAILED: {err}")
        if on_update:
            on_update(record)
    if hasattr(os, "getloadavg"):
        record["load_average_at_end"] = list(os.getloadavg())
    return record


def format_row(r: dict) -> str:
    ld = r["load"]
    pf = r.get("prefill")
    parts = [f"{r['model']:<10} {r['quant'] or '-':<9}", f"{r['weights_bytes'] / 2**30:6.2f} GiB",
             f"load {ld['load_s']:6.2f} s", f"gpu {ld['gpu_allocated'] / 2**30:6.2f} GiB",
             f"rss+ {ld['rss_growth'] / 2**20:6.0f} MiB (anon {ld['rss_anon_growth'] / 2**20:.0f})",
             (f"prefill {pf['tok_s']:8.1f} tok/s" + (f" @{pf['start']}" if pf.get("start") else "")) if pf
             else "prefill       -"]
    for d in r.get("decode", []):
        frac = d.get("fraction_of_copy_bw")
        parts.append(f"@{d['context']}: {d['tok_s']:7.2f} tok/s {d['effective_gb_s']:7.1f} GB/s"
                     + (f" {100 * frac:4.0f}%" if frac is not None else ""))
    for e in r.get("errors", []):
        parts.append(f"[{e}]")
    return " | ".join(parts)


def print_table(record: dict, out=None):
    out = out or sys.stdout
    cb = record.get("copy_bandwidth") or {}
    print(f"\n{record['adapter']} ({record['backend']}, {record['driver']}), "
          f"copy {cb.get('gb_s', float('nan')):.1f} GB/s", file=out)
    ctxs = record["settings"]["contexts"]
    at = (record.get("settings") or {}).get("prompt_at")
    head = ["model", "quant", "GiB", "load s", "GPU GiB", "RSS+ MiB", "anon+ MiB",
            f"prefill@{at} t/s" if at else "prefill t/s"]
    sampled = any(d.get("sampled_tok_s") for r in record["results"] for d in r.get("decode", []))
    for c in ctxs:   # decode: the pipelined path that generation takes; the synchronous one beside it
        head += [f"dec@{c} t/s", f"sync@{c}", f"%bound@{c}"] + ([f"smp@{c}"] if sampled else [])
    rows = []
    for r in record["results"]:
        ld, pf = r["load"], r.get("prefill")
        row = [r["model"], r["quant"] or "-", f"{r['weights_bytes'] / 2**30:.2f}", f"{ld['load_s']:.2f}",
               f"{ld['gpu_allocated'] / 2**30:.2f}", f"{ld['rss_growth'] / 2**20:.0f}",
               f"{ld['rss_anon_growth'] / 2**20:.0f}", f"{pf['tok_s']:.1f}" if pf else "-"]
        dec = {d["context"]: d for d in r.get("decode", [])}
        for c in ctxs:
            d = dec.get(c)
            if d is None:
                row += ["-", "-", "-"] + (["-"] if sampled else [])
            else:
                pipe = d.get("pipelined_tok_s") or d["tok_s"]
                bound = d.get("bound_tok_s")
                row += [f"{pipe:.2f}", f"{d['tok_s']:.2f}", f"{100 * pipe / bound:.0f}%" if bound else "-"]
                if sampled:
                    row.append(f"{d['sampled_tok_s']:.2f}" if d.get("sampled_tok_s") else "-")
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)), file=out)
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)), file=out)
    for f in record["failures"]:
        print(f"FAILED {f['config']}: {f['error']}", file=out)


def write_json(record: dict, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def parse_configs(models: str, quants: str) -> list:
    configs = []
    qs = [q.strip().lower() for q in quants.split(",") if q.strip()]
    for q in qs:
        if q not in QUANTS:
            raise SystemExit(f"bench: error: unknown quant {q!r} (one of {', '.join(QUANTS)})")
    for m in (x.strip() for x in models.split(",") if x.strip()):
        if m.lower() in SHAPES:
            configs += [(m.lower(), SHAPES[m.lower()], q) for q in qs]
        elif m.endswith(".gguf"):
            if not Path(m).is_file():
                raise SystemExit(f"bench: error: model file not found: {m}")
            configs.append((Path(m).stem, m, None))
        else:
            raise SystemExit(f"bench: error: unknown model {m!r} (110m, tinyllama, 7b or a .gguf path)")
    return configs


def main(argv=None):
    ap = argparse.ArgumentParser(description="docassist engine speed benchmark (random-weight models)")
    ap.add_argument("--model", default="110m", help="comma list of 110m, tinyllama, 7b or PATH.gguf")
    ap.add_argument("--quant", default="q4_0", help=f"comma list of {', '.join(QUANTS)}")
    ap.add_argument("--prompt", type=int, default=512, help="prefill length in tokens (0: skip)")
    ap.add_argument("--prompt-at", type=int, default=0,
                    help="position the prompt starts at (a long document's later chunk: attention over every position before)")
    ap.add_argument("--decode", type=int, default=64, help="decode steps per context")
    ap.add_argument("--contexts", default=None, help="decode start positions (default 0,2048 on a GPU, 0,256 on a CPU)")
    ap.add_argument("--ctx-len", type=int, default=None, help="KV cache length (default: the model's, at least what the run needs)")
    ap.add_argument("--batch", type=int, default=512, help="tokens per forward chunk")
    ap.add_argument("--kv", default="auto", choices=["auto", "f16", "f32", "q8_0"],
                    help="KV cache format (auto: f16 from dim 2048, else f32)")
    ap.add_argument("--copy-mib", type=int, default=None, help="copy-bandwidth buffer size (default 1024, 256 on a CPU)")
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where generated models are kept")
    ap.add_argument("--json", default=None, help="write every figure to this JSON file")
    ap.add_argument("--generate-only", action="store_true", help="write the model files and stop")
    ap.add_argument("--timeout", type=float, default=0,
                    help="give up after this many seconds: print where every thread is and exit 1 (a kernel "
                         "that never finishes otherwise blocks the run; the JSON keeps what was measured)")
    args = ap.parse_args(argv)
    if args.timeout > 0:
        import faulthandler

        faulthandler.dump_traceback_later(args.timeout, exit=True)
    configs = parse_configs(args.model, args.quant)
    argv_full = [sys.argv[0]] + list(argv if argv is not None else sys.argv[1:])
    if args.generate_only:
        for label, shape, q in configs:
            if isinstance(shape, Shape):
                p, s = ensure_model(shape, q, args.cache_dir)
                print(f"{p} ({p.stat().st_size / 2**30:.2f} GiB): " + (f"written in {s:.1f} s" if s is not None else "cached"))
        return 0
    contexts = args.contexts
    if contexts is None:
        rep = device_report()
        cpu = "cpu" in str(rep.get("adapter_type", "")).lower()
        contexts = "0,256" if cpu else "0,2048"
    record = run(configs, prompt=args.prompt, decode=args.decode, contexts=_ints(contexts),
                 cache_dir=args.cache_dir, copy_bytes=None if args.copy_mib is None else args.copy_mib << 20,
                 context_length=args.ctx_len, batch=args.batch, argv=argv_full, prompt_at=args.prompt_at,
                 on_update=(lambda r: write_json(r, args.json)) if args.json else None, kv_dtype=args.kv)
    print_table(record)
    if args.json:
        write_json(record, args.json)
        print(f"wrote {args.json}")
    return 1 if record["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
