"""IMDB sentiment backbone of BIDL: token embedding -> LIF over the token sequence -> readout
of the last step (after the whole text was read)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ...layers import FcLif
from ...neurons import fold_time
from .base import IT_DEFAULTS, SpikingBackbone, register_factory

logger = logging.getLogger("bidl")


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


class FastText(SpikingBackbone):
    """One token per step (input ``[B, T]`` ids; or ``[B, T, L]`` with ``tokens_per_step=L``,
    a bag of L tokens per step): embedding -> FC-LIF (``cmode``, analog by default) ->
    dropout -> linear readout. BIDL's model reads out the last step, whatever its ``amode``
    says, with one logit per text (``nclass=None``: output ``[B]``, for a sigmoid loss);
    ``nclass=K`` gives ``[B, K]`` scores instead.
    """

    input_kind = "tokens"

    def __init__(
        self,
        timestep: int = 500,
        vocab_size: int = 1001,
        embedding_dim: int = 16,
        hidden_dim: int = 256,
        nclass: int | None = None,
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
        readout: str = "per_step",
        split: list[int] | None = None,
    ):
        if amode != "pick":
            logger.info(
                "%s: amode=%r is what BIDL's configs say, but its model reads out the last "
                "step; so does bidl's (amode='pick')",
                type(self).__name__,
                amode,
            )
        shape = () if tokens_per_step is None else (tokens_per_step,)
        # the readout of the last step has no time mean to take before the head
        super().__init__(shape, timestep, "pick", use_inner_loop, "per_step")
        del readout  # accepted for the ...It names; one readout only (the last step)
        self.vocab_size = vocab_size
        self.body = nn.Sequential(
            TokenEmbedding(vocab_size, embedding_dim),
            FcLif(
                embedding_dim,
                hidden_dim,
                mode=cmode,
                soma_params=soma_params,
                noise=noise,
                neuron=neuron,
                neuron_config=neuron_config,
                spike_func=spike_func,
            ),
            nn.Dropout(dropout),
        )
        if nclass is None:  # BIDL: Linear(hidden, 1), squeezed to one logit per sample
            self.head = nn.Sequential(nn.Linear(hidden_dim, 1), nn.Flatten(-2))
        else:
            self.head = nn.Linear(hidden_dim, nclass)
        self.finish(split)

    def example_input(self, batch: int = 2, generator: torch.Generator | None = None):
        if self.input_kind != "tokens":  # a later segment takes activations
            return super().example_input(batch, generator)
        shape = (batch, self.timestep, *self.input_shape)
        return torch.randint(self.vocab_size, shape, generator=generator)

    def bidl_module_names(self) -> dict[str, str]:
        head = "head.0" if isinstance(self.head, nn.Sequential) else "head"
        return {"body.0.embedding": "embedding", "body.1": "lif", head: "fc"}

    #: BIDL's copy of the embedding used on its chip (the same numbers, transposed)
    bidl_extra_keys = ("embedding_fc.weight",)


register_factory(FastText, ["FastText", "FastTextItout"])
register_factory(FastText, "FastTextIt", **IT_DEFAULTS)
