#!/usr/bin/env bash
# Renders an lctx report.html in headless Chromium and saves a PNG screenshot.
# usage: scripts/screenshot_report.sh REPORT.html OUT.png [WIDTH [HEIGHT]]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2
  exit 2
fi
html=$1 out=$2 width=${3:-1400} height=${4:-3000}
[ -f "$html" ] || { echo "screenshot_report: no such file: $html" >&2; exit 1; }
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$(command -v "$b"); break; fi
  done
fi
[ -n "$browser" ] || { echo "screenshot_report: chromium not found (set CHROMIUM=...)" >&2; exit 1; }
abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
case "$out" in /*) abs_out=$out ;; *) abs_out=$(pwd)/$out ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$abs_out"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$profile" --screenshot="$abs_out" --window-size="$width,$height" "file://$abs_html" \
  >"$profile/log" 2>&1 || { cat "$profile/log" >&2; exit 1; }
[ -s "$abs_out" ] || { echo "screenshot_report: chromium wrote no screenshot" >&2; cat "$profile/log" >&2; exit 1; }
echo "wrote $abs_out"
