"""Bad input on the command line: one line naming the flag or key, exit 2, nothing written."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("args,message", [
    (["--config=experiments/sinusoid.py:smoke", "--config.nonsense=3"],
     "error: --config.nonsense: the config has no key 'nonsense'"),
    (["--config=experiments/sinusoid.py:smoke", "--config.inner.nonsense=3"],
     "error: --config.inner.nonsense: the config has no key 'nonsense'"),
    (["--config=experiments/missing.py"],
     "error: --config=experiments/missing.py: cannot load it ([Errno 2] No such file"),
    (["--config=experiments/sinusoid.py:smoke", "--config.inner.lr=-1"],
     "error: config.inner.lr: -1.0 must be > 0"),
    (["--config=experiments/sinusoid.py:smoke", "--config.outer.lr=0"],
     "error: config.outer.lr: 0.0 must be > 0"),
    (["--config=experiments/sinusoid.py:smoke", "--config.inner.steps=abc"],
     "error: flag --config.inner.steps=abc:"),
    (["--config=experiments/omniglot.py:smoke", "--config.eval.ways=20"],
     "error: config.eval.ways: 20: the classifier head has config.ways=5 outputs"),
    (["--config=experiments/sinusoid.py:smoke", "--config.algorithm=mamal"],
     "error: config.algorithm: 'mamal' not in ('anil', 'fomaml', 'imaml', 'maml'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
  workdir = tmp_path / "w"
  proc = subprocess.run([sys.executable, "-m", "launch.main", *args,
                         f"--workdir={workdir}"], cwd=REPO, capture_output=True,
                        text=True, timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(errors) == 1 and errors[0].startswith(message), proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert not workdir.exists()
