"""Follows an approval link in a real headless Chromium: the page shows the approval's details,
the form is filled in and its button pressed, and the answer says the decision was recorded.

usage: approval_browser.py URL EXPECTED_TEXT NAME
Exits 0 when every check held; prints what it saw otherwise.
"""

import os
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

# Never let Selenium Manager look for drivers on the internet: Debian's are used.
os.environ["SE_OFFLINE"] = "true"


def browser(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("BATON_TEST_CHROMIUM", "/usr/bin/chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = os.environ.get("BATON_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def main() -> int:
    url, expected, name = sys.argv[1], sys.argv[2], sys.argv[3]
    profile = sys.argv[4] if len(sys.argv) > 4 else "/tmp/baton-chromium-profile"
    chrome = browser(profile)
    try:
        chrome.get(url)
        heading = chrome.find_element(By.TAG_NAME, "h1").text
        body = chrome.find_element(By.TAG_NAME, "body").text
        if heading != "Approve this release?" or expected not in body:
            print(f"unexpected page: {heading!r}\n{body}")
            return 1
        chrome.find_element(By.NAME, "name").send_keys(name)
        chrome.find_element(By.NAME, "comment").send_keys("looks good in the browser")
        chrome.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # The old page's heading can vanish between being found and being read while the answer
        # loads ("Node ... does not belong to the document"): look again rather than fail.
        WebDriverWait(
            chrome, 10, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
        ).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Approved"))
        answer = chrome.find_element(By.TAG_NAME, "body").text
        if f"{name} (approval link)" not in answer:
            print(f"the answer does not name who decided:\n{answer}")
            return 1
        print("approved in the browser")
        return 0
    finally:
        chrome.quit()


if __name__ == "__main__":
    sys.exit(main())
