"""ONNX export, int8 quantization, parity verification and the ``models build`` pipeline (``[train]`` extra)."""
