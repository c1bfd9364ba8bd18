"""The Python client's OpenMetrics parser as a long-running checker for the
fuzz target fuzz/fuzz_targets/openmetrics_python.rs.

Reads documents framed as a 4-byte big-endian length and that many bytes of
UTF-8 from stdin; answers each with one JSON line: {"ok": true, "families":
[...]} with every family's name, help and samples, or {"ok": false,
"error": "..."} when the parser refuses the document.
"""
import json
import struct
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

stdin = sys.stdin.buffer
while True:
    head = stdin.read(4)
    if len(head) < 4:
        break
    (length,) = struct.unpack(">I", head)
    text = stdin.read(length).decode("utf-8")
    try:
        families = [
            {
                "name": f.name,
                "help": f.documentation,
                "samples": [[s.name, s.labels, repr(float(s.value))] for s in f.samples],
            }
            for f in text_string_to_metric_families(text)
        ]
        answer = {"ok": True, "families": families}
    except Exception as e:  # the parser's refusal is the finding
        answer = {"ok": False, "error": repr(e)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
