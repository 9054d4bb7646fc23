#!/usr/bin/env python3
"""A stand-in for a vLLM server (PUT /generate {"prompt": ...} -> {"text": [answer]}) for running RULER's own
call_api.py on lctx data without a model. It knows the references of the records it was given and answers
each prompt with one of several deterministic variants (all references, the first only, case variants with
Unicode capitals such as the Kelvin sign U+212A, empty, unrelated text), so that scores are neither 0 nor 100
and case folding matters.

usage: fake_vllm.py PORT RECORD_FILES...
"""
import hashlib
import http.server
import json
import sys

PORT = int(sys.argv[1])
answers = {}


def variants(refs):
    j = ", ".join(refs)
    kelvin = j.upper().replace("K", "\u212a")  # lowercases to k in Python
    dotted = j.upper().replace("I", "\u0130")  # lowercases to i + U+0307: no longer matches
    sigma = j.upper() + " \u039f\u0394\u039f\u03a3"
    return [j, refs[0], kelvin, dotted, sigma, "", "  \n", "no idea", j.upper(), "The answer: " + j + "."]


for path in sys.argv[2:]:
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        prompt = r["input"] + r.get("answer_prefix", "")
        h = hashlib.sha256(prompt.encode()).hexdigest()
        v = variants(r["outputs"])
        answers[h] = v[(int(h[:8], 16) + r["index"]) % len(v)]


class H(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        h = hashlib.sha256(body["prompt"].encode()).hexdigest()
        out = json.dumps({"text": [answers.get(h, "unknown prompt")]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
