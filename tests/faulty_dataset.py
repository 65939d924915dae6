"""A tiny dataset that fails on one sample, for the data-loader fault tests."""

import os
import signal

import torch.utils.data
from tiny_dataset import TinyBlinks

from bidl.registry import DATASETS


@DATASETS.register_module(force=True)
class FaultyBlinks(TinyBlinks):
    """``TinyBlinks`` whose sample ``fail_index`` fails: ``'raise'`` in ``__getitem__``,
    ``'pipeline'`` in a pipeline step (its ``img`` is a file name, not an array), ``'kill'``
    SIGKILLs the loader worker that loads it."""

    def __init__(self, fail_index=5, fail_mode="raise", **kwargs):
        self.fail_index, self.fail_mode = fail_index, fail_mode
        super().__init__(**kwargs)

    def load_annotations(self):
        infos = super().load_annotations()
        for index, info in enumerate(infos):
            info["filename"] = f"blinks/{index:03d}.npy"
        if self.fail_mode == "pipeline":
            infos[self.fail_index]["img"] = f"broken/{self.fail_index:03d}.npy"
        return infos

    def __getitem__(self, index):
        if index == self.fail_index and self.fail_mode == "raise":
            raise ValueError("corrupt frame in the event stream")
        in_worker = torch.utils.data.get_worker_info() is not None
        if index == self.fail_index and self.fail_mode == "kill" and in_worker:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)
