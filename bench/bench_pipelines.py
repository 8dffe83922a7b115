"""Pipeline latencies: ``python -m bench.bench_pipelines [--quick]``.

1. Streaming worker: tick receive (websocket update handed to the worker) -> on_tick return,
   p50/p99 over the sandbox's replay of the real Binance BTCUSDT trade recording (target p99 < 1 ms).
2. Evaluate flow: schedule fire -> order accepted at the venue, measured as the wall time from
   the flow-run call to its return with the order filled at the sandbox (live mode, real
   Prefect run, local server; the server start is excluded). A served deployment adds the
   scheduler's polling delay on top (target < 2 s).
3. Cron fire -> order through a real worker: ``prefect server start`` (with its scheduler) and
   ``prefect worker start`` on a process pool, the evaluate deployment registered by ``prefect
   deploy`` with a ``* * * * *`` cron, live mode against the sandbox. Per run: the delay from
   the cron time (the run's expected start) to the flow running, and to the end of its
   ``submit-order`` task (the order accepted at the sandbox), read from the server's records.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


async def _stream_in_real_time(sandbox, expert, milliseconds: int, chunk_ms: int = 20, **options):
    """Replay the recording at its own pace (``chunk_ms`` of it every ``chunk_ms`` of wall time)."""
    from metaexpert.cli.stream import run_stream
    from tests.streaming.test_streaming_worker import sandbox_exchange_overrides

    started, stop = asyncio.Event(), asyncio.Event()

    async def replay() -> None:
        await asyncio.wait_for(started.wait(), 20)
        await asyncio.sleep(0.5)  # subscriptions open
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for step in range(milliseconds // chunk_ms):
            await asyncio.to_thread(sandbox.advance_ticks, chunk_ms)
            await asyncio.sleep(max(begin + (step + 1) * chunk_ms / 1000 - loop.time(), 0))
        await asyncio.sleep(0.5)
        stop.set()

    task = asyncio.create_task(replay())
    worker = await run_stream(
        expert,
        exchange_overrides=sandbox_exchange_overrides(f"http://{sandbox.host}:{sandbox.port}"),
        stop_event=stop,
        on_started=lambda _: started.set(),
        **options,
    )
    await task
    return worker


def _stream_recording(stream: Any, replay_ms: int) -> Any:
    """Run ``stream(sandbox, expert, replay_ms, config=...)`` on a tick-replaying sandbox; the worker."""
    from metaexpert.engine.streaming import StreamingConfig
    from metaexpert.sandbox import SandboxConfig, SandboxServer
    from tests.streaming.test_streaming_worker import ALIGNED_START_MS, make_expert

    config = SandboxConfig(
        data_dir=DATA,
        timeframe="5m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        speed=0.0,
        start_time_ms=ALIGNED_START_MS,
        tick_replay=True,
    )
    with SandboxServer(config) as sandbox:
        expert, _ = make_expert(sandbox)
        return asyncio.run(
            stream(
                sandbox,
                expert,
                replay_ms,
                config=StreamingConfig(max_event_delay_ms=None, max_silence_ms=600_000),
            )
        )


def bench_streaming_real_time(replay_ms: int) -> dict[str, float]:
    """The same recording delivered at its recorded pace, as a live feed arrives."""
    return _stream_recording(_stream_in_real_time, replay_ms).latency_percentiles()


def bench_streaming(replay_ms: int) -> dict[str, float]:
    from tests.streaming.test_streaming_worker import stream_while_replaying

    worker = _stream_recording(stream_while_replaying, replay_ms)
    return {
        **worker.latency_percentiles(),
        **{
            f"tick_{key}": value for key, value in worker.latency_percentiles(per_tick=True).items()
        },
    }


def _buyer_and_sandbox(key: str, secret: str) -> tuple[str, Any]:
    """The timer expert that buys at every 5-minute timer tick, with its live keys from the
    environment, and the 1m spot sandbox it trades on (stepped by hand)."""
    from metaexpert.sandbox import AccountConfig, SandboxConfig
    from tests.pipelines.experts import TIMER_EXPERT

    buyer = TIMER_EXPERT.replace("if fired == 2:", "if True:").replace(
        "log_to_console=False)",
        'log_to_console=False,\n    api_key=os.environ["SANDBOX_KEY"], '
        'api_secret=os.environ["SANDBOX_SECRET"])',
    )
    config = SandboxConfig(
        data_dir=DATA,
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        speed=0.0,
        start_time_ms=1_748_995_200_000,
        tick_replay=False,
        accounts=[AccountConfig(api_key=key, secret=secret, spot_balances={"USDT": 1_000_000})],
    )
    return "import os\n" + buyer, config


def bench_evaluate(runs: int) -> list[float]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows.evaluate import evaluate
    from metaexpert.sandbox import SandboxServer
    from tests.pipelines.experts import write_expert

    key, secret = "bench-key-" + "e" * 54, "bench-secret-" + "f" * 51
    os.environ.update(
        SANDBOX_KEY=key, SANDBOX_SECRET=secret, PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    buyer, config = _buyer_and_sandbox(key, secret)
    durations = []
    with (
        tempfile.TemporaryDirectory() as folder,
        SandboxServer(config) as sandbox,
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        expert_file = write_expert(Path(folder), "bench_buyer", buyer)
        for _ in range(runs):
            sandbox.advance(5)  # a new 5-minute tick: the timer fires and buys
            started = time.perf_counter()
            summary = evaluate(
                expert_file,
                trade_mode="live",
                storage_url=f"sqlite:///{folder}/state.sqlite",
                base_url=f"http://{sandbox.host}:{sandbox.port}",
                lock_directory=f"{folder}/locks",
                settings={"journal_dir": f"{folder}/journal"},
            )
            durations.append(time.perf_counter() - started)
            if not summary["orders"] or summary["orders"][0]["status"] != "filled":
                raise RuntimeError(f"the benchmark run placed no filled order: {summary}")
    return durations


CRON_DEPLOYMENT = """\
name: metaexpert-bench
prefect-version: 3.0.0
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{root}"
deployments:
  - name: cron-evaluate
    entrypoint: flows/evaluate.py:evaluate
    work_pool: {{name: bench}}
    concurrency_limit: 1
    parameters: {parameters}
    schedules:
      - cron: "* * * * *"
        timezone: UTC
"""


async def _cron_runs(api_url: str) -> list[dict[str, float | str]]:
    """Each finished run of the cron deployment: its state and delays after the cron time."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    async with PrefectClient(api=api_url) as client:
        runs = [run for run in await client.read_flow_runs() if run.state and run.state.is_final()]
        measured = []
        for run in sorted(runs, key=lambda item: item.expected_start_time):
            submits = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="submit ")),
            )
            fire = run.expected_start_time
            ends = [task.end_time for task in submits if task.end_time is not None]
            measured.append(
                {
                    "state": run.state.type.value,
                    "to_running_s": (run.start_time - fire).total_seconds()
                    if run.start_time
                    else -1,
                    "to_order_s": (max(ends) - fire).total_seconds() if ends else -1,
                }
            )
        return measured


def bench_cron_worker(runs: int) -> list[dict[str, float | str]]:
    import json

    from metaexpert.sandbox import SandboxServer
    from tests.pipelines.experts import write_expert
    from tests.pipelines.prefect_stack import prefect, prefect_server, prefect_worker, tail

    key, secret = "bench-key-" + "c" * 54, "bench-secret-" + "d" * 51
    buyer, config = _buyer_and_sandbox(key, secret)
    with (
        tempfile.TemporaryDirectory() as name,
        SandboxServer(config) as sandbox,
        prefect_server(Path(name)) as env,
    ):
        folder = Path(name)
        expert_file = write_expert(folder, "cron_buyer", buyer)
        parameters = {
            "expert_file": str(expert_file),
            "trade_mode": "live",
            "storage_url": f"sqlite:///{folder}/state.sqlite",
            "base_url": f"http://{sandbox.host}:{sandbox.port}",
            "lock_directory": f"{folder}/locks",
            "settings": {"journal_dir": f"{folder}/journal"},
        }
        deployment = folder / "prefect.yaml"
        deployment.write_text(CRON_DEPLOYMENT.format(root=ROOT, parameters=json.dumps(parameters)))
        prefect("work-pool", "create", "bench", "--type", "process", env=env)
        prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(deployment), env=env)
        worker_env = {**env, "SANDBOX_KEY": key, "SANDBOX_SECRET": secret}
        log = folder / "worker.log"
        sandbox.advance(5)  # the 5-minute timer fires on the first run
        with prefect_worker("bench", env=worker_env, folder=folder, log=log) as worker:
            deadline = time.monotonic() + 60 * runs + 240
            measured: list[dict[str, float | str]] = []
            while len(measured) < runs:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{len(measured)} of {runs} cron runs finished:\n{tail(log)}"
                    )
                time.sleep(2)
                finished = asyncio.run(_cron_runs(env["PREFECT_API_URL"]))
                if len(finished) > len(measured):
                    sandbox.advance(5)  # the next minute's run: a new 5-minute timer tick
                    measured = finished
        failed = [run for run in measured if run["state"] != "COMPLETED" or run["to_order_s"] < 0]
        if failed:
            raise RuntimeError(f"cron runs without an order: {failed}\n{tail(log)}")
        return measured[:runs]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter replay and fewer flow runs")
    arguments = parser.parse_args(argv)
    latency = bench_streaming(30_000 if arguments.quick else 300_000)
    print(
        f"streaming tick->on_tick, recording replayed in 250 ms bursts (~25x): {latency['count']} ticks, p50 {latency['p50_us']:.1f} us, "
        f"p99 {latency['p99_us']:.1f} us, max {latency['max_us']:.1f} us "
        f"({'OK' if latency['p99_us'] < 1000 else 'ABOVE'} target p99 < 1000 us; includes earlier ticks of "
        "the same websocket batch)"
    )
    print(
        f"streaming per-tick dispatch (broker + risk + on_tick): p50 {latency['tick_p50_us']:.1f} us, "
        f"p99 {latency['tick_p99_us']:.1f} us, max {latency['tick_max_us']:.1f} us "
        f"({'OK' if latency['tick_p99_us'] < 1000 else 'ABOVE'} target p99 < 1000 us)"
    )
    paced = bench_streaming_real_time(10_000 if arguments.quick else 60_000)
    print(
        f"streaming tick->on_tick, recording replayed at its own pace: {paced['count']} ticks, "
        f"p50 {paced['p50_us']:.1f} us, p99 {paced['p99_us']:.1f} us, max {paced['max_us']:.1f} us "
        f"({'OK' if paced['p99_us'] < 1000 else 'ABOVE'} target p99 < 1000 us)"
    )
    durations = bench_evaluate(3 if arguments.quick else 8)
    warm = durations[1:] or durations
    print(
        f"evaluate flow fire->order filled: runs {len(durations)}, first {durations[0]:.3f} s, "
        f"median (warm) {statistics.median(warm):.3f} s, max (warm) {max(warm):.3f} s "
        f"({'OK' if max(warm) < 2.0 else 'ABOVE'} target < 2 s)"
    )
    cron = bench_cron_worker(2 if arguments.quick else 4)
    for index, run in enumerate(cron, 1):
        print(
            f"cron fire->order through prefect worker, run {index}: flow running after "
            f"{run['to_running_s']:.2f} s, order accepted at the sandbox after {run['to_order_s']:.2f} s"
        )
    print(f"  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
