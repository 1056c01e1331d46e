"""XLA compiler options for the library's compiled programs: XLA's defaults, or a
faster compile at a small cost per step (``fast_compile``).

``fast_compile`` on XLA:CPU compiles with ``xla_cpu_use_fusion_emitters=False``: XLA's
older elemental emitters instead of its MLIR fusion emitters. Measured on the reference
workload (Omniglot conv net, meta-batch 32; jax 0.10.2, 2-core CPU, nothing else
running; tables in ``benchmarks/README.md``): lowering + compiling the second-order
meta-step takes a third less CPU time, 6.3–7.8 s instead of 9.8–11.3 s wall at
K = 1…100, and steps are slower, measured interleaved in one process: second-order MAML
1–2%, first order 3%, remat at K = 20 4%, Reptile 6%. A 60,000-step run pays the
compile once and the step cost every step, so training keeps XLA's defaults unless
told otherwise (``config.fast_compile``); compile-bound runs (smoke configs, quick
checks) gain. Other backends get XLA's defaults either way.

An option this jaxlib does not know is dropped after a one-off probe, with a warning, so
the library never fails to compile because of it.
"""

import functools
from typing import Any, Callable
import warnings

import jax
import jax.numpy as jnp

CPU_FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def _supported(name: str, value: Any) -> bool:
  """Whether this jaxlib compiles a trivial program with the option ``name=value``."""
  try:
    jax.jit(lambda x: x + 1).lower(jnp.zeros(())).compile({name: value})
    return True
  except Exception as e:  # pylint: disable=broad-except  # jaxlib raises several types
    warnings.warn(f"XLA compiler option {name}={value} not supported here "
                  f"({type(e).__name__}); compiling without it", RuntimeWarning,
                  stacklevel=2)
    return False


def options(fast_compile: bool = False) -> dict[str, Any]:
  """The compiler options for JAX's default backend ({} : XLA's defaults)."""
  chosen = CPU_FAST_COMPILE if fast_compile and jax.default_backend() == "cpu" else {}
  return {k: v for k, v in chosen.items() if _supported(k, v)}


def jit(fn: Callable, *, fast_compile: bool = False, **kwargs) -> Callable:
  """``jax.jit(fn, **kwargs)`` with ``options(fast_compile)``."""
  return jax.jit(fn, compiler_options=options(fast_compile) or None, **kwargs)
