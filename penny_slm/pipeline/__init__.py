"""The runtime: the layer, its orchestrator, the modules and adapters, the registry and the profile database."""
