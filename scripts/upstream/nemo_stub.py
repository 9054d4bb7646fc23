#!/usr/bin/env python3
"""Creates DIR/nemo/collections/asr/parts/utils/manifest_utils.py with read_manifest/write_manifest (JSON lines),
the only NeMo functions RULER's call_api.py and evaluate.py import, so they run unmodified without NeMo."""
import os
import sys

d = os.path.join(sys.argv[1], "nemo", "collections", "asr", "parts", "utils")
os.makedirs(d, exist_ok=True)
for sub in ["nemo", "nemo/collections", "nemo/collections/asr", "nemo/collections/asr/parts", "nemo/collections/asr/parts/utils"]:
    open(os.path.join(sys.argv[1], sub, "__init__.py"), "a").close()
with open(os.path.join(d, "manifest_utils.py"), "w") as f:
    f.write('''import json


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_manifest(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\\n")
''')
