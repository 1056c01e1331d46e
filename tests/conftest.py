"""Shared test setup: keep XLA on the CPU and compile quickly."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
