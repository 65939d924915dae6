"""The epoch-based training loop: train, validate, checkpoint, log. Readable in one sitting."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm import tqdm

from .. import fileio
from ..config import Config, config_name
from ..config.ranges import log_level
from ..neurons import FiringRateMonitor
from ..optim.lr_schedule import LrSchedule
from ..optim.optimizer import build_optimizer
from ..registry import BidlError
from .checkpoint import (
    CheckpointError,
    check_resumable,
    load_checkpoint,
    load_weights,
    remove_stale_temp_files,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from .dataloader import build_dataloader
from .detection import evaluate_detector, is_detector, training_targets
from .device_batch import install_device_augmentation
from .distributed import (
    average_gradients,
    barrier,
    broadcast_module_state,
    get_dist_info,
    wrap_ddp,
)
from .evaluation import move_batch, predict
from .execution import compile_model, prepare_model
from .graphed_step import GraphedLosses, cuda_graph_obstacle
from .iteration_log import DATA_WAIT_WARNING, IterationLog
from .metrics import metric_options
from .nonfinite import NonFiniteWatch
from .progress import CONSOLE, ConsoleHandler, EpochProgress
from .recipe import TrainingRecipe
from .tensorboard import TensorboardLog

logger = logging.getLogger("bidl")


class NonFiniteLossError(BidlError):
    """The loss became NaN or infinite."""


class QuietFileHandler(logging.FileHandler):
    """``train.log``: when the disk refuses a line, say so once on stderr and stop writing
    to it, instead of a traceback per line that buries the error that stops the run."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if self.failed:
            return
        self.failed = True
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"bidl: could not write {self.baseFilename!r} ({sys.exc_info()[1]}); "
                f"it gets no more lines\n"
            )


def autocast_context(fp16: dict | None, device: torch.device):
    """``fp16=dict(...)`` in a config turns on mixed precision: bf16 unless it names float16."""
    if not fp16:
        return None
    dtype = getattr(torch, str(fp16.get("dtype", "bfloat16")))
    return torch.autocast(device_type=device.type, dtype=dtype)


class EpochBasedRunner:
    """Train ``model`` on ``cfg.data.train`` for ``cfg.runner.max_epochs`` epochs, validating on
    ``cfg.data.val``; write logs and checkpoints to ``work_dir``."""

    def __init__(
        self,
        cfg: Config,
        model: torch.nn.Module,
        datasets: dict,
        work_dir: str | Path,
        device: torch.device,
        seed: int = 0,
        config_text: str | None = None,
    ):
        self.cfg = cfg
        self.model = model.to(device)
        # multi-step form, channels_last, cuDNN autotuning (before DDP wraps the model)
        self.execution_notes = prepare_model(self.model, cfg.get("runner"), device)
        self.device = device
        self.seed = seed
        # data parallel: train through DDP, keep self.model plain (checkpoints, validation)
        self.rank, self.world_size = get_dist_info()
        self.is_main = self.rank == 0
        self.train_module = self.model
        self.gradient_sync = None  # data parallel on CUDA graphs: averages after backward
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:  # temp files left by a run killed while saving a checkpoint
            remove_stale_temp_files(self.work_dir)
        self.train_set, self.val_set = datasets["train"], datasets.get("val")
        self.samples_per_gpu = int(cfg.data.samples_per_gpu)
        self.workers = int(cfg.data.get("workers_per_gpu", 0))
        self.max_epochs = int(
            (cfg.get("runner") or {}).get("max_epochs", cfg.get("total_epochs", 1))
        )
        per_rank = len(self.train_set) // self.world_size  # DistributedSampler, drop_last
        self.iters_per_epoch = per_rank // self.samples_per_gpu
        check_splits(self.train_set, self.val_set, self.samples_per_gpu, self.world_size)
        self.execution_notes += compile_model(
            self.model, cfg.get("runner"), device, self.max_epochs * self.iters_per_epoch
        )
        self.setup_data(cfg.data)
        self.optimizer = build_optimizer(self.model, cfg.optimizer)
        # mixup / CutMix, distillation, EMA weights (recipe.py): no-ops unless configured
        self.recipe = TrainingRecipe(cfg, self.model, self.train_set, device, seed)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.schedule = LrSchedule(cfg.get("lr_config"), self.max_epochs, self.iters_per_epoch)
        self.grad_clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
        # optimizer_config.skip_nonfinite=True: skip a step whose loss is NaN/inf (counted,
        # logged) instead of stopping; an epoch with a skipped step is never saved as best
        self.skip_nonfinite = bool((cfg.get("optimizer_config") or {}).get("skip_nonfinite"))
        self.skipped_steps, self.epoch_skipped = 0, 0
        self.autocast = autocast_context(cfg.get("fp16"), device)
        use_scaler = self.autocast is not None and self.autocast.fast_dtype == torch.float16
        scale = (cfg.get("fp16") or {}).get("loss_scale", "dynamic")  # BIDL's initial scale
        initial = {} if scale == "dynamic" else {"init_scale": float(scale)}
        self.scaler = torch.amp.GradScaler(device.type, **initial) if use_scaler else None
        self.forward_losses = self.graphed_forward(cfg.get("runner") or {})
        self.log_interval = int((cfg.get("log_config") or {}).get("interval", 50))
        self.ckpt_cfg = dict(cfg.get("checkpoint_config") or {"interval": 1})
        self.eval_cfg = dict(cfg.get("evaluation") or {"interval": 1})
        self.epoch, self.iter, self.best_top1 = 0, 0, -math.inf
        self.log_json = self.work_dir / "log.json"
        self.tensorboard = TensorboardLog(self.work_dir / "tf_logs")  # no-op if not installed
        # formatted once (yapf takes a second): saved in every checkpoint
        self.config_text = config_text if config_text is not None else cfg.pretty_text
        self._setup_text_log()

    # ------------------------------------------------------------------ set-up
    def graphed_forward(self, runner_cfg: dict):
        """The training module, replayed from CUDA graphs where ``runner.cuda_graph``
        ('auto': wherever nothing stands in the way, see graphed_step.py) allows. Data
        parallel: eagerly through DDP; on graphs without it (DDP around the graphed step
        failed on 2 H100s, benchmarks/RESULTS.md): rank 0's state broadcast once, the gradients
        averaged after each backward (``average_gradients``). Validation and checkpoints
        use rank 0's model, whose buffers evolve as under DDP."""
        setting = runner_cfg.get("cuda_graph", "auto")
        sync_bn = self.world_size > 1 and bool(self.cfg.get("sync_bn", False))
        obstacle = cuda_graph_obstacle(
            self.model,
            self.device,
            sync_bn=sync_bn,
            loss_scaling=self.scaler is not None,
            skip_nonfinite=self.skip_nonfinite,
            compiled=getattr(self.model, "_compiled_call_impl", None) is not None,
            detector=is_detector(self.model),
        )
        if setting is not False and obstacle is None:
            if self.world_size > 1:
                broadcast_module_state(self.model)
                self.gradient_sync = lambda: average_gradients(
                    self.model.parameters(), self.world_size
                )
                self.execution_notes.append(
                    "CUDA graphs of the forward and backward, gradients averaged over "
                    f"{self.world_size} processes after each"
                )
            else:
                self.execution_notes.append("CUDA graphs of the forward and backward")
            return GraphedLosses(self.model, required=setting is True)
        if setting is True:
            raise BidlError(f"runner.cuda_graph=True cannot be met: {obstacle}")
        if self.device.type == "cuda" and setting is not False:
            self.execution_notes.append(f"eager step ({obstacle})")
        if self.world_size > 1:
            self.train_module, self.model = wrap_ddp(self.model, self.device, sync_bn)
        return self.train_module

    def _setup_text_log(self) -> None:
        self._log_handler = None
        if not self.is_main:  # rank 0 alone logs
            logger.setLevel("ERROR")
            return
        try:
            handler = QuietFileHandler(self.work_dir / "train.log")
        except OSError as err:
            raise fileio.write_failure(self.work_dir / "train.log", err, what="log") from err
        handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
        self._log_handler = handler
        logger.addHandler(handler)
        logger.setLevel(log_level(self.cfg))
        self._console = ConsoleHandler()  # the work dir and one line per epoch, tty or not
        logger.addHandler(self._console)

    def write_json(self, record: dict) -> None:
        if not self.is_main:
            return
        fileio.append_text(self.log_json, json.dumps(record) + "\n")
        self.tensorboard.write(record, self.iter)

    def load_or_resume(self) -> None:
        if self.cfg.get("resume_from"):
            self.resume(self.cfg.resume_from)
        elif self.cfg.get("load_from"):
            load_weights(self.model, self.cfg.load_from, map_location=self.device)
            self.recipe.resume({}, self.model)  # an EMA starts from the loaded weights
            logger.info("loaded weights from %s", self.cfg.load_from, extra=CONSOLE)

    def resume(self, path) -> None:
        checkpoint = load_checkpoint(path, map_location=self.device)
        check_resumable(checkpoint, path)
        load_weights(self.model, path, map_location=self.device)
        self.recipe.resume(checkpoint, self.model)
        meta = checkpoint["meta"]
        try:
            if "optimizer" in checkpoint:
                self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scaler is not None and "scaler" in checkpoint:
                self.scaler.load_state_dict(checkpoint["scaler"])
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
            raise CheckpointError(
                f"cannot resume from {str(path)!r}: its optimizer state does not fit this "
                f"config's optimizer ({type(err).__name__}: {err}); resume from a checkpoint of "
                f"this config, or take only its weights with load_from={str(path)!r}"
            ) from None
        self.epoch = int(meta.get("epoch", 0))
        # a checkpoint without the counter (BIDL's) resumes at the start of its epoch
        self.iter = int(meta.get("iter", self.epoch * self.iters_per_epoch))
        if int(meta.get("world_size", 1)) != self.world_size:  # iterations per epoch changed
            self.iter = self.epoch * self.iters_per_epoch
            logger.info(
                "world size changed from %s to %d", meta.get("world_size", 1), self.world_size
            )
        self.best_top1 = float(meta.get("best_top1", -math.inf))
        if "rng" in meta:
            set_rng_states(meta["rng"])
        logger.info(
            "resumed from %s at epoch %d, iteration %d", path, self.epoch, self.iter, extra=CONSOLE
        )
        if self.epoch >= self.max_epochs:  # nothing to train: say so, not silently
            message = (
                f"{path} is at epoch {self.epoch}, and runner.max_epochs is {self.max_epochs}: "
                f"nothing left to train. Raise runner.max_epochs (--cfg-options "
                f"runner.max_epochs=N) to train further."
            )
            logger.warning(message, extra={"file_only": True})  # train.log; stderr below
            print(f"bidl train: {message}", file=sys.stderr)
            self.resumed_metrics = dict(meta.get("metrics") or {})

    # ------------------------------------------------------------------ loop
    def run(self) -> dict:
        self.load_or_resume()
        self.write_json(
            {
                "mode": "meta",
                "config": config_name(self.cfg),
                "seed": self.seed,
                "max_epochs": self.max_epochs,
                "iters_per_epoch": self.iters_per_epoch,
                "world_size": self.world_size,
                "torch": torch.__version__,
            }
        )
        logger.info(
            "training %s for %d epochs on %s; work dir %s (train.log, log.json, checkpoints)",
            config_name(self.cfg),
            self.max_epochs,
            self.device,
            self.work_dir,
            extra=CONSOLE,
        )
        self.progress = EpochProgress(self.max_epochs)
        metrics: dict = dict(getattr(self, "resumed_metrics", {}))
        try:
            while self.epoch < self.max_epochs:
                self.train_epoch()
                self.epoch += 1
                validated: dict = {}
                if self.val_set is not None and self.epoch % self.eval_cfg.get("interval", 1) == 0:
                    metrics = validated = self.validate()
                self.save_checkpoints(metrics)
                if self.is_main:
                    line = self.progress.summary(self.epoch, validated, self.saved, self.work_dir)
                    logger.info(line, extra=CONSOLE)
                barrier()  # the other ranks wait for rank 0's validation and checkpoints
        finally:
            self.tensorboard.close()
            if self._log_handler is not None:
                logger.removeHandler(self._log_handler)
                logger.removeHandler(self._console)
                self._log_handler.close()
        return metrics

    # ------------------------------------------------------------------ data
    def setup_data(self, data_cfg) -> None:
        """Loaders are built once (their workers persist across epochs); on CUDA the image
        steps at the end of each pipeline run batch-wise on the device (``data.device_augment``:
        'auto'; on the CPU the workers keep them, in parallel with the training step)."""
        self.loaders: dict = {}
        self.augment: dict = {}
        self.persistent_workers = bool(data_cfg.get("persistent_workers", True))
        self.prefetch_factor = data_cfg.get("prefetch_factor")
        self.pin_threads = int(data_cfg.get("pin_threads", 0))
        setting = data_cfg.get("device_augment", "auto")
        if setting is True or (setting == "auto" and self.device.type == "cuda"):
            for split, dataset in (("train", self.train_set), ("val", self.val_set)):
                if dataset is not None:
                    self.augment[split] = install_device_augmentation(dataset)
            moved = [split for split, augment in self.augment.items() if augment is not None]
            if moved:
                self.execution_notes.append(f"image steps of {'/'.join(moved)} on {self.device}")

    def loader(self, split: str):
        if split not in self.loaders:
            train = split == "train"
            sampler = None
            if train and self.world_size > 1:  # the same order on every rank, a new one each epoch
                sampler = torch.utils.data.DistributedSampler(
                    self.train_set, self.world_size, self.rank, shuffle=True, seed=self.seed
                )
            self.loaders[split] = build_dataloader(
                self.train_set if train else self.val_set,
                self.samples_per_gpu,
                self.workers,
                shuffle=train,
                seed=self.seed,
                drop_last=train,
                sampler=sampler,
                pin_memory=self.device.type == "cuda",
                persistent_workers=self.persistent_workers,
                prefetch_factor=self.prefetch_factor,
                pin_threads=self.pin_threads,
            )
        loader = self.loaders[split]
        loader.set_epoch(self.epoch)
        return loader

    def to_device(self, batch: dict, split: str) -> dict:
        augment = self.augment.get(split)
        return augment(batch, self.device) if augment else move_batch(batch, self.device)

    # ------------------------------------------------------------------ train
    def train_epoch(self) -> None:
        if self.execution_notes:
            logger.info("execution: %s", "; ".join(self.execution_notes))
            self.execution_notes = []
        self.train_module.train()
        self.progress.start()
        loader = self.loader("train")
        bar = tqdm(
            loader,
            desc=f"epoch {self.epoch + 1}/{self.max_epochs}",
            disable=None if self.is_main else True,
            unit="it",
            leave=False,
        )
        self.epoch_skipped = 0
        self.nonfinite = NonFiniteWatch()
        timing = IterationLog(self.device, self.samples_per_gpu * self.world_size)
        warned = False
        with loader.reporting_worker_deaths():
            for inner, batch in enumerate(bar):
                timing.data_ready()  # as mmengine: the device-side preparation is step time
                batch = self.to_device(batch, "train")
                lrs = self.set_lr()
                losses = self.train_step(batch, inner)  # on the device: read at log intervals
                self.progress.add_loss(losses["loss"])
                self.iter += 1
                timing.step_done()
                if (inner + 1) % self.log_interval == 0 or inner + 1 == len(loader):
                    self.check_finite()
                    values, speed = _scalars(losses), timing.summary()
                    bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{lrs[0]:.2e}")
                    record = {
                        "mode": "train",
                        "epoch": self.epoch + 1,
                        "iter": inner + 1,
                        "lr": lrs[0],
                        **speed,
                        **values,
                    }
                    if self.skip_nonfinite:
                        record["skipped_nonfinite"] = self.skipped_steps
                    self.write_json(record)
                    logger.info(
                        "Epoch [%d][%d/%d] lr: %.3e, %s",
                        self.epoch + 1,
                        inner + 1,
                        len(loader),
                        lrs[0],
                        _format({**_speed_text(speed), **values}),
                    )
                    if speed["data_wait"] > DATA_WAIT_WARNING and not warned and inner > 0:
                        warned = True  # once an epoch
                        logger.warning(
                            "%s waiting for data %.0f %% of the last %d iterations; raise "
                            "data.workers_per_gpu (now %d) or lighten the data pipeline",
                            "the GPU sat idle" if "gpu_data_wait" in speed else "the loop was",
                            100 * speed["data_wait"],
                            self.log_interval,
                            self.workers,
                        )
        bar.close()

    def set_lr(self) -> list[float]:
        lrs = [self.schedule.lr(base, self.epoch, self.iter) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        return lrs

    def train_step(self, batch: dict, inner: int) -> dict:
        with self.autocast or nullcontext():
            if is_detector(self.model):  # boxes as targets, no mixing (engine/detection.py)
                losses = self.train_module(batch["img"], **training_targets(batch))
            else:
                img, target = self.recipe.targets(batch["img"], batch["gt_label"], self.epoch)
                losses = self.forward_losses(img, target)
        loss = losses["loss"]
        if not self.skip_nonfinite:  # checked at log intervals: the step never waits for it
            self.nonfinite.observe(loss, inner + 1)
            finite = True
        else:  # whether to skip must be known now: one wait for the device per step
            finite = self.all_finite(loss)
        if not finite:
            self.skipped_steps += 1
            self.epoch_skipped += 1
            self.optimizer.zero_grad(set_to_none=True)
            logger.warning(
                "loss is %s at epoch %d, iteration %d: step skipped (%d skipped so far)",
                self.loss_text(loss),
                self.epoch + 1,
                inner + 1,
                self.skipped_steps,
            )
            return losses
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.gradient_sync is not None:
            self.gradient_sync()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), **self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.recipe.after_step(self.model)
        return losses

    def check_finite(self) -> None:
        """Stop at the first non-finite loss of the epoch so far (on any rank)."""
        found = self.nonfinite.found(self.world_size)
        if found is not None:
            iteration, value = found
            text = str(value) if value is not None else "non-finite on another rank"
            raise NonFiniteLossError(
                f"loss is {text} at epoch {self.epoch + 1}, iteration {iteration}; "
                f"lower the lr, add optimizer_config.grad_clip, or check the data"
            )

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank: under DDP all ranks must take the same
        branch, or the ones that step wait forever for the gradients of the ones that don't."""
        finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
        if self.world_size > 1:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def loss_text(self, loss: torch.Tensor) -> str:
        value = loss.item()
        if math.isfinite(value):  # this rank's loss is fine; another rank's was not
            return f"non-finite on another rank (here {value:.4g})"
        return str(value)

    def validate(self) -> dict:
        if not self.is_main:  # rank 0 validates on the plain module
            return {}
        loader = self.loader("val")
        model = self.recipe.eval_model(self.model)  # the EMA weights with ema.evaluate
        # firing rate per neuron layer over the validation set, logged with the metrics
        with (
            loader.reporting_worker_deaths(),
            FiringRateMonitor(model) as activity,
        ):
            if is_detector(model):  # COCO mAP of the boxes
                metrics, _ = evaluate_detector(
                    model,
                    self.val_set,
                    loader,
                    self.device,
                    self.autocast,
                    desc="val",
                    to_device=lambda batch, device: self.to_device(batch, "val"),
                )
                return self.log_val(metrics, activity)
            scores, _ = predict(
                model,
                loader,
                self.device,
                self.autocast,
                desc="val",
                to_device=lambda batch, device: self.to_device(batch, "val"),
            )
        options = metric_options(self.cfg)
        metrics = self.val_set.evaluate(scores, metric_options=options)
        return self.log_val(metrics, activity)

    def log_val(self, metrics: dict, activity) -> dict:
        rates = {"firing_rate": activity.firing_rates()}
        self.write_json({"mode": "val", "epoch": self.epoch, "iter": self.iter, **metrics, **rates})
        logger.info("Epoch(val) [%d] %s", self.epoch, _format(metrics))
        return metrics

    def save_checkpoints(self, metrics: dict) -> None:
        if not self.is_main:
            return
        # the best checkpoint: top-1 accuracy, or a detector's COCO mAP
        top1 = metrics.get("accuracy_top-1", metrics.get("mAP", -math.inf))
        poisoned = self.epoch_skipped > 0 or not all(
            torch.isfinite(p).all() for p in self.model.parameters()
        )
        if poisoned:
            logger.warning("epoch %d had non-finite losses or weights: not a best.pth", self.epoch)
        improved = math.isfinite(top1) and top1 > self.best_top1 and not poisoned
        if improved:
            self.best_top1 = top1
        meta = {
            "epoch": self.epoch,
            "iter": self.iter,
            "world_size": self.world_size,
            "best_top1": self.best_top1,
            "config": self.config_text,
            "rng": rng_states(),
            "metrics": metrics,
        }
        model, extra = self.recipe.checkpoint(self.model)  # EMA: which weights are state_dict
        save = dict(model=model, optimizer=self.optimizer, meta=meta, scaler=self.scaler)
        save["extra"] = extra
        interval = self.ckpt_cfg.get("interval", 1)
        self.saved = ["latest.pth"]  # reported in the epoch's summary line
        if interval > 0 and (self.epoch % interval == 0 or self.epoch == self.max_epochs):
            save_checkpoint(self.work_dir / f"epoch_{self.epoch}.pth", **save)
            self.drop_old_checkpoints()
            self.saved.insert(0, f"epoch_{self.epoch}.pth")
        save_checkpoint(self.work_dir / "latest.pth", **save)
        if improved:
            save_checkpoint(self.work_dir / "best.pth", **save)
            self.saved.append("best.pth")

    def drop_old_checkpoints(self) -> None:
        keep = self.ckpt_cfg.get("max_keep_ckpts", -1)
        if keep > 0:
            for old in range(self.epoch - keep * self.ckpt_cfg.get("interval", 1), 0, -1):
                (self.work_dir / f"epoch_{old}.pth").unlink(missing_ok=True)


def check_splits(train_set, val_set, samples_per_gpu: int, world_size: int) -> None:
    """A split without samples, or a batch larger than the training split (every batch
    dropped: epochs of 0 steps, then checkpoints of an untrained model), is refused."""
    name = type(train_set).__name__
    if len(train_set) == 0:
        raise BidlError(
            f"data.train ({name}) has no samples; check its data_prefix / ann_file, or prepare "
            f"the data set (`bidl data prepare`)"
        )
    if val_set is not None and len(val_set) == 0:
        raise BidlError(
            f"data.val ({type(val_set).__name__}) has no samples; check its data_prefix / "
            f"ann_file, or remove data.val"
        )
    per_rank = len(train_set) // world_size
    if per_rank < samples_per_gpu:
        ranks = f" per process ({world_size} processes)" if world_size > 1 else ""
        raise BidlError(
            f"data.samples_per_gpu={samples_per_gpu} is larger than the {per_rank} training "
            f"samples{ranks} of {name}; incomplete batches are dropped, so an epoch would have "
            f"0 steps. Lower data.samples_per_gpu to at most {max(1, per_rank)}."
        )


def _scalars(losses: dict) -> dict:
    flat = {}
    for key, value in losses.items():
        if isinstance(value, dict):
            flat.update({k: float(v) for k, v in value.items()})
        else:
            flat[key] = float(value.detach()) if torch.is_tensor(value) else float(value)
    return flat


def _speed_text(speed: dict) -> dict:
    """The timing figures of a log line: seconds, samples/s, MiB."""
    text = {
        "time": f"{speed['time']:.4f}",
        "data_time": f"{speed['data_time']:.4f}",
        "samples/s": f"{speed['samples_per_s']:.1f}",
    }
    if "gpu_data_wait" in speed:
        text["gpu_data_wait"] = f"{100 * speed['gpu_data_wait']:.1f} %"
    if "memory" in speed:
        text["memory"] = f"{speed['memory']} MiB"
    return text


def _format(values: dict) -> str:
    return ", ".join(
        f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items()
    )
