"""Measures what the console costs the server while someone looks at it.

Usage: console_cost.py URL TOKEN SERVER_PID SECONDS JOB

For each page (none open, the jobs page, a job's graph, its checkpoints, its live
results) it lets the page settle, then for SECONDS counts the requests the page made
(the browser's resource timings) and the server's CPU time (/proc/PID/stat), and
prints one JSON line per page.

The running job's own CPU drifts by more than a page adds, so it then measures each
endpoint the pages poll on its own: the server's CPU over a burst of requests, less
what the server used in as long a quiet spell just before, per request.
"""

import json
import os
import sys
import time
import urllib.request

from browser import browser, css, login, visible, wait

URL, TOKEN, PID, SECONDS, JOB = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    with open(f"/proc/{PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def measure(driver, page):
    if page is None:
        driver.get("about:blank")
    else:
        driver.get(f"{URL}/#{page}")
        driver.refresh()
        wait(driver, f"{page} shows", lambda: not visible(driver, "#login") and css(driver, "#view *"))
    time.sleep(3)
    driver.execute_script("performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings()")
    cpu, start = cpu_seconds(), time.time()
    time.sleep(SECONDS)
    cpu, elapsed = cpu_seconds() - cpu, time.time() - start
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.transferSize || 0])")
    return {
        "page": page or "none",
        "requests_per_second": round(len(entries) / elapsed, 2),
        "kib_per_second": round(sum(size for _, size in entries) / elapsed / 1024, 2),
        "server_cpu_percent": round(100 * cpu / elapsed, 2),
    }


def per_request(path, count=300):
    request = urllib.request.Request(f"{URL}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    cpu, start = cpu_seconds(), time.time()
    time.sleep(5)
    quiet = (cpu_seconds() - cpu) / (time.time() - start)
    cpu, start, size = cpu_seconds(), time.time(), 0
    for _ in range(count):
        with urllib.request.urlopen(request) as reply:
            size += len(reply.read())
    cpu, elapsed = cpu_seconds() - cpu, time.time() - start
    return {
        "endpoint": path,
        "server_cpu_ms_per_request": round(1000 * max(cpu - quiet * elapsed, 0) / count, 3),
        "latency_ms": round(1000 * elapsed / count, 2),
        "kib_per_request": round(size / count / 1024, 2),
    }


def main():
    driver = browser()
    try:
        driver.get(URL)
        login(driver, TOKEN)
        wait(driver, "the jobs page shows", lambda: visible(driver, "#jobs"))
        for page in [None, "/jobs", f"/jobs/{JOB}/graph", f"/jobs/{JOB}/checkpoints",
                     f"/jobs/{JOB}/results", None]:
            print(json.dumps(measure(driver, page)), flush=True)
    finally:
        driver.quit()
    for path in ["/v1/jobs", f"/v1/jobs/{JOB}", f"/v1/jobs/{JOB}/checkpoints", "/metrics"]:
        print(json.dumps(per_request(path)), flush=True)


if __name__ == "__main__":
    main()
