"""Reads OpenMetrics text from stdin with the official Python client's parser
and prints what it understood as JSON, for tests/openmetrics.rs to compare.

Floats are printed with repr() so that NaN and infinities survive JSON.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def exemplar(e):
    if e is None:
        return None
    return {"labels": e.labels, "value": repr(float(e.value)), "timestamp": e.timestamp and repr(float(e.timestamp))}


families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": repr(float(s.value)), "exemplar": exemplar(s.exemplar)}
            for s in family.samples
        ],
    })
json.dump(families, sys.stdout)
