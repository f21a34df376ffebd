"""Scrapes and checks ndprelay's Prometheus metrics for 25-metrics.sh (run inside the
relay's namespace with /usr/bin/python3: Debian's python3-prometheus-client parses).

  metrics.py check URL NDPRELAY CTL_SOCKET   scrape, parse, compare with `status --json`
  metrics.py textfile FILE                   parse `status --prometheus` output
  metrics.py latency URL SECS                scrape every 0.1 s for SECS seconds; prints
                                             "N MEDIAN_MS MAX_MS" (each scrape timed
                                             from connect to the last byte)
  metrics.py code METHOD URL                 print the HTTP status code
"""

import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def fail(msg):
    print(f"metrics.py: {msg}", file=sys.stderr)
    sys.exit(1)


def parse(text):
    """{(sample name, sorted label items): value} and {family name: type}."""
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in samples:
                fail(f"sample {key} twice")
            samples[key] = s.value
    if not samples:
        fail("no samples")
    return samples, types


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        if not ctype.startswith("text/plain; version=0.0.4"):
            fail(f"content type {ctype!r}")
        return r.read().decode()


def get(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        fail(f"no sample {key}")
    return samples[key]


def watched(samples):
    """The values compared with `status --json`."""
    return {
        "relayed_ns": get(samples, "ndprelay_relayed_total", message="ns"),
        "relayed_na": get(samples, "ndprelay_relayed_total", message="na"),
        "rx_frames": get(samples, "ndprelay_rx_frames_total"),
        "hist_count": get(samples, "ndprelay_ns_na_relay_seconds_count"),
        "eth0_received": get(samples, "ndprelay_port_frames_total", port="eth0", direction="received"),
        "br0_sent": get(samples, "ndprelay_port_frames_total", port="br0", direction="sent"),
        "br0": {
            st: get(samples, "ndprelay_bindings", port="br0", state=st)
            for st in ["incomplete", "stale", "delay", "probe", "reachable"]
        },
    }


def port(doc, name):
    return next(p for p in doc["ports"] if p["name"] == name)


def from_json(doc):
    c = doc["counters"]
    states = ["incomplete", "stale", "delay", "probe", "reachable"]
    return {
        "relayed_ns": c["relayed_ns"],
        "relayed_na": c["relayed_na"],
        "rx_frames": c["rx_frames"],
        "hist_count": doc["ns_na_time"]["count"],
        "eth0_received": port(doc, "eth0")["frames"]["received"],
        "br0_sent": port(doc, "br0")["frames"]["sent"],
        "br0": {
            st: sum(1 for b in doc["bindings"] if b["port"] == "br0" and b["state"] == st)
            for st in states
        },
    }


def check(url, ndprelay, ctl):
    # Counters only grow: when two scrapes around `status --json` agree, the document
    # taken between them has the same values. Retried while the relay is busy.
    for _ in range(20):
        s1, types = parse(scrape(url))
        doc = json.loads(
            subprocess.run(
                [ndprelay, "status", "--control-socket", ctl, "--json"],
                check=True, capture_output=True, text=True,
            ).stdout
        )
        s2, _ = parse(scrape(url))
        if watched(s1) == watched(s2):
            break
        time.sleep(0.3)
    else:
        fail("the metrics never held still for two scrapes")
    got, want = watched(s2), from_json(doc)
    if got != want:
        fail(f"metrics {got} != status --json {want}")
    if got["relayed_ns"] <= 0:
        fail("no relayed NS counted")
    if got["eth0_received"] <= 0 or got["br0_sent"] <= 0:
        fail(f"no frames counted on the ports: {got}")
    if got["hist_count"] <= 0:
        fail("the NS->NA histogram is empty")
    if got["br0"]["reachable"] != 2:
        fail(f"br0 bindings {got['br0']}, expected the two guests confirmed (reachable)")
    if types.get("ndprelay_relayed") != "counter":
        fail(f"ndprelay_relayed_total is not a counter: {types.get('ndprelay_relayed')}")
    if types.get("ndprelay_ns_na_relay_seconds") != "histogram":
        fail("ndprelay_ns_na_relay_seconds is not a histogram")
    # Cumulative buckets ending in +Inf = count, the sum in seconds.
    buckets = sorted(
        (float(dict(k[1])["le"]), v)
        for k, v in s2.items()
        if k[0] == "ndprelay_ns_na_relay_seconds_bucket"
    )
    if buckets[0][0] != 0.00001 or buckets[-1][0] != float("inf"):
        fail(f"buckets {buckets}")
    counts = [v for _, v in buckets]
    if counts != sorted(counts) or counts[-1] != got["hist_count"]:
        fail(f"buckets not cumulative up to the count: {buckets}")
    total = get(s2, "ndprelay_ns_na_relay_seconds_sum")
    if not 0 < total < got["hist_count"]:
        fail(f"sum {total} s for {got['hist_count']} answers")
    for name, kind in types.items():
        if not name.startswith("ndprelay_"):
            fail(f"family {name} lacks the prefix")
    slowest = next((le for le, v in buckets if v == counts[-1]), None)
    print(
        f"relayed_ns={got['relayed_ns']:.0f} answers_timed={got['hist_count']:.0f} "
        f"mean_us={total / got['hist_count'] * 1e6:.0f} all_within_s={slowest} "
        f"br0={got['br0']} families={len(types)}"
    )


def textfile(path):
    samples, types = parse(open(path).read())
    get(samples, "ndprelay_relayed_total", message="ns")
    get(samples, "ndprelay_ns_na_relay_seconds_count")
    print(f"families={len(types)} samples={len(samples)}")


def latency(url, secs):
    times = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t0 = time.monotonic()
        text = scrape(url)
        times.append((time.monotonic() - t0) * 1000)
        if "ndprelay_rx_frames_total" not in text:
            fail("scrape without counters")
        time.sleep(0.1)
    slowest = " ".join(f"{t:.1f}" for t in sorted(times)[-5:])
    print(f"{len(times)} {statistics.median(times):.1f} {max(times):.1f} slowest: {slowest}")


def code(method, url):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":
        check(*args)
    elif cmd == "textfile":
        textfile(args[0])
    elif cmd == "latency":
        latency(args[0], float(args[1]))
    elif cmd == "code":
        code(*args)
    else:
        fail(f"unknown command {cmd}")
