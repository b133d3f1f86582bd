"""Render a report.html to PNG with headless Chromium, to look at a report as a reader would.

    python -m evals.screenshot reports/compare-001/report.html reports/compare-001/report.png

Needs a Chromium binary (`apt-get install chromium`); it runs isolated from the network and from any
profile (fresh --user-data-dir, no background networking, sync or component updates).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium", "google-chrome")


def find_chromium() -> str | None:
    for c in CANDIDATES:
        found = shutil.which(c)
        if found:
            return found
    return None


def screenshot(html: str | Path, png: str | Path, width: int = 1280, height: int = 2400, timeout: int = 60) -> Path:
    """Write a `width`x`height` screenshot of `html` to `png`; raises if Chromium is missing or fails."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found (tried " + ", ".join(CANDIDATES) + "); apt-get install chromium")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
             Path(html).resolve().as_uri()],
            check=True, capture_output=True, timeout=timeout,
        )
    if not png.is_file():
        raise RuntimeError(f"Chromium exited cleanly but wrote no {png}")
    return png


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m evals.screenshot REPORT.html OUT.png")
    print(screenshot(sys.argv[1], sys.argv[2]))
