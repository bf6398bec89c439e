"""poseguide: pose-guided person image generation with a conditional VAE."""

__version__ = "0.1.0"
