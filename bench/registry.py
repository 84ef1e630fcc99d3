"""Named registries with helpful errors for unknown names."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Generic, Iterable, Iterator, TypeVar

from bench.errors import UserError

T = TypeVar("T")


def unknown_name(kind: str, name: str, valid: list[str], where: str = "") -> UserError:
    """``unknown <kind> '<name>'<where> (did you mean '<close>'?); valid: ...``, matching case-insensitively."""
    by_lower = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    hint = f" (did you mean '{by_lower[close[0]]}'?)" if close else ""
    return UserError(f"unknown {kind} '{name}'{where}{hint}; valid: {', '.join(valid)}")


class Registry(Generic[T]):
    """Maps names to objects; rejects duplicates and answers unknown names with the valid list."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        if name not in self._items:
            raise unknown_name(self.kind, name, self.names())
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class PackageRegistry(Registry[type]):
    """The subpackages of a package, each defining one subclass of ``base``, named after its folder.

    Names come from the folder listing, so ``names()`` imports nothing; ``get`` imports the
    subpackage on first use, checks that it exposes exactly one subclass of ``base`` and sets
    that class's ``name`` to the folder name (the one place the name is written).

    Args:
        kind: what the entries are, for error messages ("method").
        package: the package's import name. path: its ``__path__``.
    """

    def __init__(self, kind: str, package: str, path: Iterable[str], base: type):
        super().__init__(kind)
        self.package = package
        self.base = base
        self._names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if m.ispkg and not m.name.startswith("_"))

    def names(self) -> list[str]:
        return list(self._names)

    def get(self, name: str) -> type:
        if name not in self._names:
            raise unknown_name(self.kind, name, self._names)
        if name not in self._items:
            module = importlib.import_module(f"{self.package}.{name}")
            found = {obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, self.base) and obj is not self.base}
            if len(found) != 1:
                listed = ", ".join(sorted(c.__name__ for c in found)) or "none"
                raise TypeError(f"{module.__name__} must expose exactly one {self.base.__name__} subclass; it exposes {listed}")
            (cls,) = found
            cls.name = name
            self._items[name] = cls
        return self._items[name]



def class_path(cls: type) -> str:
    """``module:QualName``, the address ``import_class`` loads a class from."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str, name: str, base: type) -> type:
    """The ``base`` subclass at ``path`` (``module:QualName``) under its registry ``name``: how a
    process that was handed a resolved class (a sweep's worker) gets it without the registry."""
    module, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"cannot load the {base.__name__} class {path}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise UserError(f"{path} is not a {base.__name__} subclass")
    obj.name = name
    return obj
