"""Run one command and print its wall time, peak RSS and exit code as JSON.

    python -m bench.timed -- refgraph stats --db refs.db

A process of its own, and a small one, on purpose: a child's peak RSS (rusage ``ru_maxrss``)
counts the memory of the process it was forked from until it execs, so a command started
straight from the bench, which has held a million-node plan, would report the bench's size.
Output of the command goes to /dev/null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> dict:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE)
        stderr = proc.stderr.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)  # blocks until it ends; the rusage of that process alone
        seconds = time.perf_counter() - started
    proc.stderr.close()
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
            "exit": os.waitstatus_to_exitcode(status), "stderr": stderr[-500:]}


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(args[1:] if args[:1] == ["--"] else args)))
