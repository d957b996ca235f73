"""Serving: model bundles (checksummed, no pickles), an HTTP server with micro-batching, ONNX export.

The server needs the ``serve`` extra (``pip install 'modalfuse[serve]'``): FastAPI, uvicorn,
httpx, python-multipart, onnx and onnxruntime. Bundles need nothing beyond the core install.
"""
from .bundle import BundleError, export_bundle, load_bundle, verify_bundle

__all__ = ["BundleError", "export_bundle", "load_bundle", "verify_bundle"]
