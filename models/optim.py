"""The optimiser recipe of a config's ``optim`` section (:class:`Optim`: name, learning rate,
decay, the ``l1``/``l2`` gradient terms, :class:`Schedule`, :class:`ParamGroup`), as plain
dataclasses: the runner checks a config against them without importing torch or Lightning
(``--list``); :func:`models.tasks.build_optimizer` turns one into a torch optimiser.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Schedule:
    """Multiplicative learning-rate factor per epoch (or step, ``interval: step``)."""

    kind: Literal["constant", "step", "multistep", "exp", "exp_after"] = "constant"
    step_size: int | None = None       # step: × gamma every step_size
    gamma: float | None = None
    milestones: list[int] | None = None  # multistep: × gamma at each milestone
    start: int | None = None           # exp_after: constant until start, then × gamma per unit
    interval: Literal["epoch", "step"] = "epoch"

    def __post_init__(self) -> None:
        need = {"constant": (), "step": ("step_size", "gamma"), "multistep": ("milestones", "gamma"),
                "exp": ("gamma",), "exp_after": ("start", "gamma")}[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"schedule kind '{self.kind}' needs {', '.join(missing)}")

    def factor(self, t: int) -> float:
        if self.kind == "step":
            return self.gamma ** (t // self.step_size)
        if self.kind == "multistep":
            return self.gamma ** sum(t >= m for m in self.milestones)
        if self.kind == "exp":
            return self.gamma ** t
        if self.kind == "exp_after":
            return self.gamma ** max(0, t - self.start)
        return 1.0


@dataclass
class ParamGroup:
    """Parameters whose name contains ``match`` get ``lr_mult`` × the learning rate."""

    match: str
    lr_mult: float = 1.0


@dataclass
class Optim:
    """The ``optim`` section of a config.

    >>> Optim.from_dict({"lr": 0.01, "schedule": {"kind": "step", "step_size": 2, "gamma": 0.5}}).schedule.factor(5)
    0.25
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    eps: float = 1e-8
    momentum: float = 0.9
    l1: float = 0.0
    l2: float = 0.0
    schedule: Schedule = field(default_factory=Schedule)
    param_groups: list[ParamGroup] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for k in ("weight_decay", "l1", "l2", "eps"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be non-negative, got {getattr(self, k)}")
        if isinstance(self.schedule, dict):
            self.schedule = Schedule(**self.schedule)
        self.param_groups = [g if isinstance(g, ParamGroup) else ParamGroup(**g) for g in self.param_groups]

    @classmethod
    def from_dict(cls, d: dict | None) -> "Optim":
        return cls(**(d or {}))
