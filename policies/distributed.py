"""One training loop for one process or many (``accelerate launch``).

Launched plainly, training is a single process on the device it is given. Under
``accelerate launch`` (torchrun underneath) every process builds only its shard of each global
batch and DDP averages the gradients, so ``batch_size`` stays the global batch whatever the
process count; the main process alone writes checkpoints, metrics and the progress bar.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Processes:
    """Where this process stands: its rank among ``world`` and the device it trains on."""

    rank: int
    world: int
    device: torch.device
    accelerator: Any

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def mixed_precision(self) -> str:
        """no, fp16 or bf16: as `accelerate launch --mixed_precision` (or its env) set it."""
        return str(self.accelerator.mixed_precision)

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        """DDP-wrap the model (several processes) and the optimizer (mixed precision)."""
        return self.accelerator.prepare(model, optimizer)

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def clip_grad_norm(self, model: torch.nn.Module, max_norm: float) -> torch.Tensor:
        """Clip after unscaling (mixed precision); returns the norm before clipping."""
        return self.accelerator.clip_grad_norm_(model.parameters(), max_norm)

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    def main_only(self, open_file):
        """``open_file()`` on the main process, an inert context elsewhere."""
        return open_file() if self.is_main else nullcontext(None)

    def check_in_sync(self, model: torch.nn.Module, step: int) -> None:
        """Raise if the processes' weights have drifted apart (gradients not averaged)."""
        if self.world == 1:
            return
        with torch.no_grad():
            total = sum(p.double().sum() for p in model.parameters()).reshape(1).to(self.device)
        sums = self.accelerator.gather(total).cpu()
        if not torch.allclose(sums, sums[0].expand_as(sums), rtol=1e-6, atol=1e-6):
            raise RuntimeError(f"step {step}: weights differ between processes: {sums.tolist()}")


def launched_world() -> int:
    """The process count a launcher (accelerate, torchrun) set, 1 for a plain run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def processes(device: str | torch.device) -> Processes:
    """This process's place in the run. A plain run keeps ``device`` as given; under a launcher
    each process takes the device accelerate assigns it (``--cpu`` keeps them on the CPU)."""
    from accelerate import Accelerator

    world = launched_world()
    on_cpu = str(device) == "cpu"
    accelerator = Accelerator(cpu=on_cpu, device_placement=False)
    here = torch.device(device) if world == 1 else accelerator.device
    return Processes(accelerator.process_index, accelerator.num_processes, here, accelerator)
