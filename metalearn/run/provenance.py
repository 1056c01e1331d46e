"""What a results file must say about how it was made: command, date, machine, time."""

import datetime
import json
import os
import platform
import sys
from typing import Optional

import jax

from metalearn import atomic
from metalearn.run import workdir as workdir_lib


def machine() -> dict:
  """The machine and software a number was measured on."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  # The cores this process may run on (``taskset``, cgroups); XLA's CPU thread pools
  # are sized from it.
  usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
  return dict(host=platform.node(), cpu=cpu, cpu_count=os.cpu_count(), cpus_usable=usable,
              backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
              jax=jax.__version__, python=platform.python_version(),
              load_average=list(os.getloadavg()))


def now() -> str:
  """The UTC date and time to the second, ISO 8601."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command() -> str:
  return " ".join(["python", "-m", _module()] + sys.argv[1:])


def _module() -> str:
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  return spec.name if spec is not None else sys.argv[0]


def record_run(workdir: str, seconds: float, extra: Optional[dict] = None) -> dict:
  """Appends this invocation to ``<workdir>/run.json`` and returns its contents.

  Wall time accumulates over the invocations that resumed the same run.
  """
  info = workdir_lib.read_json(workdir, workdir_lib.RUN) or {"invocations": []}
  info["invocations"].append(dict(
      command=command(), date=now(), seconds=round(seconds, 1), machine=machine(),
      **(extra or {})))
  info["total_seconds"] = round(sum(i["seconds"] for i in info["invocations"]), 1)
  atomic.write_text(os.path.join(workdir, workdir_lib.RUN), json.dumps(info, indent=2))
  return info
