r"""Counts module hops from the training entry point to the first metrics row on disk.

  python -m benchmarks.module_hops [--config=experiments/sinusoid.py:smoke] [--trace]

Runs ``launch.main`` in this process under ``sys.setprofile`` and records, for every
Python call into a file of this repository, the module it lands in. A hop is a call
whose module differs from the caller's module, counted until the metrics writer writes
its first row; tracing the jitted meta-step is included (its Python runs once). It
prints the hop count (all of them, and those of the assembly before the meta-step is first
traced, which excludes the maths the trace runs through), the modules entered and how
often each was entered.
"""

import collections
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Stop(Exception):
  pass


def _module(filename: str):
  path = os.path.abspath(filename)
  if not path.startswith(REPO + os.sep) or "/.venv/" in path:
    return None
  rel = os.path.relpath(path, REPO)
  return rel[:-3].replace(os.sep, ".") if rel.endswith(".py") else None


def main():
  config = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config=")),
                "experiments/sinusoid.py:smoke")
  sys.path.insert(0, REPO)
  from absl import app  # pylint: disable=g-import-not-at-top
  from launch import main as launch_main  # pylint: disable=g-import-not-at-top
  workdir = tempfile.mkdtemp()
  # config_flags reads its overrides from sys.argv.
  trace = "--trace" in sys.argv
  sys.argv = [sys.argv[0], f"--config={config}", f"--workdir={workdir}",
              "--config.log_every=1", "--config.val.every=0"]
  app.parse_flags_with_usage(sys.argv)
  hops, entered = [], collections.Counter()
  assembly = []  # The hops before the meta-step is first traced: config to a running loop.

  def profile(frame, event, arg):
    del arg
    if event != "call":
      return
    mod = _module(frame.f_code.co_filename)
    if mod is None:
      return
    caller = frame.f_back
    while caller is not None and _module(caller.f_code.co_filename) is None:
      caller = caller.f_back
    src = None if caller is None else _module(caller.f_code.co_filename)
    if frame.f_code.co_name == "step" and mod.endswith(".outer") and not assembly:
      assembly.extend(hops)
    if src != mod:
      hops.append((src, mod))
      entered[mod] += 1
    if frame.f_code.co_name == "write" and mod.endswith("metrics_writer"):
      raise _Stop()

  sys.setprofile(profile)
  try:
    launch_main.main(["main"])
  except _Stop:
    pass
  finally:
    sys.setprofile(None)
  print(f"module hops from launch.main.main to the first metrics row: {len(hops)} "
        f"({len(set(hops))} distinct caller -> callee pairs); before the meta-step is "
        f"first traced (assembly: config, data, state, checkpoints, writers): "
        f"{len(assembly)} ({len(set(assembly))} distinct)")
  if trace:
    for src, mod in hops:
      print(f"  {src} -> {mod}")
  print(f"modules entered: {len(entered)}")
  for mod, n in entered.most_common():
    print(f"  {n:3d}  {mod}")


if __name__ == "__main__":
  main()
