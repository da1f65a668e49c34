"""Torch-free ONNX model builders used by tests and benchmarks."""
