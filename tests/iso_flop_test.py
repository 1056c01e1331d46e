"""iso_flop and capability: paired whole-curve comparisons at equal FLOPs, and the
loss-against-capability agreement, on synthetic sweeps whose truth is known."""

import math

import numpy as np
import pytest

from metalearn.scaling import capability
from metalearn.scaling import iso_flop

K = np.array([0, 1, 2, 4, 8, 16])


def _curve(rng, mu, seeds, episodes, shared, sd_seed=0.02, sd_noise=0.05):
  """``[S, E, P]`` values: true means ``mu [P]``, seed effects, shared episode effects."""
  return (mu[None, None] + rng.normal(0, sd_seed, (seeds, 1, 1)) + shared
          + rng.normal(0, sd_noise, (seeds, episodes, len(mu))))


def test_locate_log_interpolates_in_log_and_refuses_outside():
  assert iso_flop.locate_log(4.0, [1.0, 2.0, 8.0]) == (1, pytest.approx(1 / 2))
  assert iso_flop.locate_log(1.0, [1.0, 2.0]) == (0, 0.0)
  assert iso_flop.locate_log(0.5, [1.0, 2.0]) is None
  assert iso_flop.locate_log(3.0, [1.0, 2.0]) is None
  assert iso_flop.locate_log(0.0, [1.0, 2.0]) is None


def test_test_time_difference_covers_the_interpolated_truth():
  # The base model spends 100 FLOPs per inner step; the shots arm 300 per step. Its k = 1
  # costs 300 FLOPs: between the base's k = 2 and k = 4, at t = log(1.5)/log(2) in log
  # FLOPs. The truth of the difference is known; over many sweeps the interval covers it.
  rng = np.random.default_rng(0)
  mu_base = 1.0 / (1.0 + K)
  mu_shots = 0.8 / (1.0 + K)
  t = math.log(1.5) / math.log(2.0)
  truth_k1 = mu_shots[1] - ((1 - t) * mu_base[2] + t * mu_base[3])
  groups = [dict(group="base", axis="base"), dict(group="shots=30", axis="shots", shots=30)]
  hits, n = 0, 300
  for _ in range(n):
    shared = rng.normal(0, 0.1, (1, 200, 1))
    v = {"base": _curve(rng, mu_base, 3, 200, shared),
         "shots=30": _curve(rng, mu_shots, 3, 200, shared)}
    flops = {"base": 100.0 * K, "shots=30": 300.0 * K}
    res = iso_flop.test_time(groups, lambda g: (K, flops[g], v[g]), "base")
    d = res[0]["diffs"][0]
    assert d["k"] == 1 and d["base_k_equivalent"] == pytest.approx(2 * 1.5**1, rel=1e-9)
    hits += d["lo"] <= truth_k1 <= d["hi"]
  assert 0.92 <= hits / n <= 0.995
  # Matched points are those inside the base's FLOPs range (k = 1 … 4 of the shots arm).
  assert [x["k"] for x in res[0]["diffs"]] == [1, 2, 4]
  assert res[0]["summary"]["n"] == 3


def test_meta_training_compares_at_the_same_k_and_as_trained():
  rng = np.random.default_rng(1)
  shared = rng.normal(0, 0.1, (1, 400, 1))
  mu = {"base": 0.5 / (1 + K), "k_train=4": 0.3 / (1 + K), "shots=20": 0.2 / (1 + K)}
  v = {g: _curve(rng, m, 3, 400, shared, sd_seed=0.002) for g, m in mu.items()}
  groups = [dict(group="base", axis="base", k_train=1, meta_training_flops=1e9),
            dict(group="k_train=4", axis="k_train", k_train=4, meta_training_flops=4e9),
            dict(group="shots=20", axis="shots", axis_value=20, k_train=1,
                 meta_training_flops=2e9)]
  res = iso_flop.meta_training(groups, lambda g: (K, 10.0 * K, v[g]))
  (e,) = res
  assert e["k_train_equivalent"] == pytest.approx(2.0)  # Halfway in log FLOPs.
  # At the same k the shots arm is lower everywhere (k >= 1): true means 0.2 vs 0.4.
  assert e["same_k_summary"]["lower"] == 5 and e["same_k_summary"]["n"] == 5
  # As trained it is scored at k = 1 against the K_train arms at k = 1 and 4.
  truth = mu["shots=20"][1] - (0.5 * mu["base"][1] + 0.5 * mu["k_train=4"][3])
  assert abs(e["as_trained"]["diff"] - truth) < 3 * e["as_trained"]["ci95"]
  assert e["as_trained"]["k"] == 1


def test_failure_rate_is_derived_per_episode():
  loss = np.array([[0.05, 0.2], [0.3, 0.01], [0.15, 0.15]])
  rows = [dict(point="p", metric="loss", k=k, mean=float(loss[:, i].mean()))
          for i, k in enumerate((0, 3))]
  out_rows, values = capability.add_failure_rate(rows, {"p/loss": loss}, 0.1)
  np.testing.assert_array_equal(values["p/mse>0.1"], [[0, 1], [1, 0], [1, 1]])
  derived = [r for r in out_rows if r["metric"] == "mse>0.1"]
  assert [r["mean"] for r in derived] == pytest.approx([2 / 3, 2 / 3])
  assert len(rows) == 2  # The inputs are not changed.
  with pytest.raises(ValueError, match="threshold"):
    capability.add_failure_rate(rows, {"p/loss": loss}, 0.0)


def test_agreement_finds_a_loss_that_falls_while_capability_stays():
  # Loss falls step by step on every episode; the failure rate is flat: each step moves
  # only one metric. A second metric falling with it agrees.
  rng = np.random.default_rng(2)
  s, e = 3, 300
  loss = 1.0 / (1.0 + K)[None, None] + rng.normal(0, 0.01, (s, e, len(K)))
  flat = np.broadcast_to((rng.random((1, e, 1)) < 0.3).astype(float), (s, e, len(K)))
  groups = [dict(group="base")]
  out = capability.agreement(groups, lambda g: (K, K, flat), lambda g: (K, K, loss),
                             lambda g: [0, 1, 2])
  assert out[0]["one_moves"] == len(K) - 1 and out[0]["agree"] == 0
  out = capability.agreement(groups, lambda g: (K, K, 2 * loss), lambda g: (K, K, loss),
                             lambda g: [0, 1, 2])
  assert out[0]["agree"] == len(K) - 1
