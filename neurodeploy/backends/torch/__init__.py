"""neurodeploy.backends.torch."""
