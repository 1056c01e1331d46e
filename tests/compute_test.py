"""compute: XLA's flop count of known programs; normalising its result formats."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import compute


def test_matmul_flops_are_two_m_n_k():
  m, k, n = 64, 48, 32
  f = jax.jit(lambda a, b: a @ b)
  args = (jax.ShapeDtypeStruct((m, k), jnp.float32),
          jax.ShapeDtypeStruct((k, n), jnp.float32))
  np.testing.assert_allclose(compute.compiled_flops(f, *args), 2 * m * n * k, rtol=0.01)


def test_scan_body_is_counted_once_unless_scans_are_unrolled():
  m = 32

  def f(a):
    return jax.lax.scan(lambda c, _: (c @ a, None), a, None, length=5)[0]

  arg = jax.ShapeDtypeStruct((m, m), jnp.float32)
  original_scan = jax.lax.scan
  # XLA counts a while body once: the reason unrolled_scans exists.
  np.testing.assert_allclose(compute.compiled_flops(jax.jit(f), arg), 2 * m ** 3,
                             rtol=0.05)
  flops = compute.compiled_flops(jax.jit(f), arg, unroll_scans=True)
  np.testing.assert_allclose(flops, 5 * 2 * m ** 3, rtol=0.05)
  assert jax.lax.scan is original_scan  # Restored.


def test_cost_results_as_list_are_merged_and_missing_flops_is_nan(monkeypatch):
  assert compute._cost_dict([{"flops": 2.0}, {"flops": 3.0, "x": 1}]) == {
      "flops": 5.0, "x": 1.0}
  assert compute._cost_dict(None) == {}
  monkeypatch.setattr(compute, "compiled_cost", lambda *a, **k: {})
  with pytest.warns(RuntimeWarning, match="flops"):
    assert np.isnan(compute.compiled_flops(jax.jit(lambda x: x), 1.0))


def test_compiled_memory_counts_arguments_and_outputs():
  f = jax.jit(lambda a: a * 2)
  mem = compute.compiled_memory(f, jax.ShapeDtypeStruct((1000,), jnp.float32))
  if not mem:
    pytest.skip("backend gives no memory analysis")
  assert mem["argument_bytes"] == 4000
  assert mem["output_bytes"] == 4000
  assert mem["total_bytes"] >= 4000
