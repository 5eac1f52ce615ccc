"""neurodeploy.backends.torch.blocks."""
