"""Compiler options: XLA's defaults unless fast_compile, the chosen ones reach the
compiled meta-step and evaluation, both emitter paths give the same step, and an option
this jaxlib lacks is dropped."""

import jax
import numpy as np
import pytest

from benchmarks import meta_step
from metalearn import compiler
from metalearn import evaluation

# Second-order MAML with 2 inner steps through the im2col convolutions and BatchNorm.
TINY = meta_step.Settings(model="tiny", algorithm="maml", K=2, ways=3, queries=2,
                          meta_batch=3, conv_impl="im2col")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU-only options")
def test_xla_defaults_unless_fast_compile():
  assert compiler.options() == {}
  assert compiler.options(fast_compile=True) == compiler.CPU_FAST_COMPILE


def test_the_options_reach_the_compiled_meta_step_and_evaluation(monkeypatch):
  # An option XLA rejects makes the compile fail, so the programs must carry it.
  asked = []
  def bad(fast_compile=False):
    asked.append(fast_compile)
    return {"xla_no_such_option": True}
  monkeypatch.setattr(compiler, "options", bad)
  step, args = meta_step.build(TINY)
  with pytest.raises(Exception, match="xla_no_such_option"):
    step.lower(*args).compile()
  learner, inner, family = meta_step.parts(TINY)
  run = evaluation.make_eval_batch(learner, inner, family, (0, 1), batch=2,
                                   fast_compile=True)
  with pytest.raises(Exception, match="xla_no_such_option"):
    run.lower(args[0].theta, args[1], args[2], None).compile()
  assert asked == [False, True]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU-only options")
def test_fusion_emitters_on_and_off_give_the_same_meta_step():
  results = []
  for use in (True, False):
    step, (state, data, key, _) = meta_step.build(TINY)
    compiled = step.lower(state, data, key, True).compile(
        {"xla_cpu_use_fusion_emitters": use})
    for _ in range(3):  # Three Adam updates: differences would compound.
      state, metrics = compiled(state, data, key, True)
    results.append((state.theta, metrics))
  (theta_a, metrics_a), (theta_b, metrics_b) = results
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(theta_a),
                          jax.tree.leaves(theta_b)):
    name = jax.tree_util.keystr(path)
    if "Conv" in name and "bias" in name:
      # A bias before batch-statistic BatchNorm has zero true gradient: Adam turns the
      # rounding noise into steps of up to lr (1e-3) either way, on either path.
      np.testing.assert_array_less(np.abs(a - b), 2e-3 * 3 + 1e-6)
    else:
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
  for name in metrics_a:
    np.testing.assert_allclose(metrics_a[name], metrics_b[name], rtol=1e-4, atol=1e-6,
                               err_msg=name)


def test_an_option_this_jaxlib_lacks_is_dropped_with_a_warning(monkeypatch):
  monkeypatch.setattr(compiler, "CPU_FAST_COMPILE", {"xla_cpu_no_such_option": True})
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  with pytest.warns(RuntimeWarning, match="xla_cpu_no_such_option"):
    assert compiler.options(fast_compile=True) == {}
