"""Score docassist's redaction against labelled synthetic documents.

    python benchmarks/redaction/score.py --n 200 --seed 7 [--rules-only | --model PATH] [--docs docs.jsonl]

Per gold type: recall (entities any part of which was redacted), leak rate (entities of which
any letter or digit survives) and, per predicted type, precision (redactions that overlap some
gold entity; the label is not required to match: a redaction is right if it removed personal
data). F2 weighs recall four times as much as precision: a leak costs more than an extra mask.
Also printed: type-agnostic micro figures and the number of documents where the model layer
failed closed (those count as fully leaked: nothing would have been released, but nothing
redacted either).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from generate import generate  # noqa: E402


def f_beta(p: float, r: float, beta: float = 2.0) -> float:
    b2 = beta * beta
    return 0.0 if p + r == 0 else (1 + b2) * p * r / (b2 * p + r)


def score(docs: list[dict], predict) -> dict:
    """``predict(text) -> list[(start, end, type)]`` or raises (counted as a failed document)."""
    gold_n = defaultdict(int)
    found = defaultdict(int)
    leaked = defaultdict(int)
    pred_n = defaultdict(int)
    pred_ok = defaultdict(int)
    failed = 0
    survivors = []
    for doc in docs:
        text = doc["text"]
        try:
            spans = predict(text)
        except Exception as err:  # noqa: BLE001 - a failed document is scored, not fatal
            failed += 1
            spans = []
            last_error = f"{type(err).__name__}: {err}"
        covered = bytearray(len(text))
        for s, e, _ in spans:
            covered[s:e] = b"\x01" * (e - s)
        for ent in doc["entities"]:
            t = ent["type"]
            gold_n[t] += 1
            s, e = ent["start"], ent["end"]
            if any(covered[s:e]):
                found[t] += 1
            if any(text[i].isalnum() and not covered[i] for i in range(s, e)):
                leaked[t] += 1
                survivors.append((t, ent["value"], doc["id"]))
        gold_cov = bytearray(len(text))
        for ent in doc["entities"]:
            gold_cov[ent["start"]:ent["end"]] = b"\x01" * (ent["end"] - ent["start"])
        for s, e, t in spans:
            pred_n[t] += 1
            if any(gold_cov[s:e]):
                pred_ok[t] += 1
    types = sorted(set(gold_n) | set(pred_n))
    rows = {}
    for t in types:
        r = found[t] / gold_n[t] if gold_n[t] else None
        p = pred_ok[t] / pred_n[t] if pred_n[t] else None
        rows[t] = {"gold": gold_n[t], "predicted": pred_n[t], "precision": p, "recall": r,
                   "f2": f_beta(p or 0.0, r or 0.0) if p is not None and r is not None else None,
                   "leak_rate": leaked[t] / gold_n[t] if gold_n[t] else None}
    G, P = sum(gold_n.values()), sum(pred_n.values())
    mp = sum(pred_ok.values()) / P if P else 0.0
    mr = sum(found.values()) / G if G else 0.0
    out = {"types": rows, "micro": {"gold": G, "predicted": P, "precision": mp, "recall": mr,
                                    "f2": f_beta(mp, mr), "leak_rate": sum(leaked.values()) / G if G else 0.0},
           "documents": len(docs), "failed_documents": failed, "survivors": survivors}
    if failed:
        out["last_error"] = last_error
    return out


def table(res: dict) -> str:
    def fmt(x):
        return "  -  " if x is None else f"{x:.3f}"
    lines = ["| type | gold | predicted | precision | recall | F2 | leak rate |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for t, row in res["types"].items():
        lines.append(f"| {t} | {row['gold']} | {row['predicted']} | {fmt(row['precision'])} | "
                     f"{fmt(row['recall'])} | {fmt(row['f2'])} | {fmt(row['leak_rate'])} |")
    m = res["micro"]
    lines.append(f"| **all (micro)** | {m['gold']} | {m['predicted']} | {fmt(m['precision'])} | "
                 f"{fmt(m['recall'])} | {fmt(m['f2'])} | {fmt(m['leak_rate'])} |")
    return "\n".join(lines)


def make_predict(rules_only: bool, model: str | None):
    from docassist.tasks.redact import ModelLayer, redact_text

    layer = None
    if not rules_only:
        from docassist.engine import load_model
        layer = ModelLayer(load_model(model))

    def predict(text):
        _, reds = redact_text(text, model_layer=layer)
        return [(r.start + offset_of(text, r.page), r.end + offset_of(text, r.page), r.type)
                for r in reds]
    return predict


def offset_of(text: str, page: int) -> int:
    # redact_text splits pages at form feeds; generated documents have one page.
    if page == 1:
        return 0
    parts = text.split("\f")
    return sum(len(p) + 1 for p in parts[: page - 1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="redaction benchmark scorer")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--docs", help="JSONL from generate.py (default: generate --n/--seed now)")
    ap.add_argument("--rules-only", action="store_true")
    ap.add_argument("--model", help="GGUF path for the model layer")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    ap.add_argument("--survivors", type=int, default=0, help="print up to N surviving entities")
    a = ap.parse_args(argv)
    if not a.rules_only and not a.model:
        ap.error("pass --rules-only or --model PATH")
    docs = ([json.loads(ln) for ln in open(a.docs, encoding="utf-8")] if a.docs
            else generate(a.n, a.seed))
    t0 = time.perf_counter()
    res = score(docs, make_predict(a.rules_only, a.model))
    dt = time.perf_counter() - t0
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    mode = "rules-only" if a.rules_only else f"model {Path(a.model).name}"
    print(f"{len(docs)} documents ({'file ' + a.docs if a.docs else f'seed {a.seed}'}), {mode}, "
          f"{dt:.1f} s; model layer failed closed on {res['failed_documents']} document(s)")
    if res.get("last_error"):
        print(f"last failure: {res['last_error']}")
    print(table(res))
    for t, v, d in res["survivors"][: a.survivors]:
        print(f"survivor {t:12} {v!r} ({d})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
