"""The report as an analyst sees it: opened in headless Chromium, offline.

Playwright drives the system Chromium (Debian's `chromium` package) through `executable_path`;
no browser is downloaded. Without Playwright or Chromium the tests skip and say how to install.

`check_report_in_browser(path)` is reusable, for example on the report of an end-to-end train:

    from test_report_browser import check_report_in_browser  # tests/ is on sys.path under pytest
    check_report_in_browser(models_dir / version / "report.html")
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL_HINT = "install it with `apt-get install chromium` (or set CHROMIUM=/path/to/chromium)"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 60_000
ONE_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

# Waits for every image to decode (decode() rejects for a broken one), then reports each.
_IMAGES_JS = """
async () => Promise.all(Array.from(document.images).map(async (img) => {
  let decoded = true;
  try { await img.decode(); } catch (e) { decoded = false; }
  return {alt: img.getAttribute("alt") || "", width: img.naturalWidth, height: img.naturalHeight,
          decoded: decoded, src: (img.getAttribute("src") || "").slice(0, 40)};
}))
"""


def chromium_executable() -> str | None:
    """The system Chromium: $CHROMIUM if set, else the first known browser name on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def check_report_in_browser(path: Path) -> None:
    """Opens the report in headless Chromium and fails on anything an analyst would see broken.

    Fails on a console error, an uncaught page error, any request that leaves the file (the
    report must open offline), an image that does not decode (`naturalWidth == 0`) or an image
    without alt text. Skips when Playwright or Chromium is missing.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e '.[test]'`, and for the browser " + INSTALL_HINT)
    executable = chromium_executable()
    if executable is None:
        pytest.skip("Chromium not found: " + INSTALL_HINT)
    url = Path(path).resolve().as_uri()
    problems: list[str] = []
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, timeout=TIMEOUT_MS)
        except PlaywrightError as error:  # installed but broken: a real failure, not a skip
            pytest.fail(f"Chromium at {executable} did not start: {str(error).splitlines()[0]}")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]} ({r.failure})"))
            page.on("request", lambda r: None if r.url.startswith(("data:", url)) else problems.append(
                f"request outside the file: {r.url[:80]}"))
            page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
            images = page.evaluate(_IMAGES_JS)
            title = page.title()
        finally:
            browser.close()
    if not images:
        problems.append("the page has no images")
    for i, image in enumerate(images):
        if not image["decoded"] or image["width"] <= 0 or image["height"] <= 0:
            problems.append(f"image {i} did not decode ({image['width']}x{image['height']}, src {image['src']}...)")
        if not image["alt"].strip():
            problems.append(f"image {i} has no alt text (src {image['src']}...)")
    if not title.strip():
        problems.append("the page has no title")
    assert not problems, f"{path} in Chromium:\n" + "\n".join(problems)


def test_rendered_report_opens_cleanly_in_chromium(tmp_path):
    from test_report import CHART_COUNT, synthetic_inputs

    from segmentation.report.render import write_report

    html_path, _ = write_report(synthetic_inputs(rows=400, segments=4, noise=True), tmp_path / "model")
    check_report_in_browser(html_path)
    assert html_path.read_text(encoding="utf-8").count("<img ") == CHART_COUNT


def test_the_check_catches_broken_images_console_errors_and_missing_alt(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title><link rel='icon' href='data:,'></head><body>"
        "<img src='data:image/png;base64,AAAA' alt='a chart that is not a PNG'>"
        f"<img src='data:image/png;base64,{ONE_PIXEL_PNG}' alt=''>"
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError) as caught:
        check_report_in_browser(page)
    message = str(caught.value)
    assert "image 0 did not decode" in message
    assert "image 1 has no alt text" in message and "image 1 did not decode" not in message
    assert "console error: boom" in message
