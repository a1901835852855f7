"""Import aiogram with its pydantic models built when first used, not all at import: ~100 MB less a process.

aiogram 3 defines the Bot API as ~400 pydantic types and ~170 methods. `aiogram.types` ends by calling
`model_rebuild()` on every type (to resolve their forward references), and the methods do not defer their build,
so importing aiogram builds every validator and serializer: ~150 MB resident (aiogram/aiogram#1513), of which
zoufang uses a few dozen models. While `import_aiogram` imports it:

- `TelegramMethod` is given `defer_build=True` before its subclasses are defined (a hook on aiogram.methods.base,
  whose `model_config` every method inherits);
- a type's `model_rebuild(_types_namespace=…)` records that namespace as the type's parent namespace (where
  pydantic resolves forward references) instead of building.

Pydantic then builds each model the first time it validates or serializes one (`defer_build`), once. The
Update model is built at once as a check; when it cannot be (an aiogram or pydantic that no longer fits), every
model is built the ordinary way, so the cost is memory, never a failing update.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

log = logging.getLogger("zoufang.telegram")

_METHODS_BASE = "aiogram.methods.base"


def import_aiogram() -> None:
    """Import aiogram lean (see the module docstring); nothing to do when it is imported already."""
    if "aiogram" in sys.modules:
        return
    namespaces: list[dict[str, Any]] = []
    with _deferring_methods(), _recording_namespaces(namespaces):
        import aiogram.methods
        import aiogram.types
    if not namespaces:  # aiogram no longer rebuilds its types this way: they were built as usual
        return
    namespace = namespaces[-1]
    for model in _models(aiogram.methods):
        model.__pydantic_parent_namespace__ = {**namespace, **vars(sys.modules[model.__module__])}
    try:
        aiogram.types.Update.model_rebuild()
    except (
        Exception
    ) as exc:  # pydantic resolves references differently now: build everything, as aiogram does
        log.warning("aiogram's models are built at once (%s: %s)", type(exc).__name__, exc)
        for model in (*_models(aiogram.types), *_models(aiogram.methods)):
            model.model_rebuild(force=True, _types_namespace=namespace)


def _models(module: ModuleType) -> list[Any]:
    from pydantic import BaseModel

    found = (getattr(module, name) for name in getattr(module, "__all__", ()))
    return [m for m in found if isinstance(m, type) and issubclass(m, BaseModel)]


@contextmanager
def _recording_namespaces(namespaces: list[dict[str, Any]]) -> Iterator[None]:
    from pydantic import BaseModel

    original = BaseModel.__dict__["model_rebuild"]

    def model_rebuild(cls: Any, *, _types_namespace: Any = None, **kwargs: Any) -> bool | None:
        if (
            _types_namespace is not None
            and cls.__module__.startswith("aiogram.types.")
            and not kwargs.get("force")
            and not cls.__pydantic_complete__
        ):
            cls.__pydantic_parent_namespace__ = _types_namespace  # resolved there when it is built
            if not namespaces or namespaces[-1] is not _types_namespace:
                namespaces.append(_types_namespace)
            return None
        return original.__func__(cls, _types_namespace=_types_namespace, **kwargs)  # type: ignore[no-any-return]

    BaseModel.model_rebuild = classmethod(model_rebuild)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]


class _DeferMethods(importlib.abc.MetaPathFinder):
    """Finds aiogram.methods.base as usual, and sets `defer_build` on TelegramMethod once it is executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _METHODS_BASE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader, execute = spec.loader, spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            config = getattr(getattr(module, "TelegramMethod", None), "model_config", None)
            if isinstance(config, dict):
                config["defer_build"] = True

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


@contextmanager
def _deferring_methods() -> Iterator[None]:
    finder = _DeferMethods()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
