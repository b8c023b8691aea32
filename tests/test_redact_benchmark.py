"""The redaction benchmark: seeded generator, exact offsets, scorer arithmetic, and the rules
layer's promise on shaped types (recall 1.0, nothing survives) on documents it was not tuned on."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("faker")
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "redaction"
sys.path.insert(0, str(BENCH))

import generate as gen  # noqa: E402
import score as sc  # noqa: E402

from docassist.tasks.recognizers import SHAPED_TYPES  # noqa: E402

SHAPED = set(SHAPED_TYPES) | {"ZIP"}


def test_generator_is_seeded_and_offsets_are_exact():
    a, b, c = gen.generate(14, seed=3), gen.generate(14, seed=3), gen.generate(14, seed=4)
    assert a == b
    assert a != c
    assert {d["kind"] for d in a} == set(gen.KINDS) == {"clinical", "bank", "contract", "email", "claim", "chat", "record"}
    for d in a:
        assert d["entities"]
        for e in d["entities"]:
            assert d["text"][e["start"]:e["end"]] == e["value"]


def test_scorer_arithmetic():
    docs = [{"id": "x", "text": "Alice met Bob at 5 Elm Street", "entities": [
        {"type": "PERSON", "start": 0, "end": 5, "value": "Alice"},
        {"type": "PERSON", "start": 10, "end": 13, "value": "Bob"},
        {"type": "ADDRESS", "start": 17, "end": 29, "value": "5 Elm Street"}]}]
    # Alice whole, Bob missed, the address half covered, one false positive ("met").
    res = sc.score(docs, lambda t: [(0, 5, "PERSON"), (6, 9, "PERSON"), (17, 22, "ADDRESS")])
    person = res["types"]["PERSON"]
    assert person["recall"] == 0.5 and person["precision"] == 0.5 and person["leak_rate"] == 0.5
    assert res["types"]["ADDRESS"]["recall"] == 1.0 and res["types"]["ADDRESS"]["leak_rate"] == 1.0
    assert abs(person["f2"] - 0.5) < 1e-9
    assert res["micro"]["leak_rate"] == pytest.approx(2 / 3)
    failed = sc.score(docs, lambda t: (_ for _ in ()).throw(RuntimeError("boom")))
    assert failed["failed_documents"] == 1 and failed["micro"]["leak_rate"] == 1.0


@pytest.mark.parametrize("seed", [11, 2024])
def test_rules_only_shaped_types_have_full_recall_and_no_survivors(seed):
    docs = gen.generate(60, seed=seed)
    res = sc.score(docs, sc.make_predict(rules_only=True, model=None))
    for t, row in res["types"].items():
        if t in SHAPED and row["gold"]:
            assert row["recall"] == 1.0, (t, row)
            assert row["leak_rate"] == 0.0, (t, [s for s in res["survivors"] if s[0] == t])
    assert res["micro"]["precision"] > 0.95
