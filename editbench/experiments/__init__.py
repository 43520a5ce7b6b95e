"""Studies that are not edit tasks: activation reporting (seed 004, :mod:`.activations`)."""
