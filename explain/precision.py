"""Whether bfloat16 (fast mode) is faster than float32 where the model runs, and why not where it is not.

On a CPU bfloat16 only pays with native instructions (AVX512-BF16 or AMX); without them PyTorch emulates it and
a bfloat16 pass takes several times longer than a float32 one (22.0 s against 7.9 s measured on an AVX2 CPU).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from explain.models import default_device

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Bf16Support:
    """fast: bfloat16 passes are faster here than float32 ones; reason: one sentence saying why (or why not)."""

    fast: bool
    reason: str


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo cannot be read, e.g. off Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def bf16_support(device: str, flags: frozenset[str], gpu_bf16: bool = False) -> Bf16Support:
    """The verdict for a device type ("cpu" or "cuda") given the CPU's flags and whether the GPU has bfloat16."""
    if device == "cuda":
        if gpu_bf16:
            return Bf16Support(True, "The GPU computes in bfloat16 natively, so fast mode is faster here.")
        return Bf16Support(False, "The bfloat16 fast mode is off: this GPU has no bfloat16 support.")
    found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if found:
        return Bf16Support(True, f"This CPU has bfloat16 instructions ({', '.join(found)}), so fast mode is faster.")
    return Bf16Support(False, "The bfloat16 fast mode is off: this server's CPU has no bfloat16 instructions "
                              "(AVX512-BF16 or AMX), so bfloat16 would run slower than float32 here.")


@functools.cache
def server_bf16_support() -> Bf16Support:
    """The verdict for the device models load on in this process (read once)."""
    device = default_device().type
    return bf16_support(device, cpu_flags(), device == "cuda" and torch.cuda.is_bf16_supported())
