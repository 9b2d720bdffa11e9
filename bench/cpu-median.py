import os, sys, subprocess, statistics
n = int(os.environ.get('RUNS', '15'))
args = sys.argv[1:]
xs = []
for i in range(n + 1):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, st, ru = os.wait4(p.pid, 0)
    if i: xs.append((ru.ru_utime + ru.ru_stime) * 1000)
print(f"{statistics.median(xs):.1f} ms (min {min(xs):.1f}, max {max(xs):.1f}, n={n}) rss={ru.ru_maxrss//1024}MB")
