"""Compute and memory of a compiled program, from XLA's own analyses.

``compiled_flops(jax.jit(f), *args)`` lowers and compiles ``f`` for ``args`` and reads
the floating-point operation count of the compiled HLO from XLA's cost analysis; the
experiments use it to put inner-loop compute (adaptation, a meta-step) on the x-axis,
and the benchmarks to turn seconds into achieved GFLOP/s. Counts are XLA's: a matmul
``[m, k] @ [k, n]`` counts ``2·m·n·k``; elementwise ops count one per output element;
and — the trap — a ``while`` loop's body is counted ONCE, whatever its trip count
(checked on XLA:CPU, jax 0.10.2: a 5-step ``lax.scan`` of a matmul counts one matmul).
The inner loop is a ``lax.scan``, so a K-step adaptation would be counted as one step.
Count such programs with ``compiled_flops(..., unroll_scans=True)``, which retraces
the function with every ``lax.scan`` fully unrolled (same maths, no while loop) so that
every step is counted; it costs a compile that grows with K, so use it for counting,
not for running.

``compiled_memory`` reads XLA's buffer assignment (``memory_analysis``): argument,
output, temporary and generated-code bytes of the compiled program. It is the static
plan, not a measurement of a run; the benchmarks report the process's peak RSS beside it.

Both take the jitted function and example arguments (arrays or ``jax.ShapeDtypeStruct``)
and have no side effects other than compiling (jit's cache is not consulted, so a
program measured here is compiled once more when it is first called).
"""

import contextlib
import functools
from typing import Any, Callable, Iterator, Mapping
import warnings

import jax


@contextlib.contextmanager
def _unrolled_scans() -> Iterator[None]:
  """Within the block, ``jax.lax.scan`` traces with ``unroll=True``.

  Only code that looks up ``jax.lax.scan`` at trace time (``from jax import lax;
  lax.scan(...)``) and is traced afresh inside the block is affected: jit's caches
  key on the function, hence the fresh wrapper in ``_lowered``.
  """
  original = jax.lax.scan

  @functools.wraps(original)
  def scan(*args, **kwargs):
    kwargs["unroll"] = True
    return original(*args, **kwargs)

  jax.lax.scan = scan
  try:
    yield
  finally:
    jax.lax.scan = original


def _cost_dict(cost: Any) -> Mapping[str, float]:
  """Normalises ``cost_analysis()``: jax versions return a dict or a list of dicts."""
  if cost is None:
    return {}
  if isinstance(cost, Mapping):
    return cost
  if isinstance(cost, (list, tuple)):
    merged: dict[str, float] = {}
    for part in cost:  # One dict per computation/device; sum what is summable.
      for k, v in (part or {}).items():
        if isinstance(v, (int, float)):
          merged[k] = merged.get(k, 0.0) + float(v)
    return merged
  raise TypeError(f"unexpected cost_analysis() result of type {type(cost).__name__}")


def _compiled(jitted_fn: Callable, args, kwargs, unroll_scans: bool):
  if not unroll_scans:
    return jitted_fn.lower(*args, **kwargs).compile()
  # A new function object so that jit traces again (with the patched scan) instead of
  # reusing a cached trace; static_argnums/donation of the original are not carried.
  fn = getattr(jitted_fn, "__wrapped__", jitted_fn)
  with _unrolled_scans():
    return jax.jit(lambda *a, **k: fn(*a, **k)).lower(*args, **kwargs).compile()


def compiled_cost(jitted_fn: Callable, *args, unroll_scans: bool = False,
                  **kwargs) -> Mapping[str, float]:
  """XLA's whole cost analysis of the compiled program (flops, bytes accessed, ...).

  Args:
    jitted_fn: a ``jax.jit``-wrapped function.
    *args: example positional arguments (arrays or ``jax.ShapeDtypeStruct``).
    unroll_scans: count every trip of every ``lax.scan`` (see the module docstring).
    **kwargs: example keyword arguments.

  Returns:
    A mapping from XLA's cost names (e.g. ``'flops'``, ``'bytes accessed'``) to numbers;
    empty if the backend gives no analysis.
  """
  return _cost_dict(_compiled(jitted_fn, args, kwargs, unroll_scans).cost_analysis())


def compiled_flops(jitted_fn: Callable, *args, unroll_scans: bool = False,
                   **kwargs) -> float:
  """Floating-point operations of one call of the compiled ``jitted_fn(*args)``.

  Args:
    jitted_fn: a ``jax.jit``-wrapped function (without static arguments if
      ``unroll_scans``).
    *args: example positional arguments (arrays or ``jax.ShapeDtypeStruct``).
    unroll_scans: count every trip of every ``lax.scan``; without it a scan's body is
      counted once (see the module docstring).
    **kwargs: example keyword arguments.

  Returns:
    XLA's flop count, or NaN (with a warning) when the backend reports none.
  """
  cost = compiled_cost(jitted_fn, *args, unroll_scans=unroll_scans, **kwargs)
  if "flops" not in cost:
    warnings.warn("XLA cost analysis has no 'flops' entry on backend "
                  f"{jax.default_backend()!r}; returning NaN", RuntimeWarning,
                  stacklevel=2)
    return float("nan")
  return float(cost["flops"])


def compiled_memory(jitted_fn: Callable, *args, **kwargs) -> dict[str, int]:
  """XLA's static memory plan of the compiled ``jitted_fn(*args)``, in bytes.

  Args:
    jitted_fn: a ``jax.jit``-wrapped function.
    *args: example positional arguments (arrays or ``jax.ShapeDtypeStruct``).
    **kwargs: example keyword arguments.

  Returns:
    ``{'argument_bytes', 'output_bytes', 'temp_bytes', 'alias_bytes',
    'generated_code_bytes', 'total_bytes'}``, where total = argument + output + temp
    − alias; empty if the backend gives no analysis.
  """
  stats = jitted_fn.lower(*args, **kwargs).compile().memory_analysis()
  if stats is None:
    return {}
  out = {
      "argument_bytes": int(stats.argument_size_in_bytes),
      "output_bytes": int(stats.output_size_in_bytes),
      "temp_bytes": int(stats.temp_size_in_bytes),
      "alias_bytes": int(stats.alias_size_in_bytes),
      "generated_code_bytes": int(stats.generated_code_size_in_bytes),
  }
  out["total_bytes"] = (out["argument_bytes"] + out["output_bytes"] +
                        out["temp_bytes"] - out["alias_bytes"])
  return out
