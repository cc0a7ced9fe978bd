"""Deprecated: dse.regnet is dse.space.regnet since the subpackage layout (dse 0.3); this alias goes in the next
release. Import from dse.space.regnet."""
import warnings

from .space.regnet import (adjust_compat, linear_widths, quantized_widths, quantized_widths_many,  # noqa: F401
                           regnet_stages, stages_from_widths)

warnings.warn("dse.regnet is deprecated: import from dse.space.regnet (dse.regnet goes in the next release)",
              DeprecationWarning, stacklevel=2)
