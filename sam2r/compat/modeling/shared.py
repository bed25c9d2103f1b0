"""`SharedModule`: an `nn.Module` over another module's own parameters, without copies.

The official-API adapters of `sam2r.compat.modeling` (the official `SAM2Base`, its image
encoder, prompt encoder, ...) must expose the very tensors of the sam2r model they wrap:
`state_dict()` keys are the official ones, an optimiser given `adapter.parameters()` trains the
sam2r model, `adapter.to("cuda")` moves it. A `SharedModule` therefore registers the wrapped
module's children, parameters and buffers under the same names (the same objects, not copies)
and keeps the wrapped module as a plain attribute (`_inner`), so the wrapped module's
parameters appear once, with their own names.

Kept in step with the wrapped module:
* `.to()` / `.cuda()` / `.half()` (`_apply`): children are shared objects; the wrapped
  module's own parameters and buffers are converted there and re-linked here;
* `.train()` / `.eval()`: the wrapped module's `training` flag follows;
* plain attributes (`embed_dim`, `mask_input_size`, `scalp`, ...) are read from, and written
  to, the wrapped module.

What is left to the subclasses: the official `forward` and methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn


class SharedModule(nn.Module):
    """Registers `inner`'s children, parameters and buffers on itself, by the same names.

    Args:
        inner: the module to share.
        wrap: children to register as another module (e.g. an adapter of the child) instead
            of the child itself, by name.
    """

    def __init__(self, inner: nn.Module, wrap: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_inner", inner)  # not a registered child: no duplicate keys
        wrap = dict(wrap or {})
        for name, child in inner.named_children():
            # not add_module: it refuses names `__getattr__` answers (here, all of inner's)
            self._modules[name] = wrap.pop(name, child)
        if wrap:
            raise ValueError(f"{type(inner).__name__} has no children named {sorted(wrap)}")
        self._relink()
        self.train(inner.training)

    def _relink(self) -> None:
        """Register the wrapped module's own parameters and buffers here (same objects)."""
        inner: nn.Module = self.__dict__["_inner"]
        for name, p in inner._parameters.items():
            self._parameters[name] = p
        for name, b in inner._buffers.items():
            self._buffers[name] = b
            if name in inner._non_persistent_buffers_set:
                self._non_persistent_buffers_set.add(name)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> SharedModule:
        if recurse:
            for child in self.children():
                child._apply(fn)
        self.__dict__["_inner"]._apply(fn, recurse=False)
        self._relink()
        return self

    def train(self, mode: bool = True) -> SharedModule:
        super().train(mode)
        self.__dict__["_inner"].training = mode
        return self

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_inner")
            if inner is None or name.startswith("__"):
                raise
            try:
                return getattr(inner, name)
            except AttributeError:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}"
                ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        inner = self.__dict__.get("_inner")
        if inner is None or name == "training" or name in self.__dict__:
            super().__setattr__(name, value)
        elif isinstance(value, (nn.Module, nn.Parameter, Tensor)) or name in self._modules:
            # a replaced child or parameter must be replaced in the wrapped module too
            setattr(inner, name, getattr(value, "_inner", value))
            super().__setattr__(name, value)
        elif hasattr(type(self), name):
            super().__setattr__(name, value)  # a property of the adapter
        elif hasattr(inner, name):
            setattr(inner, name, value)
        else:
            super().__setattr__(name, value)
