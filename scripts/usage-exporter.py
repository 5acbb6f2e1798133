#!/usr/bin/env python3
"""A per-user process exporter for the usage-report test (scripts/test starts it; UsageReportTests reads it through
Prometheus). It serves what prometheus/process-exporter.yml makes process-exporter serve, with values known in advance:
the user of uid 7001 runs 2 cores and holds 1 GiB resident, uid 7002 half a core and 256 MiB.

Usage: usage-exporter.py PORT"""
import http.server
import sys
import time

START = time.time()
USERS = {"7001": (2.0, 1 << 30), "7002": (0.5, 256 << 20)}


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        elapsed = time.time() - START
        lines = []
        for uid, (cores, resident) in USERS.items():
            lines.append('namedprocess_namegroup_cpu_seconds_total{groupname="%s",mode="user"} %f' % (uid, cores * elapsed))
            lines.append('namedprocess_namegroup_memory_bytes{groupname="%s",memtype="resident"} %d' % (uid, resident))
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Metrics).serve_forever()
