"""Run a script written for the official `sam2` on sam2r, unmodified:

    python -m sam2r.compat my_script.py --its --own args

For that run only, `import sam2` and `from sam2.X.Y import Z` resolve to `sam2r.compat` and
`sam2r.compat.X.Y` (an import hook at the front of `sys.meta_path`, installed by `use_as_sam2`;
nothing is written to disk, and other runs see the real package if it is installed). A module of
the official tree without a counterpart here (e.g. `sam2.modeling.backbones.hieradet`) fails to
import with an error that names it and lists what is covered. Refused when the real `sam2` is
already imported in the process: two packages under one name would mix their objects.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import runpy
import sys
from collections.abc import Sequence
from types import ModuleType

COVERED = (
    "sam2", "sam2.build_sam", "sam2.sam2_image_predictor", "sam2.sam2_video_predictor",
    "sam2.automatic_mask_generator", "sam2.modeling", "sam2.modeling.sam2_base", "sam2.utils",
    "sam2.utils.transforms", "sam2.utils.misc", "sam2.utils.amg",
)  # fmt: skip
USAGE = "usage: python -m sam2r.compat SCRIPT.py [ARGS ...]"


class _Sam2Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `sam2` and `sam2.*` as the modules of `sam2r.compat` of the same sub-path."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "sam2" and not fullname.startswith("sam2."):
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        target = "sam2r.compat" + spec.name[len("sam2") :]
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name is not None and not e.name.startswith("sam2r.compat"):
                raise
            raise ModuleNotFoundError(
                f"No module named {spec.name!r} in sam2r's stand-in for the official sam2 "
                f"package (python -m sam2r.compat); covered: {', '.join(COVERED)}",
                name=spec.name,
            ) from None

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed as the sam2r.compat module


def use_as_sam2() -> None:
    """Make `import sam2` resolve to `sam2r.compat` in this process from now on.

    Raises:
        RuntimeError: the real `sam2` package is already imported.
    """
    if any(isinstance(f, _Sam2Alias) for f in sys.meta_path):
        return
    loaded = sys.modules.get("sam2")
    if loaded is not None:
        raise RuntimeError(
            f"the official sam2 package is already imported ({getattr(loaded, '__file__', loaded)}"
            "): sam2r.compat cannot stand in for it in this process. Run the script in a fresh "
            "process with `python -m sam2r.compat SCRIPT.py`"
        )
    sys.meta_path.insert(0, _Sam2Alias())


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m sam2r.compat SCRIPT.py [ARGS ...]`: run the script as `__main__`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or ""))
        raise SystemExit(0 if args else 2)
    try:
        use_as_sam2()
    except RuntimeError as e:
        raise SystemExit(f"sam2r.compat: {e}") from None
    script = args[0]
    sys.argv = args
    runpy.run_path(script, run_name="__main__")
