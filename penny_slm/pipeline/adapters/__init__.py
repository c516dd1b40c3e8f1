"""One adapter class per runtime (ONNX encoder, ONNX causal LM, OpenAI-compatible HTTP), registered in ``pipeline.factory``."""
