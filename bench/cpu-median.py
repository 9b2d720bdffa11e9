#!/usr/bin/env python3
# CPU time (user + sys, from wait4: microseconds, unlike GNU time) of a command: median of RUNS
# (default 15) after one uncounted run. Used for bench/results/startup.md:
#   RUNS=21 python3 bench/cpu-median.py node_modules/node/bin/node bin/dbs.js plan list
import os, sys, subprocess, statistics
n = int(os.environ.get('RUNS', '15'))
args = sys.argv[1:]
xs = []
for i in range(n + 1):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, st, ru = os.wait4(p.pid, 0)
    if i: xs.append((ru.ru_utime + ru.ru_stime) * 1000)
print(f"{statistics.median(xs):.1f} ms (min {min(xs):.1f}, max {max(xs):.1f}, n={n}) rss={ru.ru_maxrss//1024}MB")
