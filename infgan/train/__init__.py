"""Training: state, the one training step, the loop, and the context it runs in."""
