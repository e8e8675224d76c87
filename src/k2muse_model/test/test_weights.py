"""The weight loader and TCN module live in the contract without making its import heavy."""

import subprocess
import sys


def test_contract_import_and_weights_module_load_no_torch_or_safetensors():
    code = ("import sys, k2muse_model, k2muse_model.model_folder, k2muse_model.weights;"
            "print(sorted(m for m in ('torch', 'safetensors') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"

