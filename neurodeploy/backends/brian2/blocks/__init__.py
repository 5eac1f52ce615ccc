"""neurodeploy.backends.brian2.blocks."""
