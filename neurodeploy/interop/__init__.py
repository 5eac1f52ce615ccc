"""Interchange with the rest of the field: NIR graphs (``nir.py``) and ONNX (``onnx.py``)."""
