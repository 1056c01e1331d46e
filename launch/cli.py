"""What every command line shares: one-line errors for bad flags and quiet libraries."""

import logging as std_logging
import sys

from absl import flags
from absl import logging


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a bad flag (an unknown ``--config.`` key, a config file
  that is missing or does not load, a value of the wrong type) reported on one line
  naming the flag, and exit status 2."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    fail(_one_line(e))
  except Exception as e:  # pylint: disable=broad-except
    # An override of a key the config lacks, or a config file that raised while
    # loading (its own bug, or a bad ``:arg``).
    missing = str(e.args[0]).strip("'\"") if e.args else ""
    for a in argv:
      name = a.split("=", 1)[0]
      if (isinstance(e, (AttributeError, KeyError)) and name.startswith("--config.")
          and missing in name[len("--config."):].split(".")):
        fail(f"{name}: the config has no key {missing!r} there")
    fail(f"--config: the config file raised {type(e).__name__}: {_one_line(e)}")
  if "config" in flags.FLAGS:
    flag = flags.FLAGS["config"]
    try:
      flag.value.keys()  # A config file that failed to load raises on any access.
    except Exception as e:  # pylint: disable=broad-except
      lines = [line.strip() for line in str(e).splitlines() if line.strip()]
      given = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "")
      fail(f"--config={given}: cannot load it ({lines[-1] if lines else type(e).__name__})")
  return rest


def _one_line(e: Exception) -> str:
  return " ".join(str(e).split())


def fail(message: str) -> None:
  """Prints ``error: <message>`` on one line and exits with status 2."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


class _QuietLibraries:
  """Drops INFO lines from orbax's internals; its warnings and errors still show."""

  def filter(self, record):
    return record.levelno > std_logging.INFO or "/orbax/" not in record.pathname


def quiet_libraries() -> None:
  logging.get_absl_logger().addFilter(_QuietLibraries())
