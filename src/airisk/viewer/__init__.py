"""Browse, search, compare and export stored runs: ``airisk view`` (a local web app) and ``airisk export``."""
