"""A small Python client for ``modalfuse serve`` (needs httpx, in the ``serve`` extra).

    from modalfuse.client import Client
    c = Client("http://127.0.0.1:8000", api_key=None)
    c.health(); c.metadata()
    c.predict([{"pixels": [...], "fourier": [...]}])       # a list of results, one per record
    c.embed({"pixels": [...]})                             # one record works too

Images and audio go as base64 file bytes; :func:`encode_file` turns a path or bytes into that.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Optional, Union

Record = dict[str, Any]


class ServerError(RuntimeError):
    """The server answered with an error status; ``status`` and ``body`` hold its answer."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        detail = body.get("message") if isinstance(body, dict) else body
        field = body.get("field") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status}: {detail}" + (f" (field {field})" if field else ""))


def encode_file(source: Union[str, Path, bytes]) -> str:
    """Base64 text of a file's bytes, as /predict expects for image and audio fields."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return base64.b64encode(data).decode("ascii")


class Client:
    #: routes this client calls (method, path); the tests check each against the server's OpenAPI document
    ROUTES = (("get", "/health"), ("get", "/metadata"), ("post", "/predict"), ("post", "/embed"))

    def __init__(self, url: str, api_key: Optional[str] = None, timeout: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ServerError(response.status_code, body)
        return body

    def health(self) -> dict[str, Any]:
        return self._check(self._http.get("/health"))

    def metadata(self) -> dict[str, Any]:
        return self._check(self._http.get("/metadata"))

    @staticmethod
    def _body(records: Union[Record, list[Record]]) -> dict[str, Any]:
        return {"records": [records] if isinstance(records, dict) else list(records)}

    def predict(self, records: Union[Record, list[Record]]) -> list[dict[str, Any]]:
        """One result per record: prediction, probabilities, uncertainty, modalities used, weights."""
        return self._check(self._http.post("/predict", json=self._body(records)))["results"]

    def embed(self, records: Union[Record, list[Record]]) -> list[dict[str, Any]]:
        """One result per record: per-modality embeddings (None where missing) and the fused embedding."""
        return self._check(self._http.post("/embed", json=self._body(records)))["results"]
