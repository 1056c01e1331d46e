"""metalearn: JIT-compiled meta-learning (MAML, first-order MAML, Reptile) in JAX."""
