"""Models with discrete latents: categorical codes trained through relaxations or score-function estimators."""
