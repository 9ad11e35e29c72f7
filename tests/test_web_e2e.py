"""The web app in a real headless Chromium (Debian's chromium, driven by Playwright): a
clerk refers a child, a case manager takes the case through application, records and
eligibility, the county medical consultant determines, the case manager asks for meals and
lodging, and a supervisor sees the overdue task and reassigns the case. Every page is saved
as a screenshot under test-artifacts/web/, checked by axe-core (no serious or critical
violation), and every case URL of the walk is a 404 for a case manager of another county."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import async_playwright, expect

from starters.web.humane import PACIFIC
from tests.web_helpers import PASSWORD, REFERRAL_FORM, open_office

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "web"

pytestmark = pytest.mark.timeout(150)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Walk:
    """One browser, one person at a time: sign in, visit, check, screenshot."""

    def __init__(self, page, base: str, office) -> None:
        self.page, self.base, self.office, self.shots, self.urls = page, base, office, 0, set()
        self.axe = Axe()

    async def sign_in(self, who: str) -> None:
        await self.page.context.clear_cookies()
        await self.page.goto(f"{self.base}/sign-in")
        await self.page.get_by_label("User ID").fill(self.office.users[who])
        await self.page.get_by_label("Password").fill(PASSWORD)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("heading", name="My work")).to_be_visible()
        await self.check(f"{who}-my-work")

    async def check(self, name: str) -> None:
        """Screenshot, and axe-core on the page as it is."""
        self.shots += 1
        await self.page.screenshot(path=ARTIFACTS / f"{self.shots:02d}-{name}.png", full_page=True)
        results = await self.axe.run(self.page)
        bad = [f"{v['id']} ({v['impact']}): {v['help']}" for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {name}: {bad}"
        if "/cases/" in self.page.url and "/actions/" not in self.page.url:
            self.urls.add(self.page.url.split("?")[0])

    async def act(self, title: str, fields: dict[str, str], shot: str) -> None:
        """Open an action's form on the case page, fill it in, send it."""
        page = self.page
        details = page.locator("details", has=page.locator("summary", has_text=title))
        if not await details.evaluate("d => d.open"):
            await details.locator("summary").click()
        form = details.locator("form")
        for label, value in fields.items():
            field = form.get_by_label(re.compile(rf"^{re.escape(label)}( \(required\))?$")).first
            if await field.evaluate("e => e.tagName") == "SELECT":
                await field.select_option(value)
            elif value is True:
                await field.check()
            else:
                await field.fill(value)
        await form.get_by_role("button", name=title).click()
        await page.wait_for_load_state()
        await self.check(shot)


async def test_a_case_from_referral_to_reassignment(dev_env, engine, sessions, tmp_path):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    office, worker = await open_office(dev_env, engine, sessions, tmp_path)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(office.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    last_name = f"Synthetic{uuid.uuid4().hex[:5]}"
    try:
        async with worker, async_playwright() as pw:
            while not server.started:
                await asyncio.sleep(0.05)
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            walk = Walk(page, f"http://127.0.0.1:{port}", office)
            await _walk(walk, last_name)
            await _other_county_sees_nothing(walk)
            await browser.close()
    finally:
        server.should_exit = True
        await serving


async def _walk(walk: Walk, last_name: str) -> None:
    page = walk.page
    # The clerk refers the child. The first Tab reaches the skip link (keyboard users).
    await walk.sign_in("clerk")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    await page.get_by_role("link", name="Refer a child").click()
    await walk.check("clerk-referral-form")
    labels = {"child.first_name": "#f-child-first_name", "child.last_name": "#f-child-last_name",
              "child.date_of_birth": "#f-child-date_of_birth", "child.county": "#f-child-county",
              "referrer.organization": "#f-referrer-organization",
              "conditions.0.icd10": "#f-conditions-0-icd10", "conditions.0.description": "#f-conditions-0-description"}
    for name, selector in labels.items():
        await page.fill(selector, last_name if name == "child.last_name" else REFERRAL_FORM[name])
    await page.select_option("#f-referrer-kind", "specialist")
    await page.select_option("#f-medi_cal-full_scope", "true")
    await page.get_by_role("button", name="Send the referral").click()
    await expect(page.get_by_text("A new case was opened.")).to_be_visible()
    await walk.check("clerk-referral-received")
    await page.get_by_role("link", name=re.compile("Open the case of Rosa")).click()
    await expect(page.get_by_text("Waiting for")).to_be_visible()
    await walk.check("clerk-case-intake")
    case_url = page.url

    # The case manager: application, records, eligibility; a refused form first, then a note.
    await walk.sign_in("cm")
    await expect(page.get_by_text("Receive the signed application", exact=False).first).to_be_visible()
    await page.goto(case_url)
    await walk.act("Record application", {}, "cm-application")
    await expect(page.get_by_text("Done: record application.")).to_be_visible()
    await walk.act("Record records", {}, "cm-records")
    await expect(page.get_by_text("medical records", exact=False).first).to_be_visible()
    await walk.act("Record eligibility", {"Program": "treatment"}, "cm-eligibility-refused")
    await expect(page.get_by_text("Nothing was changed")).to_be_visible()
    await expect(page.locator("#f-record_eligibility-finances-residential_in_county-error")).to_contain_text("required")
    await walk.act("Record eligibility", {"Residential in county": "true", "Full-scope Medi-Cal": True},
                   "cm-eligibility")
    await expect(page.get_by_text("medical review", exact=False).first).to_be_visible()
    # A case note by keyboard alone: open the form, type, choose, send.
    await page.locator("summary", has_text="Add a case note").focus()
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await expect(page.locator("#f-add_note-note")).to_be_focused()
    await page.keyboard.type("Mother called: clinic visit on Tuesday")
    await page.keyboard.press("Tab")
    await expect(page.locator("#f-add_note-contact")).to_be_focused()
    await page.locator("#f-add_note-contact").select_option("phone_call")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Done: add note.")).to_be_visible()
    await walk.check("cm-note")
    await expect(page.get_by_text("Mother called: clinic visit on Tuesday")).to_be_visible()

    # The county medical consultant determines the condition.
    await walk.sign_in("doc")
    mine = page.locator("tr", has_text=case_url.rsplit("/", 1)[1])
    await expect(mine.get_by_text("Medical determination of C1")).to_be_visible()
    await mine.get_by_role("link").click()
    await walk.act("Record medical determination", {"Condition (C1, C2, ...)": "C1", "Eligible": "true",
                                                    "Reason": "Meets CCS medical eligibility"}, "doc-determination")
    await expect(page.get_by_text("eligible by", exact=False)).to_be_visible()

    # The case manager asks for meals and lodging: caps and route are on the form.
    await walk.sign_in("cm")
    await page.goto(case_url)
    await page.locator("summary", has_text="Request meals lodging").click()
    await expect(page.get_by_text("meals up to $15.00 per person per day", exact=False)).to_be_visible()
    await expect(page.get_by_text("prior approval", exact=False).first).to_be_visible()
    start = datetime.now(PACIFIC).date() + timedelta(days=14)
    await walk.act("Request meals lodging", {
        "Travel start": start.isoformat(), "Travel end": (start + timedelta(days=1)).isoformat(),
        "Relationship": "parent", "Nights": "1", "Condition (C1, C2, ...)": "C1", "Treatment": "Pulmonology clinic visit",
        "Meals": "60", "Lodging": "140"}, "cm-meals-lodging")
    await expect(page.get_by_text("Done: request meals lodging.")).to_be_visible()
    await page.get_by_role("link", name=re.compile(r"-ml-1$")).click()
    await expect(page.get_by_text("prior approval", exact=True)).to_be_visible()
    await walk.check("cm-meals-lodging-request")

    # The supervisor sees the overdue assignment task and reassigns the case.
    await walk.sign_in("sup")
    await page.get_by_role("link", name="Overdue tasks").click()
    row = page.locator("tr", has_text="Assign a case manager").filter(has_text=case_url.rsplit("/", 1)[1])
    await expect(row).to_contain_text("overdue by")
    await walk.check("sup-overdue")
    await row.get_by_role("link", name=re.compile("Reassign")).click()
    await walk.act("Reassign the case", {"Case manager": walk.office.users["cm2"]}, "sup-reassigned")
    await expect(page.get_by_text("Done: assign case manager.")).to_be_visible()
    await expect(page.locator("dt:has-text('Case manager') + dd")).to_have_text(walk.office.users["cm2"])
    for path in ("stuck", "workload", "timeliness"):
        await page.goto(f"{walk.base}/supervisor/{path}")
        await walk.check(f"sup-{path}")


async def _other_county_sees_nothing(walk: Walk) -> None:
    await walk.sign_in("fresno")
    assert walk.urls, "the walk visited no case page"
    for url in sorted(walk.urls):
        response = await walk.page.goto(url)
        assert response.status == 404, url
        await expect(walk.page.get_by_role("heading", name="Not found")).to_be_visible()
    await walk.check("fresno-not-found")
