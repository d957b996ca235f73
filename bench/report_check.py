"""Build the HTML report of a run folder and check it in headless Chromium (network blocked), saving a screenshot.

    .venv/bin/python bench/report_check.py RUN_DIR [--data TEST.csv] [--slice COL] [--screenshot docs/report_demo_screenshot.png]

Prints, last, one line per figure (natural size, rendered size, distinct colours) and whether every check passed;
exits 1 when one failed, 2 when Chromium or Playwright is missing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (sets the environment first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data", help="labelled test table (default: the run's config)")
    parser.add_argument("--data-dir")
    parser.add_argument("--slice", action="append", default=[])
    parser.add_argument("--output", help="HTML file (default RUN_DIR/report.html)")
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from modalfuse.report.browser import BrowserUnavailable, check_report
    from modalfuse.report.html import build_report

    t0 = time.perf_counter()
    report = build_report(args.run_dir, args.output, data=args.data, data_dir=args.data_dir, slices=args.slice)
    built = time.perf_counter() - t0
    try:
        check = check_report(report.html, args.screenshot)
    except BrowserUnavailable as err:
        print(f"cannot check in a browser: {err}")
        return 2
    print(f"report {report.html} ({report.html.stat().st_size / 1e6:.2f} MB, built in {built:.0f} s); sections: {', '.join(report.sections)}")
    for image in check.images:
        print(f"  {'ok  ' if image['ok'] else 'FAIL'} {image['alt']}: natural {image['natural'][0]}x{image['natural'][1]}, "
              f"rendered {image['rendered'][0]}x{image['rendered'][1]}, {image['colours']} colours")
    print(f"console errors: {check.console_errors or 'none'}; blocked requests: {check.blocked or 'none'}")
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")
    print("all checks passed" if check.ok else "CHECKS FAILED")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
