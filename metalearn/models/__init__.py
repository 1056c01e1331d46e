"""Models: the MAML conv nets and the sinusoid MLP."""
