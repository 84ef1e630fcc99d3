"""Named registries with helpful errors for unknown names."""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from bench.errors import UserError, first_line

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


@dataclass(frozen=True)
class Entry:
    """A registry entry found outside the package: ``load()`` returns a module or a class;
    ``origin`` says where it came from, for errors (``entry point mypkg:Method``, ``folder DIR``)."""

    name: str
    load: Callable[[], object]
    origin: str


class PackageRegistry(Registry[type]):
    """The subpackages of a package, each defining one subclass of ``base``, named after its folder,
    and the entries ``outside()`` finds (installed entry points, extra folders).

    Names come from folder listings and entry-point metadata, so ``names()`` imports nothing;
    ``get`` imports an entry on first use, checks that it is (or exposes exactly one) subclass of
    ``base`` and sets that class's ``name`` to the entry's name (the one place the name is
    written). An outside name equal to another entry's is an error, never an override.

    Args:
        kind: what the entries are, for error messages ("method").
        package: the package's import name. path: its ``__path__``.
        outside: lists the entries from outside the package; asked again whenever
            ``outside_key()`` changes (an environment variable naming extra folders).
    """

    def __init__(self, kind: str, package: str, path: Iterable[str], base: type,
                 outside: Callable[[], list[Entry]] = list, outside_key: Callable[[], object] = lambda: None):
        super().__init__(kind)
        self.package = package
        self.base = base
        self._outside, self._outside_key = outside, outside_key
        self._scanned: tuple[object, dict[str, Entry]] | None = None
        self._loaded: dict[str, tuple[Entry, type]] = {}
        own = sorted(m.name for m in pkgutil.iter_modules(list(path)) if m.ispkg and not m.name.startswith("_"))
        self._own = {name: Entry(name, functools.partial(importlib.import_module, f"{package}.{name}"), "built-in")
                     for name in own}

    def _entries(self) -> dict[str, Entry]:
        key = self._outside_key()
        if self._scanned is None or self._scanned[0] != key:
            entries = dict(self._own)
            for entry in self._outside():
                if entry.name in entries:
                    first = entries[entry.name].origin
                    raise UserError(f"two {self.kind}s are called '{entry.name}': the {first} one and the one from "
                                    f"{entry.origin}; rename one of them")
                entries[entry.name] = entry
            self._scanned = (key, entries)
        return self._scanned[1]

    def names(self) -> list[str]:
        return sorted(self._entries())

    def origin(self, name: str) -> str:
        """Where the entry ``name`` comes from: ``built-in``, ``entry point ...`` or ``folder ...``."""
        return self.entry(name).origin

    def entry(self, name: str) -> Entry:
        entries = self._entries()
        if name not in entries:
            raise unknown_name(self.kind, name, sorted(entries))
        return entries[name]

    def get(self, name: str) -> type:
        entry = self.entry(name)
        loaded = self._loaded.get(name)
        if loaded is None or loaded[0] is not entry:
            loaded = self._loaded[name] = (entry, self._load(entry))
        return loaded[1]

    def load_all(self) -> tuple[list[type], list[str]]:
        """Every entry's class, and a note for each that does not load (one from outside, say):
        ``list`` names a broken package after listing the others instead of listing nothing."""
        loaded, broken = [], []
        for name in self.names():
            try:
                loaded.append(self.get(name))
            except UserError as exc:
                broken.append(f"{name} ({exc})")
        return loaded, broken

    def _load(self, entry: Entry) -> type:
        try:
            loaded = entry.load()
        except UserError:
            raise
        except Exception as exc:  # an outside package that does not import: its author's error, in one line
            raise UserError(f"{self.kind} '{entry.name}' ({entry.origin}) does not import: {first_line(exc)}") from None
        if isinstance(loaded, type):
            found = {loaded} if issubclass(loaded, self.base) else set()
            where = f"{loaded.__module__}.{loaded.__qualname__}"
        else:
            found = {obj for obj in vars(loaded).values()
                     if isinstance(obj, type) and issubclass(obj, self.base) and obj is not self.base}
            where = loaded.__name__
        if len(found) != 1:
            listed = ", ".join(sorted(c.__name__ for c in found)) or "none"
            raise UserError(f"{self.kind} '{entry.name}' ({entry.origin}): {where} must be or expose exactly one "
                            f"{self.base.__name__} subclass; it has {listed}")
        (cls,) = found
        cls.name = entry.name
        return cls


def entry_point_entries(group: str) -> list[Entry]:
    """The entry points of ``group`` that installed distributions declare (``pyproject.toml``:
    ``[project.entry-points."GROUP"] name = "package.module:Class"``; a module also does)."""
    return [Entry(ep.name, ep.load, f"entry point {ep.value}" + (f" of {ep.dist.name} {ep.dist.version}" if ep.dist else ""))
            for ep in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)]


def folder_entries(folders: Iterable[str]) -> list[Entry]:
    """The packages (subfolders with ``__init__.py``) of each folder, imported under their own
    names with the folder added to ``sys.path``."""
    entries, seen = [], set()
    for folder in folders:
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise UserError(f"methods path {folder} is not a folder")
        if root in seen:  # named twice (by --methods-path and the environment, say): one folder
            continue
        seen.add(root)
        for module in sorted(pkgutil.iter_modules([str(root)]), key=lambda m: m.name):
            if module.ispkg and not module.name.startswith("_"):
                entries.append(Entry(module.name, functools.partial(_import_from, root, module.name), f"folder {root}"))
    return entries


def _import_from(root: Path, name: str) -> object:
    """Imports package ``name`` from ``root``, refusing one that another place already provides
    (a folder called ``json`` must not load the standard library's, nor shadow it)."""
    if str(root) not in sys.path:
        sys.path.append(str(root))
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or Path(spec.origin).parent != root / name:
        where = spec.origin if spec is not None else "nowhere"
        raise UserError(f"cannot load '{name}' from {root}: the name '{name}' imports {where}; rename the folder")
    return importlib.import_module(name)


def class_path(cls: type) -> str:
    """``module:QualName``, the address ``import_class`` loads a class from."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_root(cls: type) -> str:
    """The ``sys.path`` folder ``cls``'s top-level package was imported from."""
    top = sys.modules[cls.__module__.partition(".")[0]]
    file = Path(top.__file__ or "")
    return str(file.parent.parent if file.name == "__init__.py" else file.parent)


def import_class(path: str, name: str, base: type, root: str | None = None) -> type:
    """The ``base`` subclass at ``path`` (``module:QualName``) under its registry ``name``: how a
    process that was handed a resolved class (a sweep's worker) gets it without the registry.
    ``root`` (``import_root``) is added to ``sys.path`` where missing: a method from a folder."""
    module, _, qualname = path.partition(":")
    if root and root not in sys.path and Path(root).is_dir():
        sys.path.append(root)
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
