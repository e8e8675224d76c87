"""PyTorch sequence baselines: a causal TCN, an LSTM and a small transformer encoder.

Each predicts the target of a feature row from that row and the ``context - 1`` rows before it
in the same trial (zero-padded at the trial start, i.e. the training mean after scaling).
Sequences are gathered per batch from one padded matrix, so memory stays linear in the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .rows import empty_prediction, finite_rows, valid_target_rows

SEQUENCE_ARCHITECTURES = ("tcn", "lstm", "transformer")


class _CausalBlock(nn.Module):
    """Two dilated causal convolutions with a residual connection."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0)))))
        y = self.drop(torch.relu(self.conv2(nn.functional.pad(y, (self.pad, 0)))))
        return torch.relu(x + y)


class _Tcn(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(n_in, hidden, 1)
        self.blocks = nn.Sequential(
            *[_CausalBlock(hidden, 3, 2**i, dropout) for i in range(layers)]
        )
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.inp(x.transpose(1, 2)))
        return self.out(h[:, :, -1])


class _Lstm(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(
            n_in, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return self.out(h[:, -1])


class _Transformer(nn.Module):
    def __init__(
        self, n_in: int, n_out: int, hidden: int, layers: int, dropout: float, context: int
    ):
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.position = nn.Parameter(torch.zeros(1, context, hidden))
        layer = nn.TransformerEncoderLayer(
            hidden, nhead=4, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.inp(x) + self.position[:, -x.shape[1] :])
        return self.out(h[:, -1])


class SequenceModel:
    """Trial-aware wrapper with fit/predict over lists of per-trial arrays (see models.py)."""

    def __init__(
        self,
        architecture: str,
        task: str,
        context: int = 16,
        hidden: int = 32,
        layers: int = 2,
        epochs: int = 20,
        batch_size: int = 128,
        learning_rate: float = 3e-3,
        dropout: float = 0.1,
        n_classes: int = 5,
        seed: int = 0,
    ):
        if architecture not in SEQUENCE_ARCHITECTURES:
            raise ValueError(f"architecture must be one of {SEQUENCE_ARCHITECTURES}")
        if architecture == "transformer" and hidden % 4:
            raise ValueError("transformer hidden size must be a multiple of its 4 heads")
        if context < 1 or epochs < 1 or batch_size < 1 or hidden < 1 or layers < 1:
            raise ValueError("context, epochs, batch_size, hidden and layers must be >= 1")
        self.architecture = architecture
        self.task = task
        self.context = int(context)
        self.hidden = int(hidden)
        self.layers = int(layers)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.dropout = float(dropout)
        self.n_classes = int(n_classes)
        self.seed = int(seed)

    def _network(self, n_in: int, n_out: int) -> nn.Module:
        args = (n_in, n_out, self.hidden, self.layers, self.dropout)
        if self.architecture == "tcn":
            return _Tcn(*args)
        if self.architecture == "lstm":
            return _Lstm(*args)
        return _Transformer(*args, context=self.context)

    def _padded(self, features: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[np.ndarray]]:
        """Scaled features of all trials in one matrix, each trial preceded by context-1 zeros.

        Returns the matrix and, per trial, the matrix row of each of the trial's rows.
        """
        pad = self.context - 1
        blocks, positions, offset = [], [], 0
        for x in features:
            scaled = np.nan_to_num((x - self.mean_) / self.scale_, nan=0.0, posinf=0.0, neginf=0.0)
            blocks.append(np.vstack([np.zeros((pad, x.shape[1])), scaled]))
            positions.append(offset + pad + np.arange(len(x)))
            offset += pad + len(x)
        matrix = torch.as_tensor(np.vstack(blocks), dtype=torch.float32)
        return matrix, positions

    def _windows(self, matrix: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(-self.context + 1, 1)
        return matrix[ends[:, None] + steps[None, :]]

    def fit(self, features: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> SequenceModel:
        """Train for a fixed number of epochs on every valid row's context window."""
        torch.manual_seed(self.seed)
        stacked = np.concatenate(list(features))
        finite = finite_rows(stacked)
        if not finite.any():
            raise ValueError("no training rows with finite features")
        self.mean_ = stacked[finite].mean(axis=0)
        self.scale_ = stacked[finite].std(axis=0) + 1e-8
        matrix, positions = self._padded(features)
        y_all = np.concatenate(list(targets))
        rows = finite & valid_target_rows(y_all, self.task)
        if not rows.any():
            raise ValueError("no training rows with finite features and valid targets")
        ends = torch.as_tensor(np.concatenate(positions)[rows])
        if self.task == "regression":
            y = y_all[rows].reshape(rows.sum(), -1)
            self.y_mean_, self.y_scale_ = y.mean(axis=0), y.std(axis=0) + 1e-8
            y_t = torch.as_tensor((y - self.y_mean_) / self.y_scale_, dtype=torch.float32)
            loss_fn, n_out = nn.MSELoss(), y.shape[1]
            self._target_shape = y_all.shape[1:]
        else:
            y_t = torch.as_tensor(y_all[rows], dtype=torch.long)
            loss_fn, n_out = nn.CrossEntropyLoss(), self.n_classes
        self.network_ = self._network(matrix.shape[1], n_out)
        optimiser = torch.optim.AdamW(self.network_.parameters(), lr=self.learning_rate)
        steps = self.epochs * int(np.ceil(len(ends) / self.batch_size))
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, self.learning_rate, steps)
        generator = torch.Generator().manual_seed(self.seed)
        self.network_.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(ends), generator=generator)
            for batch in order.split(self.batch_size):
                optimiser.zero_grad()
                loss = loss_fn(self.network_(self._windows(matrix, ends[batch])), y_t[batch])
                loss.backward()
                optimiser.step()
                schedule.step()
        return self

    @torch.no_grad()
    def predict(self, features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One prediction array per trial; rows with non-finite features get none."""
        self.network_.eval()
        matrix, positions = self._padded(features)
        target_shape = self._target_shape if self.task == "regression" else ()
        out = []
        for x, pos in zip(features, positions, strict=True):
            pred = empty_prediction(len(x), target_shape, self.task)
            rows = finite_rows(x)
            if rows.any():
                ends = torch.as_tensor(pos[rows])
                raw = torch.cat(
                    [self.network_(self._windows(matrix, b)) for b in ends.split(2048)]
                ).numpy()
                if self.task == "regression":
                    pred[rows] = (raw * self.y_scale_ + self.y_mean_).reshape(pred[rows].shape)
                else:
                    pred[rows] = raw.argmax(axis=1)
            out.append(pred)
        return out
