"""Two-variable scaling laws: ``L(X, Y) = E + A * X**-alpha + B * Y**-beta``.

X and Y are positive resources, e.g. meta-training FLOPs and test-time FLOPs, or
model size and data. The fit follows Hoffmann et al. 2022 (Chinchilla, Approach 3)
and its replication by Besiroglu et al. 2024 (see ``law_fit``).

This module is the entry point: it re-exports the names of

* ``law_form``: ``PARAM_NAMES``, ``predict``, and the trade-offs along an iso-loss line
  (``iso_loss_curve``, ``exchange_rate``, ``local_slope``);
* ``law_fit``: ``fit`` (multi-start Huber L-BFGS-B), ``LawFit``, ``default_grid``,
  ``CHINCHILLA_GRID``;
* ``law_checks``: ``lack_of_fit`` (runs and chi-square tests of the residuals),
  ``replicate_noise_sd``;
* ``law_bootstrap``: ``bootstrap``, ``LawBootstrap`` (percentile intervals).
"""

from metalearn.scaling.law_bootstrap import LawBootstrap, bootstrap
from metalearn.scaling.law_checks import lack_of_fit, replicate_noise_sd
from metalearn.scaling.law_fit import CHINCHILLA_GRID, LawFit, default_grid, fit
from metalearn.scaling.law_form import (PARAM_NAMES, exchange_rate, iso_loss_curve,
                                        local_slope, predict)

__all__ = [
    'CHINCHILLA_GRID', 'PARAM_NAMES', 'LawBootstrap', 'LawFit', 'bootstrap', 'default_grid',
    'exchange_rate', 'fit', 'iso_loss_curve', 'lack_of_fit', 'local_slope', 'predict',
    'replicate_noise_sd',
]
