"""Single-cell models: the joint count VAE (embedding + translation with missing modalities) and spatial mapping of
reference cell types onto spots."""
from .spatial import SpatialMap, map_cell_types
from .vae import JointVAE

__all__ = ["JointVAE", "SpatialMap", "map_cell_types"]
