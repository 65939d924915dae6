"""IMDB sentiment backbone of BIDL: token embedding -> LIF over the token sequence -> readout."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...layers import FcLif
from ...neurons import fold_time
from .base import SpikingBackbone, register_spiking_backbone
from .seq_clif_dm import neuron_options


class TokenEmbedding(nn.Module):
    """Token ids ``[N]`` -> embeddings ``[N, E]``; a bag of ids ``[N, L]`` is averaged."""

    def __init__(self, vocab_size: int, embedding_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        vectors = self.embedding(ids.long())
        return vectors.mean(dim=1) if vectors.dim() == 3 else vectors

    def multi_step(self, ids_seq: torch.Tensor) -> torch.Tensor:
        return fold_time(self, ids_seq)


@register_spiking_backbone("FastTextItout", "FastTextIt")
class FastText(SpikingBackbone):
    """One token per step (input ``[B, T]`` ids; or ``[B, T, L]`` with ``tokens_per_step=L``,
    a bag of L tokens per step): embedding -> FC-LIF (``cmode``, analog by default) ->
    dropout -> linear readout to ``nclass`` scores; ``amode='pick'`` (BIDL's choice) keeps
    the last step's scores, after the whole text was read."""

    input_kind = "tokens"

    def __init__(
        self,
        timestep: int = 500,
        vocab_size: int = 1001,
        embedding_dim: int = 16,
        hidden_dim: int = 256,
        nclass: int = 2,
        tokens_per_step: int | None = None,
        cmode: str = "analog",
        amode: str = "pick",
        soma_params: str = "all_share",
        noise: float = 1e-3,
        neuron: Any = "lif",
        neuron_config: Any = None,
        spike_func: Any = None,
        dropout: float = 0.5,
        use_inner_loop: bool = False,
        split: list[int] | None = None,
    ):
        shape = () if tokens_per_step is None else (tokens_per_step,)
        super().__init__(shape, timestep, amode, use_inner_loop)
        self.vocab_size = vocab_size
        opts = neuron_options(cmode, soma_params, noise, neuron, neuron_config, spike_func)
        self.body = nn.Sequential(
            TokenEmbedding(vocab_size, embedding_dim),
            FcLif(embedding_dim, hidden_dim, **opts),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(hidden_dim, nclass)
        self.take_segment(split)

    def example_input(self, batch: int = 2, generator: torch.Generator | None = None):
        if self.input_kind != "tokens":  # a later segment takes activations
            return super().example_input(batch, generator)
        shape = (batch, self.timestep, *self.input_shape)
        return torch.randint(self.vocab_size, shape, generator=generator)
