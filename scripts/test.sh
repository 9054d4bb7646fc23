#!/usr/bin/env bash
# Install what is missing, build, and run every test (ctest), as CI does.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LCTX_WITH_BROWSER=1 bash scripts/setup.sh   # chromium renders report.html in a test
bash scripts/build.sh
ctest --test-dir build --output-on-failure
