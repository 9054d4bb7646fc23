#!/usr/bin/env python3
"""Scores lctx-generated BABILong data with BABILong's own compare_answers, read the way BABILong's
collect_results.py reads result CSVs, and compares with `lctx score` on the same CSVs (full precision).

  python3 scripts/upstream/compare_babilong.py BABILONG_CHECKOUT [OUT_DIR]

Writes OUT/data (lctx generate --layout babilong), checks its README `configs:` against the files (and loads
config "4k" with `datasets` when that module is installed), writes one result CSV per task and length as
scripts/run_model_on_babilong.py does (pandas to_csv of target/output/question) with deterministic
model-like outputs (the target, capitalised, with Unicode capitals such as the Kelvin sign U+212A, a wrong
label, "None", empty, two labels ...), then compares per-file accuracies. Needs pandas and yaml.
Env: LCTX (binary), LENGTHS (default 0,4k), SAMPLES (default 20).
"""
import glob
import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import pandas as pd
import yaml

BAB = os.path.abspath(sys.argv[1])
OUT = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "/tmp/lctx-compare-babilong")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LCTX = os.environ.get("LCTX") or next(p for p in [os.path.join(ROOT, "build/apps/lctx/lctx"),
                                                 os.path.join(ROOT, "build-notorch/apps/lctx/lctx")] if os.path.exists(p))
LENGTHS = os.environ.get("LENGTHS", "0,4k")
SAMPLES = os.environ.get("SAMPLES", "20")

# BABILong's metrics module, loaded by path (its package __init__ pulls in plotting modules).
spec = importlib.util.spec_from_file_location("babilong_metrics", os.path.join(BAB, "babilong", "metrics.py"))
metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metrics)

os.makedirs(OUT, exist_ok=True)
subprocess.run([LCTX, "generate", "--suite", "babilong", "--layout", "babilong", "--lengths", LENGTHS,
                "--samples", SAMPLES, "--out", os.path.join(OUT, "data")], check=True, stderr=subprocess.DEVNULL)

# The dataset card: every config/split names an existing JSON array of {input, question, target}.
card = open(os.path.join(OUT, "data", "README.md")).read().split("---")[1]
configs = yaml.safe_load(card)["configs"]
for c in configs:
    for df in c["data_files"]:
        rows = json.load(open(os.path.join(OUT, "data", df["path"])))
        assert rows and set(rows[0]) == {"input", "question", "target"}, df
print(f"README configs: {[c['config_name'] for c in configs]}, {sum(len(c['data_files']) for c in configs)} files ok")
try:
    import datasets
    ds = datasets.load_dataset(os.path.join(OUT, "data"), "4k")
    print("datasets.load_dataset(dir, '4k'):", {k: len(v) for k, v in ds.items()})
except ImportError:
    print("datasets is not installed: the layout was checked against the README configs only")


def outputs_for(task, target, question, i):
    labels = metrics.TASK_LABELS[task]
    other = next((l for l in labels if l.lower() != target.lower() and l.lower() not in question.lower()), labels[0])
    kelvin = target.upper().replace("K", "\u212a")
    v = [target, target.capitalize() + ".", "The answer is " + target + ". Or " + other, kelvin, target.upper(),
         other, "None", "", "nan", target + " and " + other, "\u0130" + target.upper(), "'" + target + "'"]
    h = int(hashlib.sha256(f"{task}/{i}/{question}".encode()).hexdigest()[:8], 16)
    return v[h % len(v)]


res = os.path.join(OUT, "results")
os.makedirs(res, exist_ok=True)
for c in configs:
    for df_entry in c["data_files"]:
        task, length = df_entry["split"], c["config_name"]
        rows = json.load(open(os.path.join(OUT, "data", df_entry["path"])))
        df = pd.DataFrame({"target": [r["target"] for r in rows],
                           "output": [outputs_for(task, r["target"], r["question"], i) for i, r in enumerate(rows)],
                           "question": [r["question"] for r in rows]})
        df.to_csv(os.path.join(res, f"{task}_{length}_instruction_yes_examples_yes_post_prompt_yes_chat_template_no.csv"))

# BABILong's accuracy per file (collect_results.get_model_results, the same steps).
theirs = {}
for fn in sorted(glob.glob(os.path.join(res, "*.csv"))):
    stem = os.path.basename(fn)[:-4]
    task, length = stem.split("_")[0], stem.split("_")[1]
    # BABILong pins pandas 2.2.2, whose default missing values include "None"; pandas < 2 lacks it.
    df = pd.read_csv(fn, na_values=["None"] if int(pd.__version__.split(".")[0]) < 2 else None)
    if df["output"].dtype != object:
        df["output"] = df["output"].astype(str)
    df["output"] = df["output"].fillna("")
    df["correct"] = df.apply(lambda row: metrics.compare_answers(target=row["target"], output=row["output"],
                                                                 question=row["question"],
                                                                 task_labels=metrics.TASK_LABELS[task]), axis=1)
    theirs[(task, length)] = 100 * df["correct"].sum() / len(df) if len(df) > 0 else 0

summary = os.path.join(OUT, "lctx-summary.json")
subprocess.run([LCTX, "score", *sorted(glob.glob(os.path.join(res, "*.csv"))), "--out", summary], check=True,
               stdout=subprocess.DEVNULL)
ours = {}
for r in json.load(open(summary))["results"]:
    name = {0: "0k"}.get(r["length"], r["length_label"].replace("m", "M"))
    ours[(r["task"], name if r["length"] else "0k")] = r["score"]

bad = 0
for key in sorted(theirs, key=lambda k: (int(k[0][2:]), k[1])):
    same = key in ours and ours[key] == theirs[key]
    bad += not same
    print(f"{key[0]:5s} {key[1]:5s} babilong {theirs[key]!r:20s} lctx {ours.get(key)!r:20s} {'ok' if same else 'DIFFERENT'}")
print("compare_babilong:", "identical" if bad == 0 else f"{bad} DIFFERENT")
sys.exit(1 if bad else 0)
