"""The viewer in a real browser: Playwright for Python driving Debian's chromium (/usr/bin/chromium,
installed by .ci/run). Each view is saved as a screenshot under build/viewer/. Marked `browser`: left out
of `make test`, run by `make test-browser`, `make test-all` and CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import Served

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("RNNKIT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "viewer"
ARGUMENTS = [  # no sandbox as root in a container; nothing reaches for the network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright for Python: pip install -r requirements-dev.txt")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"the browser tests need chromium at {CHROMIUM} (apt-get install chromium, as .ci/run does)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=shutil.which(CHROMIUM), args=ARGUMENTS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, served):
    """A page of the served viewer that records console errors; the test ends by finding none."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # for Playwright's own evaluate
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(60_000)
    yield page
    page.close()
    assert not errors, errors


def test_runs_table_lists_the_runs_and_a_curve_is_drawn(page, served):
    page.goto(served.url + "/")
    page.wait_for_selector("#runs-table tbody tr")
    listed = page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => r.dataset.id)")
    assert {"0/char-lm", "0/sentiment", "0/pos", "0/gate-ablation-test/lstm", "shipped/shakespeare"} <= set(listed)
    page.fill("#filter", "tagger")
    assert page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => r.dataset.id)") == ["0/pos"]
    page.fill("#filter", "")
    page.click('th[data-key="parameters"]')
    page.click('th[data-key="parameters"]')  # descending: the shipped model first
    assert page.eval_on_selector("#runs-table tbody tr", "row => row.dataset.id") == "shipped/shakespeare"
    page.check('tr[data-id="0/char-lm"] input')
    page.check('tr[data-id="0/sentiment"] input')
    page.wait_for_selector(".diff td.a")
    page.uncheck('tr[data-id="0/sentiment"] input')
    page.wait_for_selector('.chart[data-quantity="loss"] canvas')
    # a curve is drawn: the loss chart's canvas holds coloured (non-white) pixels inside the plot
    coloured = page.eval_on_selector(
        '.chart[data-quantity="loss"] canvas',
        """canvas => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
           let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 150 && d[i] < 100) n++; return n; }""",
    )
    assert coloured > 50
    page.screenshot(path=str(SCREENSHOTS / "runs-and-curves.png"), full_page=True)


def heat_colours(page) -> list[str]:
    return page.eval_on_selector_all("#inside-heat span", "spans => spans.map(s => s.style.background)")


def test_typing_text_shows_a_heatmap_that_changes_with_the_unit(page, served):
    page.goto(served.url + "/#run/shipped%2Fshakespeare/inside")
    page.wait_for_selector("#inside-heat span")
    text = "ROMEO:\nWhat light through yonder window breaks?\n"
    page.fill("#inside-text", text)
    page.click("#inside-go")
    page.wait_for_function(f"document.querySelectorAll('#inside-heat span').length === {len(text)}")
    page.select_option("#inside-signal", "h")
    page.wait_for_function("document.getElementById('inside-message').textContent.includes(' h ')")
    page.fill("#inside-unit", "3")
    page.dispatch_event("#inside-unit", "input")
    first = heat_colours(page)
    page.fill("#inside-unit", "141")
    page.dispatch_event("#inside-unit", "input")
    second = heat_colours(page)
    assert len(first) == len(text) and first != second
    assert len(set(second)) > 5  # the unit's values colour the characters differently
    page.hover("#inside-heat span:nth-child(3)")
    assert "%" in page.inner_text("#next-tokens")
    page.screenshot(path=str(SCREENSHOTS / "heatmap.png"), full_page=True)


def test_pattern_search_returns_units(page, served):
    page.goto(served.url + "/#run/shipped%2Fshakespeare/inside")
    page.wait_for_selector("#inside-heat span")
    text = "ROMEO:\nWhat light through yonder window breaks?\n\nJULIET:\nAy me!\n\nROMEO:\nShe speaks.\n"
    page.fill("#inside-text", text)
    page.click("#inside-go")
    page.wait_for_function(f"document.querySelectorAll('#inside-heat span').length === {len(text)}")
    page.select_option("#inside-signal", "h")
    page.wait_for_function("document.getElementById('inside-message').textContent.includes(' h ')")
    # select ROMEO in the first line
    page.evaluate(
        """() => { const spans = document.querySelectorAll('#inside-heat span'); const range = document.createRange();
           range.setStart(spans[0].firstChild, 0); range.setEnd(spans[4].firstChild, 1);
           const chosen = window.getSelection(); chosen.removeAllRanges(); chosen.addRange(range); }"""
    )
    page.fill("#pattern-threshold", "0.3")
    page.click("#pattern-go")
    page.wait_for_selector("#pattern-units a, #pattern-result .error")
    assert not page.query_selector("#pattern-result .error"), page.inner_text("#pattern-result")
    units = page.eval_on_selector_all("#pattern-units a", "links => links.map(a => a.dataset.unit)")
    assert units
    assert page.eval_on_selector_all("#pattern-places li", "items => items.length") >= 1
    page.click("#pattern-units a")
    assert page.input_value("#inside-unit") == units[0]
    page.screenshot(path=str(SCREENSHOTS / "pattern-search.png"), full_page=True)


def test_the_classifier_view_shows_a_label(page, served):
    page.goto(served.url + "/#run/0%2Fsentiment/classify")
    page.fill("#classify-text", "the film was wonderful and very good")
    page.click("#classify-go")
    page.wait_for_function("document.querySelectorAll('#contributions span').length === 7")
    assert page.inner_text("#classify-label") in ("0", "1")
    assert page.eval_on_selector_all("#contributions span", "spans => spans.length") == 7
    page.screenshot(path=str(SCREENSHOTS / "classifier.png"), full_page=True)
    page.goto(served.url + "/#run/0%2Fsentiment/eval")
    page.click("#eval-go")
    page.wait_for_selector("#confusion td")
    page.screenshot(path=str(SCREENSHOTS / "classifier-eval.png"), full_page=True)


def test_tagger_sampler_samples_and_experiment_views(page, served):
    page.goto(served.url + "/#run/0%2Fpos/tag")
    page.wait_for_selector("#tag-result td.tag")
    assert page.eval_on_selector_all("#tag-result td.tag", "cells => cells.length") == 10
    page.screenshot(path=str(SCREENSHOTS / "tagger.png"), full_page=True)
    page.goto(served.url + "/#run/0%2Fchar-lm/sampler")
    page.fill("#sample-length", "50")
    page.click("#sample-go")
    page.wait_for_function("document.getElementById('sample-output').textContent.length > 40")
    page.goto(served.url + "/#run/0%2Fchar-lm/samples")
    page.wait_for_selector("#samples pre")
    page.goto(served.url + "/#experiment/0%2Fgate-ablation-test")
    page.wait_for_selector("#report table")
    assert page.eval_on_selector(".plots img", "img => img.naturalWidth") == 2
    page.screenshot(path=str(SCREENSHOTS / "experiment.png"), full_page=True)


def test_curves_update_while_a_run_trains(browser, viewed, tmp_path):
    """Records appended to metrics.jsonl (as a trainer appends them) reach the open page by polling."""
    import json

    run = tmp_path / "runs" / "live"
    shutil.copytree(viewed["lm"], run)
    serving = Served([run.parent])
    page = browser.new_page(bypass_csp=True)
    try:
        page.goto(serving.url + "/#run/0%2Flive/curves")
        page.wait_for_selector('.chart[data-quantity="loss"] canvas')
        with open(run / "metrics.jsonl", "a") as file:
            for step in (14, 16, 18):
                record = {
                    "event": "train",
                    "step": step,
                    "epoch": 0.1,
                    "loss": 3.9,
                    "lr": 0.002,
                    "gradient_norm": 0.3,
                    "tokens_per_second": 1000.0,
                    "elapsed": 1.0,
                }
                file.write(json.dumps(record) + "\n")
            file.write(
                json.dumps(
                    {
                        "event": "skip",
                        "step": 19,
                        "reason": "non-finite loss",
                        "loss": None,
                        "consecutive": 1,
                        "elapsed": 1.1,
                    }
                )
                + "\n"
            )
        page.wait_for_function("document.querySelector('.curves .note').textContent.includes('Skipped steps: 1')")
    finally:
        page.close()
        serving.stop()


def test_the_exported_page_works_without_a_server(browser, viewed, tmp_path):
    from rnnkit.cli import main

    exported = tmp_path / "page.html"
    assert main(["view", str(viewed["root"]), "--export", str(exported)]) == 0
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(exported.as_uri())
    page.wait_for_selector("#runs-table tbody tr")
    page.goto(exported.as_uri() + "#run/0%2Fchar-lm/curves")
    page.wait_for_selector('.chart[data-quantity="val"] canvas')
    page.close()
    assert not errors, errors
