"""The meta-batch sharded over 8 (simulated CPU) devices gives the one-device result."""

import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, sys, jax
from experiments import sinusoid
from metalearn.run import loop
from metalearn.run import scoring
c = sinusoid.get_config("smoke")
c.num_steps, c.meta_batch, c.val.every, c.log_every, c.checkpoint_every = 30, 8, 0, 10, 30
state = loop.train(c, sys.argv[1])
print(json.dumps({"devices": jax.device_count(),
                  "theta": [x.tolist() for x in jax.tree.leaves(jax.device_get(state.theta))]}))
"""


def _run(workdir, devices):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  out = subprocess.run([sys.executable, "-c", SCRIPT, str(workdir)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_eight_devices_match_one(tmp_path):
  one = _run(tmp_path / "one", 1)
  eight = _run(tmp_path / "eight", 8)
  assert one["devices"] == 1 and eight["devices"] == 8
  for a, b in zip(one["theta"], eight["theta"]):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_carried_inner_state_on_eight_devices_is_refused_before_writing(tmp_path):
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "launch.main", "--config=experiments/sinusoid.py:reptile,smoke",
         f"--workdir={workdir}", "--config.inner.optimizer=adam",
         "--config.inner.carry_state=True", "--config.meta_batch=8"]
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-3000:]
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: config.inner.carry_state") and "not 8" in last, last
  assert not workdir.exists()
