"""Drives the console in a real headless Chromium through a release: the graph fills live
(no reload) as the execution runs, a failed check is retried, the approval is given from the
console, a transition is disabled with a reason and the next execution is seen held there,
then let through, and that execution is stopped. Writes screenshots on the way.

usage: console_browser.py URL PASS_FLAG SCREENSHOTS PROFILE
Exits 0 when every check held; prints what it saw otherwise.
"""

import os
import re
import sys
import time

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from approval_browser import browser

XSS = "__xss"


class Failed(Exception):
    pass


def wait(chrome, what, check, seconds=60):
    """Waits for `check(chrome)` to be truthy, reading the page afresh each time."""
    try:
        return WebDriverWait(
            chrome,
            seconds,
            poll_frequency=0.2,
            ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
        ).until(check)
    except TimeoutException:
        body = chrome.find_element(By.TAG_NAME, "body").text
        raise Failed(f"timed out waiting until {what}; the page said:\n{body}")


def act(chrome, what, step):
    """Does `step`, again if a live redraw replaced the element between finding and using it."""
    for _ in range(10):
        try:
            return step(chrome)
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.2)
    raise Failed(f"could not {what}: the page kept changing under it")


def submit(chrome, css, operation):
    """Presses a button, accepts the console's one confirmation, waits for the page that says
    `operation` was done, and marks that page."""
    act(chrome, f"press {css}", lambda c: c.find_element(By.CSS_SELECTOR, css).click())
    WebDriverWait(chrome, 5).until(ec.alert_is_present()).accept()
    wait(chrome, f"{operation} is done", lambda c: f"{operation}: " in c.find_element(By.CSS_SELECTOR, ".notice").text)
    mark(chrome)


def fill(chrome, css, keys):
    act(chrome, f"fill {css}", lambda c: c.find_element(By.CSS_SELECTOR, css).send_keys(keys))


def click(chrome, css):
    act(chrome, f"click {css}", lambda c: c.find_element(By.CSS_SELECTOR, css).click())


def stage_class(name):
    return lambda c: c.find_element(By.CSS_SELECTOR, f"li.stage[data-stage={name}]").get_attribute(
        "class"
    )


def mark(chrome):
    """Marks this page, so a reload (which would lose the mark) is seen."""
    chrome.execute_script("window.__mark = 1")


def unreloaded(chrome, what):
    if chrome.execute_script("return window.__mark") != 1:
        raise Failed(f"the page was reloaded while {what}")


def shot(chrome, folder, name, size=(1400, 1000)):
    chrome.set_window_size(*size)
    chrome.save_screenshot(os.path.join(folder, f"{name}.png"))


def run(chrome, url, pass_flag, screenshots):
    chrome.get(url + "/")
    wait(chrome, "the list shows the pipeline", lambda c: c.find_element(By.LINK_TEXT, "app"))
    act(chrome, "open the pipeline", lambda c: c.find_element(By.LINK_TEXT, "app").click())
    wait(chrome, "the pipeline's page opens", lambda c: c.find_element(By.TAG_NAME, "h1").text == "app")

    # Readable at 360 px, as a phone shows it: nothing is wider than the screen.
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 360, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    width = chrome.execute_script("return window.innerWidth")
    wide = chrome.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    chrome.save_screenshot(os.path.join(screenshots, "narrow.png"))
    chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    if width != 360 or wide > 0:
        raise Failed(f"at {width} px the page is {wide} px wider than the screen")

    # The first start is made from the keyboard alone: Tab to the button, Enter, confirm.
    for _ in range(10):
        ActionChains(chrome).send_keys(Keys.TAB).perform()
        if chrome.execute_script("return document.activeElement.textContent") == "Start execution":
            break
    else:
        raise Failed("Tab never reached the Start execution button")
    ActionChains(chrome).send_keys(Keys.ENTER).perform()
    WebDriverWait(chrome, 5).until(ec.alert_is_present()).accept()
    wait(chrome, "the keyboard's start is done", lambda c: "StartPipelineExecution: " in c.find_element(By.CSS_SELECTOR, ".notice").text)
    mark(chrome)
    wait(chrome, "the check fails, shown live", lambda c: "failed" in stage_class("Check")(c))
    unreloaded(chrome, "the execution ran")
    if "succeeded" not in act(chrome, "read Build's status", stage_class("Build")):
        raise Failed("Build is not shown as succeeded before Check")

    open(pass_flag, "w").close()
    submit(chrome, "li.stage[data-stage=Check] button[value=FAILED_ACTIONS]", "RetryStageExecution")
    wait(chrome, "the approval waits, shown live", lambda c: c.find_element(By.CSS_SELECTOR, ".approval button[value=Approved]"))
    unreloaded(chrome, "the retried check ran")
    custom = act(chrome, "read the custom data", lambda c: c.find_element(By.CSS_SELECTOR, ".approval .custom").text)
    if "<script>" not in custom or chrome.execute_script(f"return window.{XSS}") is not None:
        raise Failed(f"the approval's custom data ran or was not shown as text: {custom!r}")
    shot(chrome, screenshots, "pipeline-approval")

    fill(chrome, ".approval input[name=summary]", "ship it from the console")
    submit(chrome, ".approval button[value=Approved]", "PutApprovalResult")
    warmup = "li.stage[data-stage=Deploy] .action[data-action=Warmup]"
    wait(chrome, "the deploy's first action runs, shown live", lambda c: "inprogress" in c.find_element(By.CSS_SELECTOR, warmup).get_attribute("class"))
    unreloaded(chrome, "the deploy started")
    click(chrome, "li.stage[data-stage=Deploy] p.execution a")
    wait(chrome, "the execution's page opens", lambda c: c.find_element(By.TAG_NAME, "h1").text.startswith("Execution"))
    click(chrome, "table.attempts a[href$='/logs/Deploy/Warmup']")
    wait(chrome, "the log shows what the build printed so far", lambda c: "tick" in c.find_element(By.ID, "log").text)
    if not chrome.find_element(By.ID, "log").get_attribute("data-follow"):
        raise Failed("the log of a running action is not followed")
    mark(chrome)
    wait(chrome, "the log is followed to its end, live", lambda c: c.find_element(By.ID, "log").get_attribute("data-ended") == "true")
    unreloaded(chrome, "the log was followed")
    log = chrome.find_element(By.ID, "log").text
    ticks = [re.match(r"^(\d+)\s*(tick .*)$", l) for l in log.splitlines()]
    ticks = [(int(m.group(1)), m.group(2)) for m in ticks if m]
    numbers = [n for n, _ in ticks]
    expected = [f"tick {i} <script>window.__xss=3</script>" for i in range(1, 5)]
    if [t for _, t in ticks] != expected or numbers != list(range(numbers[0], numbers[0] + 4)):
        raise Failed(f"the log is not the build's four lines, numbered, in order, once:\n{log}")
    if not chrome.find_elements(By.CSS_SELECTOR, "#log .a-f2") or chrome.execute_script(f"return window.{XSS}") is not None:
        raise Failed("the log's colours were not rendered, or its markup ran")
    shot(chrome, screenshots, "log")

    chrome.get(url + "/pipelines/app")
    wait(chrome, "the deploy finishes", lambda c: "succeeded" in stage_class("Deploy")(c))
    shot(chrome, screenshots, "pipeline-succeeded")
    # The artifacts are the graph's edges: each curve starts at the right of the action that
    # made the artifact and ends at the left of the one that reads it (on screen, not just in
    # the markup). Read in one script: a live redraw may replace the graph between reads.
    edges = wait(chrome, "the artifacts are drawn as edges", lambda c: (lambda es: len(es) == 4 and es)(c.execute_script('''
        return Array.from(document.querySelectorAll("ol.graph svg.edges path.edge")).map((p) => {
          const box = p.ownerSVGElement.getBoundingClientRect();
          const at = (n) => { const q = p.getPointAtLength(n); return [box.left + q.x, box.top + q.y]; };
          const [start, end] = [at(0), at(p.getTotalLength())];
          const rect = (name) => document.querySelector(`.action[data-action="${name}"]`).getBoundingClientRect();
          const [from, to] = [rect(p.dataset.from), rect(p.dataset.to)];
          const near = (a, b) => Math.abs(a - b) < 2;
          return [p.dataset.artifact, p.dataset.from, p.dataset.to,
            near(start[0], from.right) && near(start[1], from.top + from.height / 2),
            near(end[0], to.left) && near(end[1], to.top + to.height / 2)];
        });''')))
    expected = {("Src", "Checkout", "Compile"), ("Src", "Checkout", "Gate"), ("Src", "Checkout", "Warmup"), ("Site", "Compile", "Site")}
    if {tuple(e[:3]) for e in edges} != expected or not all(e[3] and e[4] for e in edges):
        raise Failed(f"the artifacts' edges are not the pipeline's, from maker to reader: {edges}")
    click(chrome, "section.history tbody tr a")
    # One bar per attempt: the retried check shows its failed attempt, then the one that
    # succeeded. Read in one go: the live part of the page may be redrawn between two reads.
    bars = wait(chrome, "the timeline shows every attempt", lambda c: (lambda bs: len(bs) == 7 and bs)(
        c.execute_script("return Array.from(document.querySelectorAll('svg.timeline g.bar')).map(b => [b.getAttribute('class'), b.textContent])")))
    checks = [k for k, text in bars if "Check/Gate" in text]
    others = [k for k, text in bars if "Check/Gate" not in text]
    if len(checks) != 2 or "failed" not in checks[0] or "succeeded" not in checks[1]:
        raise Failed(f"the retried check is not a failed bar then a succeeded one: {bars}")
    if not all("succeeded" in k for k in others):
        raise Failed(f"the timeline of a succeeded execution has a bar that did not succeed: {bars}")
    shot(chrome, screenshots, "execution-timeline")
    chrome.get(url + "/pipelines/app")

    click(chrome, "li.transition[data-into=Build] summary")
    fill(chrome, "li.transition[data-into=Build] input[name=reason]", "change freeze")
    submit(chrome, "li.transition[data-into=Build] button", "DisableStageTransition")
    held = "li.transition.held[data-into=Build]"
    wait(chrome, "the transition says it is disabled, why, and by whom", lambda c: all(
        said in c.find_element(By.CSS_SELECTOR, held).text
        for said in ("Transition disabled", "change freeze", "user/baton")))

    submit(chrome, "form[action$='/start'] button", "StartPipelineExecution")
    wait(chrome, "the new execution is held before Build", lambda c: "waits to enter this stage" in c.find_element(By.CSS_SELECTOR, "li.stage[data-stage=Build]").text)
    unreloaded(chrome, "the execution came to the held transition")
    shot(chrome, screenshots, "pipeline-held")

    submit(chrome, "li.transition[data-into=Build] button", "EnableStageTransition")
    wait(chrome, "the held execution goes on into Build", lambda c: "waits to enter" not in c.find_element(By.CSS_SELECTOR, "li.stage[data-stage=Build]").text and "inprogress" in stage_class("Approve")(c))
    unreloaded(chrome, "the execution went on")

    click(chrome, "form.stop input[name=abandon]")
    fill(chrome, "form.stop input[name=reason]", "not today")
    submit(chrome, "form.stop button", "StopPipelineExecution")
    wait(chrome, "the stop shows in the history", lambda c: "not today" in c.find_element(By.CSS_SELECTOR, "section.history tbody tr").text and "Stopped" in c.find_element(By.CSS_SELECTOR, "section.history tbody tr").text)
    shot(chrome, screenshots, "pipeline-stopped")

    # Roll Build back to the release that succeeded.
    click(chrome, "li.stage[data-stage=Build] details.rollback summary")
    submit(chrome, "li.stage[data-stage=Build] details.rollback button", "RollbackStage")
    wait(chrome, "the rollback runs and succeeds, shown live", lambda c: all(
        said in c.find_element(By.CSS_SELECTOR, "section.history tbody tr").text
        for said in ("ManualRollback", "Succeeded")))
    unreloaded(chrome, "the rollback ran")


def main() -> int:
    url, pass_flag, screenshots, profile = sys.argv[1:5]
    chrome = browser(profile)
    try:
        run(chrome, url, pass_flag, screenshots)
        print("the console drove the release")
        return 0
    except Failed as e:
        print(e)
        return 1
    finally:
        chrome.quit()


if __name__ == "__main__":
    sys.exit(main())
