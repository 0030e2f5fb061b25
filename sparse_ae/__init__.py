"""sparse_ae: sparse-coding autoencoders in JAX/Flax."""
