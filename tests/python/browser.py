"""Headless Chromium for the console tests: Debian's chromium and chromedriver, started
with the flags this machine needs (no background networking, a fresh profile), and a
few helpers to wait for what a page shows."""

import os
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

TIMEOUT = 120


def browser():
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp(prefix='runnel-chromium-')}",
    ]:
        options.add_argument(flag)
    driver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait(driver, what, check, timeout=TIMEOUT):
    """Polls `check()` until it returns something truthy; returns it."""
    start = time.time()
    last = None
    while time.time() - start < timeout:
        try:
            value = check()
            if value:
                print(f"ok: {what} ({time.time() - start:.1f}s)", flush=True)
                return value
        except Exception as error:  # the page is being redrawn: try again
            last = error
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting until {what} (last error: {last})")


def css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def visible(driver, selector):
    found = css(driver, selector)
    return found[0] if found and found[0].is_displayed() else None


def login(driver, token):
    field = wait(driver, "the token prompt shows", lambda: visible(driver, "#token"))
    field.clear()
    field.send_keys(token)
    css(driver, "#token-submit")[0].click()
