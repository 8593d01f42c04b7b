"""Configuration: the types of every Hydra group (schema) and composing conf/ outside @hydra.main."""
