"""neurodeploy.lowering."""
