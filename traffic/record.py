"""Frozen records: what ``@dataclass(frozen=True)`` gives a class, made without it.

``dataclass`` compiles source text for every method of every class, about 0.5 ms a class at
import, and importing ``dataclasses`` (with ``inspect`` and ``ast``) costs half a
``python -c pass``; the core's classes made that a quarter of ``traffic status``. A ``Record``
reads its fields from the class's annotations once, when the class is made, and shares one
generic ``__init__``, ``__repr__``, ``__eq__`` and ``__hash__``. ``dataclasses.replace``,
``asdict``, ``fields`` and ``is_dataclass`` work on records too: ``__dataclass_fields__`` is
made (importing ``dataclasses``) the first time one of them asks for it.
"""

from traffic.hints import Any, dataclass_transform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a record, as ``dataclasses.FrozenInstanceError``."""


class Field:
    def __init__(self, default: Any, default_factory: Any, repr: bool,
                 compare: bool) -> None:
        self.default, self.default_factory = default, default_factory
        self.repr, self.compare = repr, compare


def field(*, default: Any = _MISSING, default_factory: Any = _MISSING,
          repr: bool = True, compare: bool = True) -> Any:
    return Field(default, default_factory, repr, compare)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    __slots__ = ()
    _fields: "ClassVar[tuple[str, ...]]" = ()
    _defaults: "ClassVar[dict[str, Field]]" = {}  # noqa: RUF012
    _field_set: "ClassVar[frozenset[str]]" = frozenset()
    _shown: "ClassVar[tuple[str, ...]]" = ()
    _compared: "ClassVar[tuple[str, ...]]" = ()
    _plain_defaults: "ClassVar[dict[str, Any]]" = {}  # noqa: RUF012
    _factories: "ClassVar[tuple[tuple[str, Any], ...]]" = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # the class's own annotations (inspect.get_annotations would import inspect)
        names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
        specs: dict[str, Field] = {}
        for name in names:
            value = cls.__dict__.get(name, _MISSING)
            if value is _MISSING:
                if specs:
                    raise TypeError(f"non-default argument {name!r} follows default argument")
                continue
            specs[name] = value if isinstance(value, Field) else Field(value, _MISSING, True,
                                                                       True)
            if isinstance(value, Field):
                if value.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, value.default)
        cls._fields, cls._defaults, cls._field_set = names, specs, frozenset(names)
        cls._shown = tuple(name for name in names if specs.get(name, _SHOWN).repr)
        cls._compared = tuple(name for name in names if specs.get(name, _SHOWN).compare)
        cls._plain_defaults = {name: spec.default for name, spec in specs.items()
                               if spec.default_factory is _MISSING}
        cls._factories = tuple((name, spec.default_factory) for name, spec in specs.items()
                               if spec.default_factory is not _MISSING)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As few steps as a record made with every field or with defaults takes: the
        collector makes several per interface per poll."""
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}.__init__() takes {len(fields) + 1} "
                            f"positional arguments but {len(args) + 1} were given")
        values = dict(zip(fields, args, strict=False))
        if kwargs:
            if not kwargs.keys() <= self._field_set or kwargs.keys() & values.keys():
                self._refuse(values, kwargs)
            values.update(kwargs)
        if len(values) != len(fields):
            for name, factory in self._factories:
                if name not in values:
                    values[name] = factory()
            values = {**self._plain_defaults, **values}
            if len(values) != len(fields):
                missing = next(name for name in fields if name not in values)
                raise TypeError(f"{type(self).__name__}.__init__() missing 1 required "
                                f"positional argument: {missing!r}")
        self.__dict__.update(values)

    def _refuse(self, values: dict[str, Any], kwargs: dict[str, Any]) -> None:
        """Name an unknown argument, or one given twice."""
        for name in kwargs:
            if name not in self._field_set:
                raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword "
                                f"argument {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__}.__init__() got multiple values for "
                                f"argument {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{type(self).__qualname__}({shown})"

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._compared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())


_SHOWN = Field(_MISSING, _MISSING, True, True)


class _DataclassFields:
    """A record class's ``__dataclass_fields__``, made at first use and then kept on the class."""

    def __get__(self, instance: Any, owner: type[Record]) -> dict[str, Any]:
        import dataclasses

        made: dict[str, Any] = {}
        for name in owner._fields:
            spec = owner._defaults.get(name, _SHOWN)
            options: dict[str, Any] = {"repr": spec.repr, "compare": spec.compare}
            if spec.default_factory is not _MISSING:
                options["default_factory"] = spec.default_factory
            elif spec.default is not _MISSING:
                options["default"] = spec.default
            made[name] = dataclasses.field(**options)
            made[name].name = name
            made[name].type = owner.__dict__.get("__annotations__", {}).get(name)  # noqa: RUF063
            made[name]._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        type.__setattr__(owner, "__dataclass_fields__", made)
        return made


Record.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]
