"""Task families: synthetic regression and few-shot image episodes."""
