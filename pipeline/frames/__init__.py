"""The per-frame stages: detect faces (SCRFD, ONNX Runtime or torch), align them, track them across
frames, smooth per track, and `processor.FrameProcessor`, which runs those stages and the engine on a frame.
"""
