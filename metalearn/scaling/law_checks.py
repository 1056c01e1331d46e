"""Lack of fit of a two-variable law: do its residuals look like noise?

A law of the wrong form fits smoothly but leaves structured residuals far above the
noise. ``lack_of_fit`` (also computed by every ``law_fit.fit``) says so with a runs test
for structure in the residual signs and, given the noise level of log L (e.g.
``replicate_noise_sd``), a chi-square test of the residual scale; its ``flag`` is set
when either rejects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from metalearn.scaling.curves import jsonable as _jsonable
from metalearn.scaling.law_form import PARAM_NAMES, _prepare, predict

__all__ = ['lack_of_fit', 'replicate_noise_sd']


def _runs_p(r: np.ndarray) -> float:
  """One-sided Wald-Wolfowitz p-value for too few sign runs (clustered signs)."""
  s = np.sign(r[r != 0])
  n1, n2 = int(np.sum(s > 0)), int(np.sum(s < 0))
  n = n1 + n2
  if n < 2:
    return 1.0
  if n1 == 0 or n2 == 0:
    return min(1.0, 2.0 * 0.5**n)  # All one sign.
  runs = 1 + int(np.sum(s[1:] != s[:-1]))
  mu = 2.0 * n1 * n2 / n + 1.0
  var = 2.0 * n1 * n2 * (2.0 * n1 * n2 - n) / (n * n * (n - 1.0))
  return float(stats.norm.cdf((runs - mu) / math.sqrt(var))) if var > 0 else 1.0


def _lack_of_fit(r: np.ndarray, lx: np.ndarray, ly: np.ndarray, noise_sd: Any,
                 level: float) -> dict[str, Any]:
  by_x = np.lexsort((ly, lx))  # X-major: runs along Y within each X.
  by_y = np.lexsort((lx, ly))  # Y-major: runs along X within each Y.
  runs_p = min(1.0, 2.0 * min(_runs_p(r[by_x]), _runs_p(r[by_y])))
  out = {'level': level, 'runs_p': runs_p, 'rms_log_residual': float(np.sqrt(np.mean(r**2))),
         'noise_sd': None, 'chi2': None, 'dof': None, 'reduced_chi2': None, 'chi2_p': None,
         'max_abs_z': None}
  if noise_sd is not None:
    sd = np.broadcast_to(np.asarray(noise_sd, dtype=float), r.shape)
    if not np.all(np.isfinite(sd) & (sd > 0)):
      raise ValueError('noise_sd must be finite and > 0.')
    z = r / sd
    chi2, dof = float(z @ z), len(r) - len(PARAM_NAMES)
    out.update(noise_sd=float(np.sqrt(np.mean(sd**2))), chi2=chi2, dof=dof,
               reduced_chi2=chi2 / dof, chi2_p=float(stats.chi2.sf(chi2, dof)),
               max_abs_z=float(np.max(np.abs(z))))
  out['flag'] = bool(runs_p < level or (out['chi2_p'] is not None and out['chi2_p'] < level))
  return out


def lack_of_fit(params: Mapping[str, float], x: Any, y: Any, loss: Any, noise_sd: Any = None,
                level: float = 0.01) -> dict[str, Any]:
  """Tests whether the residuals of a fitted law look like noise.

  Residuals are ``r_i = log L_pred_i - log L_obs_i``. Two tests, each at ``level``:

  * structure (needs no noise level): a one-sided Wald-Wolfowitz runs test for
    too few runs of equal residual sign, with points ordered X-major (runs along
    Y) and Y-major (runs along X); ``runs_p`` is the smaller p-value times 2
    (Bonferroni). Exact zeros are dropped. It assumes several points per axis.
  * scale (when ``noise_sd`` is given): ``chi2 = sum (r_i / noise_sd_i)**2`` on
    ``n - 5`` degrees of freedom, ``chi2_p`` its upper tail. The Huber fit does
    not minimise chi2, so chi2 runs slightly high (a few units) under a correct
    law: mildly conservative in favour of flagging. ``max_abs_z`` is the largest
    ``|r_i| / noise_sd_i``.

  Args:
    params: fitted ``{'E', 'A', 'alpha', 'B', 'beta'}``.
    x: 1-D X values.
    y: 1-D Y values.
    loss: 1-D observed losses.
    noise_sd: optional SD of log L per point (scalar or 1-D), e.g. from
      ``replicate_noise_sd``; for a small relative noise sigma, it is sigma.
    level: significance level of each test.

  Returns:
    JSON-ready dict: ``flag`` (either test rejects), ``runs_p``,
    ``rms_log_residual``, and when ``noise_sd`` is given ``noise_sd`` (its RMS),
    ``chi2``, ``dof``, ``reduced_chi2``, ``chi2_p``, ``max_abs_z`` (else None).
  """
  d = _prepare(x, y, loss, None)
  r = np.log(predict(params, x, y)) - d.logl
  return _jsonable(_lack_of_fit(r, d.u, d.v, noise_sd, level))


def replicate_noise_sd(values: Any) -> np.ndarray:
  """Per-point SD of log(mean loss) from replicate values (delta method).

  Args:
    values: ``[points, replicates]`` array, or a list of 1-D arrays (one per
      point, at least 2 replicates each).

  Returns:
    ``[points]``: ``std(ddof=1) / sqrt(n) / mean`` of each point's replicates.
  """
  out = []
  for p in _replicate_list(values):
    if len(p) < 2:
      raise ValueError('Each point needs at least 2 replicates.')
    out.append(np.std(p, ddof=1) / math.sqrt(len(p)) / np.mean(p))
  return np.array(out)


def _replicate_list(values: Any) -> list[np.ndarray]:
  if isinstance(values, np.ndarray):
    if values.ndim != 2:
      raise ValueError(f'Replicate values must be [points, replicates]; got {values.ndim}-D.')
    out = [np.asarray(p, dtype=float) for p in values]
  else:
    out = [np.asarray(p, dtype=float).ravel() for p in values]
  if not all(len(p) and np.all(np.isfinite(p) & (p > 0)) for p in out):
    raise ValueError('Replicate values must be finite, > 0, at least one per point.')
  return out
