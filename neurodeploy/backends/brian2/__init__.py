"""neurodeploy.backends.brian2."""
