"""Browser tests: Playwright drives Debian's chromium (never a downloaded browser) against a
live server; each page is opened as a signed-in persona, and any console error fails the test.

CI installs chromium (.ci/run) and sets POSTURE_REQUIRE_BROWSER=1, so a missing browser fails
there instead of skipping.
"""

import importlib
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from playwright.sync_api import Browser, Page, sync_playwright

from posture.models import SloTarget
from posture.roles import ROLES

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
# thread with a running loop unless told this is fine (the test's own database work is).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
PASSWORD = "a-long-test-password-1"
# The demo data ends at the start of the current hour: the pages show windows that end now, and
# data ending on a fixed day would drop out of them once that day was a week old.
DEMO_END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("POSTURE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no chromium at {CHROMIUM}: apt-get install chromium")
        pytest.skip("no chromium here (apt-get install chromium); CI runs these")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def slo_targets(transactional_db) -> None:
    """The default SLO targets a migration seeds (a transactional test's flush removes them),
    so that rules and controls are judged as in a real installation."""
    seeded = importlib.import_module("posture.migrations.0003_default_slo_targets")
    for sli, target, direction, note in seeded.DEFAULT_TARGETS:
        SloTarget.objects.get_or_create(
            sli=sli,
            scope="org",
            scope_value="",
            defaults={"target": target, "direction": direction, "note": note},
        )


@pytest.fixture
def demo_data(transactional_db, settings) -> None:
    """A few days of the demo data set (its catalogue, sources, events and rollups)."""
    settings.DEBUG = True  # load_demo is for local demos
    call_command("load_demo", "--days", "4", "--scale", "0.3", "--end", DEMO_END.isoformat())


def person(role: str) -> User:
    """The user named after `role`, with that role and PASSWORD (load_demo may have made it)."""
    user, _ = User.objects.get_or_create(username=role)
    user.set_password(PASSWORD)
    user.is_active = True
    user.is_staff = role == "admin"
    user.save()
    if role in ROLES:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def open_as(browser: Browser, live_server, transactional_db) -> Iterator[Callable[..., Page]]:
    """open_as(role, path) -> a page signed in through the login form, at `path`.

    Console errors and uncaught exceptions are collected; the test fails if there were any.
    """
    problems: list[str] = []
    contexts = []

    def open_page(role: str, path: str, *, width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                problems.append(f"{role} {path}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"{role} {path}: {error}"))
        page.goto(f"{live_server.url}/accounts/login/?{urlencode({'next': path})}")
        page.get_by_label("User name").fill(person(role).username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("networkidle")
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not problems, "browser console errors:\n" + "\n".join(problems)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under tests/screenshots/ (git-ignored) to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def chart_drawn(page: Page, figure_id: str) -> bool:
    """Whether Plotly drew the chart: its div holds the SVG of the plot."""
    page.wait_for_selector(f"[data-figure='{figure_id}'] svg.main-svg", timeout=10_000)
    return page.locator(f"[data-figure='{figure_id}'] svg.main-svg").count() > 0
