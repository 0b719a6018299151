"""The optimiser's parameter groups: weight decay on the weight matrices, none on the biases.

Decoupled weight decay (AdamW) on the matrices only, as nanoGPT does: decaying the biases would
pull the LSTM's forget-gate bias (initialised to 1, model.py) back towards forgetting. Side by
side at equal steps on Tiny Shakespeare (issue 14), --weight-decay 0.1 on the matrices reached
1.4717 and 1.4436 after 4,700 and 7,800 steps, against 1.4777 and 1.4520 decaying every
parameter and 1.5055 and 1.4972 with no decay.
"""

from __future__ import annotations

from typing import Any

import torch

DECAYED, NOT_DECAYED = 0, 1  # the groups' order in the optimiser


def is_decayed(param: torch.Tensor) -> bool:
    """A weight matrix (embedding, recurrent and input weights, the head), not a bias."""
    return param.dim() >= 2


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    params = list(model.parameters())
    return [
        {"params": [p for p in params if is_decayed(p)], "weight_decay": weight_decay},
        {"params": [p for p in params if not is_decayed(p)], "weight_decay": 0.0},
    ]


def set_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    """This run's --weight-decay on the matrices (a resumed run may change it); none on the biases."""
    optimizer.param_groups[DECAYED]["weight_decay"] = weight_decay
    optimizer.param_groups[NOT_DECAYED]["weight_decay"] = 0.0


def regrouped(saved: dict, model: torch.nn.Module) -> dict:
    """An optimiser state saved with all parameters in one group (checkpoints before the groups
    above), split into those groups, so it loads and the run continues with its moments. The
    saved ids number the parameters in ``model.parameters()`` order; ``load_state_dict`` pairs
    saved ids with the current groups' parameters by position, so each keeps its own moments."""
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
        return saved  # already grouped, or damaged: load_state_dict says which
    ids = groups[0].get("params")
    params = list(model.parameters())
    if not isinstance(ids, list) or len(ids) != len(params):
        return saved
    decayed = [i for i, p in zip(ids, params) if is_decayed(p)]
    not_decayed = [i for i, p in zip(ids, params) if not is_decayed(p)]
    settings = {k: v for k, v in groups[0].items() if k != "params"}
    return {
        **saved,
        "param_groups": [{**settings, "params": decayed}, {**settings, "params": not_decayed}],
    }
