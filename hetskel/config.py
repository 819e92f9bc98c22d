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
- a config dataclass (e.g. ``semantic_config: SemanticConfig | None``): an instance, or a dict that
  ``from_dict`` turns into one; a wrong item is named inside the field (``'semantic_config.threshold'``);
- ``Overrides[Config]``: some fields of ``Config`` as a dict (settings applied over a base: a preset,
  the class defaults), each checked against ``Config``'s annotation (``'encoder.d_model' expects
  int``); an unknown key is a ``ConfigValueError`` naming the field and listing the valid keys;
- any other class: ``isinstance``; annotations it does not understand are not checked.

Accepted values are normalised in place (ints -> float for float fields, lists -> tuples, numpy
scalars -> Python scalars), so configs hold plain, JSON-able values. Frozen dataclasses work too.

``from_dict(cls, d)`` builds a config from a JSON-like dict, refusing unknown keys with the list of
the valid ones; ``to_plain(x)`` is the way back (configs, ``Overrides`` and tuples -> dicts and
lists). Floor 1: imports nothing from hetskel.
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
import re
import types
from collections.abc import Iterable, Mapping
from typing import (
    Any,
    ClassVar,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import numpy as np

__all__ = ["SEED_MAX", "ConfigTypeError", "ConfigValueError", "Overrides", "check_fields", "check_keys",
           "check_range", "check_value", "from_dict", "to_plain", "type_name"]

SEED_MAX = 2**63 - 1  # torch.manual_seed, numpy and random all take seeds in 0..2**63-1

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
    """Internal: ``value`` does not fit; ``suffix`` locates the item (``[1]``, ``.d_model``),
    ``expected`` names the type; ``reason`` replaces ``expects <expected>, got ...`` when given."""

    def __init__(self, value: Any, expected: str, suffix: str = "", choice: bool = False, reason: str = ""):
        super().__init__(expected)
        self.value, self.expected, self.suffix, self.choice, self.reason = value, expected, suffix, choice, reason

    def inside(self, prefix: str) -> _Mismatch:
        """The same mismatch located one level deeper (``prefix`` + its suffix)."""
        return _Mismatch(self.value, self.expected, prefix + self.suffix, self.choice, self.reason)

    @property
    def error(self) -> type:
        """A bad type -> ``ConfigTypeError``; a bad choice or an unknown key -> ``ConfigValueError``."""
        return ConfigValueError if self.choice else ConfigTypeError


def _unknown_keys_reason(cls: type, keys: Iterable) -> str:
    """``""``, or ``has unknown <Cls> key(s) [...]; valid keys: ...`` for names that are no init field of ``cls``."""
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted((k for k in keys if k not in valid), key=str)
    return f"has unknown {cls.__name__} key(s) {unknown}; valid keys: {', '.join(valid)}" if unknown else ""


class Overrides(Mapping):
    """Some fields of a config dataclass, typed by it: ``Overrides[EncoderConfig]`` annotates a field
    that holds settings applied over a base (``PretrainSpec.encoder`` over a preset, ``.augment``
    over ``AugmentConfig()``). A read-only mapping of the keys that were set (so ``dict(o)`` and
    ``**o`` work, and it equals the plain dict it came from); ``apply(base)`` / ``build(**base)``
    make the full config, whose own checks then judge the ranges::

        >>> Over = Overrides[AugmentConfig]
        >>> o = Over({"corrupt_fraction": 0.2}); o.build()    # AugmentConfig(corrupt_fraction=0.2, ...)
        >>> Over({"p_zero2": 1})   # ConfigValueError: Overrides[AugmentConfig] field 'p_zero2' ...

    Only the keys given are stored, so ``to_plain`` gives back exactly that dict (a config file
    stays as the user wrote it). As a field annotation, the shared check (``check_value``) turns a
    dict into one and names the field in its errors (``'encoder.d_model' expects int``)."""

    target: ClassVar[type | None] = None
    _made: ClassVar[dict[type, type]] = {}

    def __class_getitem__(cls, target: type) -> type[Overrides]:
        if not dataclasses.is_dataclass(target):
            raise TypeError(f"Overrides[...] takes a config dataclass, got {target!r}")
        if target not in Overrides._made:
            Overrides._made[target] = type(f"Overrides[{target.__name__}]", (Overrides,),
                                           {"target": target, "__module__": __name__})
        return Overrides._made[target]

    def __init__(self, values: Mapping | None = None):
        if self.target is None:
            raise TypeError("use Overrides[SomeConfig](...), not Overrides(...)")
        try:
            self._values = self._checked(values if values is not None else {})
        except _Mismatch as m:  # suffix ".key..." names the key; no suffix: the whole dict
            where = m.suffix[1:]
            raise _as_error(type(self).__name__, re.split(r"[.\[]", where)[0] or "values", where or "values",
                            m) from None

    @classmethod
    def _checked(cls, values: Any) -> dict:
        """The values normalised to the target's annotations; raises ``_Mismatch`` (suffix ``.key``)."""
        if not isinstance(values, Mapping):
            raise _Mismatch(values, f"dict of {cls.target.__name__} fields")
        reason = _unknown_keys_reason(cls.target, values)
        if reason:
            raise _Mismatch(values, "", choice=True, reason=reason)
        hints, out = _hints(cls.target), {}
        for k, v in values.items():
            try:
                out[k] = _coerce(v, hints[k]) if k in hints else v
            except _Mismatch as m:
                raise m.inside(f".{k}") from None
        return out

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._values!r})"

    def __reduce__(self):  # the class is made on demand: pickle and deepcopy rebuild it from the target
        return _make_overrides, (self.target, dict(self._values))

    def build(self, **base) -> Any:
        """``target(**{**base, **overrides})``: the full config (its own checks run)."""
        return self.target(**{**base, **self._values})

    def apply(self, base: Any) -> Any:
        """``base`` (a ``target`` instance) with these fields replaced (its own checks run)."""
        return dataclasses.replace(base, **self._values)


def _make_overrides(target: type, values: dict) -> Overrides:
    return Overrides[target](values)


def _as_error(config: str, field: str, where: str, m: _Mismatch) -> _ConfigError:
    """The public error for a mismatch: a ``ConfigValueError`` for a bad choice or an unknown key."""
    reason = m.reason or f"expects {m.expected}, got {type(m.value).__name__} {_short(m.value)}"
    return m.error(config, field, where, reason)


def _nested_config(value: Any, cls: type) -> Any:
    """A config dataclass field given a dict: ``from_dict(cls, value)``, its errors located inside the field."""
    reason = _unknown_keys_reason(cls, value)
    if reason:
        raise _Mismatch(value, "", choice=True, reason=reason)
    try:
        return cls(**value)
    except (ConfigTypeError, ConfigValueError) as e:
        raise _Mismatch(value, "", "." + e.where, isinstance(e, ConfigValueError), e.reason) from None


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
                # one real arm and the problem is inside it (an item of a tuple, a key of a dict): say which
                if len(arms) == 1 and (m.suffix or m.reason):
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
    elif isinstance(hint, type) and issubclass(hint, Overrides) and hint.target is not None:
        if isinstance(value, hint):
            return value
        return hint(hint._checked(value))
    elif isinstance(origin or hint, type):  # list, dict, dict[str, int] (items not checked), classes
        if isinstance(value, origin or hint):
            return value
        if origin is None and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            return _nested_config(value, hint)
    else:
        return value  # an annotation this module does not understand: not checked
    raise _Mismatch(value, type_name(hint))


def check_value(config: str, field: str, value: Any, hint: Any) -> Any:
    """``value`` normalised to the annotation ``hint`` of ``<config>.<field>``, or a
    ``ConfigTypeError`` (``ConfigValueError`` for a ``Literal``) naming config and field."""
    try:
        return _coerce(value, hint)
    except _Mismatch as m:
        raise _as_error(config, field, field + m.suffix, m) from None


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


def check_range(config: str, field: str, value: Any, low: float | None = None, high: float | None = None,
                *, finite: bool = True, high_open: bool = False) -> None:
    """``ConfigValueError`` naming ``<config>.<field>`` unless ``low <= value <= high`` (``< high``
    with ``high_open``) and, with ``finite``, the value is a finite number (NaN and inf refused)."""
    if value is None:
        return
    ok = not (finite and isinstance(value, float) and not np.isfinite(value))
    ok = ok and (low is None or value >= low) and (high is None or (value < high if high_open else value <= high))
    if not ok:
        lo = "" if low is None else f"{low:g} <= "
        hi = "" if high is None else (" < " if high_open else " <= ") + (f"{high:g}" if high < 1e15 else str(high))
        rule = f"{lo}{field}{hi}".strip() if (lo or hi) else "a finite number"
        raise ConfigValueError(config, field, field, f"must be {'a finite number, ' if finite and isinstance(value, float) else ''}{rule}; "
                                                     f"got {_short(value)}")


def check_keys(cls: type, keys: Iterable, name: str | None = None) -> None:
    """``ValueError`` listing the valid keys when ``keys`` holds a name that is no init field of ``cls``."""
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted((k for k in keys if k not in valid), key=str)
    if unknown:
        raise ValueError(f"unknown {name or cls.__name__} key(s) {unknown}; valid keys: {', '.join(valid)}")


def to_plain(x: Any) -> Any:
    """Plain JSON-like data: config dataclasses -> dicts of their fields, ``Overrides`` and other
    mappings -> dicts, tuples -> lists (what a config file holds; ``from_dict`` reads it back)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, Mapping):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    return x


def from_dict(cls: type[C], d: Mapping, name: str | None = None) -> C:
    """``cls(**d)`` for a JSON-like dict: not a dict or unknown keys are errors naming the valid
    keys; the types and ranges are then checked by the class itself (``check_fields``)."""
    name = name or cls.__name__
    if not isinstance(d, Mapping):
        raise TypeError(f"{name}.from_dict expects a dict, got {type(d).__name__}")
    check_keys(cls, d, name)
    return cls(**d)


def parse_assignments(items: Iterable[str]) -> dict:
    """Command-line ``FIELD=VALUE`` words -> ``{field: value}``, each value read as JSON where it parses
    (``epochs=8``, ``encoder={"fusion": "gated"}``, ``flag=true``), else kept as the string."""
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
