"""neurodeploy.core."""
