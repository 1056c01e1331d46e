"""provenance: run.json accumulates invocations and says where each one ran."""

import json
import os
import subprocess
import sys

import pytest

from metalearn.run import provenance


def test_record_run_accumulates_invocations_and_their_seconds(tmp_path):
  provenance.record_run(str(tmp_path), 10.0)
  info = provenance.record_run(str(tmp_path), 2.5, dict(step=7))
  assert [i["seconds"] for i in info["invocations"]] == [10.0, 2.5]
  assert info["total_seconds"] == 12.5 and info["invocations"][1]["step"] == 7
  assert json.loads((tmp_path / "run.json").read_text()) == info
  assert not (tmp_path / "run.json.tmp").exists()


def test_machine_reports_the_cores_a_pinned_process_may_use():
  if not hasattr(os, "sched_getaffinity") or os.cpu_count() < 2:
    pytest.skip("needs sched_getaffinity and two cores")
  code = ("import os, json; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
          "from metalearn.run import provenance; print(json.dumps(provenance.machine()))")
  out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                       text=True, env=dict(os.environ, JAX_PLATFORMS="cpu")).stdout
  m = json.loads(out.strip().splitlines()[-1])
  assert m["cpus_usable"] == 1 and m["cpu_count"] == os.cpu_count()
