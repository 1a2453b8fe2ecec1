"""Fast mode (bfloat16) is offered only where it is faster: native bfloat16 on the CPU or the GPU."""

from __future__ import annotations

from explain.precision import bf16_support, cpu_flags, server_bf16_support

AVX2_CPU = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx avx2 fma\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def test_the_cpu_flags_decide_and_the_reason_is_one_sentence():
    slow = bf16_support("cpu", cpu_flags(AVX2_CPU))
    assert not slow.fast and "no bfloat16 instructions" in slow.reason and slow.reason.count(". ") == 0
    fast = bf16_support("cpu", cpu_flags(SAPPHIRE_RAPIDS))
    assert fast.fast and "avx512_bf16" in fast.reason
    assert cpu_flags("no flags here") == frozenset()


def test_a_gpu_decides_by_its_own_support():
    assert bf16_support("cuda", frozenset(), gpu_bf16=True).fast
    assert not bf16_support("cuda", cpu_flags(SAPPHIRE_RAPIDS), gpu_bf16=False).fast


def test_this_server_gets_a_verdict_that_matches_its_cpu():
    verdict = server_bf16_support()
    flags = cpu_flags()
    import torch

    if not torch.cuda.is_available():
        assert verdict.fast == bool({"avx512_bf16", "amx_bf16"} & flags)
