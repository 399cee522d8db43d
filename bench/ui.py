"""Web UI benchmark: how long the first page takes to draw, on the example repository over a
benchmark workload (L: 65M driver rows), with statistics, drift checks, validations and a saved
dataset recorded, in headless Chromium against the real service.

    .venv/bin/python bench/ui.py --size L          # the dev virtualenv: it has Selenium
    .venv/bin/python bench/ui.py --size S --repeat 10

Prints, per page, the time from navigation start to the page drawn, as the page records it
(``document.body.dataset.firstRenderMs`` once its data is on screen; the View page is also timed
until its statistics, drift and validations have drawn, from their own marks), then the JSON
endpoints' own latencies. The driver view gets ``--versions`` more versions first, so its page
has more than one page of them. The browser is Debian's ``chromium`` with its ``chromedriver`` (no Selenium Manager).
"""

from __future__ import annotations

import argparse
import copy
import os
import socket
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from common import (
    ensure_workload,
    load_generator,
    machine_summary,
    views_for,
    work_dir,
    workload_window,
)
from repos import build_our_repo

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
VIEW = "driver_hourly_stats"
ON_DEMAND = "trip_fit"
ENDPOINTS = [
    "whoami",
    "catalog",
    f"views/{VIEW}",
    f"views/{VIEW}/versions?offset=20",
    f"views/{VIEW}/versions/1",
    f"on-demand/{ON_DEMAND}",
    f"views/{VIEW}/statistics?limit=3",
    f"views/{VIEW}/drift",
    f"views/{VIEW}/validations",
    "lineage",
    "datasets",
    "audit",
]


def record_history(repo: Path, data_dir: Path, workload: Any) -> None:
    """What a team's registry holds after a while: statistics per window, drift, validations,
    a saved training set. Each step is timed (it reads the workload's rows)."""
    from featurestore import FeatureStore

    start, end = workload_window(workload)
    third = (end - start) / 3
    with FeatureStore(repo_path=repo) as store:
        steps = {
            "apply": lambda: store.apply(),
            "statistics x3": lambda: [
                store.statistics(VIEW, start + k * third, start + (k + 1) * third) for k in range(3)
            ],
            "drift": lambda: store.drift(
                VIEW,
                current_window=(end - third, end),
                reference_window=(start, start + third),
            ),
            "validate (last day)": lambda: store.validate(VIEW, end - timedelta(days=1), end),
            "save a 10k-row training set": lambda: store.get_historical_features(
                pd.read_parquet(data_dir / "entity_df.parquet").head(10_000),
                "driver_activity",
            ).save_dataset("bench_training"),
        }
        for name, step in steps.items():
            began = time.perf_counter()
            step()
            print(f"  set-up: {name:<30} {time.perf_counter() - began:8.1f} s", flush=True)


def serve(repo: Path) -> tuple[str, Any]:
    """The real service in a background thread; its URL and the uvicorn server."""
    import uvicorn

    from api import create_app
    from featurestore import FeatureStore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(FeatureStore(repo_path=repo)),
            host="127.0.0.1",
            port=port,
            log_level="critical",
            access_log=False,
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


#: What the pages record in ``document.body.dataset``, ms from navigation start (JavaScript
#: expressions, NaN until recorded): the first page drawn, and the View page's quality sections.
FIRST_RENDER = "Number(document.body.dataset.firstRenderMs)"
QUALITY_DRAWN = (
    "Math.max(...['statisticsMs', 'driftMs', 'validationsMs']"
    ".map((k) => Number(document.body.dataset[k])))"
)


def draw_times(
    driver: Any, url: str, fragment: str, ready: str, repeat: int, recorded: str
) -> list[float]:
    """Milliseconds from navigation start to the page drawn, as the page itself recorded it
    (``recorded``), for ``repeat`` fresh loads. Waiting for ``ready`` only says when to read the
    mark: a poll's interval is never part of the figure."""
    from selenium.webdriver.support.ui import WebDriverWait

    drawn = f"return !!document.querySelector({ready!r}) && !Number.isNaN({recorded})"
    times = []
    for _ in range(repeat):
        driver.get("about:blank")
        driver.get(f"{url}/ui/#/{fragment}")
        WebDriverWait(driver, 60, poll_frequency=0.05).until(lambda d: d.execute_script(drawn))
        times.append(float(driver.execute_script(f"return {recorded}")))
    return times


def add_versions(repo: Path, count: int) -> None:
    """``count`` more versions of the driver view (each a TTL of its own), so that its View
    page has more versions than it shows at once."""
    from featurestore import FeatureStore

    with FeatureStore(repo_path=repo) as store:
        view = store.get_feature_view(VIEW)
        began = time.perf_counter()
        for k in range(count):
            changed = copy.copy(view)
            changed.ttl = timedelta(hours=3 + k)
            store.apply([changed])
        spent = time.perf_counter() - began
    print(f"  set-up: {count} more versions of {VIEW:<13} {spent:8.1f} s", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="S", choices=["XS", "S", "L"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=7, help="Page loads per page")
    parser.add_argument("--keep", action="store_true", help="Keep the repository")
    parser.add_argument(
        "--versions",
        type=int,
        default=30,
        help="More versions of the driver view, so its page has more than it shows (0: none)",
    )
    args = parser.parse_args(argv)
    import httpx

    print(machine_summary())
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    workload = load_generator().workload_for(args.size)
    data_dir = ensure_workload(args.size, workload, args.seed)
    with work_dir(args.keep) as work:
        repo = build_our_repo(work / "ours", data_dir, views_for())
        record_history(repo, data_dir, workload)
        if args.versions:
            add_versions(repo, args.versions)
        url, server = serve(repo)
        driver = browser()
        try:
            print(f"\nfirst render, ms from navigation start ({args.repeat} fresh loads each)")
            pages = {
                "catalog": ("catalog", "#results", FIRST_RENDER),
                "view (definition)": (f"view/{VIEW}", "#schema", FIRST_RENDER),
                "view (with quality)": (f"view/{VIEW}", "#validations", QUALITY_DRAWN),
                "on-demand view": (f"on-demand/{ON_DEMAND}", "#od-schema", FIRST_RENDER),
                "lineage": ("lineage", "#graph", FIRST_RENDER),
                "datasets": ("datasets", "#datasets", FIRST_RENDER),
                "audit": ("audit", "#audit", FIRST_RENDER),
            }
            for name, (fragment, ready, recorded) in pages.items():
                times = draw_times(driver, url, fragment, ready, args.repeat, recorded)
                print(
                    f"  {name:<22} first {times[0]:7.1f}  median {statistics.median(times):7.1f}"
                    f"  max {max(times):7.1f}   (load {os.getloadavg()[0]:.1f})"
                )
        finally:
            driver.quit()
        print("\nJSON endpoints, ms (median of 5, one kept-alive connection)")
        with httpx.Client(base_url=f"{url}/ui/api/", timeout=60) as client:
            for path in ENDPOINTS:
                spent = []
                size = 0
                for _ in range(5):
                    began = time.perf_counter()
                    response = client.get(path)
                    spent.append((time.perf_counter() - began) * 1000)
                    size = len(response.content)
                print(f"  {path:<45} {statistics.median(spent):7.1f}  {size / 1024:7.1f} KiB")
        server.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
