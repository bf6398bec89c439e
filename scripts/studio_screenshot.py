"""A screenshot of the studio in use, for the README: a dragged joint and a strip of looks.

    python scripts/studio_screenshot.py --checkpoint runs/small --out docs/results/studio.png

Starts `poseguide studio` on a free local port, opens it in headless Debian Chromium
(chromium + chromium-driver; selenium from the test extra), loads a preset, drags the
left wrist up, draws a strip of looks in the pose, and saves the page as a 256-colour PNG.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from poseguide import landmarks as lm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="model dir or training run dir")
    parser.add_argument("--out", default="docs/results/studio.png")
    parser.add_argument("--preset", default="walk", help="pose to start from (default walk)")
    parser.add_argument("--seed", type=int, default=3, help="the look (default 3)")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "-m", "poseguide.cli", "studio", "--checkpoint", args.checkpoint,
                               "--port", str(port)], cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}/"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = None
    try:
        for _ in range(240):
            if server.poll() is not None:
                raise SystemExit("the studio exited")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        canvas = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#studio-canvas canvas[data-stamp]"))

        def answered(action) -> None:
            stamp = canvas.get_attribute("data-stamp")
            action()
            wait.until(lambda d: canvas.get_attribute("data-stamp") != stamp)

        def choose_preset() -> None:
            box = driver.find_element(By.CSS_SELECTOR, "#studio-preset input")
            box.click()
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(args.preset)
            box.send_keys(Keys.ENTER)

        answered(choose_preset)
        driver.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Look']").click()
        seed = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#studio-seed input"))
        answered(lambda: (seed.send_keys(Keys.CONTROL, "a"), seed.send_keys(str(args.seed), Keys.TAB)))

        # Drag the left wrist up and out, as a user would, then draw the strip in that pose.
        pose = lm.parse_keypoints(json.loads(canvas.get_attribute("data-pose"))).landmarks
        wrist = lm.INDEX["left_wrist"]
        width, height = canvas.size["width"], canvas.size["height"]
        x, y = pose[wrist, 0] * width - width / 2, pose[wrist, 1] * height - height / 2

        def drag(dx: float, dy: float, steps: int, release: bool) -> None:
            actions = ActionChains(driver, duration=60)
            actions.move_to_element_with_offset(canvas, round(x), round(y)).click_and_hold()
            for _ in range(steps):
                actions.move_by_offset(round(dx / steps), round(dy / steps))
            if release:
                actions.release()
            answered(actions.perform)

        drag(-60, -140, 10, release=True)
        x, y = x - 60, y - 140
        wait.until(lambda d: canvas.get_attribute("data-busy") == "0")
        driver.find_element(By.ID, "studio-strip-button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#studio-strip img"))
        drag(-10, -20, 2, release=False)  # held: the screenshot shows the joint being dragged
        time.sleep(1.5)
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shot.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
        print(f"wrote {out} ({out.stat().st_size // 1024} KB, {shot.size[0]}x{shot.size[1]})")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
