"""What both estimators (MultimodalModel, AlignedModel) and the server share: the model folder on disk."""
from .storage import MANIFEST, ModelFolderError, load_state, read_json, read_tensors, save_model_folder, sha256_file, verify_manifest, write_manifest

__all__ = ["MANIFEST", "ModelFolderError", "load_state", "read_json", "read_tensors", "save_model_folder", "sha256_file", "verify_manifest", "write_manifest"]
