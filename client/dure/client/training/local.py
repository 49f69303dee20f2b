"""Local training of the behaviour-cloning policy on a factory's own episodes.

:func:`train_local` runs ``config.local_steps`` Adam steps on mini-batches of the
dataset's frames (each batch drawn without replacement from a shuffled pass over
the frames, reshuffled when a pass is used up; the shuffles come from
``config.seed``), minimising the mean squared error between the predicted and the
demonstrated normalised action.  With ``proximal_mu > 0`` it adds FedProx's
proximal term ``mu / 2 * ||w - w_global||^2`` over the model's parameters
(Li et al. 2020, "Federated Optimization in Heterogeneous Networks").

The optimiser's state is fresh on every call, as it is on a factory for each
round.  Learning-rate schedules across rounds are the coordinator's:
:func:`round_learning_rate` is the cosine decay the benchmark uses (FedAvg with
non-IID sites settles at a point whose distance from the pooled optimum grows
with the learning rate times the local steps; decaying the rate over the rounds
shrinks it).

Device: CUDA when available, otherwise the CPU with one thread
(``torch.set_num_threads(1)``: several processes share few cores here, and more
threads make a small MLP slower, not faster).  The model is moved back to its
own device before returning, so its ``state_dict`` stays where the caller left it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from dure.client.training.dataset import EpisodesDataset
from dure.client.training.errors import TrainingError

__all__ = [
    "TrainConfig",
    "TrainResult",
    "dataset_tensors",
    "round_learning_rate",
    "train_local",
    "training_device",
]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one call of :func:`train_local`."""

    local_steps: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    proximal_mu: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    """``num_examples``: frames in the dataset (FedAvg's weight); ``loss``: mean MSE over the steps.

    The loss is the behaviour-cloning loss alone (without the proximal term),
    averaged over the local steps, in normalised action units.
    """

    num_examples: int
    loss: float


def training_device() -> torch.device:
    """CUDA when available; otherwise the CPU, limited to one thread."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(1)
    return torch.device("cpu")


def dataset_tensors(dataset: EpisodesDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame of ``dataset`` as ``(inputs, targets)``.

    ``inputs`` is ``(N, D + T)``: the normalised observation then the task one-hot;
    ``targets`` is ``(N, A)``: the normalised action.
    """
    # EpisodesDataset indexes tensors it holds, so an index tensor gathers every frame at
    # once (a per-item loop costs about 0.1 ms a frame, seconds per round).
    every = dataset[cast(int, torch.arange(len(dataset)))]
    inputs = torch.cat((every["observation"], every["task"]), dim=1)
    return inputs, every["action"]


def train_local(
    model: nn.Module,
    dataset: EpisodesDataset,
    config: TrainConfig,
    *,
    global_state: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``dataset`` and return the examples and the loss.

    Parameters
    ----------
    model
        The policy (:func:`~dure.client.training.model.build_policy_model`), its
        weights already the round's starting point.
    dataset
        The site's frames, normalised with the consortium statistics.
    config
        Steps, batch size, learning rate, proximal weight and shuffling seed.
    global_state
        The global model's ``state_dict`` (FedProx anchor); needed when
        ``config.proximal_mu > 0``, ignored otherwise.

    Raises
    ------
    TrainingError
        If the configuration is out of range, the dataset does not fit the
        model, or ``global_state`` lacks a parameter or has another shape.
    """
    _check_config(config, global_state)
    device = training_device()
    home = next(model.parameters()).device
    inputs, targets = (t.to(device) for t in dataset_tensors(dataset))
    model.to(device)
    try:
        _check_fits(model, inputs, targets)
        anchor = _anchor(model, global_state, device) if config.proximal_mu > 0 else {}
        loss = _optimise(model, inputs, targets, config, anchor)
    finally:
        model.to(home)
    return TrainResult(num_examples=len(dataset), loss=loss)


def round_learning_rate(
    base_lr: float, server_round: int, num_rounds: int, *, floor: float = 0.0
) -> float:
    """Cosine-decayed learning rate of round ``server_round`` (1-based) of ``num_rounds``.

    Round 1 uses ``base_lr``; the rate falls along half a cosine toward
    ``floor * base_lr``, which it would reach after the last round.
    """
    progress = min(max(server_round - 1, 0) / max(num_rounds, 1), 1.0)
    factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * factor


def _optimise(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig,
    anchor: Mapping[str, torch.Tensor],
) -> float:
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    params = dict(model.named_parameters())
    model.train()
    total = 0.0
    for batch in _batches(len(inputs), config, inputs.device):
        mse = torch.mean((model(inputs[batch]) - targets[batch]) ** 2)
        loss = mse
        if anchor:
            drift = sum(torch.sum((params[name] - ref) ** 2) for name, ref in anchor.items())
            loss = mse + 0.5 * config.proximal_mu * drift
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        total += float(mse.detach())
    model.eval()
    return total / config.local_steps


def _batches(n: int, config: TrainConfig, device: torch.device) -> Iterator[torch.Tensor]:
    """``local_steps`` index batches from shuffled passes over ``n`` frames."""
    generator = torch.Generator().manual_seed(config.seed)
    size = min(config.batch_size, n)
    order = torch.randperm(n, generator=generator)
    position = 0
    for _ in range(config.local_steps):
        if position + size > n:
            order, position = torch.randperm(n, generator=generator), 0
        yield order[position : position + size].to(device)
        position += size


def _check_config(config: TrainConfig, global_state: Mapping[str, torch.Tensor] | None) -> None:
    problems = []
    if config.local_steps < 1 or config.batch_size < 1:
        problems.append(f"local_steps={config.local_steps}, batch_size={config.batch_size}")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        problems.append(f"lr={config.lr}")
    if not (config.proximal_mu >= 0 and math.isfinite(config.proximal_mu)):
        problems.append(f"proximal_mu={config.proximal_mu}")
    if config.proximal_mu > 0 and global_state is None:
        problems.append("proximal_mu > 0 without global_state")
    if problems:
        raise TrainingError(
            f"training configuration out of range: {'; '.join(problems)}",
            hint="Use positive steps, batch size and learning rate, proximal_mu >= 0, "
            "and pass the global model's state_dict when proximal_mu > 0.",
        )


def _check_fits(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    hint = "Build the model from the dataset's observation_dim, vocabulary and action_dim."
    try:
        with torch.no_grad():
            out = model(inputs[:1])
    except RuntimeError as exc:
        raise TrainingError(
            f"the model does not take the dataset's {inputs.shape[1]}-number inputs: {exc}",
            hint=hint,
        ) from exc
    if out.shape != targets[:1].shape:
        raise TrainingError(
            f"the model maps {inputs.shape[1]}-number inputs to {tuple(out.shape[1:])} actions, "
            f"the dataset has {tuple(targets.shape[1:])}",
            hint=hint,
        )


def _anchor(
    model: nn.Module, global_state: Mapping[str, torch.Tensor] | None, device: torch.device
) -> dict[str, torch.Tensor]:
    state = global_state or {}
    anchor = {}
    for name, param in model.named_parameters():
        ref = state.get(name)
        if ref is None or tuple(ref.shape) != tuple(param.shape):
            got = None if ref is None else tuple(ref.shape)
            raise TrainingError(
                f"global_state[{name!r}] has shape {got}, the model's is {tuple(param.shape)}",
                hint="Pass the global model's state_dict, for the same architecture.",
            )
        anchor[name] = ref.detach().to(device=device, dtype=param.dtype)
    return anchor
