"""The packaged defaults: ``slm_config.json`` and ``personality.json``, used when no other file applies."""
