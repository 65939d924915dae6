"""Deployment: compile a trained network into a state-explicit step graph (ONNX or an
AOTInductor package), run it with ``Runtime``, and export NIR graphs.

Importing this package needs no optional dependency; compiling and running say which
extra to install (``pip install 'bidl[deploy]'``).
"""

from .artifact import ArtifactError, read_manifest
from .compile import compile_model
from .from_config import CompileResult, compile_config, default_artifact_dir, reuse_reason
from .runtime import InferenceResult, Runtime
from .step_graph import StateSpec, StepGraph

__all__ = [
    "ArtifactError",
    "CompileResult",
    "InferenceResult",
    "Runtime",
    "StateSpec",
    "StepGraph",
    "compile_config",
    "compile_model",
    "default_artifact_dir",
    "read_manifest",
    "reuse_reason",
]
