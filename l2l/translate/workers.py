"""translate.py --workers N: one translate.py process per shard (and GPU), all into one checkpoint folder.

The worker command is built from the parsed configs (l2l.config.to_argv), not by editing the user's argv."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace

from l2l.cli import UsageError, log, positive_int
from l2l.config import option, to_argv


@dataclass
class WorkerConfig:
    workers: int = option(1, "Run this many workers at once, one shard each, into the same folder (one per GPU "
                             "with --devices).", type=positive_int)
    devices: str | None = option(None, "Comma-separated GPU ids for the workers (CUDA_VISIBLE_DEVICES of each), "
                                       "e.g. 0,1,2,3.")

    @property
    def device_list(self) -> list[str]:
        return [d.strip() for d in self.devices.split(",") if d.strip()] if self.devices else []

    def __post_init__(self) -> None:
        if self.devices is not None and len(self.device_list) != self.workers:
            raise UsageError(f"--devices names {len(self.device_list)} devices for {self.workers} workers")


def worker_threads(workers: int, cpus: int, environ, on_gpus: bool) -> int | None:
    """CPU threads per worker: the cores shared out, so that N workers on the CPU do not each start one thread
    per core (N times oversubscribed). None where the user set OMP_NUM_THREADS or the workers run on GPUs."""
    if on_gpus or environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, cpus // workers)


def worker_command(script: str, backend: str, options, job, shard: int, workers: int) -> list[str]:
    """The translate.py command line of one worker: the same settings, one shard of the work."""
    shard_job = replace(job, num_shards=workers, shard_index=shard)
    return [sys.executable, os.path.abspath(script), backend, *to_argv(options), *to_argv(shard_job),
            shard_job.target_lang, str(shard_job.checkpoint_dir)]


def run_workers(cfg: WorkerConfig, backend: str, options, job, script: str) -> int:
    """Start the workers, wait for all of them, and say how to finish when some failed."""
    if job.num_shards != 1:
        raise UsageError("--workers splits the work itself: leave out --num_shards/--shard_index")
    devices = cfg.device_list
    threads = worker_threads(cfg.workers, os.cpu_count() or 1, os.environ, bool(devices))
    procs = []
    for i in range(cfg.workers):
        env = {**os.environ}
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = devices[i]
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        log(f"worker {i}: shard {i}/{cfg.workers}" + (f" on GPU {devices[i]}" if devices else "")
            + (f", {threads} CPU threads" if threads else ""))
        procs.append(subprocess.Popen(worker_command(script, backend, options, job, i, cfg.workers), env=env))
    codes = [p.wait() for p in procs]
    failed = [i for i, c in enumerate(codes) if c != 0]
    if failed:
        log(f"workers {failed} failed; run the same command again to finish their shards")
        return max(codes)
    log(f"all {cfg.workers} workers done: python combine_checkpoints.py {job.checkpoint_dir} OUTPUT")
    return 0
