"""Open a report in headless Chromium (Debian's ``chromium``, driven by Playwright) with the network blocked,
and check what rendered: console errors, blocked requests, and every image's natural and rendered size and
whether it rendered as more than a near-uniform colour. Optionally save a full-page screenshot."""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


class BrowserUnavailable(RuntimeError):
    """Playwright or Chromium is not installed."""


@dataclass
class BrowserCheck:
    images: list[dict] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.console_errors and not self.blocked and all(i["ok"] for i in self.images)


def find_chromium() -> Optional[str]:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def check_report(html: str | Path, screenshot: Optional[str | Path] = None, chromium: Optional[str] = None, width: int = 1200) -> BrowserCheck:
    """Load ``html`` from disk (only file: and data: URLs allowed) and inspect every <img>."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserUnavailable("playwright is not installed (pip install -e '.[explain]')") from None
    chromium = chromium or find_chromium()
    if chromium is None:
        raise BrowserUnavailable("chromium is not installed (apt-get install chromium)")
    from PIL import Image

    result = BrowserCheck()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})

            def route(r):
                if r.request.url.startswith(("file:", "data:")):
                    return r.continue_()
                result.blocked.append(r.request.url)
                return r.abort()

            page.route("**/*", route)
            page.on("console", lambda msg: result.console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: result.console_errors.append(str(exc)))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            for img in page.query_selector_all("img"):
                complete, nw, nh = img.evaluate("e => [e.complete, e.naturalWidth, e.naturalHeight]")
                box = img.bounding_box() or {"width": 0, "height": 0}
                shot = np.asarray(Image.open(io.BytesIO(img.screenshot())).convert("RGB")) if box["width"] and box["height"] else np.zeros((1, 1, 3))
                colours = len(np.unique(shot.reshape(-1, 3), axis=0))
                result.images.append({"alt": img.get_attribute("alt"), "complete": complete, "natural": (nw, nh),
                                      "rendered": (round(box["width"]), round(box["height"])), "colours": colours,
                                      "ok": bool(complete and nw > 0 and nh > 0 and box["width"] > 100 and box["height"] > 100 and colours > 10)})
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return result
