"""tilecc: an ahead-of-time deep-learning compiler (ONNX in, native artifact out).

    import tilecc
    art = tilecc.compile("model.onnx", target="host")
    art.save("model.tar")
    mod = tilecc.load("model.tar")
    outputs = mod.run({"input": x})

Heavy parts (frontends, codegen, runtime) are imported on first use so `import tilecc` and
the CLI start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ArtifactError, InputError, LinkError, ModelRunError, TileccError

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ArtifactError",
    "InputError",
    "LinkError",
    "ModelRunError",
    "Module",
    "TileccError",
    "__version__",
    "compile",
    "load",
]

if TYPE_CHECKING:
    from .runtime.artifact import Artifact
    from .runtime.module import Module


def compile(model: Any, target: Any = "host", input_shapes: dict | None = None,
            opt_level: int = 2, tuning_logs: Any = None, name: str = "tilecc_model",
            print_ir_after: Any = None, default_logs: bool = True,
            precision: str = "fp32", quantize: str | None = None, calibration: Any = None,
            calibration_method: str = "minmax", keep_fp32: Any = None,
            expose_intermediates: bool = False, profile: bool = False,
            reduce_range: bool = False, quantize_depthwise: bool | None = None) -> Artifact:
    """Compile an ONNX model (path, bytes or ModelProto) for `target` into an Artifact.

    input_shapes: {input name: shape} for inputs with symbolic dimensions.
    tuning_logs: tuning-log path(s) whose best configs override the schedule defaults.
    name: the C symbol prefix of the generated functions (<name>_run, ...).
    print_ir_after: pass name(s) after which the graph is printed.
    default_logs: also use TILECC_TUNING_LOGS and the logs shipped with tilecc.
    precision: "fp16" stores weights and activations between kernels as half (CPU and OpenCL
    targets; graph inputs/outputs stay float32). Math is fp32, except on ARMv8.2-A +fullfp16
    and cl_khr_fp16 devices: half, long reductions accumulating in fp32
    (docs/quantization.md).
    quantize: "int8" quantizes Conv/Gemm/MatMul after calibrating on `calibration` (a
    directory of .npz samples, one .npz with a leading sample axis, or a list of input dicts)
    with `calibration_method` minmax|percentile|entropy; ops named in `keep_fp32` stay float;
    `expose_intermediates` adds every quantized layer's output as a graph output (compare);
    `reduce_range` quantizes weights to 7 bits (faster on x86 without VNNI; the weights, and
    so the results, never depend on the target otherwise); `quantize_depthwise` makes
    depthwise convs int8 (True) or fp32 (False) instead of the target's default (int8 on GPUs
    and bare metal, fp32 on CPUs with an OS).
    profile: time every kernel call (`tilecc run --profile`); for measuring, not deployment.
    """
    from tilecc.autotune.provider import TuningLogConfigs
    from tilecc.build import build

    configs = TuningLogConfigs(tuning_logs or (), use_default_logs=default_logs)
    quant = None
    if quantize is not None:
        from tilecc.passes.quantize import DEFAULT_KEEP_FP32, QuantOptions
        if quantize != "int8":
            raise ValueError(f"quantize={quantize!r}: only 'int8' is supported")
        if calibration is None:
            raise ValueError("quantize='int8' needs calibration data (calibration=...)")
        quant = QuantOptions(calibration=calibration, method=calibration_method,
                             keep_fp32=tuple(DEFAULT_KEEP_FP32 if keep_fp32 is None
                                             else keep_fp32),
                             expose=expose_intermediates, reduce_range=reduce_range,
                             depthwise=quantize_depthwise)
    return build(model, target=target, input_shapes=input_shapes, opt_level=opt_level,
                 name=name, print_ir_after=print_ir_after,
                 configs=configs, precision=precision, quant=quant, profile=profile)


def load(path: Any, num_threads: int | None = None) -> Module:
    """Load a saved artifact (model.tar) for running on this machine: CPU artifacts through
    their native library, OpenCL artifacts through the OpenCL executor (pyopencl)."""
    from tilecc.runtime.module import load as _load

    return _load(path, num_threads=num_threads)


def __getattr__(name: str) -> Any:
    if name == "Artifact":
        from tilecc.runtime.artifact import Artifact

        return Artifact
    if name == "Module":
        from tilecc.runtime.module import Module

        return Module
    raise AttributeError(f"module 'tilecc' has no attribute {name!r}")
