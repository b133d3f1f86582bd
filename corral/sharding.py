"""Sharded training on CPU processes (FSDP2, DeepSpeed ZeRO-3), and what each process holds.

accelerate 1.15 turns an FSDP config into FSDP only on accelerators: `AcceleratorState` promotes a
MULTI_GPU (MULTI_XPU, ...) process group to FSDP, but a CPU group stays MULTI_CPU, so the config
trains as plain data parallelism. torch's `fully_shard` itself runs on CPU tensors over gloo.
`corral.launch_checks.shard_on_cpu` relabels the already-initialised CPU group as MULTI_GPU before the
Trainer builds its Accelerator, which then takes accelerate's own FSDP2 path (its plugin, `fully_shard`,
its sharded optimizer and its state-dict code); the device stays the CPU and the backend gloo.

`full_embeddings` gathers the embedding matrices that ZeRO-3 builds partitioned, for code that edits
their rows before training. `ShardReport` logs, on every process after training, the bytes of
parameters and optimizer states that process holds (a DTensor's local shard, a ZeRO-3 partition),
so a run shows that sharding happened. docs/scale-out.md has the measured figures.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from transformers import TrainerCallback

logger = logging.getLogger("corral.sharding")


def full_embeddings(model):
    """A context in which the input and output embedding matrices are whole, also under DeepSpeed ZeRO-3.

    ZeRO-3 builds the model partitioned (each parameter an empty placeholder on every process); code
    that reads or edits embedding rows before training (chat-token initialisation, row freezing) runs
    inside this context, and rank 0's edits reach every process when it ends.
    """
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    weights = {id(m.weight): m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings())}
    return deepspeed.zero.GatheredParameters(list(weights.values()), modifier_rank=0)


def local_bytes(tensors) -> int:
    """Bytes of these tensors held by this process (a DTensor's local shard, a ZeRO-3 parameter's partition)."""
    total = 0
    for t in tensors:
        if hasattr(t, "to_local"):
            t = t.to_local()
        elif hasattr(t, "ds_tensor"):
            t = t.ds_tensor
        total += t.numel() * t.element_size()
    return total


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of the optimizer's per-parameter states (Adam's moments; step counters included)."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
    return local_bytes(v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))


class ShardReport(TrainerCallback):
    """After training, each process logs the parameter and optimizer-state bytes it holds."""

    def on_train_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        params = local_bytes(model.parameters()) if model is not None else 0
        opt = optimizer_state_bytes(optimizer) if optimizer is not None else 0
        logger.info("rank %d of %d holds %d parameter bytes and %d optimizer-state bytes",
                    args.process_index, args.world_size, params, opt)
