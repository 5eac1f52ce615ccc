"""neurodeploy.backends.lava.blocks."""
