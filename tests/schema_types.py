"""Types the schema tests declare variables with (module level, so annotations resolve)."""

from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import InitVar, dataclass, field
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    computed_field,
    field_validator,
)


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


@dataclass
class Positive:
    """Its __post_init__ refuses what a plain-form write could still store."""

    price: Decimal

    def __post_init__(self) -> None:
        if self.price < 0:
            raise ValueError("price must not be negative")


@dataclass
class Branch:
    """A recursive dataclass that is not frozen: a value may hold itself."""

    children: list[Branch] = field(default_factory=list)


@dataclass
class Scaled:
    x: int
    factor: InitVar[int]

    def __post_init__(self, factor: int) -> None:
        self.x *= factor


class Pair(enum.Enum):
    ONE = (1, 1)


class Aliased(BaseModel):
    user_id: int = Field(alias="userId")


class Strict(BaseModel):
    model_config = ConfigDict(strict=True)
    when: datetime.datetime
    price: Decimal


class Secret(BaseModel):
    token: SecretStr


class Computed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def double(self) -> int:
        return 2 * self.x


class Picky(BaseModel):
    x: int

    @field_validator("x")
    @classmethod
    def not_thirteen(cls, value: int) -> int:
        if value == 13:
            raise TypeError("not 13")  # pydantic wraps ValueError only
        return value


class Tokened(BaseModel):
    """A private attribute made afresh by each instance: not stored, not compared."""

    x: int
    _token: str = PrivateAttr(default_factory=lambda: uuid.uuid4().hex)


class Priced(BaseModel):
    price: Decimal
    tags: set[str] = set()
