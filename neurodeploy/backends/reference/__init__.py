"""neurodeploy.backends.reference."""
