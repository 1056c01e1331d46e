"""The run machinery: the training loop, checkpoints, metrics, progress, provenance,
and ``workdir``, which owns every file name in a run's directory and reads them back."""
