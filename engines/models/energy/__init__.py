"""Energy-based models: restricted Boltzmann machines trained by contrastive divergence."""
