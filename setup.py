"""Installs metalearn: JAX meta-learning (MAML, first-order MAML, Reptile)."""

import setuptools

setuptools.setup(
    name="metalearn",
    version="0.1.0",
    description="JIT-compiled MAML / FOMAML / Reptile and compute-scaling experiments in JAX.",
    packages=setuptools.find_packages(
        include=["metalearn", "metalearn.*", "launch", "experiments", "benchmarks"]),
    python_requires=">=3.10",
    # Floors are the versions the test suite has run with (jax 0.10.2, flax 0.12.8,
    # optax 0.2.8, orbax 0.12.8): the code uses jax.make_mesh(axis_types=...),
    # jax.jit(compiler_options=...) and optax.tree.norm, which older releases lack.
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.8",
        "tensorflow-datasets>=4.9",
        "absl-py>=2.0",
        "ml-collections>=0.1.1",
        "orbax-checkpoint>=0.12",
        "matplotlib>=3.7",
        "numpy>=1.26",
        "scipy>=1.11",
        "pillow>=10.0",
        "tensorboardX>=2.6",
    ],
    extras_require={
        # pytest-xdist: the suite runs on two workers (pytest.ini).
        "test": ["pytest>=7", "pytest-xdist>=3.5", "ruff>=0.4"],
        # TFDS's tfds.load and some builders need TensorFlow; data_source() does not.
        "tf": ["tensorflow>=2.15"],
    },
)
