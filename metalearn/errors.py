"""Errors that entry points turn into one line on stderr and a non-zero exit.

Library code raises these with a message that names the flag, key or file at fault
and what is wrong with it; ``launch/`` catches ``MetalearnError`` and exits with status 2.
"""


class MetalearnError(Exception):
  """Base class for user-facing errors (bad config, bad data, bad checkpoint)."""


class ConfigError(MetalearnError):
  """A config key or flag holds a value that cannot be used."""


class DataError(MetalearnError):
  """A dataset file or directory is missing, corrupt or cannot supply an episode."""


class CheckpointError(MetalearnError):
  """A checkpoint cannot be restored into the current run."""
