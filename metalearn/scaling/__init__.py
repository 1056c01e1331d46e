"""Compute-scaling science: the sweep, curve fits, analysis, plots and report. It reads
the rows the run machinery wrote (``metalearn.run.workdir``), never the loop's internals."""
