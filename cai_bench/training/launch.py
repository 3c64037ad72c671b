"""Training beyond one process: `cai-bench train ... --accelerate-config FILE`
or `--num-processes N` re-runs the same command under `accelerate launch`
(torchrun underneath), one process per GPU (or CPU process with gloo). The
Trainer does the rest (DDP, DeepSpeed ZeRO-3 from the config); rank 0 alone
writes the adapter and `cai_bench.json`.

Built-in configs (`accelerate_configs/`, the alignment-handbook's): multi_gpu
(DDP), deepspeed_zero3, cpu_ddp (2 CPU processes, gloo).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from cai_bench.errors import MissingDependency, UserError

LAUNCHED_ENV = "CAI_BENCH_LAUNCHED"  # set in the ranks: they train, they do not launch again


def builtin_configs() -> list[str]:
    root = resources.files("cai_bench.training") / "accelerate_configs"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def resolve_config(name_or_path: str) -> Path:
    """A config file path, or the name of a built-in one."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p.resolve()
    if name_or_path in builtin_configs():
        return Path(str(resources.files("cai_bench.training") / "accelerate_configs" / f"{name_or_path}.yaml"))
    raise UserError(f"--accelerate-config {name_or_path!r}: no such file, and not a built-in config "
                    f"({', '.join(builtin_configs())})")


def in_launched_rank() -> bool:
    return os.environ.get(LAUNCHED_ENV) == "1"


def launch_command(cli_args: list[str], *, config: str | None, num_processes: int | None) -> list[str]:
    """`python -m accelerate.commands.launch ... -m cai_bench <cli_args>`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config:
        cmd += ["--config_file", str(resolve_config(config))]
    else:  # no config: plain DDP over N processes (torchrun; gloo on CPUs, nccl on GPUs)
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    cmd += ["--main_process_port", "0", "-m", "cai_bench", *cli_args]
    return cmd


def launch(cli_args: list[str], *, config: str | None, num_processes: int | None) -> int:
    """Run the command in N ranks; returns the launcher's exit code."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise MissingDependency("accelerate", "pip install accelerate") from None
    if config:
        path = resolve_config(config)
        if "DEEPSPEED" in path.read_text(encoding="utf-8"):
            try:
                import deepspeed  # noqa: F401
            except ImportError:
                raise MissingDependency("deepspeed (for the ZeRO-3 config)", "pip install deepspeed") from None
    if num_processes is not None and num_processes < 1:
        raise UserError("--num-processes must be at least 1")
    env = {**os.environ, LAUNCHED_ENV: "1"}
    return subprocess.run(launch_command(cli_args, config=config, num_processes=num_processes), env=env).returncode
