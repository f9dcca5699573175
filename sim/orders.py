"""pickplace4's task space: the 24 orders of the four objects, and the train / held-out split.

An order can be written as a tuple of names, a comma-separated string ("milk,bread,cereal,can")
or its index in ``ORDERS``. The split follows UVD's compositional-generalisation protocol:
train on 16 orders, evaluate on the 8 others.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations

import numpy as np

from .errors import SimError
from .pickplace import OBJECTS

ORDERS: list[tuple[str, ...]] = list(permutations(OBJECTS))  # index = order id
# A fixed shuffle, so every run on every machine uses the same split.
_SHUFFLED = [int(i) for i in np.random.default_rng(2024).permutation(len(ORDERS))]
ORDER_SPLITS: dict[str, list[int]] = {
    "all": list(range(len(ORDERS))),
    "train": sorted(_SHUFFLED[:16]),
    "heldout": sorted(_SHUFFLED[16:]),
}


def parse_order(order: object) -> tuple[str, ...]:
    """One order, from a sequence of names, "milk,bread,cereal,can", or an index 0..23."""
    if isinstance(order, str) and order.strip().isdigit():
        order = int(order)
    if isinstance(order, int | np.integer) and not isinstance(order, bool):
        if not 0 <= int(order) < len(ORDERS):
            raise SimError(f"order index {order} is not in 0..{len(ORDERS) - 1}")
        return ORDERS[int(order)]
    if isinstance(order, str):
        order = order.split(",")
    if not isinstance(order, Sequence):
        raise SimError(f"order {order!r} is not a list of names, a string or an index")
    names = tuple(str(o).strip().lower() for o in order)
    if sorted(names) != sorted(OBJECTS):
        raise SimError(f"order {names!r} must name each of {', '.join(OBJECTS)} once")
    return names


def resolve_orders(orders: object) -> list[tuple[str, ...]] | None:
    """Orders from a config value: None, a split name ("train", "heldout", "all"), or a list
    of orders (each as ``parse_order`` takes it)."""
    if orders is None:
        return None
    if isinstance(orders, str):
        if orders not in ORDER_SPLITS:
            raise SimError(
                f"orders {orders!r} is not a split ({', '.join(ORDER_SPLITS)}) or a list of orders"
            )
        return [ORDERS[i] for i in ORDER_SPLITS[orders]]
    if not isinstance(orders, Sequence) or not orders:
        raise SimError(f"orders must be a split name or a non-empty list, got {orders!r}")
    return [parse_order(o) for o in orders]


def describe_order(order: Sequence[str]) -> str:
    """The instruction of one pickplace4 episode."""
    return "place " + ", ".join(order) + " in their bins, in this order"
