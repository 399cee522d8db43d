"""Headless Chromium for the UI tests, driven by Selenium with Debian's ``chromium`` and
``chromium-driver`` (never Selenium Manager: nothing downloads at run time).

Missing pieces fail the tests when ``CI`` is set and skip them loudly otherwise, as the Redis and
PostgreSQL tests do. Screenshots go to ``docs/ui-screenshots/`` (git-ignored; see docs/ui.md), or
to ``$FEATURESTORE_UI_SCREENSHOTS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(
    os.environ.get(
        "FEATURESTORE_UI_SCREENSHOTS",
        Path(__file__).resolve().parents[1] / "docs" / "ui-screenshots",
    )
)
WAIT_SECONDS = 60


def _missing() -> list[str]:
    missing = [
        f"{p} (apt-get install -y chromium chromium-driver)"
        for p in (CHROMIUM, CHROMEDRIVER)
        if not p.exists()
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    return missing


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium for a test module."""
    missing = _missing()
    if missing:
        reason = "missing " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the UI tests must run: {reason}")
        pytest.skip(f"UI TESTS SKIPPED: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    # An explicit driver path: Selenium skips its manager (no download, no lookup).
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, css: str) -> Any:
    """The first element matching ``css``, once it is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def wait_page(driver: Any, page: str) -> None:
    """Until the single page says it has drawn ``page`` (``body[data-page][data-ready]``)."""
    wait_for(driver, f'body[data-page="{page}"][data-ready="1"]')


def wait_text(driver: Any, css: str, text: str) -> Any:
    """The element matching ``css`` once its text contains ``text``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    )
    return driver.find_element(By.CSS_SELECTOR, css)


def screenshot(driver: Any, name: str) -> Path:
    """Save the whole page (as tall as its content) as ``SCREENSHOTS/name.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 40, 800), 6000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path
