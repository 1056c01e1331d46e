"""Evaluation identity: a file per protocol, readers that select by settings."""

import dataclasses
import json
import os

import numpy as np
import pytest

from experiments import compute_scaling
from experiments import sinusoid
from metalearn import config as config_lib
from metalearn.run import workdir as workdir_lib
from metalearn.scaling import sweep

# For each protocol field, a config override that changes it.
OVERRIDES = {
    "split": ("eval.split", "val"),
    "ways": ("eval.ways", 3),
    "shots": ("eval.shots", 7),
    "queries": ("eval.queries", 11),
    "steps": ("eval.eval_steps", (0, 1, 3)),
    "inner_lr": ("eval.inner_lr", 0.1),
    "bn_mode": ("eval.bn_mode", "non_transductive"),
    "seed": ("eval.seed", 5),
    "batch": ("eval.batch", 7),
    "episodes": ("eval.episodes", 120),
    "rotate": ("eval.rotate", True),
    "within_alphabet": ("eval.within_alphabet", True),
}


def _set(c, key, value):
  *parents, leaf = key.split(".")
  for p in parents:
    c = c[p]
  c[leaf] = value


def test_every_protocol_field_is_covered_and_changes_the_file_name(tmp_path):
  assert set(OVERRIDES) == {f.name for f in dataclasses.fields(config_lib.EvalProtocol)}
  base = sinusoid.get_config("smoke")
  p0 = config_lib.eval_protocol(base)
  stems = {workdir_lib.eval_stem(str(tmp_path), 100, p0)}
  for field, (key, value) in OVERRIDES.items():
    c = base.copy_and_resolve_references()
    _set(c, key, value)
    p = config_lib.eval_protocol(c)
    assert getattr(p, field) != getattr(p0, field), field
    assert [f for f in dataclasses.fields(p) if getattr(p, f.name) != getattr(p0, f.name)
            ] == [f for f in dataclasses.fields(p) if f.name == field]
    stems.add(workdir_lib.eval_stem(str(tmp_path), 100, p))
  assert len(stems) == len(OVERRIDES) + 1  # No two protocols share a file.


def _rows(protocol, step, settings=None):
  rows = []
  for k in protocol.steps:
    rows.append(dict(settings or {}, bn_mode="transductive", metric="loss", k=k,
                     mean=float(k), ci95=0.1, episodes=protocol.episodes,
                     eval_split=protocol.split, eval_ways=protocol.ways,
                     eval_shots=protocol.shots, eval_queries=protocol.queries,
                     eval_inner_lr=protocol.inner_lr, eval_bn_mode=protocol.bn_mode,
                     eval_seed=protocol.seed, eval_batch=protocol.batch,
                     eval_rotate=protocol.rotate, checkpoint_step=step))
  return rows


def _write(workdir, protocol, step, fill):
  values = {"loss": np.full((protocol.episodes, len(protocol.steps)), fill)}
  return workdir_lib.write_evaluation(str(workdir), step, protocol, _rows(protocol, step),
                                      values)


def test_readers_select_by_protocol_never_by_name(tmp_path):
  c = sinusoid.get_config("smoke")
  own = config_lib.eval_protocol(c)
  other = dataclasses.replace(own, split="val")  # Its name sorts after the test split's.
  _write(tmp_path, own, 200, 1.0)
  _write(tmp_path, other, 200, 2.0)
  found = workdir_lib.find_evaluation(str(tmp_path), 200, own)
  assert found.protocol == own and found.values()["loss"].mean() == 1.0
  assert workdir_lib.find_evaluation(str(tmp_path), 200, other).values()["loss"][0, 0] == 2
  assert workdir_lib.find_evaluation(str(tmp_path), 100, own) is None


def test_files_without_eval_batch_take_the_runs_batch(tmp_path):
  c = sinusoid.get_config("smoke")
  p = config_lib.eval_protocol(c)
  rows = [{k: v for k, v in r.items() if k not in ("eval_batch", "eval_rotate",
                                                   "eval_bn_mode")}
          for r in _rows(p, 200)]
  os.makedirs(tmp_path / "eval")
  legacy = tmp_path / "eval" / "rows_step200_seed1_1w10s10q_k10.jsonl"
  legacy.write_text("".join(json.dumps(r) + "\n" for r in rows))
  np.savez(tmp_path / "eval" / "rows_step200_seed1_1w10s10q_k10.npz",
           loss=np.zeros((p.episodes, len(p.steps))))
  with pytest.raises(ValueError, match="eval_batch"):
    workdir_lib.evaluations(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({"eval": {"batch": c.eval.batch}}))
  (found,) = workdir_lib.evaluations(str(tmp_path))
  assert found.protocol == dataclasses.replace(p, bn_mode="transductive")
  assert found.step == 200


def test_sweep_reads_each_points_own_protocol(tmp_path):
  sweep_config = compute_scaling.get_config("sinusoid,smoke")
  points = sweep.grid(sweep_config)
  point = points[0]
  pdir = workdir_lib.point_dir(str(tmp_path), point.name)
  own = config_lib.eval_protocol(point.config)
  step = point.config.num_steps
  info = dict(point=point.name, group="base", axis="base", axis_value=None,
              tasks_key="sinusoid_pool", tasks=0, num_steps=step, meta_step_flops=1.0,
              meta_training_flops=float(step))
  os.makedirs(pdir)
  workdir_lib.write_json(pdir, workdir_lib.POINT, info)
  _write(pdir, own, step, 1.0)
  for changed in (dict(split="val"), dict(inner_lr=0.5), dict(batch=3),
                  dict(steps=own.steps[:3])):
    _write(pdir, dataclasses.replace(own, **changed), step, 9.0)  # Re-scored elsewhere.
  assert sweep.is_done(point, str(tmp_path))
  assert not any(sweep.is_done(p, str(tmp_path)) for p in points[1:])
  rows, values = sweep.collect(str(tmp_path), sweep_config)
  assert {r["eval_split"] for r in rows} == {"test"}
  assert {r["k"] for r in rows} == set(own.steps)
  assert list(values) == [f"{point.name}/loss"]
  assert values[f"{point.name}/loss"].mean() == 1.0


def test_retired_first_order_key_resumes_only_when_it_agrees():
  new = json.loads(sinusoid.get_config("fomaml").to_json_best_effort())
  old = json.loads(json.dumps(new))
  old["inner"]["first_order"] = True  # What fomaml configs wrote before the key retired.
  assert config_lib.changed_keys(old, new) == []
  old["algorithm"] = new["algorithm"] = "maml"
  assert config_lib.changed_keys(old, new) == ["inner.first_order"]  # A maml run made
  old["inner"]["first_order"] = False  # first order by the key is not plain maml.
  assert config_lib.changed_keys(old, new) == []
