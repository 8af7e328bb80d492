"""Data-parallel training on PyTorch's own engine: torchrun starts the processes (ranks), this module
joins them into one process group and gives the trainer the few collective operations it needs.

    torchrun --nproc_per_node N -m rnnkit train PRESET ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and where to meet) in each process's environment; a
process started without them is a world of one, and nothing here runs. The backend follows the
device: gloo on CPU, nccl on CUDA, where each rank takes the GPU of its local rank.

The gradients are averaged by `DistributedDataParallel`; what this module adds is agreement, so that
every rank takes the same branch at the same step: whether a step's loss was finite, whether a
signal asked to stop, whether a checkpoint is due or the time limit is reached (each rank has its own
clock). A rank that dies is noticed at the next collective operation, which fails after at most
`timeout` seconds; the survivors then stop with one line naming it.
"""

from __future__ import annotations

import datetime
import gc
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rnnkit.device import resolve_device
from rnnkit.errors import UsageError
from rnnkit.rundir import process_running

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
TIMEOUT_SECONDS = 120.0  # how long a collective operation waits for a rank before the run stops


class LostRank(Exception):
    """A collective operation failed: another rank died or stopped answering."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one that writes the run directory and talks to the user."""
        return self.rank == 0


ALONE = World()


def world_from_environment(environment=os.environ) -> World:
    """The world torchrun describes in the environment, or a world of one."""
    present = [name for name in ENVIRONMENT if name in environment]
    if not present:
        return ALONE
    try:
        rank, size, local_rank = (int(environment.get(name, "0")) for name in ENVIRONMENT)
    except ValueError:
        raise UsageError(
            f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got {[environment.get(n) for n in ENVIRONMENT]}"
        ) from None
    if not (size >= 1 and 0 <= rank < size and local_rank >= 0):
        raise UsageError(f"RANK {rank} and WORLD_SIZE {size} do not describe a process of a world")
    return World(rank, size, local_rank)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(world: World, device: torch.device) -> torch.device:
    """On CUDA each rank of a machine takes its own GPU (its local rank)."""
    if device.type != "cuda" or not world.distributed:
        return device
    if world.local_rank >= torch.cuda.device_count():
        raise UsageError(
            f"local rank {world.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
            "start at most that many processes per node"
        )
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


def join(world: World, device: torch.device, timeout: float = TIMEOUT_SECONDS) -> None:
    """Join the process group (once per process)."""
    if not world.distributed or dist.is_initialized():
        return
    backend = backend_for(device)
    if not dist.is_available() or (backend == "nccl" and not dist.is_nccl_available()):
        raise UsageError(f"this PyTorch cannot train on {device.type} with several processes (no {backend})")
    try:
        dist.init_process_group(
            backend, rank=world.rank, world_size=world.size, timeout=datetime.timedelta(seconds=timeout)
        )
    except (RuntimeError, ValueError) as error:
        raise UsageError(f"cannot join the other ranks: {str(error).splitlines()[0]}") from None
    PEERS[:] = [None] * world.size
    collective(dist.all_gather_object, PEERS, (socket.gethostname(), os.getpid()))


PEERS: list = []  # (host, process id) of every rank, once joined: to name a rank that is lost


def lost_ranks() -> str:
    """Which ranks are gone, as far as this machine can tell: those on it whose process has ended."""
    host, gone, elsewhere = socket.gethostname(), [], 0
    for rank, (peer_host, pid) in enumerate(PEERS):
        if peer_host != host:
            elsewhere += 1
            continue
        if not process_running(pid):
            gone.append(f"rank {rank} (process {pid}) has ended")
    if gone:
        return "; ".join(gone)
    return "a rank on another machine stopped answering" if elsewhere else "a rank stopped answering"


def leave_world(wait: bool = True) -> None:
    """Leave the process group (once every DistributedDataParallel is gone), after waiting for the
    others unless a rank was lost or this one is failing."""
    if dist.is_initialized():
        gc.collect()  # a DistributedDataParallel left in a reference cycle goes now, not after its group
        if wait:
            try:
                dist.barrier()
            except (RuntimeError, dist.DistBackendError):
                pass  # a lost rank is reported by whoever meets it
        dist.destroy_process_group()


COMMUNICATION_ERRORS = ("gloo", "nccl", "connection", "timed out", "socket", "broken pipe")


def collective(operation, *args, **kwargs):
    """A collective operation (or a step whose backward is one: DistributedDataParallel's all-reduce);
    a failure to communicate, as when a rank has died, becomes LostRank."""
    try:
        return operation(*args, **kwargs)
    except RuntimeError as error:
        text = str(error)
        if isinstance(error, dist.DistError) or any(marker in text.lower() for marker in COMMUNICATION_ERRORS):
            raise LostRank(text.splitlines()[0] if text else type(error).__name__) from None
        raise


class Agreement:
    """The few values ranks must agree on, each step, in one small all-reduce."""

    def __init__(self, world: World, device: torch.device) -> None:
        self.world, self.device = world, device

    def sums(self, values: list[float]) -> list[float]:
        """The sum of each value over the ranks (itself alone in a world of one)."""
        if not self.world.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        collective(dist.all_reduce, tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def any(self, flags: list[bool]) -> list[bool]:
        """For each flag, whether any rank raised it."""
        if not self.world.distributed:
            return list(flags)
        tensor = torch.tensor([int(flag) for flag in flags], dtype=torch.int32, device=self.device)
        collective(dist.all_reduce, tensor, op=dist.ReduceOp.MAX)
        return [bool(value) for value in tensor.tolist()]

    def gather(self, value) -> list | None:
        """Every rank's value, in rank order, on the leader (None elsewhere)."""
        if not self.world.distributed:
            return [value]
        gathered = [None] * self.world.size if self.world.leader else None
        collective(dist.gather_object, value, gathered, dst=0)
        return gathered

    def broadcast(self, value):
        """The leader's value, on every rank."""
        if not self.world.distributed:
            return value
        box = [value]
        collective(dist.broadcast_object_list, box, src=0)
        return box[0]


class LeaderFailed(Exception):
    """This rank stops because another could not start or resume the run; the message says which and
    why. The leader prints it; the other ranks exit quietly."""


def go_on_together(world: World, problem: BaseException | None = None) -> None:
    """Every rank says whether it is ready (no problem) or not; all go on, or none does. Each rank
    calls it exactly once per start: on success, or with the problem that stopped it."""
    if not world.distributed:
        return
    problems = [None] * world.size
    mine = None if problem is None else (str(problem) or type(problem).__name__)
    collective(dist.all_gather_object, problems, mine)
    failed = [(rank, text) for rank, text in enumerate(problems) if text is not None]
    if failed and problem is None:
        rank, text = failed[0]
        raise LeaderFailed(f"rank {rank} could not start: {text}")


def join_world(device_setting: str) -> World:
    """The world torchrun started this process in, joined (a world of one joins nothing)."""
    world = world_from_environment()
    if world.distributed:
        join(world, rank_device(world, resolve_device(device_setting)))
    return world


class TrainingLoss(torch.nn.Module):
    """The task's loss as a module whose parameters are the model's, so that DistributedDataParallel
    can run it: each backward through it averages the gradients over the ranks."""

    def __init__(self, training) -> None:
        super().__init__()
        self.model, self.compute = training.model, training.loss

    def forward(self, batch, carry):
        return self.compute(batch, carry)


def parallel_model(training, device: torch.device):
    """DistributedDataParallel over the task's loss. A task whose model can leave a parameter without a
    gradient in a step (an adaptive softmax's cluster that no target of the batch falls in) says so with
    `may_skip_parameters`, and gets torch's `find_unused_parameters`; the others do without its search
    of the graph at every step. The graph changes between steps, so `static_graph` does not apply."""
    return DistributedDataParallel(
        TrainingLoss(training),
        device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None,  # this rank's GPU
        find_unused_parameters=bool(getattr(training, "may_skip_parameters", False)),
        forward_sync_buffers=False,  # the models hold no buffer that training changes
    )
