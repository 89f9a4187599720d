"""Types the schema tests declare variables with (module level, so annotations resolve)."""

from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict

from pydantic import BaseModel, PositiveInt


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Item:
    name: str
    price: Decimal
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tree:
    label: str
    size: int | None = None
    children: tuple[Tree, ...] = ()


@dataclass
class Everything:
    when: datetime.datetime
    day: datetime.date
    at: datetime.time
    took: datetime.timedelta
    id: uuid.UUID
    color: Color
    kind: Literal["a", "b"]
    pair: tuple[int, str]
    prices: dict[str, Decimal]
    ratio: float


class Point(TypedDict):
    x: int
    y: int


class Options(TypedDict, total=False):
    title: str
    point: Point


class Mixed(TypedDict):
    id: int
    note: NotRequired[str]


class Line(BaseModel):
    sku: str
    qty: PositiveInt
    price: Decimal


class Order(BaseModel):
    lines: list[Line]
