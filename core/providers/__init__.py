"""Built-in providers, one per module; import them through ``core.registry``."""
