"""`task: vqvae_prior`: an autoregressive prior over the codes of a finished vqvae run."""
