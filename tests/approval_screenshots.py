"""Screenshots for docs/approval.md from a real run: the trigger form and the approval page.

    PYTHONPATH=src .venv/bin/python tests/approval_screenshots.py docs/img

Starts Airflow as tests/test_answer_approval_api.py does, triggers enhedslisten-slf as the answer
writer, and drives headless Chromium (Debian's `chromium`) over the DevTools protocol: the signed-in
user's JWT is set as the UI's `_token` cookie (what the login page would set), then each page is
loaded and captured. Not a test: it writes the two PNGs and stops everything it started.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests

from test_answer_approval import INQUIRY
from test_answer_approval_api import DAG, _free_port, _hitl, _trigger, _wait, running_airflow

WIDTH, HEIGHT = 1400, 1000


class Page:
    def __init__(self, ws) -> None:
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        mine = self.next_id
        await self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if message.get("id") == mine:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def js(self, expression: str):
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return result.get("result", {}).get("value")

    async def wait_for_text(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.js(f"document.body && document.body.innerText.includes({json.dumps(text)})"):
                return
            await asyncio.sleep(1)
        body = await self.js("document.body ? document.body.innerText.slice(0, 800) : ''")
        raise TimeoutError(f"{text!r} not shown within {timeout:.0f} s; the page says: {body!r}")

    async def shot(self, path: Path) -> None:
        data = (await self.call("Page.captureScreenshot", format="png"))["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path}")


async def capture(
    devtools_port: int, base: str, writer_token: str, signatory_token: str, run_id: str, target: Path
) -> None:
    import websockets

    tabs = await asyncio.to_thread(
        lambda: requests.get(f"http://127.0.0.1:{devtools_port}/json", timeout=10).json()
    )
    ws_url = next(t["webSocketDebuggerUrl"] for t in tabs if t["type"] == "page")
    async with websockets.connect(ws_url, max_size=50_000_000) as ws:
        page = Page(ws)
        await page.call("Page.enable")
        await page.call("Network.enable")
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        await page.call("Network.setCookie", name="_token", value=writer_token, url=base, path="/")
        await page.call("Page.navigate", url=f"{base}/dags/{DAG}")
        await page.wait_for_text("slf_answer_inquiry")
        await page.wait_for_text("Trigger")
        await page.js(
            """[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Trigger').click()"""
        )
        await page.wait_for_text("Forespørgsel")
        await asyncio.sleep(2)
        await page.shot(target / "approval-trigger-form.png")
        await page.call("Network.setCookie", name="_token", value=signatory_token, url=base, path="/")
        await page.call(
            "Page.navigate", url=f"{base}/dags/{DAG}/runs/{run_id}/tasks/approve/required_actions"
        )
        await page.wait_for_text("Godkend", timeout=90)
        await asyncio.sleep(2)
        await page.shot(target / "approval-required-action.png")


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="approval-screens-"))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    with running_airflow(work) as (af, _out):
        writer = af.as_user("writer")
        _wait(
            lambda: writer.get(af.api(f"/dags/{DAG}/details"), timeout=60).ok or None, 180, "the DAG parsed"
        )
        writer.patch(af.api(f"/dags/{DAG}"), json={"is_paused": False}, timeout=60).raise_for_status()
        run = _trigger(writer, af, {"inquiry": INQUIRY, "edition_note": "1. udgave"})
        run.raise_for_status()
        run_id = run.json()["dag_run_id"]
        _wait(lambda: _hitl(writer, af, run_id), 240, "the approval being asked for")
        af.as_user("tmedom")  # the approval page as the rådmand sees it
        port = _free_port()
        browser = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={work / 'chromium'}",
                f"--window-size={WIDTH},{HEIGHT}",
                "--lang=da",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:

            def devtools_up():
                try:
                    return requests.get(f"http://127.0.0.1:{port}/json", timeout=2).ok or None
                except requests.RequestException:
                    return None

            _wait(devtools_up, 60, "Chromium's DevTools endpoint", step=1)
            asyncio.run(capture(port, af.base, af._tokens["writer"], af._tokens["tmedom"], run_id, target))
        finally:
            try:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
