"""``skops.io``, imported without the array libraries scikit-learn can wrap.

Importing ``skops.io`` lists scikit-learn's estimators (``sklearn.utils.all_estimators``), which walks
every scikit-learn package with ``pkgutil.walk_packages``, importing each to look inside, the vendored
``sklearn.externals.array_api_compat.torch`` among them: so it imports torch (about 1 s and 120 MiB in
every worker) wherever torch is installed, though no scikit-learn model needs it. The walk skips packages
that fail to import, so the libraries not yet imported cannot be imported while ``skops.io`` loads, and
can be afterwards. Import ``skops.io`` through this module (flavors name it in ``shared_modules``).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

#: The libraries of scikit-learn's vendored array_api_compat packages.
_WRAPPED = ("cupy", "dask", "torch")


class _Hidden:
    """A meta path finder refusing ``names`` (and their submodules), as if they were not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is not imported while skops.io loads", name=fullname)
        return None


def _import_skops() -> ModuleType:
    hidden = _Hidden([name for name in _WRAPPED if name not in sys.modules])
    sys.meta_path.insert(0, hidden)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(hidden)
    return skops.io


skops_io = _import_skops()
