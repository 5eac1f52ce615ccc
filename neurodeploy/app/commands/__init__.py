"""neurodeploy.app.commands."""
