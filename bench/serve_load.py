"""``asr serve`` under load on this machine: how many real-time streams it holds, with what
latency, and what hostile clients cost it. Loopback only; every phase bounded in count and
time, and the server is stopped at the end.

The recipe's streaming model is served with its default limits (``asr serve``'s settings, but
``--max-streams`` above the largest N so that only the capacity check refuses), greedy and
with beam 20 + the recipe's LM and tuned weights. For N = 1, 2, 4, ... concurrent clients,
all started within ``--ramp`` seconds (so that the N streams are open together for most of
the phase: the most open at once is measured), each streams ``--utts`` recorded test
utterances (UQM test400, people) in 100 ms messages at 1x real time, each followed by
``{"type": "end"}``: final-result latency (from that ``end`` to the final, p50 and p95), the
server's compute seconds per audio second per stream (RTF), streams refused (1013:
recognition past capacity), and the server's peak resident memory. Then 1000 connect /
stream 0.5 s / close cycles (RSS after 10 against after 1000) and the hostile cases: a frame
declaring 400 MB, 16 clients that connect and send nothing, 10 000 one-sample frames, a
config with too many hotwords.

    python bench/serve_load.py [--data data/synthetic-demo] [--streams 1,2,4,8,16,32,48,64] [--cycles 1000]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
from results import markdown_table, model_parser, write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio import load_audio
from asr.config import ServeConfig
from asr.data import read_manifest
from tools.chromium import start_serve
from tools.serve_clients import Refused, hostile_frame, memory, realtime_client, reset_peak

SECTION = "## Serving: concurrent real-time streams and hostile clients (bench/serve_load.py)"
RATE = 16000
DEFAULTS = ServeConfig()


async def stats(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url + "/stats") as response:
        return await response.json()


async def load_phase(url: str, pid: int, utterances: list[np.ndarray], n: int, per: int, ramp: float) -> dict:
    """``n`` real-time clients started evenly over ``ramp`` seconds, ``per`` utterances each
    (a different slice per client)."""
    reset_peak(pid)
    async with aiohttp.ClientSession() as session:
        before = await stats(session, url)
        most_open = 0

        async def poll() -> None:
            nonlocal most_open
            while True:
                most_open = max(most_open, (await stats(session, url))["streams"])
                await asyncio.sleep(0.2)

        async def client(k: int) -> list[float] | Refused:
            await asyncio.sleep(k * ramp / n)
            mine = [utterances[(k * per + j) % len(utterances)] for j in range(per)]
            try:
                return [f.latency for f in await realtime_client(session, url, mine, speed=1.0)]
            except Refused as e:
                return e

        poller = asyncio.create_task(poll())
        try:
            async with asyncio.timeout(120 + ramp + per * 30):
                results = await asyncio.gather(*(client(k) for k in range(n)))
        finally:
            poller.cancel()
        after = await stats(session, url)
    latencies = [x for r in results if isinstance(r, list) for x in r]
    served = sum(isinstance(r, list) for r in results)
    audio, compute = after["audio"] - before["audio"], after["compute"] - before["compute"]
    return {
        "served": served,
        "open": most_open,
        "refused": n - served,
        "p50": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "p95": float(np.percentile(latencies, 95)) if latencies else float("nan"),
        "rtf": compute / audio if audio else float("nan"),
        "peak_mb": memory(pid)["peak"],
        "backlog": after["peak_backlog"],
        "reasons": sorted({r.reason for r in results if isinstance(r, Refused)}),
    }


async def cycles(url: str, pid: int, audio: np.ndarray, count: int) -> tuple[float, float, float]:
    """``count`` connect / stream / end / close cycles; RSS (MB) after 10 and after all, and
    the seconds they took."""
    rss10 = 0.0
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            await realtime_client(session, url, [audio], speed=0)
            if i == 9:
                rss10 = memory(pid)["rss"]
    return rss10, memory(pid)["rss"], time.monotonic() - start


async def silent_clients(url: str, n: int) -> tuple[float, str, bool]:
    """``n`` clients that connect and send nothing (answering pings): the seconds until the
    server has closed them all, the close reason, and whether a client is served after."""
    async with aiohttp.ClientSession() as session:
        start = time.monotonic()
        sockets = [await session.ws_connect(url + "/ws") for _ in range(n)]
        messages = await asyncio.gather(*(ws.receive() for ws in sockets))
        waited = time.monotonic() - start
        reasons = {m.extra for m in messages}
        for ws in sockets:
            await ws.close()
        served = await realtime_client(session, url, [np.zeros(8000, np.float32)], speed=0)
    return waited, "; ".join(sorted(str(r) for r in reasons)), len(served) == 1


async def tiny_frames(url: str, pid: int, count: int) -> tuple[float, float, int]:
    """``count`` one-sample frames sent without reading, then ``end``: seconds to the final,
    peak RSS rise (MB) and how many partials came back."""
    reset_peak(pid)
    before = memory(pid)["rss"]
    start = time.monotonic()
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws") as ws:
        for _ in range(count):
            await ws.send_bytes(b"\x00\x00")
        await ws.send_str(json.dumps({"type": "end"}))
        partials = 0
        while json.loads((await ws.receive()).data)["type"] != "final":
            partials += 1
    return time.monotonic() - start, memory(pid)["peak"] - before, partials


async def refused_config(url: str) -> tuple[int | None, str]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws") as ws:
        await ws.send_str(json.dumps({"type": "config", "hotwords": [f"word{i}" for i in range(10_000)]}))
        msg = await ws.receive()
        return ws.close_code, msg.extra


def hostile_rows(url: str, pid: int, audio: np.ndarray, count: int) -> list[list[str]]:
    rows = []
    reset_peak(pid)
    before = memory(pid)["rss"]
    start = time.monotonic()
    code, reason, sent = hostile_frame(url, declared=400_000_000)
    took = time.monotonic() - start
    rise = memory(pid)["peak"] - before
    rows.append(["one frame declaring 400 MB", f"close {code} \"{reason}\" after {took * 1000:.0f} ms, "
                 f"{sent / 1e6:.1f} MB of it written", f"peak RSS +{rise:.1f} MB"])  # fmt: skip
    waited, reason, served = asyncio.run(silent_clients(url, 16))
    rows.append(["16 clients that connect and send nothing", f"all closed in {waited:.1f} s (\"{reason}\")",
                 "slots back: a client served after" if served else "NOT served after"])  # fmt: skip
    took, rise, partials = asyncio.run(tiny_frames(url, pid, 10_000))
    rows.append(["10 000 one-sample frames, replies unread", f"final {took:.2f} s after the first frame, "
                 f"{partials} partials (coalesced)", f"peak RSS +{rise:.1f} MB"])  # fmt: skip
    code, reason = asyncio.run(refused_config(url))
    rows.append(["config with 10 000 hotwords", f'close {code} "{reason}"', "–"])
    rss10, rss_all, seconds = asyncio.run(cycles(url, pid, audio, count))
    growth = 100 * (rss_all / rss10 - 1)
    rows.append([f"{count} connect / 0.5 s of audio / close cycles", f"{seconds:.0f} s, {count / seconds:.0f} a second",
                 f"RSS {rss10:.0f} MB after 10, {rss_all:.0f} MB after {count} ({growth:+.1f} %)"])  # fmt: skip
    return rows


def main() -> None:
    parser = model_parser(__doc__)
    parser.set_defaults(model="streaming")
    parser.add_argument("--test", default="uqm/test400.jsonl", help="manifest, relative to --data")
    parser.add_argument("--streams", default="1,2,4,8,16,32,48,64", help="concurrent clients, comma-separated")
    parser.add_argument("--utts", type=int, default=4, help="utterances each client streams")
    parser.add_argument("--ramp", type=float, default=4.0, help="seconds over which a phase's clients start")
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--beam", type=int, default=20)
    args = parser.parse_args()
    exp = args.data / "exp" / args.model
    counts = [int(n) for n in args.streams.split(",")]
    utterances = [load_audio(u.audio) for u in read_manifest(args.data / args.test)[:64]]
    seconds = np.mean([len(u) / RATE for u in utterances])
    base = ["--model", str(exp / "best.pt"), "--max-streams", str(2 * max(counts))]
    lm = ["--lm", str(args.data / "lm"), "--tuned", str(exp / "decode" / "tune-lm-dev-mixed.json"), "--beam",
          str(args.beam)]  # fmt: skip
    load_rows, hostile = [], []
    for decoding, extra in (("greedy", []), (f"beam {args.beam} + LM", lm)):
        proc, url = start_serve(base + extra, timeout=120)
        try:
            for n in counts:
                r = load_phase(url, proc.pid, utterances, n, args.utts, args.ramp)
                r = asyncio.run(r)
                load_rows.append([decoding, str(n), str(r["open"]), str(r["served"]), str(r["refused"]),
                                  f"{1000 * r['p50']:.0f} / {1000 * r['p95']:.0f} ms", f"{r['rtf']:.3f}",
                                  f"{r['backlog']:.2f} s", f"{r['peak_mb']:.0f} MB"])  # fmt: skip
                print(load_rows[-1], r["reasons"], flush=True)
            if not hostile:
                hostile = hostile_rows(url, proc.pid, utterances[0][: RATE // 2], args.cycles)
                for row in hostile:
                    print(row, flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    d = DEFAULTS
    caption = (
        f"Model `{args.model}` of {args.data}, `asr serve` defaults (2 recognition threads, refuse new streams while "
        f"recognition waits over {d.max_wait:g} s, backlog {d.max_backlog:g} s, config timeout "
        f"{d.config_timeout:g} s, idle {d.idle_timeout:g} s), on {len(os.sched_getaffinity(0))} CPU cores shared "
        f"with the clients. Each client streams {args.utts} UQM test400 utterances (mean {seconds:.1f} s) at 1x real "
        f"time, 100 ms messages, clients started evenly within {args.ramp:g} s. Open: the most streams open at once. "
        "Latency: from the `end` after an utterance's last audio to its final. RTF: server compute seconds per audio "
        "second of one stream. Backlog: the most audio one stream had queued."
    )
    header = ["decoding", "clients", "open at once", "served", "refused (1013)", "final latency p50 / p95",
              "RTF per stream", "peak backlog", "server peak RSS"]  # fmt: skip
    hostile_header = ["client", "what the server did", "cost"]
    table = (
        f"{caption}\n\n{markdown_table(header, load_rows)}\n\n"
        f"Hostile clients (greedy server, its default limits):\n\n{markdown_table(hostile_header, hostile)}"
    )
    print("\n" + table)
    write_section(SECTION, table, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
