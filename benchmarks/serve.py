"""What `orchestrator serve` adds over the SDK: 200 concurrent streamed requests.

Against tests/fakeserver.py at zero latency (its own process, Nagle off as real endpoints do,
without the tests' schema validation of each request, which would only take CPU from both),
one workflow (plan, one generated subproblem, a streamed synthesis: 3 calls per run). Each
round runs both sides, each from a fresh ORCHESTRATOR_HOME and fresh processes:

- SDK: one process runs `Workflow.astream(task)` 200 times at once (asyncio.gather) and reads
  every event to `RunFinished`; a request's latency is from its start to `RunFinished`. It
  holds the state directory open throughout (`open_storage`), as the server does, and runs on
  the event loop uvicorn gives the server (uvloop when installed).
- serve: `orchestrator serve` in one process (the same workflow file, --quiet); a client
  process sends 200 streamed `POST /v1/chat/completions` at once (httpx, one connection each)
  and reads every chunk to `data: [DONE]`, parsing each as JSON; a request's latency is from
  its send to `[DONE]`.

Both sides first run the same warm-up (10 runs, not measured) in the process that is measured,
so imports, the graph compile and connection set-up are paid before the clock starts. Figures
are pooled over the rounds: p50/p95 latency per side, and requests/s (200 / the round's wall
time, median over rounds), and the CPU per request of the process that runs the workflows (the
SDK's, or the server's; the client's is not counted). "Added" is serve minus SDK.
With `--latency S` every model call takes S seconds at the fake server, as real models do; at
zero latency (the default) both sides are bound by the CPU (2 cores here), so each request
queues behind the others' work and the "added" p50 is the server's extra CPU per request times
the queue. `--concurrency 1` sends the requests one at a time.
Usage: python benchmarks/serve.py [--rounds 3] [--n 200] [--concurrency 200] [--latency 0]
       [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASK = "Write a two-line note on the printing press."
WARMUP = 10
WORKFLOW = """
name: serve-bench
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
limits: {concurrency: 8}
"""


def fake_server(conn: Connection, latency: float) -> None:
    from tests import fakehttp
    from tests.fakeserver import FakeOpenAI

    fakehttp.Handler.disable_nagle_algorithm = True  # else a reused connection waits ~40 ms
    # The tests validate every request against OpenAI's schema; here that would only take CPU
    # from both sides alike (a real endpoint runs elsewhere). The bodies are the same either way.
    FakeOpenAI._validate = lambda self, body, cfg: []  # type: ignore[method-assign]
    with FakeOpenAI() as server:
        server.configure_model("write-model", latency=latency)
        server.configure_model("think-model", reasoning=True, latency=latency)
        conn.send(server.base_url)
        conn.recv()  # until told to stop


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system, every thread) of a process: this one, or `pid`."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(one: Any, n: int, concurrency: int, pid: int | None) -> dict[str, Any]:
    """Warm up, then run `one` n times, `concurrency` at once; latencies, wall and CPU."""
    await asyncio.gather(*(one() for _ in range(WARMUP)))
    slots = asyncio.Semaphore(concurrency)

    async def limited() -> float:
        async with slots:
            latency: float = await one()
            return latency

    cpu, own, started = cpu_s(pid), cpu_s(), time.perf_counter()
    latencies = await asyncio.gather(*(limited() for _ in range(n)))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "wall": wall, "cpu": cpu_s(pid) - cpu, "own": cpu_s() - own}


async def sdk_side(path: str, n: int, concurrency: int) -> dict[str, Any]:
    from orchestrator import RunFinished, Workflow
    from orchestrator.storage import open_storage

    workflow = Workflow.from_yaml(path)

    async def one() -> float:
        started = time.perf_counter()
        async for event in workflow.astream(TASK):
            if isinstance(event, RunFinished):
                assert event.result.status == "completed", event.result.error
        return time.perf_counter() - started

    # Held open for the whole measurement, as the server holds it while it serves: runs then
    # share one open storage instead of opening and closing SQLite each.
    async with open_storage(workflow.home):
        return await measured(one, n, concurrency, None)


async def client_side(
    url: str, n: int, concurrency: int, pid: int, record: str | None
) -> dict[str, Any]:
    import httpx

    body = {"model": "serve-bench", "stream": True, "messages": [{"role": "user", "content": TASK}]}
    limits = httpx.Limits(max_connections=n + WARMUP, max_keepalive_connections=n + WARMUP)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        if record:  # one response as serve sent it, for the bare app to send back (asgi_floor)
            response = await client.post("/v1/chat/completions", json=body)
            Path(record).write_bytes(response.content)

        async def one() -> float:
            started = time.perf_counter()
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                assert r.status_code == 200, await r.aread()
                async for line in r.aiter_lines():
                    if line == "data: [DONE]":
                        break
                    if line.startswith("data: "):
                        json.loads(line[6:])
                else:
                    raise AssertionError("the stream ended without [DONE]")
            return time.perf_counter() - started

        return await measured(one, n, concurrency, pid)


def worker(args: argparse.Namespace) -> None:
    if args.worker == "sdk":
        # The event loop uvicorn gives the server ("auto": uvloop when installed), so both
        # sides run the workflow on the same loop.
        from uvicorn.loops.auto import auto_loop_factory

        factory = auto_loop_factory(use_subprocess=False)
        with asyncio.Runner(loop_factory=factory) as runner:
            print(json.dumps(runner.run(sdk_side(args.target, args.n, args.concurrency))))
        return
    side = client_side(args.target, args.n, args.concurrency, args.server_pid, args.record)
    print(json.dumps(asyncio.run(side)))


def run_worker(kind: str, target: str, env: dict[str, str], *options: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--target", target, *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {kind} worker failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def start_serve(path: str, env: dict[str, str], n: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "orchestrator.cli", "serve", path, "--port", "0", "--quiet"]
    cmd += ["--max-concurrent-runs", str(4 * n)]
    return start_server(cmd, env)


def start_server(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Uvicorn running on" in line:
            # Keep reading stderr so the server never blocks on a full pipe.
            subprocess_drain(proc)
            return proc, line.split("running on ")[1].split()[0]
    raise SystemExit("orchestrator serve did not start")


def subprocess_drain(proc: subprocess.Popen[str]) -> None:
    import threading

    assert proc.stderr is not None
    stream = proc.stderr
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


def bench_env(base_url: str, home: str) -> dict[str, str]:
    return {
        **os.environ,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-bench",
        "ORCHESTRATOR_HOME": home,
        "PYTHONPATH": str(ROOT),
    }


def client_of(
    server: tuple[subprocess.Popen[str], str], env: dict[str, str], *options: str
) -> dict[str, Any]:
    """Run the HTTP client worker against a started server, then stop the server."""
    proc, url = server
    try:
        return run_worker("client", url, env, *options, "--server-pid", str(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def one_round(
    path: str, base_url: str, n: int, concurrency: int, record: str
) -> dict[str, dict[str, Any]]:
    options = ("--n", str(n), "--concurrency", str(concurrency))
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as home:
        out["sdk"] = run_worker("sdk", path, bench_env(base_url, home), *options)
    with tempfile.TemporaryDirectory() as home:
        env = bench_env(base_url, home)
        out["serve"] = client_of(start_serve(path, env, n), env, *options, "--record", record)
    # The HTTP stack alone, answering with the response serve just sent; then serve's own app
    # replaying one run's events in place of the workflow (asgi_floor.py).
    floor = [sys.executable, str(ROOT / "benchmarks" / "asgi_floor.py")]
    out["bare"] = client_of(start_server([*floor, record], env), env, *options)
    out["replayed"] = client_of(start_server([*floor, "--replay", path], env), env, *options)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(rounds: list[dict[str, dict[str, Any]]], n: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for side in ("sdk", "serve", "bare", "replayed"):
        latencies = [x for r in rounds for x in r[side]["latencies"]]
        figures[side] = {
            "p50_ms": round(1000 * pct(latencies, 0.5), 1),
            "p95_ms": round(1000 * pct(latencies, 0.95), 1),
            "requests_per_s": round(statistics.median(n / r[side]["wall"] for r in rounds), 1),
            # the SDK's process, or the server's: where the workflow runs (or is replayed)
            "cpu_ms_per_request": round(
                1000 * sum(r[side]["cpu"] for r in rounds) / n / len(rounds), 2
            ),
        }
    # The HTTP client's own CPU (serve only): it shares the machine with the server.
    client = sum(r["serve"]["own"] for r in rounds) / n / len(rounds)
    figures["serve"]["client_cpu_ms_per_request"] = round(1000 * client, 2)
    figures["added"] = {
        "p50_ms": round(figures["serve"]["p50_ms"] - figures["sdk"]["p50_ms"], 1),
        "p95_ms": round(figures["serve"]["p95_ms"] - figures["sdk"]["p95_ms"], 1),
        "cpu_ms_per_request": round(
            figures["serve"]["cpu_ms_per_request"] - figures["sdk"]["cpu_ms_per_request"], 2
        ),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200, help="requests at once")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per model call")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--worker", choices=["sdk", "client"])
    parser.add_argument("--target")
    parser.add_argument("--record", help="save one streamed response here before measuring")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=fake_server, args=(theirs, args.latency), daemon=True)
    server.start()
    base_url = ours.recv()
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "serve-bench.yaml")
        Path(path).write_text(WORKFLOW)
        record = str(Path(directory) / "response.sse")
        rounds = [
            one_round(path, base_url, args.n, args.concurrency, record) for _ in range(args.rounds)
        ]
    ours.send(None)
    server.join(10)
    figures = {"n": args.n, "concurrency": args.concurrency, "rounds": args.rounds}
    figures["latency_s"] = args.latency
    figures.update(summarize(rounds, args.n))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for side in ("sdk", "serve"):
        f = figures[side]
        rate = f["requests_per_s"]
        cpu = f["cpu_ms_per_request"]
        print(
            f"{side:5}  p50 {f['p50_ms']:8.1f} ms  p95 {f['p95_ms']:8.1f} ms  {rate:7.1f} req/s"
            f"  {cpu:6.2f} ms CPU per request"
        )
    client = figures["serve"]["client_cpu_ms_per_request"]
    print(f"       (serve's HTTP client: {client:.2f} ms CPU per request, not counted above)")
    added, bare, replayed = figures["added"], figures["bare"], figures["replayed"]
    print(
        f"added by serve: p50 {added['p50_ms']:+.1f} ms, p95 {added['p95_ms']:+.1f} ms, "
        f"{added['cpu_ms_per_request']:+.2f} ms server CPU per request "
        f"({args.n} streamed requests, {args.concurrency} at once, {args.rounds} rounds, "
        f"{args.latency:g} s per model call)"
    )
    print(
        f"the HTTP stack alone (asgi_floor.py: uvicorn + Starlette sending serve's recorded "
        f"response, no workflow, the same client): {bare['cpu_ms_per_request']:.2f} ms server "
        f"CPU per request, p50 {bare['p50_ms']:.1f} ms, {bare['requests_per_s']:.1f} req/s"
    )
    print(
        f"serve's app with a recorded run replayed in place of the workflow (asgi_floor.py "
        f"--replay: no model call, no storage): {replayed['cpu_ms_per_request']:.2f} ms server "
        f"CPU per request, p50 {replayed['p50_ms']:.1f} ms, {replayed['requests_per_s']:.1f} req/s"
    )


if __name__ == "__main__":
    main()
