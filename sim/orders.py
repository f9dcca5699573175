"""Task orders: the instruction a multi-task env takes per episode, and the train / held-out split.

An order says which variant of a task an episode asks for. pickplace4's is the sequence in which
its four objects go into their bins (24 orders, written "milk,bread,cereal,can" or as an index);
arrange's says which spot each cube goes to (6 orders, written "left,right": red to the left
spot, green to the right one). The splits follow UVD's compositional-generalisation protocol:
train on some orders, evaluate on the others, each of whose subtasks appears in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from .errors import SimError
from .pickplace import OBJECTS

Order = tuple[str, ...]


@dataclass(frozen=True)
class TaskOrders:
    """One env's orders: ``all`` (index = order id), named ``splits`` of indices, how an order
    is written (``rule``, for errors) and the instruction it gives (``template``)."""

    env: str
    all: tuple[Order, ...]
    splits: dict[str, list[int]]
    rule: str  # how an order is written, for errors
    template: str  # the instruction, formatted with the order's names

    def parse(self, order: object) -> Order:
        """One order, from a sequence of names, a comma-separated string, or an index."""
        if isinstance(order, str) and order.strip().isdigit():
            order = int(order)
        if isinstance(order, int | np.integer) and not isinstance(order, bool):
            if not 0 <= int(order) < len(self.all):
                raise SimError(f"{self.env}: order index {order} is not in 0..{len(self.all) - 1}")
            return self.all[int(order)]
        if isinstance(order, str):
            order = order.split(",")
        if not isinstance(order, Sequence):
            raise SimError(
                f"{self.env}: order {order!r} is not a list of names, a string or an index"
            )
        names = tuple(str(o).strip().lower() for o in order)
        if names not in self.all:
            raise SimError(f"order {names!r} must {self.rule} (e.g. {','.join(self.all[0])!r})")
        return names

    def resolve(self, orders: object) -> list[Order] | None:
        """Orders from a config value: None, a split name, or a list of orders."""
        if orders is None:
            return None
        if isinstance(orders, str):
            if orders not in self.splits:
                raise SimError(
                    f"{self.env}: orders {orders!r} is not a split "
                    f"({', '.join(self.splits)}) or a list of orders"
                )
            return [self.all[i] for i in self.splits[orders]]
        if not isinstance(orders, Sequence) or not orders:
            raise SimError(
                f"{self.env}: orders must be a split name or a non-empty list, got {orders!r}"
            )
        return [self.parse(o) for o in orders]

    def describe(self, order: Sequence[str]) -> str:
        return self.template.format(*order)

    def draw(self, rng: np.random.Generator) -> Order:
        """A random order (an episode without one asked)."""
        return self.all[int(rng.integers(len(self.all)))]


def _split(n: int, train: Sequence[int]) -> dict[str, list[int]]:
    return {"all": list(range(n)), "train": sorted(train),
            "heldout": sorted(set(range(n)) - set(train))}  # fmt: skip


_PP4 = tuple(permutations(OBJECTS))
# A fixed shuffle, so every run on every machine uses the same split: 16 train, 8 held out.
_PP4_TRAIN = [int(i) for i in np.random.default_rng(2024).permutation(len(_PP4))[:16]]

SPOTS = ("left", "middle", "right")  # arrange's spots, as the robot sees them (+y is its left)
_ARRANGE = tuple(permutations(SPOTS, 2))  # (red's spot, green's spot), never the same spot
# Train on 4 placements that send each cube to each spot at least once; hold out the 2 others:
# (left, right) and (right, middle) pair subtasks the demos only show in other company.
_ARRANGE_TRAIN = [_ARRANGE.index(p) for p in (("left", "middle"), ("middle", "right"),
                                              ("right", "left"), ("middle", "left"))]  # fmt: skip

TASK_ORDERS: dict[str, TaskOrders] = {
    "pickplace4": TaskOrders(
        "pickplace4", _PP4, _split(len(_PP4), _PP4_TRAIN),
        f"name each of {', '.join(OBJECTS)} once",
        "place {}, {}, {}, {} in their bins, in this order",
    ),
    "arrange": TaskOrders(
        "arrange", _ARRANGE, _split(len(_ARRANGE), _ARRANGE_TRAIN),
        f"name two different spots of {', '.join(SPOTS)}: red's, then green's",
        "put the red cube on the {} spot, then the green cube on the {} spot",
    ),
}  # fmt: skip

# pickplace4's names, kept for its callers
ORDERS: list[Order] = list(_PP4)
ORDER_SPLITS = TASK_ORDERS["pickplace4"].splits


def task_orders(env: str) -> TaskOrders:
    """The orders of ``env``; an env without orders is named."""
    if env not in TASK_ORDERS:
        raise SimError(f"orders apply to {', '.join(TASK_ORDERS)} only, not {env}")
    return TASK_ORDERS[env]


def parse_order(order: object, env: str = "pickplace4") -> Order:
    return task_orders(env).parse(order)


def resolve_orders(orders: object, env: str = "pickplace4") -> list[Order] | None:
    """Orders of ``env`` from a config value: None, a split name ("train", "heldout", "all")
    or a list of orders (each as ``parse_order`` takes it)."""
    if orders is None:
        return None
    return task_orders(env).resolve(orders)


def describe_order(order: Sequence[str], env: str = "pickplace4") -> str:
    """The instruction of one episode."""
    return task_orders(env).describe(order)
