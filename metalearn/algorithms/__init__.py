"""Meta-learning algorithms sharing one contract: meta_grad(theta, episode, key, *, cfg)."""
