#!/usr/bin/env bash
# Install what is missing, build, and run every test (ctest), as CI does.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure
