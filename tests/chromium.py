"""Headless Chromium for browser tests: Debian's ``chromium`` and ``chromium-driver``, installed with apt when missing.

Use it by importing the fixture: ``from chromium import browser``. The driver is the Debian one, given by
path, so Selenium never downloads a browser or driver.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from simulators.host import PackageUnavailable, install_debian_packages

PACKAGES = ("chromium", "chromium-driver", "fonts-wqy-microhei")  # the font renders Chinese in screenshots
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def _binaries() -> tuple[str | None, str | None]:
    return shutil.which("chromium"), shutil.which("chromedriver")


def ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages first if needed (as root)."""
    browser, driver = _binaries()
    if browser and driver and CJK_FONT.exists():
        return browser, driver
    try:
        install_debian_packages(*PACKAGES)
    except PackageUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    browser, driver = _binaries()
    assert browser and driver, "apt-get installed chromium but the binaries are not on PATH"
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """A headless Chromium (1600x1000, its own profile in a temp dir), quit afterwards."""
    binary, driver_path = ensure_chromium()
    options = Options()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,1000",
        "--lang=zh-CN",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
