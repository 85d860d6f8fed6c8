"""`task: vqvae`: the seed's VQ-VAE on CelebA (or any HDF5 image cache)."""
