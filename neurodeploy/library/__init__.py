"""neurodeploy.library."""
