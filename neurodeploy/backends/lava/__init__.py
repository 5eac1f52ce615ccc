"""neurodeploy.backends.lava."""
