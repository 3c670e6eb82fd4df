"""Renders the report in headless Chromium: the page must load offline and show the verdict.

Chromium is the Debian package ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from distillprint.report.render_html import render_html
from report_fixtures import sample_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
    ),
]


def test_chromium_renders_the_verdict(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report(verdict="inconclusive", probability=0.51)))
    command = [
        str(CHROMIUM),
        *FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    dom = done.stdout
    assert '<div id="verdict">inconclusive</div>' in dom
    assert 'id="probability">51.0%<' in dom
    # Autoescaped hostile text stays inert: the DOM holds no injected elements.
    assert "<script>alert(1)</script>" not in dom


def test_chromium_renders_the_attribution_page(tmp_path: Path) -> None:
    from distillprint.report.render_html import render_attribution_html
    from report_fixtures import sample_attribution

    page = tmp_path / "attribution.html"
    page.write_text(render_attribution_html(sample_attribution()))
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
               page.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    assert '<div id="top-candidate"><bdi>gpt4_1106_preview</bdi></div>' in dom
    assert 'id="none-of-these">0.010<' in dom
