"""refgraph: who references what in a Livingdocs installation."""

__version__ = "0.1.0"
