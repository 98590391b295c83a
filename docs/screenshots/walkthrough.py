"""Walk one ticket end to end in a real browser and screenshot each step.

A developer's tool, not part of the test suite. Needs the `playwright` package and a
Chromium (Debian's `chromium`); start the app with demo data first (`make run`):

    python docs/screenshots/walkthrough.py http://127.0.0.1:5000 docs/screenshots

Files a request as a resident on a 360 px phone screen, dispatches it as
the service-hall dispatcher, accepts and resolves it as the grid worker, and rates it as the resident.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

PASSWORD = "minhu-demo"
PHONE = {"width": 360, "height": 780}


def shot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print("saved", out / f"{name}.png")


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/auth/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def main(base: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        resident = browser.new_page(viewport=PHONE, device_scale_factor=2)
        resident.goto(base + "/")
        shot(resident, out, "resident-start")
        resident.goto(base + "/report")
        resident.locator("details").first.evaluate("d => d.open = true")
        resident.check("input[name=category_id] >> nth=6")  # 楼道灯不亮
        resident.select_option("#community_id", index=1)
        resident.select_option("#complex_id", index=1)
        resident.select_option("#building_id", index=1)
        resident.fill("#unit_room", "2单元301")
        resident.fill("#description", "3号楼2单元楼道灯坏了一个星期，晚上老人上下楼看不见台阶，很危险。")
        resident.fill("#name", "王秀英")
        resident.fill("#phone", "13912345678")
        shot(resident, out, "resident-report")
        resident.click("button[type=submit]")
        shot(resident, out, "resident-submitted")
        number = re.search(r"\d{6}-\d{4}", resident.inner_text("body")).group(0)
        track_url = resident.locator(".link-box a").get_attribute("href")
        print("ticket", number)

        staff = browser.new_page(viewport=PHONE, device_scale_factor=2)
        sign_in(staff, base, "hall")  # the street's service-hall dispatcher
        shot(staff, out, "console")
        staff.goto(f"{base}/tickets/{number}")
        staff.locator("details.action", has=staff.locator("#dispatch-handler")).evaluate("d => d.open = true")
        staff.select_option("#dispatch-handler", index=1)
        handler = staff.locator("#dispatch-handler option:checked").inner_text()
        staff.locator("form", has=staff.locator("#dispatch-handler")).locator("button[type=submit]").click()
        shot(staff, out, "ticket-dispatched")
        staff.click("nav button.linkish")  # sign out
        workers = {"马晓东": "grid1", "郑伟": "grid2", "黄丽": "grid3",
                   "高鹏": "grid4", "杜娟": "grid5", "许磊": "grid6"}
        username = next(u for name, u in workers.items() if name in handler)

        sign_in(staff, base, username)
        staff.locator(f"li:has-text('{number}') button[type=submit]").first.click()
        staff.goto(f"{base}/workbench/")
        shot(staff, out, "workbench")
        staff.goto(f"{base}/tickets/{number}")
        staff.locator("details.action", has=staff.locator("#resolve-note")).evaluate("d => d.open = true")
        staff.fill("#resolve-note", "已更换楼道声控灯两盏，现场试亮正常。")
        staff.locator("form", has=staff.locator("#resolve-note")).locator("button[type=submit]").click()
        shot(staff, out, "ticket-resolved")

        resident.goto(track_url)
        resident.locator("label:has(input[name=rating][value=satisfied])").click()
        resident.locator("form", has=resident.locator("input[name=rating]")).locator("button[type=submit]").click()
        shot(resident, out, "resident-rated")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), Path(sys.argv[2]))
