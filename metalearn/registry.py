"""A registry of records by name: algorithms and task kinds are each kept in one."""

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
  """Records of one type, registered once each under their ``name``."""

  def __init__(self, what: str, record_type: type):
    self.what, self.record_type = what, record_type
    self._records: dict[str, T] = {}

  def register(self, record: T, *, replace: bool = False) -> T:
    """Makes ``record`` available by its name; returns it.

    Raises:
      ValueError: the name is taken (pass ``replace=True`` to replace it), or the
        record is of another type.
    """
    if not isinstance(record, self.record_type):
      raise ValueError(f"register() takes a {self.record_type.__module__}."
                       f"{self.record_type.__name__}, got {type(record).__name__}")
    if record.name in self._records and not replace:
      raise ValueError(f"{self.what} {record.name!r} is already registered")
    self._records[record.name] = record
    return record

  def get(self, name: "str | T") -> T:
    """The record registered under ``name`` (a record is returned as it is)."""
    if isinstance(name, self.record_type):
      return name
    if name not in self._records:
      raise ValueError(f"{self.what}={name!r}: expected one of {self.names()}")
    return self._records[name]

  def names(self) -> tuple[str, ...]:
    return tuple(sorted(self._records))
