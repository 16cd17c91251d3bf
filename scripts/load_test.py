#!/usr/bin/env python3
"""A bounded load test of `gpt2web serve` on 127.0.0.1: many concurrent clients fetching shards.

Starts the real server (a separate process, `python -m gpt2web.host.server`), then runs
`--clients` concurrent clients for `--seconds` (or until `--max-requests`), each on its own
keep-alive connection. Each request asks for one shard of the model, with a Range of
`--range-kb` kB at a random offset (every `--full-every`-th request fetches a whole shard), and
every answer is checked: status 206 (200 for whole files), Content-Range, length and the bytes
themselves against the file on disk. Prints requests/s, MB/s, errors and latency percentiles.

    python3 scripts/load_test.py                      # 50 clients, 10 s, weights/demo
    python3 scripts/load_test.py --clients 200 --seconds 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(root: Path, weights: Path | None) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "gpt2web.host.server", "--root", str(root), "--port", "0"]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "py"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    line = proc.stdout.readline().strip()
    if not line.startswith("Serving gpt2web at http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    return proc, int(line.rstrip("/").rsplit(":", 1)[1])


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def client(port: int, files: list[tuple[str, bytes]], args, deadline: float, stats: dict, rng: random.Random):
    reader = writer = None
    while time.monotonic() < deadline and stats["requests"] < args.max_requests:
        stats["requests"] += 1
        path, data = rng.choice(files)
        full = args.full_every and stats["requests"] % args.full_every == 0
        size = min(args.range_kb * 1024, len(data))
        start = 0 if full else rng.randrange(0, len(data) - size + 1)
        want = data if full else data[start:start + size]
        rng_header = "" if full else f"Range: bytes={start}-{start + size - 1}\r\n"
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{rng_header}\r\n".encode())
            await writer.drain()
            status, headers, body = await asyncio.wait_for(read_response(reader), args.timeout)
            ok = (status == (200 if full else 206) and body == want and
                  (full or headers.get("content-range") == f"bytes {start}-{start + size - 1}/{len(data)}"))
            if not ok:
                stats["errors"] += 1
                stats["first_error"] = stats.get("first_error") or f"{path}: status {status}, {len(body)} bytes"
            if headers.get("connection", "").lower() == "close":
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            stats["errors"] += 1
            stats["first_error"] = stats.get("first_error") or f"{path}: {type(e).__name__}: {e}"
            if writer is not None:
                writer.close()
            writer = None
            continue
        stats["latencies"].append(time.perf_counter() - t0)
        stats["bytes"] += len(body)
    if writer is not None:
        writer.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


async def run(args) -> dict:
    weights = args.weights or ROOT / "weights"
    manifest = json.loads((weights / args.model / "manifest.json").read_text())
    files = [(f"/weights/{args.model}/{s['file']}", (weights / args.model / s["file"]).read_bytes())
             for s in manifest["shards"]]
    proc, port = start_server(ROOT, args.weights)
    try:
        stats = {"requests": 0, "errors": 0, "bytes": 0, "latencies": []}
        rng = random.Random(args.seed)
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        await asyncio.gather(*(client(port, files, args, deadline, stats, random.Random(rng.random()))
                               for _ in range(args.clients)))
        elapsed = time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(10)
    lat = sorted(stats["latencies"])
    return {
        "clients": args.clients, "seconds": round(elapsed, 2), "requests": stats["requests"],
        "errors": stats["errors"], "first_error": stats.get("first_error"),
        "requests_per_s": round(stats["requests"] / elapsed, 1),
        "mb_per_s": round(stats["bytes"] / elapsed / 1e6, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 1), "p99_ms": round(percentile(lat, 99) * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "range_kb": args.range_kb, "full_every": args.full_every, "model": args.model,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max-requests", type=int, default=1_000_000)
    ap.add_argument("--range-kb", type=int, default=64, help="size of each Range request")
    ap.add_argument("--full-every", type=int, default=20, help="every N-th request a whole shard (0: never)")
    ap.add_argument("--model", default="demo")
    ap.add_argument("--weights", type=Path, default=None, help="folder served at /weights/ (default weights/)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        ap.error("--clients must be at least 1 and --seconds positive")
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['clients']} clients for {result['seconds']} s on 127.0.0.1 ({result['machine']}):")
        print(f"  {result['requests']} requests, {result['requests_per_s']} requests/s, {result['mb_per_s']} MB/s")
        print(f"  errors: {result['errors']}" + (f" (first: {result['first_error']})" if result["errors"] else ""))
        print(f"  latency: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
