"""The frame path: detect faces (SCRFD on ONNX Runtime or torch: `detect`, `scrfd`, `detector_files`; or the
shipped BlazeFace models, Apache-2.0 weights: `blazeface`), track them across frames, align them, the engine, smooth per track. `processor.FrameProcessor` holds the
stages; its `prepare` and `complete` are the path's two halves, the same for `run`, `archive work`,
`render` and the Python API. Per-source state lives in `context.SourceContext`.
"""
