"""Parameters after 20 meta-steps, pinned bit for bit for each algorithm and config family.

``tests/pinned_params.json`` was written by running this file as a script
(``python tests/pinned_params_test.py``) before the library's layout was restructured;
the test re-runs the same 20 meta-steps and asserts that every parameter (and Reptile's
carried inner Adam state) hashes to the same bytes. Bitwise identity only holds on a
platform that wrote the file: same jax, backend, CPU features and number of usable
cores (XLA:CPU splits its matmuls and reductions over its threads, so ``taskset -c 0``
changes the last bits). The file holds one set of hashes per such platform; elsewhere the
test compares per-leaf sums to a relative tolerance instead.
"""

import hashlib
import json
import os
import platform
import sys

import jax
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

from experiments import omniglot  # noqa: E402
from experiments import omniglot_reptile  # noqa: E402
from experiments import sinusoid  # noqa: E402
from metalearn.run import loop  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pinned_params.json")
OMNIGLOT = os.environ.get("METALEARN_OMNIGLOT_DIR",
                          os.path.join(REPO, "..", "shared", "data", "omniglot"))


def _cases():
  """name -> (config, needs Omniglot). Every config runs 20 meta-steps."""
  out = {}
  c = sinusoid.get_config("smoke")
  out["sinusoid_maml"] = (c, False)
  c = sinusoid.get_config("reptile,smoke")
  out["sinusoid_reptile"] = (c, False)
  out["omniglot_maml"] = (omniglot.get_config("5way1shot,smoke"), True)
  out["omniglot_fomaml"] = (omniglot.get_config("fomaml,smoke"), True)
  out["omniglot_maml_reference"] = (omniglot.get_config("5way1shot,reference,smoke"), True)
  out["omniglot_reptile_carried"] = (omniglot_reptile.get_config("smoke"), True)
  c = omniglot.get_config("5way1shot,smoke")
  c.inner.remat = True
  c.inner.steps = 2
  out["omniglot_maml_remat_k2"] = (c, True)
  for c, needs_data in out.values():
    c.num_steps = 20
    c.log_every = 10
    c.checkpoint_every = 20
    c.val.every = 0
    if needs_data:
      c.data.path = OMNIGLOT
  return out


def _leaves(tree):
  return [(jax.tree_util.keystr(p), np.asarray(x))
          for p, x in jax.tree_util.tree_leaves_with_path(jax.device_get(tree))]


def fingerprint(state) -> dict:
  """sha256 over every leaf's path, dtype, shape and bytes; per-leaf float64 sums."""
  out = {}
  for name, tree in (("theta", state.theta), ("inner_state", state.inner_state)):
    if tree is None:
      continue
    h = hashlib.sha256()
    sums = {}
    for path, x in _leaves(tree):
      h.update(f"{path}|{x.dtype}|{x.shape}|".encode())
      h.update(np.ascontiguousarray(x).tobytes())
      if np.issubdtype(x.dtype, np.floating):
        sums[path] = float(np.sum(x, dtype=np.float64))
    out[name] = {"sha256": h.hexdigest(), "sums": sums}
  return out


def platform_id() -> str:
  flags = ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          flags = hashlib.sha256(line.encode()).hexdigest()[:12]
          break
  except OSError:
    pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return (f"jax {jax.__version__} {jax.default_backend()} {platform.machine()} "
          f"cpu-flags {flags} usable-cores {cores}")


def run_case(config, workdir):
  return loop.train(config, workdir)


def record(workdir_root: str) -> None:
  """Adds (or replaces) this platform's fingerprints in the fixture."""
  out = {}
  if os.path.exists(FIXTURE):
    with open(FIXTURE) as f:
      out = json.load(f)
  cases = {}
  for name, (config, _) in _cases().items():
    state = run_case(config, os.path.join(workdir_root, name))
    cases[name] = fingerprint(state)
    print(name, cases[name]["theta"]["sha256"], flush=True)
  out[platform_id()] = cases
  with open(FIXTURE, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")


@pytest.mark.parametrize("name", sorted(_cases()))
def test_parameters_after_20_meta_steps_are_pinned(name, tmp_path):
  config, needs_data = _cases()[name]
  if needs_data and not os.path.isdir(OMNIGLOT):
    pytest.skip(f"Omniglot not found at {OMNIGLOT} (set METALEARN_OMNIGLOT_DIR)")
  with open(FIXTURE) as f:
    pinned = json.load(f)
  here = platform_id()
  want = (pinned.get(here) or next(iter(pinned.values())))[name]
  got = fingerprint(run_case(config, str(tmp_path / name)))
  assert set(got) == set(want)
  for part in want:
    if here in pinned:
      assert got[part]["sha256"] == want[part]["sha256"], f"{part} changed"
    else:
      assert got[part]["sums"].keys() == want[part]["sums"].keys()
      for path, s in want[part]["sums"].items():
        np.testing.assert_allclose(got[part]["sums"][path], s, rtol=1e-3, atol=1e-4,
                                   err_msg=f"{part}{path}")


if __name__ == "__main__":
  import tempfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as d:
    record(d)
