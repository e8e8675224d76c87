import onnx
import pytest
import torch
from k2muse_learning.tcn_demo import gait_like_windows
from k2muse_model.tcn import build_tcn

from k2muse_learning import export

torch.set_num_threads(1)
WINDOW = 60


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    tcn = build_tcn({"channels": 8, "levels": 3, "dropout": 0.2})
    tcn.set_normalisation([0.15, 0.0], [0.3, 1.8], 0.05, 0.45)
    return tcn.eval()


def test_dynamic_and_simplified_onnx_match_pytorch(model, tmp_path):
    windows = gait_like_windows(37, WINDOW)
    dynamic = export.export_onnx(model, tmp_path / "m.onnx", WINDOW)
    simple = export.simplify_onnx(dynamic, tmp_path / "sim" / "m.onnx")
    for path in (dynamic, simple):
        runner = export.OnnxRuntimeRunner(path)
        assert runner.fixed_batch is None
        assert runner(windows).shape == (37, 1)
        assert export.check_parity(model, runner, windows) < export.PARITY_TOLERANCE
    proto = onnx.load(str(simple), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert len(proto.graph.node) <= len(onnx.load(str(dynamic)).graph.node)
    assert [i.name for i in proto.graph.input] == [export.INPUT_TENSOR]


def test_fixed_batch_export_is_padded_by_predict(model, tmp_path):
    windows = gait_like_windows(5, WINDOW, seed=3)
    fixed = export.OnnxRuntimeRunner(export.export_onnx(model, tmp_path / "b4.onnx", WINDOW,
                                                        batch_size=4))
    assert fixed.fixed_batch == 4
    assert export.check_parity(model, fixed, windows) < export.PARITY_TOLERANCE


def test_parity_failure_is_reported(model):
    windows = gait_like_windows(4, WINDOW)
    with pytest.raises(export.ExportError, match="differs from PyTorch"):
        export.check_parity(model, lambda w: export.TorchRunner(model)(w) + 1e-3, windows,
                            label="shifted")
