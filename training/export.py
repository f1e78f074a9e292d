"""ONNX export: input ``input`` (dynamic batch), outputs ``probs`` and ``va``, spec in the metadata."""

from __future__ import annotations

from pathlib import Path

from affectstream.engines.spec import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_PROBS,
    OUTPUT_VA,
    EngineSpec,
    set_metadata,
)


def export_onnx(
    checkpoint: str | Path,
    output: str | Path,
    template: str | Path | None = None,
    model_id: str | None = None,
    opset: int = 17,
    flip_average: bool | None = None,
) -> EngineSpec:
    """Export a checkpoint; returns the spec written into the file's metadata.

    ``model_id`` and ``flip_average`` override the checkpoint recipe's ``export`` section.
    """
    import onnx
    import torch

    from affectstream.training.inference import load_inference_model
    from affectstream.training.model import ProbsOnly

    module, spec = load_inference_model(checkpoint, template, flip_average=flip_average)
    if model_id:
        from dataclasses import replace

        spec = replace(spec, model_id=model_id)
    h, w = spec.input_size
    dummy = torch.zeros(2, spec.channels, h, w)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    outputs = [OUTPUT_PROBS, OUTPUT_VA] if spec.has_va else [OUTPUT_PROBS]
    wrapped = module if spec.has_va else ProbsOnly(module)
    # The TorchScript exporter (dynamo=False) gives a single self-contained file with plain
    # dynamic_axes, which TensorRT and ONNX Runtime both take as-is.
    torch.onnx.export(
        wrapped,
        (dummy,),
        str(output),
        input_names=[INPUT_NAME],
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]},
        opset_version=opset,
        dynamo=False,
    )
    model = onnx.load(str(output))
    set_metadata(model, {METADATA_KEY: spec.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(output))
    return spec
