#!/usr/bin/env bash
# Install what is missing, build, and run every test (ctest), as CI does.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LCTX_WITH_BROWSER=1 bash scripts/setup.sh   # chromium renders report.html in a test
bash scripts/build.sh
ctest --test-dir build --output-on-failure
# The loaders of user files under libFuzzer with ASan + UBSan (a torch-free clang build in build-fuzz/), from
# the committed seed corpora (fuzz/), each for LCTX_FUZZ_SECONDS (60 by default), two at a time (docs/testing.md).
bash scripts/fuzz.sh
