#!/usr/bin/python3
"""CPU time per request of the processes behind a load run, for scripts/bench (BENCH_CPU=1).

  cpu-per-request.py snapshot FILE          writes the CPU ticks of every process (pid, name) to FILE
  cpu-per-request.py report FILE SECONDS RPS  prints µs of CPU per request of remas, postgres and nginx since FILE

Counts processes that lived through the run; a process that started or ended within it is counted from its first or
up to its last sight, which is what a load run of long-lived servers needs.
"""
import json
import os
import sys

NAMES = ("remas", "postgres", "nginx")


def ticks():
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if name in NAMES:
            found["%s %s" % (pid, name)] = int(fields[11]) + int(fields[12])  # utime + stime
    return found


if sys.argv[1] == "snapshot":
    with open(sys.argv[2], "w") as f:
        json.dump(ticks(), f)
else:
    with open(sys.argv[2]) as f:
        before = json.load(f)
    seconds, rps = float(sys.argv[3]), float(sys.argv[4])
    requests = max(rps * seconds, 1.0)
    hz = os.sysconf("SC_CLK_TCK")
    per_name = dict.fromkeys(NAMES, 0)
    for key, value in ticks().items():
        per_name[key.split(" ", 1)[1]] += value - before.get(key, 0)
    print("  ".join("%s %.0f" % (name, per_name[name] / hz / requests * 1e6) for name in NAMES) + " µs/req")
