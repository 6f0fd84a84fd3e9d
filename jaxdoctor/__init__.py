"""jaxdoctor: find the JAX, Flax and Equinox mistakes that JAX reports far from their cause."""

__version__ = "0.1.0"
