"""Typed config dataclasses: one check of every field against its annotation, and dict -> config.

Every settings dataclass of the kit (``TrainConfig``, ``EncoderConfig``, ``AugmentConfig``,
``SemanticConfig``, ``SynHetConfig``) calls ``check_fields(self)`` first thing in its
``__post_init__``/``validate``, then its own range checks (``lr > 0``, ``0 <= p <= 1``, ...), which
can then compare numbers without tripping over a string. So a wrong type is always one error that
names the config and the field, never ``'<=' not supported between 'float' and 'str'`` three calls
deep, and never a truthy string silently taken for ``True``::

    >>> EncoderConfig(dropout="x")
    ConfigTypeError: EncoderConfig field 'dropout' expects float, got str 'x'

What an annotation accepts (``check_value``):

- ``int``: integers, numpy integers included, never a bool, never a float (``64.7`` is not a width);
- ``float``: any real number, ints included (stored as ``float``), never a bool;
- ``bool``: ``True``/``False`` (or a numpy bool) only; ``"x"`` and ``1`` are refused;
- ``str``: strings;
- ``tuple[X, ...]`` / ``tuple[X, Y]``: a list or tuple (JSON has no tuples) of that length, each
  item checked (``'lr_milestones[1]' expects int``), stored as a tuple; bare ``tuple``: any list/tuple;
- ``X | None`` / ``Optional[X]``: None or an X; ``Literal["a", "b"]``: one of the choices
  (``ConfigValueError``, a ``ValueError``);
- any other class: ``isinstance``; annotations it does not understand are not checked.

Accepted values are normalised in place (ints -> float for float fields, lists -> tuples, numpy
scalars -> Python scalars), so configs hold plain, JSON-able values. Frozen dataclasses work too.

``from_dict(cls, d)`` builds a config from a JSON-like dict, refusing unknown keys with the list of
the valid ones. Floor 1: imports nothing from hetskel.
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

__all__ = ["ConfigTypeError", "ConfigValueError", "check_fields", "check_keys", "check_value", "from_dict",
           "type_name"]

C = TypeVar("C")
_NoneType = type(None)


class _ConfigError:
    """What both config errors carry: ``config`` (class name), ``field`` (the dataclass field),
    ``where`` (the field or an item of it, e.g. ``speed_range[0]``) and ``reason`` (``expects ...,
    got ...``). The message is ``<config> field '<where>' <reason>``."""

    def _init(self, config: str, field: str, where: str, reason: str) -> None:
        self.config, self.field, self.where, self.reason = config, field, where, reason


class ConfigTypeError(_ConfigError, TypeError):
    """A config field holds a value of the wrong type."""

    def __init__(self, config: str, field: str, where: str, reason: str):
        self._init(config, field, where, reason)
        TypeError.__init__(self, f"{config} field {where!r} {reason}")


class ConfigValueError(_ConfigError, ValueError):
    """A ``Literal`` field holds none of its choices."""

    def __init__(self, config: str, field: str, where: str, reason: str):
        self._init(config, field, where, reason)
        ValueError.__init__(self, f"{config} field {where!r} {reason}")


class _Mismatch(Exception):
    """Internal: ``value`` does not fit; ``suffix`` locates the item (``[1]``), ``expected`` names the type."""

    def __init__(self, value: Any, expected: str, suffix: str = "", choice: bool = False):
        super().__init__(expected)
        self.value, self.expected, self.suffix, self.choice = value, expected, suffix, choice


def type_name(hint: Any) -> str:
    """``int``, ``int | None``, ``tuple[float, float]``, ``tuple[int, ...]``, ``one of ['a', 'b']``."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is _NoneType or hint is None:
        return "None"
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin is not None and args:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(hint, "__name__", None) or str(hint)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` normalised to ``hint``; raises ``_Mismatch`` when it does not fit."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None and _NoneType in args:
            return None
        arms = [a for a in args if a is not _NoneType]
        for a in arms:
            try:
                return _coerce(value, a)
            except _Mismatch as m:
                # one real arm and the problem is inside it (an item of a tuple): say which item
                if len(arms) == 1 and m.suffix:
                    raise
        raise _Mismatch(value, type_name(hint))
    if origin is Literal:
        # type(value) is type(c): True must not match a Literal[1], nor 1 a Literal[True]
        for c in args:
            if type(value) is type(c) and value == c:
                return c
        raise _Mismatch(value, type_name(hint), choice=True)
    if hint is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(value, type_name(hint))
        if hint is tuple or not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [args[0]] * len(value)
        elif len(value) != len(args):
            raise _Mismatch(value, f"{type_name(hint)} ({len(args)} items)")
        else:
            items = list(args)
        out = []
        for i, (v, a) in enumerate(zip(value, items)):
            try:
                out.append(_coerce(v, a))
            except _Mismatch as m:
                raise _Mismatch(m.value, m.expected, f"[{i}]{m.suffix}", m.choice) from None
        return tuple(out)
    if hint is bool:
        if _is_bool(value):
            return bool(value)
    elif hint is int:
        if isinstance(value, numbers.Integral) and not _is_bool(value):
            return int(value)
    elif hint is float:
        if isinstance(value, numbers.Real) and not _is_bool(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return str(value)
    elif isinstance(origin or hint, type):  # list, dict, dict[str, int] (items not checked), classes
        if isinstance(value, origin or hint):
            return value
    else:
        return value  # an annotation this module does not understand: not checked
    raise _Mismatch(value, type_name(hint))


def check_value(config: str, field: str, value: Any, hint: Any) -> Any:
    """``value`` normalised to the annotation ``hint`` of ``<config>.<field>``, or a
    ``ConfigTypeError`` (``ConfigValueError`` for a ``Literal``) naming config and field."""
    try:
        return _coerce(value, hint)
    except _Mismatch as m:
        reason = f"expects {m.expected}, got {type(m.value).__name__} {_short(m.value)}"
        error = ConfigValueError if m.choice else ConfigTypeError
        raise error(config, field, field + m.suffix, reason) from None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass (cached: ``get_type_hints`` evaluates strings)."""
    return get_type_hints(cls)


def check_fields(obj: C, name: str | None = None, skip: Iterable[str] = ()) -> C:
    """Check every field of the dataclass instance ``obj`` against its annotation and store the
    normalised values (works on frozen dataclasses). ``name`` defaults to the class name; fields
    in ``skip`` are left alone. Returns ``obj``."""
    cls = type(obj)
    name = name or cls.__name__
    hints, skip = _hints(cls), set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name not in hints:
            continue
        value = getattr(obj, f.name)
        new = check_value(name, f.name, value, hints[f.name])
        if new is not value:
            object.__setattr__(obj, f.name, new)  # frozen dataclasses too
    return obj


def check_keys(cls: type, keys: Iterable, name: str | None = None) -> None:
    """``ValueError`` listing the valid keys when ``keys`` holds a name that is no init field of ``cls``."""
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted((k for k in keys if k not in valid), key=str)
    if unknown:
        raise ValueError(f"unknown {name or cls.__name__} key(s) {unknown}; valid keys: {', '.join(valid)}")


def from_dict(cls: type[C], d: Mapping, name: str | None = None) -> C:
    """``cls(**d)`` for a JSON-like dict: not a dict or unknown keys are errors naming the valid
    keys; the types and ranges are then checked by the class itself (``check_fields``)."""
    name = name or cls.__name__
    if not isinstance(d, Mapping):
        raise TypeError(f"{name}.from_dict expects a dict, got {type(d).__name__}")
    check_keys(cls, d, name)
    return cls(**d)
