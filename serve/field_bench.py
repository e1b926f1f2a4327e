"""``ssz bench ingest``: field ingest through the real HTTP API, measured.

* **GPS**: ``pings`` positions of simulated patrol units in batches of ``batch`` posted to ``/v1/field/gps`` by
  ``concurrency`` clients (accepted = written durably before the answer), then one commit of everything pending
  into a twin snapshot (``commit``, the city's field store): pings/s accepted, and pings/s accepted *and*
  committed (all pings over the accept time plus the commit time).
* **SOS**: ``sos`` presses posted one after another to ``/v1/field/sos`` while a client reads
  ``/v1/alerts:stream``: p50/p99/max time from sending the request to the alert arriving in the stream.

The request bodies are built before the clock starts. Numbers depend on the machine and its load (reported).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np


def _gps_batches(lon: float, lat: float, pings: int, batch: int, units: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    now = time.time()
    per_unit = -(-pings // units)
    rows: list[dict[str, Any]] = []
    for u in range(units):
        steps = rng.normal(0, 2e-5, size=(per_unit, 2)).cumsum(axis=0)
        t0 = now - per_unit - 60.0
        for k in range(per_unit):
            if len(rows) >= pings:
                break
            rows.append({"id": f"bench-unit-{u:03d}", "lon": round(lon + steps[k, 0], 7),
                         "lat": round(lat + steps[k, 1], 7), "timestamp": round(t0 + k, 3), "speed": 4.0,
                         "bearing": 90.0, "accuracy": 5.0})
    return [json.dumps({"locations": rows[i:i + batch]}).encode() for i in range(0, len(rows), batch)]


def _stream(url: str, token: str, seen: dict[str, float], ready: threading.Event, stop: threading.Event) -> None:
    try:
        _read_stream(url, token, seen, ready, stop)
    except httpx.HTTPError:
        if not stop.is_set():  # the stream broke during the run: the missing alerts show as not arrived
            raise


def _read_stream(url: str, token: str, seen: dict[str, float], ready: threading.Event,
                 stop: threading.Event) -> None:
    with httpx.stream("GET", f"{url}/v1/alerts:stream", headers={"Authorization": f"Bearer {token}"},
                      timeout=httpx.Timeout(10.0, read=None)) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("data: "):
                d = json.loads(line[6:])
                if d.get("kind") == "sos" and "alert_id" in d:
                    seen.setdefault(d["alert_id"], time.monotonic())
            if stop.is_set():
                return


def bench_ingest(url: str, device_token: str, reader_token: str, commit: Callable[[], str | None], *,
                 pings: int = 50_000, batch: int = 1000, concurrency: int = 4, units: int = 20, sos: int = 50,
                 seed: int = 0) -> dict[str, Any]:
    """Measure GPS ingest and SOS-to-stream latency against the API at ``url`` (see the module docstring).

    Parameters
    ----------
    url
        The API (``http://127.0.0.1:PORT``) serving a city's command room.
    device_token, reader_token
        Tokens of a ``device`` (posts) and an ``operator`` or ``analyst`` (reads the stream and the map).
    commit
        Commits the city's pending field inputs to a snapshot; returns its id.
    pings, batch, concurrency, units
        GPS positions in all, per request, requests in flight, simulated units.
    sos
        SOS presses (sequential).

    Returns
    -------
    dict
        ``gps`` (accepted, refused, seconds, pings/s accepted and accepted+committed, snapshot) and ``sos``
        (n, p50/p99/max ms), with the load average.

    Raises
    ------
    httpx.HTTPStatusError
        When the API refuses a request (a wrong token, no city).
    """
    dev = {"Authorization": f"Bearer {device_token}", "Content-Type": "application/json"}
    rd = {"Authorization": f"Bearer {reader_token}"}
    with httpx.Client(timeout=120) as c:
        m = c.get(f"{url}/console/map", headers=rd)
        m.raise_for_status()
        mp = m.json()
    xs, ys = [p[0] for p in mp["zone"]], [p[1] for p in mp["zone"]]
    lon, lat = sum(xs) / len(xs), sum(ys) / len(ys)
    poles = [p["id"] for p in mp["places"] if p["kind"] == "sos"]
    bodies = _gps_batches(lon, lat, pings, batch, units, seed)
    load_before = os.getloadavg()

    accepted = refused = 0
    lock = threading.Lock()

    def post(body: bytes, client: httpx.Client) -> None:
        nonlocal accepted, refused
        r = client.post(f"{url}/v1/field/gps", content=body, headers=dev)
        r.raise_for_status()
        with lock:
            accepted += r.json()["accepted"]
            refused += r.json()["refused"]

    clients = [httpx.Client(timeout=120) for _ in range(concurrency)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(lambda ib: post(ib[1], clients[ib[0] % concurrency]), enumerate(bodies)))
    accept_s = time.monotonic() - t0
    t1 = time.monotonic()
    snap = commit()
    commit_s = time.monotonic() - t1
    for cl in clients:
        cl.close()

    lat_ms: list[float] = []
    if sos and poles:
        seen: dict[str, float] = {}
        ready, stop = threading.Event(), threading.Event()
        th = threading.Thread(target=_stream, args=(url, reader_token, seen, ready, stop), daemon=True)
        th.start()
        if not ready.wait(30):
            raise RuntimeError("the alert stream did not open within 30 s")
        with httpx.Client(timeout=60) as c:
            for i in range(sos):
                body = json.dumps({"pole_id": poles[i % len(poles)], "text": f"bench {seed}-{i}-{time.time_ns()}"})
                ts = time.monotonic()
                r = c.post(f"{url}/v1/field/sos", content=body, headers=dev)
                r.raise_for_status()
                aid = r.json()["alert_id"]
                deadline = time.monotonic() + 10
                while aid not in seen and time.monotonic() < deadline:
                    time.sleep(0.002)
                if aid in seen:
                    lat_ms.append((seen[aid] - ts) * 1000)
        stop.set()
    arr = np.asarray(lat_ms) if lat_ms else np.asarray([np.nan])
    return {
        "gps": {"pings": pings, "batch": batch, "concurrency": concurrency, "accepted": accepted,
                "refused": refused, "accept_s": round(accept_s, 3), "commit_s": round(commit_s, 3),
                "accepted_pings_per_s": round(accepted / accept_s, 1),
                "accepted_and_committed_pings_per_s": round(accepted / (accept_s + commit_s), 1),
                "snapshot": snap, "target_pings_per_s": 5000},
        "sos": {"n": sos, "arrived": len(lat_ms), "p50_ms": round(float(np.percentile(arr, 50)), 1),
                "p99_ms": round(float(np.percentile(arr, 99)), 1), "max_ms": round(float(np.max(arr)), 1),
                "target_p99_ms": 500},
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after":
            [round(x, 2) for x in os.getloadavg()],
    }
