r"""MAML on miniImageNet (Finn et al. 2017, Section 5.2), Ravi–Larochelle split.

  5way1shot (default): train K=5, α=0.01, meta-batch 4, test K=10; 48.70 ± 1.84%
  5way5shot:           train K=5, α=0.01, meta-batch 2, test K=10; 63.11 ± 0.92%
  fomaml               first-order (1-shot 48.07 ± 1.75%, 5-shot 63.15 ± 0.91%)
  smoke                seconds-long run
Training queries: 15 per class; 60,000 meta-iterations; Adam 1e-3.

  python -m launch.main --config=experiments/miniimagenet.py:5way1shot \
      --config.data.path=/path/to/miniimagenet --workdir=/tmp/mini_5w1s
"""

from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = config_lib.base_config()
  c.task = "images"
  c.data.name = "miniimagenet"
  c.data.path = ""
  c.data.image_size = 84
  c.model.name = "conv4_miniimagenet"
  c.algorithm = "fomaml" if "fomaml" in args else "maml"
  c.ways = 5
  c.shots = 5 if "5way5shot" in args else 1
  c.queries = 15
  c.inner.steps = 5
  c.inner.lr = 0.01
  c.meta_batch = 2 if c.shots == 5 else 4
  c.num_steps = 60000
  c.log_every = 100
  c.checkpoint_every = 1000
  c.val.every = 5000
  c.eval.steps = 10
  c.eval.queries = 15
  c.eval.episodes = 600
  c.eval.batch = 20
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
