"""The sampler on hand-built distributions: greedy, top-k, top-p, min-p, temperature, repetition
penalty, and seeds."""
import numpy as np
import pytest

from docassist.engine.sampler import make_sampler

LOGITS = np.log(np.array([0.05, 0.5, 0.2, 0.15, 0.1], np.float32))   # probabilities at T = 1


def draws(sampler, n=4000, history=()):
    return np.bincount([sampler(LOGITS, history) for _ in range(n)], minlength=len(LOGITS)) / n


def test_temperature_zero_is_argmax_and_greedy_flag():
    s = make_sampler(0.0)
    assert s(LOGITS) == 1 and s.greedy
    assert not make_sampler(0.0, repeat_penalty=1.3).greedy
    assert not make_sampler(0.7).greedy


def test_temperature_one_follows_the_distribution():
    f = draws(make_sampler(1.0, seed=0))
    np.testing.assert_allclose(f, np.exp(LOGITS), atol=0.03)


def test_low_temperature_sharpens():
    f = draws(make_sampler(0.25, seed=1))
    p = np.exp(LOGITS / 0.25)
    np.testing.assert_allclose(f, p / p.sum(), atol=0.03)


def test_top_k_and_top_p_and_min_p_cut_the_tail():
    assert set(np.nonzero(draws(make_sampler(1.0, top_k=2, seed=2)))[0]) == {1, 2}
    # nucleus 0.6: 0.5 alone is not enough, 0.5 + 0.2 is
    assert set(np.nonzero(draws(make_sampler(1.0, top_p=0.6, seed=3)))[0]) == {1, 2}
    # min-p 0.35: keep tokens with p >= 0.35 * 0.5 = 0.175
    assert set(np.nonzero(draws(make_sampler(1.0, min_p=0.35, seed=4)))[0]) == {1, 2}
    f = draws(make_sampler(1.0, top_k=2, seed=5))
    np.testing.assert_allclose(f[[1, 2]], np.array([0.5, 0.2]) / 0.7, atol=0.03)


def test_repetition_penalty_lowers_seen_tokens():
    s = make_sampler(0.0, repeat_penalty=10.0)
    assert s(LOGITS, [1]) == 2            # the favourite was seen: the next one wins
    assert s(LOGITS, [3]) == 1
    f = draws(make_sampler(1.0, repeat_penalty=1.5, seed=6), history=[1])
    assert f[1] < 0.45
    # the window: only the last repeat_last_n tokens count, and 0 means none (llama.cpp's rule)
    assert make_sampler(0.0, repeat_penalty=10.0, repeat_last_n=1)(LOGITS, [1, 3]) == 1
    assert make_sampler(0.0, repeat_penalty=10.0, repeat_last_n=2)(LOGITS, [1, 3]) == 2
    assert make_sampler(0.0, repeat_penalty=10.0, repeat_last_n=0)(LOGITS, [1, 3]) == 1


def test_seed_makes_runs_reproducible():
    a = [make_sampler(0.8, seed=42)(LOGITS) for _ in range(1)]
    s1, s2, s3 = make_sampler(0.8, seed=42), make_sampler(0.8, seed=42), make_sampler(0.8, seed=43)
    seq1 = [s1(LOGITS) for _ in range(50)]
    assert seq1 == [s2(LOGITS) for _ in range(50)]
    assert seq1 != [s3(LOGITS) for _ in range(50)]
    assert a[0] == seq1[0]


@pytest.mark.parametrize("kw", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(min_p=1.0),
                                dict(top_k=-1), dict(repeat_penalty=0), dict(repeat_last_n=-1)])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        make_sampler(**kw)
