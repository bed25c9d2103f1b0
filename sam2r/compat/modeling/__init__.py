"""The official `sam2.modeling` names over sam2r's model: `SAM2Base` (`sam2_base.py`), the
official call forms of its parts (`modules.py`), the tracking step (`tracking.py`), and
`SharedModule`, which lets an adapter expose a sam2r module's own parameters (`shared.py`).
These are adapters: sam2r's typed model (`sam2r.model`) knows nothing of them."""

from sam2r.compat.modeling.sam2_base import SAM2Base

__all__ = ["SAM2Base"]
