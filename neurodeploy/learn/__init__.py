"""Training loops that run on the GPU fallback (PyTorch): iP-VAE BPTT, FA/KP/WM, EqProp."""
