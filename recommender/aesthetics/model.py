"""The Siamese aesthetics scorer: one shared-weight network maps a photo's features to a score.

Two heads read the two views (global, local patches), the local head's patch scores are
averaged, and a fusion layer weighs the two. "Siamese" is how it is trained: both photos of a
pair go through this same module and the hinge loss looks at the difference of their scores.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from torch import nn

from recommender.aesthetics.features import GLOBAL_DIM, LOCAL_DIM

FORMAT = "lookalike-aesthetics-1"


class AestheticsScorer(nn.Module):
    """Frozen-feature heads: global view + native-resolution patches -> one score."""

    def __init__(
        self, global_dim: int = GLOBAL_DIM, local_dim: int = LOCAL_DIM, dropout: float = 0.3
    ) -> None:
        super().__init__()
        self.register_buffer("global_mean", torch.zeros(global_dim))
        self.register_buffer("global_std", torch.ones(global_dim))
        self.register_buffer("local_mean", torch.zeros(local_dim))
        self.register_buffer("local_std", torch.ones(local_dim))
        # Raw scores are only meaningful in differences; these map them onto the 0-100
        # scale of the human ratings so a merchant can read them.
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("shift", torch.zeros(()))
        self.global_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(global_dim, 1))
        self.local_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(local_dim, 1))
        self.fusion = nn.Linear(2, 1)
        with torch.no_grad():
            self.fusion.weight.fill_(0.5)
            self.fusion.bias.zero_()

    def forward(self, xg: torch.Tensor, xl: torch.Tensor) -> torch.Tensor:
        """Raw scores (B,) from global (B, D) and local (B, P, D) features."""
        g = self.global_head((xg - self.global_mean) / self.global_std)[:, 0]
        patches = self.local_head((xl - self.local_mean) / self.local_std)[..., 0]
        return self.fusion(torch.stack([g, patches.mean(dim=1)], dim=1))[:, 0]

    def calibrated(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw scores on the 0-100 rating scale (not clipped)."""
        return raw * self.scale + self.shift

    def fit_normalisation(self, xg: torch.Tensor, xl: torch.Tensor) -> None:
        """Standardise features with the training set's statistics."""
        flat = xl.reshape(-1, xl.shape[-1])
        with torch.no_grad():
            self.global_mean.copy_(xg.mean(0))
            self.global_std.copy_(xg.std(0).clamp_min(1e-4))
            self.local_mean.copy_(flat.mean(0))
            self.local_std.copy_(flat.std(0).clamp_min(1e-4))


def scorer_save(scorer: AestheticsScorer, path: Path, meta: dict) -> str:
    """Write a scorer file (state + metadata, half precision); returns its version id."""
    state = {k: v.detach().cpu().to(torch.float16) for k, v in scorer.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "state": state, "meta": meta}, buffer)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return version_of(data)


def scorer_load(path: Path) -> tuple[AestheticsScorer, dict, str]:
    """(scorer in eval mode, metadata, version id) from a scorer file."""
    data = Path(path).read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path} is not an aesthetics scorer file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an aesthetics scorer file ({FORMAT}).")
    scorer = AestheticsScorer()
    scorer.load_state_dict({k: v.float() for k, v in payload["state"].items()})
    return scorer.eval(), payload["meta"], version_of(data)


def version_of(data: bytes) -> str:
    """A scorer's version: 'aesthetics@' and the content hash of its file."""
    return "aesthetics@" + hashlib.sha256(data).hexdigest()[:12]
