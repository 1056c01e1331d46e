"""The examples run as written, with the public API only."""

import ast
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "examples", "custom_algorithm.py")


def test_example_imports_only_the_public_api():
  tree = ast.parse(open(EXAMPLE).read())
  imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
  imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
  assert {m for m in imported if m.startswith("metalearn")} == {"metalearn"}
  assert len(open(EXAMPLE).read().splitlines()) <= 60


def test_custom_algorithm_example_trains_and_adaptation_helps(tmp_path):
  proc = subprocess.run([sys.executable, EXAMPLE, f"--workdir={tmp_path / 'blend'}"],
                        cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  loss = {int(line.split("k=")[1].split()[0]): float(line.split(": ")[1].split()[0])
          for line in proc.stdout.splitlines() if line.startswith("loss after")}
  assert sorted(loss) == [0, 1, 5, 10]
  assert loss[10] < loss[0]  # The registered algorithm meta-learned something useful.
