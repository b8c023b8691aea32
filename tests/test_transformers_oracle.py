"""The engine against transformers: random `LlamaForCausalLM` models, written to GGUF the way
llama.cpp's convert_hf_to_gguf.py writes them, in every loadable weight type and in llama.cpp's
"_M" mixes; our logits must match transformers' for a prompt of mixed scripts.

Why this is an independent oracle: the model, its RoPE (rotate-half on HF's layout), attention
with GQA and the tied/untied classifier come from transformers, not from our numpy reference;
the file is written by gguf-py's GGUFWriter (the converter's own writer) with the converter's
tensor names, Q/K permutation and metadata keys; the quantized bytes are decoded back to floats
by gguf-py's dequantizers.

What is compared, and why against the *dequantized* model: a quantized file is a different model
than the float one it came from (Q2_K moves logits by tens of percent). The engine's job is to
run the model that is in the file, so the reference is transformers run on the weights the file
holds, decoded by gguf-py (this is also what transformers itself does when it loads a GGUF).
Criteria, per type:
- relative error ||ours - ref||_F / ||ref||_F < 1e-2 (F32: < 1e-4; measured ~1e-6);
- same argmax as the reference at every position, except where the reference's own top-1/top-2
  gap is a near tie: smaller than 4x the RMS difference of that row. Such a gap is within the
  noise of the comparison (fp32 summation order; the engine's load-time re-encoding of some
  types), so either answer is right; a flip outside it means a wrong weight row or position.
The float model is compared too for F32/F16/BF16 (the file is the float model to within their
rounding; lower-bit types are meant to differ from it), and for the tied-classifier and
linear-RoPE-scaling models (F32).

Cost: one 32000 x 256 vocabulary (the Llama 2 tokenizer, so that accents, CJK, Cyrillic and emoji
encode to real pieces), 2 layers, 4 heads, 2 KV heads (GQA); each case quantizes ~17M weights,
loads the engine once and runs transformers once.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")     # nothing here is fetched; say so to the hub client
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
spm = pytest.importorskip("sentencepiece")

from gguf.quants import dequantize  # noqa: E402

from docassist.engine import load_model  # noqa: E402
from docassist.engine.quants import GGMLType as T, convert_to_native, native_type  # noqa: E402
from quantize_helpers import llama_cpp_tensor_type, quantize  # noqa: E402

PROMPT = "Naïve café, Grüße! Привет, мир. 東京で会う 北京 Ελληνικά 한국어 🙂 x² ≥ 3½ €"

DIM, FFN, N_LAYERS, N_HEADS, N_KV = 256, 512, 2, 4, 2      # K-quants need rows of 256


# -- the model --------------------------------------------------------------------------------

def build_hf(seed: int, *, tied=False, rope_scaling=None, rope_theta=10000.0):
    """A random LlamaForCausalLM with weights scaled so logits are O(3) (the default 0.02 init
    gives logits ~0 and every argmax a near tie)."""
    cfg = transformers.LlamaConfig(
        vocab_size=32000, hidden_size=DIM, intermediate_size=FFN, num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS, num_key_value_heads=N_KV, max_position_embeddings=512,
        rms_norm_eps=1e-5, rope_theta=rope_theta, tie_word_embeddings=tied,
        bos_token_id=1, eos_token_id=2, rope_scaling=rope_scaling)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:                                   # RMSNorm gains around 1
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif "embed_tokens" in name:                      # std 0.2: tied logits ~3
                p.normal_(0.0, 0.2)
            elif "lm_head" in name:
                p.normal_(0.0, 3.0 / DIM ** 0.5)
            else:                                             # keeps activations O(1)
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
    return model


def _names(n_layers):
    """HF parameter name -> GGUF tensor name (gguf-py's TensorNameMap for MODEL_ARCH.LLAMA)."""
    m = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
    per = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
           "post_attention_layernorm": "ffn_norm"}
    for i in range(n_layers):
        for hf, gg in per.items():
            m[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    return m


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotate-half row order -> llama.cpp's adjacent-pair order (LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_permute_is_the_rope_layout_change():
    # per head: HF's rows [x0..x31 | y0..y31] become llama.cpp's [x0 y0 x1 y1 ...]
    w = np.arange(2 * 8, dtype=np.float32).reshape(16, 1)
    p = permute(w, 2)[:, 0]
    assert p[:8].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert p[8:].tolist() == [8, 12, 9, 13, 10, 14, 11, 15]
    assert np.array_equal(unpermute(permute(w, 2), 2), w)


# -- the file -----------------------------------------------------------------------------------

# which type each 2-D tensor gets: a single type for all ("pure", as llama-quantize --pure writes)
# or llama.cpp's per-tensor mix rules for a named file type
PURE = {"F32": T.F32, "F16": T.F16, "BF16": T.BF16, "Q8_0": T.Q8_0, "Q4_0": T.Q4_0,
        "Q4_1": T.Q4_1, "Q5_0": T.Q5_0, "Q5_1": T.Q5_1, "Q2_K": T.Q2_K, "Q3_K": T.Q3_K,
        "Q4_K": T.Q4_K, "Q5_K": T.Q5_K, "Q6_K": T.Q6_K}
FILE_TYPE = {"F32": "ALL_F32", "F16": "MOSTLY_F16", "BF16": "MOSTLY_BF16", "Q8_0": "MOSTLY_Q8_0",
             "Q4_0": "MOSTLY_Q4_0", "Q4_1": "MOSTLY_Q4_1", "Q5_0": "MOSTLY_Q5_0",
             "Q5_1": "MOSTLY_Q5_1", "Q2_K": "MOSTLY_Q2_K", "Q3_K": "MOSTLY_Q3_K_S",
             "Q4_K": "MOSTLY_Q4_K_S", "Q5_K": "MOSTLY_Q5_K_S", "Q6_K": "MOSTLY_Q6_K",
             "Q3_K_M": "MOSTLY_Q3_K_M", "Q4_K_M": "MOSTLY_Q4_K_M", "Q4_K_S": "MOSTLY_Q4_K_S",
             "Q5_K_M": "MOSTLY_Q5_K_M", "Q5_K_S": "MOSTLY_Q5_K_S"}


def tokenizer_vocab(model_file):
    """tokens, scores, token types as the converter's _set_vocab_sentencepiece takes them."""
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        t = gguf.TokenType.NORMAL
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        types.append(int(t))
    return sp, tokens, scores, types


def write_converted(path, model, vocab, kind: str, mix: bool = False):
    """Write `model` as convert_hf_to_gguf.py then llama-quantize would: every 2-D tensor in type
    `kind`, or with `mix` in the types llama.cpp picks per tensor for file type `kind`.
    Returns [(hf_name, ggml_type, raw bytes (n_rows, row_bytes), numpy shape)] as written."""
    cfg = model.config
    _, tokens, scores, types = vocab
    names = _names(cfg.num_hidden_layers)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("oracle")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    rope = cfg.rope_parameters or {}
    w.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_file_type(getattr(gguf.LlamaFileType, FILE_TYPE[kind]))
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    if rope.get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    written = []
    for hf_name, p in model.state_dict().items():
        if hf_name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue                     # a tied model's checkpoint carries no lm_head
        name = names[hf_name]
        x = p.detach().cpu().numpy().astype(np.float32)
        if "q_proj" in hf_name:
            x = permute(x, cfg.num_attention_heads)
        elif "k_proj" in hf_name:
            x = permute(x, cfg.num_key_value_heads)
        if x.ndim == 1:                  # norms stay F32
            t = T.F32
        else:
            ne = (x.shape[1], x.shape[0])
            t = llama_cpp_tensor_type(kind, name, ne, cfg.num_hidden_layers) if mix else PURE[kind]
        if x.ndim == 1:
            w.add_tensor(name, x)
            written.append((hf_name, t, x.view(np.uint8), x.shape))
            continue
        raw = quantize(x, t).reshape(x.shape[0], -1)            # (rows, bytes per row)
        w.add_tensor(name, raw, raw_dtype=gguf.GGMLQuantizationType(int(t)))
        written.append((hf_name, t, raw, x.shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def held_weights(model, written, as_run: bool = False) -> dict:
    """HF state dict (float32 numpy, HF layout) of the model a file holds, decoded by gguf-py;
    with `as_run`, after the engine's own load-time conversion of non-native types."""
    cfg = model.config
    out = {}
    for hf_name, t, raw, shape in written:
        if as_run:
            t, raw = convert_to_native(raw, t, tuple(reversed(shape)) if len(shape) == 2 else shape)
        x = dequantize(np.asarray(raw, np.uint8).reshape(shape[0] if len(shape) == 2 else 1, -1),
                       gguf.GGMLQuantizationType(int(t)))
        x = np.asarray(x, np.float32).reshape(shape)
        if "q_proj" in hf_name:
            x = unpermute(x, cfg.num_attention_heads)
        elif "k_proj" in hf_name:
            x = unpermute(x, cfg.num_key_value_heads)
        out[hf_name] = x
    if cfg.tie_word_embeddings:
        out["lm_head.weight"] = out["model.embed_tokens.weight"]
    return out


def hf_logits(model, ids, weights=None) -> np.ndarray:
    """transformers' logits (float32, eval, no_grad); with `weights`, on those weights instead
    (loaded into a copy, so `model` keeps its float weights)."""
    if weights is not None:
        model = type(model)(model.config).float().eval()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def compare(ours, ref):
    """(relative error, positions whose argmax differs, those of them that are not near ties)."""
    rel = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
    top2 = np.sort(ref, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    rms = np.sqrt(np.mean((ours - ref) ** 2, axis=1))
    flips = np.flatnonzero(ours.argmax(1) != ref.argmax(1))
    return rel, [int(i) for i in flips], [int(i) for i in flips if gap[i] >= 4 * rms[i]]


def run_engine(path, ids):
    m = load_model(path, quiet=True)
    try:
        assert m.tokenizer.encode(PROMPT, bos=True) == ids      # same ids on both sides
        return m.logits(ids)
    finally:
        m.close()


# -- the cases ----------------------------------------------------------------------------------

# Affine types (a per-block offset: Q4_1, Q5_1, Q5_K, Q2_K) are re-encoded by the engine at load
# time. As symmetric Q8_0 they moved this model's logits by 1.5-2% (measured: Q4_1 1.9e-2, Q5_1
# 1.9e-2, Q5_K 1.9e-2, Q2_K 2.0e-2, Q5_K_M 1.8e-2, Q2_K mix 1.5e-2), over the 1e-2 bound; decoded
# to F16 they stay within it. OVER_BOUND lists cases expected to fail (strict xfail), none now.
# test_engine_runs_its_reencoding_exactly checks that what the engine does run is computed right.
REENCODED = {t for t in (T.Q4_1, T.Q5_1, T.Q5_K, T.Q2_K) if native_type(t) != t}
OVER_BOUND: set = set()  # the affine types now decode to F16 at load: all within the bound


def _types_in_file(kind, mix):
    if not mix:
        return {PURE[kind]}
    shapes = {"token_embd.weight": (DIM, 32000), "output.weight": (DIM, 32000)}
    for i in range(N_LAYERS):
        for n, ne in (("attn_q", (DIM, DIM)), ("attn_k", (DIM, DIM // N_HEADS * N_KV)),
                      ("attn_v", (DIM, DIM // N_HEADS * N_KV)), ("attn_output", (DIM, DIM)),
                      ("ffn_gate", (DIM, FFN)), ("ffn_up", (DIM, FFN)), ("ffn_down", (FFN, DIM))):
            shapes[f"blk.{i}.{n}.weight"] = ne
    return {llama_cpp_tensor_type(kind, n, ne, N_LAYERS) for n, ne in shapes.items()}


MIXES = ["Q4_K_M", "Q5_K_M", "Q3_K_M", "Q2_K"]
CASES = [(k, False) for k in PURE] + [(k, True) for k in MIXES]
LOADER_CASES = [("F32", False), ("Q4_K_M", True)]


def _param(kind, mix):
    cid = f"{kind}-mix" if mix else kind
    lossy = sorted(t.name for t in _types_in_file(kind, mix) & REENCODED)
    reason = f"{', '.join(lossy)} re-encoded at load"
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] \
        if lossy and cid in OVER_BOUND else []
    return pytest.param(kind, mix, id=cid, marks=marks)


# -- the tests ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vocab(llama2_tokenizer_model):
    return tokenizer_vocab(llama2_tokenizer_model)


@pytest.fixture(scope="module")
def ids(vocab):
    sp = vocab[0]
    ids = [1] + sp.encode(PROMPT)
    # the prompt reaches byte-fallback pieces (rare CJK, emoji) as well as whole-word pieces
    assert any(sp.is_byte(i) for i in ids) and any(len(sp.id_to_piece(i)) > 3 for i in ids)
    return ids


@pytest.fixture(scope="module")
def base():
    return build_hf(seed=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, vocab, ids, base):
    """case -> (what was written, the engine's logits): each file written and run once."""
    cache = {}
    folder = tmp_path_factory.mktemp("oracle")

    def get(kind, mix):
        if (kind, mix) not in cache:
            path = folder / f"{kind}{'-mix' if mix else ''}.gguf"
            written = write_converted(path, base, vocab, kind, mix)
            cache[(kind, mix)] = (written, run_engine(path, ids), path)
            if (kind, mix) not in LOADER_CASES:
                path.unlink()                    # ~70 MB each; keep only what is read again
        return cache[(kind, mix)]
    return get


@pytest.mark.parametrize("kind,mix", [_param(k, m) for k, m in CASES])
def test_logits_match_transformers(ids, base, runs, kind, mix):
    written, ours, _ = runs(kind, mix)
    ref = hf_logits(base, ids, held_weights(base, written))
    assert ours.shape == (len(ids), 32000) and np.isfinite(ours).all()
    rel, flips, real = compare(ours, ref)
    print(f"{kind}{'-mix' if mix else ''}: relative error {rel:.2e}, argmax flips {flips}")
    assert rel < (1e-4 if kind == "F32" else 1e-2), f"relative error {rel:.3g}"
    assert not real, f"argmax differs at positions {real} (not near ties; all flips: {flips})"
    if kind in ("F32", "F16", "BF16") and not mix:
        # the file itself is the float model to within the type's rounding
        rel_f, _, real_f = compare(ours, hf_logits(base, ids))
        assert rel_f < 1e-2 and not real_f, (rel_f, real_f)


@pytest.mark.parametrize("kind,mix", [pytest.param(k, m, id=f"{k}-mix" if m else k)
                                      for k, m in CASES if _types_in_file(k, m) & REENCODED])
def test_engine_runs_its_reencoding_exactly(ids, base, runs, kind, mix):
    # transformers on the weights after the engine's load-time conversion: the kernels are exact
    written, ours, _ = runs(kind, mix)
    ref = hf_logits(base, ids, held_weights(base, written, as_run=True))
    rel, flips, real = compare(ours, ref)
    print(f"{kind}{'-mix' if mix else ''} as run: relative error {rel:.2e}, argmax flips {flips}")
    assert rel < 1e-4 and not real, (rel, flips)


@pytest.mark.parametrize("kind,mix", [pytest.param(k, m, id=f"{k}-mix" if m else k)
                                      for k, m in LOADER_CASES])
def test_transformers_own_gguf_loader_reads_our_files_alike(ids, base, runs, kind, mix):
    # transformers' GGUF loader (its own name map, Q/K un-permutation and dequantization) reads
    # the files as this test's reference does: the reference is what transformers sees in them.
    pytest.importorskip("accelerate")                # transformers needs it to load GGUF
    written, ours, path = runs(kind, mix)
    loaded = transformers.LlamaForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    assert loaded.config.num_key_value_heads == N_KV and not loaded.config.tie_word_embeddings
    theirs = hf_logits(loaded, ids)
    ref = hf_logits(base, ids, held_weights(base, written))
    assert np.linalg.norm(theirs - ref) / np.linalg.norm(ref) < 1e-6
    rel, flips, real = compare(ours, theirs)
    print(f"{kind}{'-mix' if mix else ''} via transformers' loader: relative error {rel:.2e}")
    assert rel < 1e-2 and not real, (rel, flips)


def test_int8_activation_decode_matches_transformers(ids, base, runs):
    # the decode stream with int8 activations (on by default from dim 2048) one token at a time,
    # against transformers on the weights as written: within 2e-2 (measured 1.8e-2: the int8 blocks;
    # f32 activations: test_logits_match_transformers on the same file), no real argmax change
    written, _, path = runs("Q4_K_M", True)
    ref = hf_logits(base, ids, held_weights(base, written))
    m = load_model(path, quiet=True, act_q8="on")
    try:
        assert m.act_q8
        ours = np.stack([m.forward([t]) for t in ids])
    finally:
        m.close()
    rel, flips, real = compare(ours, ref)
    print(f"Q4_K_M-mix decode, int8 activations: relative error {rel:.2e}, argmax flips {flips}")
    assert rel < 2e-2 and not real, (rel, flips)


# Compared with the model transformers built, not with one it reads back from the GGUF file:
# transformers' GGUF loader (5.24) ignores llama.rope.scaling.* and would run the scaled model
# with plain RoPE (measured: 0.52 relative error against the model that was converted).
@pytest.mark.parametrize("case", ["tied", "rope-linear-2"])
def test_tied_classifier_and_linear_rope_scaling(tmp_path, vocab, ids, case):
    model = build_hf(seed=1, tied=True) if case == "tied" else \
        build_hf(seed=2, rope_scaling={"rope_type": "linear", "factor": 2.0}, rope_theta=50000.0)
    path = tmp_path / f"oracle-{case}.gguf"
    written = write_converted(path, model, vocab, "F32")
    assert ("lm_head.weight" in {w[0] for w in written}) == (case != "tied")
    ours = run_engine(path, ids)
    rel, flips, real = compare(ours, hf_logits(model, ids))
    print(f"{case}: relative error {rel:.2e}, argmax flips {flips}")
    assert rel < 1e-4 and not real, (rel, flips)
