"""Sampling on the GPU (shaders/sample.wgsl, model.sample_stream): the sampler's rules (sampler.py)
applied where the logits are, pipelined like the greedy stream. Every drawn token must lie in
the candidate set the CPU sampler computes from the same logits, the draws must follow the
sampler's probabilities, and the same seed must give the same tokens."""
import numpy as np
import pytest

from docassist.engine import load_model
from docassist.engine.generate import generate_step
from docassist.engine.sampler import make_sampler
from tiny_models import write_tiny_model

VOCAB = 512


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = write_tiny_model(tmp_path_factory.mktemp("sampling") / "s.gguf", ftype="Q8_0", seed=5,
                            context_length=256, dim=96, hidden=160, vocab=VOCAB, scale=3.0)
    m = load_model(path, quiet=True, act_q8="on", batch=64)
    assert m._sample_embed is not None
    yield m
    m.close()


def _prompt(seed=8, n=8):
    return [int(t) for t in np.random.default_rng(seed).integers(3, VOCAB, n)]


def candidates(logits, history, s, loose=0.0):
    """sampler.py's candidate set (penalty, top-k, top-p, min-p) of one logits row; `loose`
    widens the top-p mass and min-p ratio a little (float32 sums on the GPU against float64)."""
    z = np.asarray(logits, np.float32).copy()
    pen, n = s.get("repeat_penalty", 1.0), s.get("repeat_last_n", 64)
    if pen != 1.0 and history and n > 0:
        ids = np.unique(np.asarray(history[-n:]))
        v = z[ids]
        z[ids] = np.where(v > 0, v / pen, v * pen)
    idx = np.argsort(-z, kind="stable")
    if s.get("top_k", 0) > 0:
        idx = idx[:s["top_k"]]
    zz = z[idx].astype(np.float64)
    p = np.exp(zz - zz[0])
    p /= p.sum()
    if s.get("top_p", 1.0) < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), min(1.0, s["top_p"] + loose)) + 1)
        idx, p = idx[:keep], p[:keep]
    if s.get("min_p", 0.0) > 0.0:
        idx = idx[p >= s["min_p"] * (1 - loose) * p[0]]
    return z, set(int(i) for i in idx)


@pytest.mark.parametrize("spec", [
    dict(temperature=1.0, top_k=20, top_p=0.8, min_p=0.02, repeat_penalty=1.5, repeat_last_n=16),
    dict(temperature=0.7, top_p=0.5),
    dict(temperature=2.0, min_p=0.2, repeat_penalty=0.7, repeat_last_n=64),
    dict(temperature=1.3, top_k=3),
    dict(temperature=1.0, top_k=4, repeat_penalty=0.2, repeat_last_n=0),   # (0: no penalty window)
])
def test_every_drawn_token_is_a_candidate_of_the_cpu_sampler(model, spec):
    # 40 tokens drawn on the GPU; each step's logits recomputed one token at a time (the same
    # decode kernels) and the CPU sampler's candidates built from them: the draw is among them
    # (top-p and min-p borders widened by 1e-3 for float32 sums), and the window of the penalty
    # is the sequence's
    prompt = _prompt()
    model.reset()
    out = list(model.sample_stream(prompt, 40, eos=-1, spec=dict(spec, seed=3)))
    assert len(out) == 40
    model.reset()
    logits = model.forward(prompt)
    seq = list(prompt)
    sizes = []
    for tok in out:
        _, loose = candidates(logits, seq, spec, loose=1e-3)
        _, strict = candidates(logits, seq, spec)
        assert tok in loose, (tok, sorted(strict)[:10])
        sizes.append(len(strict))
        seq.append(tok)
        logits = model.forward([tok])
    assert max(sizes) > 1             # the draws had a choice to make
    assert len(set(out)) > 5


def test_same_seed_same_tokens_other_seed_other_tokens(model):
    spec = dict(temperature=1.0, top_p=0.95)
    runs = {}
    for seed in (1, 1, 2):
        model.reset()
        runs.setdefault(seed, []).append(list(model.sample_stream(_prompt(), 30, eos=-1, spec=dict(spec, seed=seed))))
    assert runs[1][0] == runs[1][1]
    assert runs[1][0] != runs[2][0]


def test_top_k_one_is_the_greedy_stream(model):
    model.reset()
    greedy = list(model.greedy_stream(_prompt(), 25, eos=-1))
    model.reset()
    assert list(model.sample_stream(_prompt(), 25, eos=-1, spec=dict(temperature=0.9, top_k=1, seed=7))) == greedy


@pytest.mark.parametrize("spec", [dict(temperature=1.5, top_k=6), dict(temperature=1.2, top_p=0.8, min_p=0.02)])
def test_draws_follow_the_samplers_probabilities(model, spec):
    # the first token after a prompt, drawn with 400 seeds: each candidate's frequency within 4.5
    # standard deviations of the CPU sampler's probability (temperature applied), nothing else
    # (a cut-off too strict or too loose, or a wrong temperature, moves them)
    prompt = _prompt(seed=11)
    model.reset()
    z, cand = candidates(model.forward(prompt), prompt, spec)
    assert 3 <= len(cand) <= 12, len(cand)
    idx = sorted(cand, key=lambda i: -z[i])
    w = np.exp((z[idx].astype(np.float64) - z[idx].max()) / spec["temperature"])
    p = dict(zip(idx, w / w.sum()))
    n = 400
    counts: dict = {}
    for seed in range(n):
        model.reset()
        tok = list(model.sample_stream(prompt, 1, eos=-1, spec=dict(spec, seed=seed)))[0]
        counts[tok] = counts.get(tok, 0) + 1
    assert set(counts) <= cand
    for tok, prob in p.items():
        sd = np.sqrt(prob * (1 - prob) / n)
        assert abs(counts.get(tok, 0) / n - prob) < 4.5 * sd + 1e-3, (tok, counts, p)


def test_generation_takes_the_gpu_path_and_falls_back_where_it_cannot(model, monkeypatch):
    # generate_step draws on the GPU where the model can (the same tokens as sample_stream with
    # the sampler's settings); a penalty window longer than the GPU's 64 tokens runs the CPU
    # sampler on read-back logits
    sampler = make_sampler(temperature=0.8, top_p=0.9, seed=5)
    model.reset()
    want = list(model.sample_stream(_prompt(), 12, eos=-1, spec=sampler.gpu))
    model.reset()
    monkeypatch.setattr(model.tokenizer, "eos_id", -1, raising=False)
    assert list(generate_step(model, _prompt(), 12, sampler)) == want
    long = make_sampler(temperature=0.8, repeat_penalty=1.2, repeat_last_n=100, seed=5)
    assert not model.can_sample(long.gpu)
    called = []
    monkeypatch.setattr(model, "sample_stream", lambda *a, **k: called.append(1) or iter(()))
    model.reset()
    out = list(generate_step(model, _prompt(), 6, long))
    assert len(out) == 6 and not called and all(0 <= t < VOCAB for t in out)
