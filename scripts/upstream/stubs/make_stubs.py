#!/usr/bin/env python3
"""Writes stand-ins for the few third-party modules RULER's data scripts import and Debian does not package, so
that RULER's prepare.py runs unmodified on a machine without PyPI (used by scripts/bench_vs_ruler.sh):

  nemo.collections.common.tokenizers.sentencepiece_tokenizer.SentencePieceTokenizer -> the sentencepiece module
      (text_to_tokens = one encode call of the whole text, as NeMo's wrapper does)
  wonderwords.random_word._get_words_from_text_file -> WordNet lemma lists (nouns, adjectives, verbs), thinned
      evenly to about wonderwords' sizes (6800 nouns, 1350 adjectives, 1000 verbs; niah.py builds all
      adjective-noun pairs, 9M strings)
  nltk (data.find, download, tokenize.sent_tokenize) -> a regular-expression sentence splitter; NLTK's punkt
      model cannot be downloaded here, and punkt is slower, so RULER is timed faster than it really is

usage: make_stubs.py OUT_DIR WORDNET_DIR
"""
import os
import sys

out, wordnet = sys.argv[1], os.path.abspath(sys.argv[2])


def write(rel, text):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


for pkg in ["nemo", "nemo/collections", "nemo/collections/common", "nemo/collections/common/tokenizers"]:
    write(pkg + "/__init__.py", "")
write("nemo/collections/common/tokenizers/sentencepiece_tokenizer.py", '''import sentencepiece


class SentencePieceTokenizer:
    def __init__(self, model_path):
        self.sp = sentencepiece.SentencePieceProcessor(model_file=model_path)

    def text_to_tokens(self, text):
        return self.sp.encode_as_pieces(text)

    def tokens_to_text(self, tokens):
        return self.sp.decode_pieces(tokens)
''')
write("wonderwords/__init__.py", "from . import random_word\n")
write("wonderwords/random_word.py", f'''import os

_FILES = {{"nounlist.txt": "index.noun", "adjectivelist.txt": "index.adj", "verblist.txt": "index.verb"}}
_SIZES = {{"nounlist.txt": 6800, "adjectivelist.txt": 1350, "verblist.txt": 1000}}


def _get_words_from_text_file(name):
    words = []
    with open(os.path.join({wordnet!r}, _FILES[name]), encoding="latin-1") as f:
        for line in f:
            if line.startswith(" "):
                continue
            w = line.split(" ", 1)[0]
            if w.isalpha() and w.islower():
                words.append(w)
    step = max(1, len(words) // _SIZES[name])
    return words[::step][:_SIZES[name]]
''')
write("nltk/__init__.py", "from . import data, tokenize\n\n\ndef download(*a, **k):\n    return True\n")
write("nltk/data.py", "def find(name):\n    return name\n")
write("nltk/tokenize.py", '''import re

_SPLIT = re.compile(r"(?<=[.!?])\\s+(?=[A-Z0-9\\"'(])")


def sent_tokenize(text, language="english"):
    return [s for s in _SPLIT.split(text) if s]
''')
print("stubs in", out)
