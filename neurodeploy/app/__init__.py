"""neurodeploy.app."""
