"""neurodeploy.backends."""
