"""Tracking and lineage: Lightning loggers (CSV, TensorBoard, MLflow), an MLflow model registry, data-to-bundle lineage."""
