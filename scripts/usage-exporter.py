#!/usr/bin/env python3
"""A per-user process exporter for the usage-report test (scripts/test starts it; UsageReportTests reads it through
Prometheus). It serves what prometheus/process-exporter.yml makes process-exporter serve, with values known in advance:
the user of uid 7001 runs 2 cores and holds 1 GiB resident, uid 7002 half a core and 256 MiB.

Usage: usage-exporter.py PORT"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import exporter  # noqa: E402

START = time.time()
USERS = {"7001": (2.0, 1 << 30), "7002": (0.5, 256 << 20)}


def render():
    elapsed = time.time() - START
    lines = []
    for uid, (cores, resident) in USERS.items():
        lines.append('namedprocess_namegroup_cpu_seconds_total{groupname="%s",mode="user"} %f' % (uid, cores * elapsed))
        lines.append('namedprocess_namegroup_memory_bytes{groupname="%s",memtype="resident"} %d' % (uid, resident))
    return "\n".join(lines) + "\n"


exporter.serve(sys.argv[1], render)
