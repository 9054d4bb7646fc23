#!/usr/bin/env bash
# Trains lctx's default SentencePiece tokenizer from the haystack corpus (run once; the result is committed
# as assets/tokenizer/lctx-8k.model because checkpoints depend on it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${LCTX_DATA:-$ROOT/data}
tmp=$(mktemp -d)
# one paragraph per line, files in name order, whitespace normalised
for f in $(ls "$DATA"/sotu/*.txt | sort); do tr -s ' \t\r' ' ' < "$f" | sed '/^ *$/d'; done > "$tmp/corpus.txt"
# word lists so that task vocabularies (wordnet lemmas, names) tokenize sensibly too
cut -d' ' -f1 /usr/share/wordnet/index.noun /usr/share/wordnet/index.adj /usr/share/wordnet/index.verb \
  | grep -v '^ ' | grep -v _ | awk 'NR<=60000' | paste -sd' ' | fold -w 2000 -s >> "$tmp/corpus.txt"
cat "$DATA"/names-*/names.txt | paste -sd' ' | fold -w 2000 -s >> "$tmp/corpus.txt"
spm_train --input="$tmp/corpus.txt" --model_prefix="$ROOT/assets/tokenizer/lctx-8k" --vocab_size=8192 \
  --model_type=unigram --character_coverage=1.0 --byte_fallback=true --split_digits=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false --max_sentence_length=100000 \
  --num_threads=1 --input_sentence_size=0 --shuffle_input_sentence=false --minloglevel=2
rm -f "$ROOT/assets/tokenizer/lctx-8k.vocab"; rm -rf "$tmp"
sha256sum "$ROOT/assets/tokenizer/lctx-8k.model"
