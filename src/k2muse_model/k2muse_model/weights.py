"""Read the safetensors weights of a model folder back into a torch module.

The writer is ``k2muse_learning.artifacts``; reading lives here so that the estimator's pytorch
backend needs only the model contract. torch and safetensors are imported when a file is read,
so importing this module stays numpy-only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from k2muse_model.model_folder import ArtifactError, check_recorded_facts

if TYPE_CHECKING:
    from k2muse_model.tcn import HipMomentTCN, TCNConfig


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file; ArtifactError when it cannot be read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise ArtifactError(f"{path}: not readable safetensors weights ({error})") from None


def load_weights(path: str | os.PathLike, config: TCNConfig | Mapping[str, Any],
                 manifest: Mapping[str, Any] | None = None) -> HipMomentTCN:
    """Rebuild the module from config and load safetensors weights (no pickle); eval mode.

    With ``manifest``, the facts recorded in the weights' metadata must agree with it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from k2muse_model.tcn import build_tcn

    if manifest is not None:
        check_recorded_facts(Path(path), manifest, safetensors_metadata(Path(path)))
    model = build_tcn(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ArtifactError(f"{path}: not readable safetensors weights ({error})") from error
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ArtifactError(f"{path}: weights do not match the architecture in the manifest "
                            f"({first_line})") from error
    return model.eval()
