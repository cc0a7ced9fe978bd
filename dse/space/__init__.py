"""Design spaces: the space files (spec), parameter kinds (params), expression constraints (expr), the RegNet width
rule (regnet), compound-scaling rules (scaling), families (parameters -> Net), units, the band sampler (sampler),
compound-scaled configurations (scaled) and named models (zoo: the zoo spaces' presets by name).

Layer: above dse.models (the sampler counts every draw with dse.models.complexity; families build Nets from the
block registry), below data, train, run and analysis."""
from .sampler import CHUNK, SPEC_OVERRIDES, Sample, Samples, Space, describe, distance, inside, load, sample
from .scaled import compound, compound_family, compound_grid
from .spec import list_spaces
from .zoo import list_models

__all__ = ["CHUNK", "SPEC_OVERRIDES", "Sample", "Samples", "Space", "compound", "compound_family", "compound_grid",
           "describe", "distance", "inside", "list_models", "list_spaces", "load", "sample"]
