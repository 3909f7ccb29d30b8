"""The report page in a real browser: headless Chromium opens index.html from disk and every figure loads, at
its own size, with the network shut off."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from codesign.cli import main

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 1), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
        return model.eval(), (torch.randn(1, 3, 8, 8),)
    """
)

# Appended to a copy of the page: once everything has loaded, each image's state goes into the DOM, which
# Chromium's --dump-dom prints.
PROBE = """
<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images).map(function (img) {
    var box = img.getBoundingClientRect();
    return {src: img.getAttribute("src"), complete: img.complete, naturalWidth: img.naturalWidth,
            naturalHeight: img.naturalHeight, width: box.width, height: box.height,
            declaredWidth: Number(img.getAttribute("width"))};
  });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: images});
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (make test installs Debian's chromium package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; under CI the browser test must run")
        pytest.skip(message)
    return found


def test_every_figure_loads_in_headless_chromium_with_a_nonzero_size(tmp_path):
    chromium = _chromium()
    model = tmp_path / "tiny_browser_model.py"
    model.write_text(MODEL)
    folder = tmp_path / "report"
    assert main(["sim", f"{model}:tiny", "--arch", "fpga-4x4", "--dataflow", "all", "--report", str(folder),
                 "--quiet"]) == 0
    figures = json.loads((folder / "report.json").read_text())["figures"]
    page = (folder / "index.html").read_text()
    probe = folder / "probe.html"  # beside index.html: the same relative paths
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
                           "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: a figure from outside fails
                           "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    start = done.stdout.find('<pre id="probe">')
    assert start >= 0, f"the page did not finish loading:\n{done.stderr[-2000:]}"
    text = done.stdout[start + len('<pre id="probe">'):done.stdout.index("</pre>", start)]
    state = json.loads(text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    images = state["images"]
    assert sorted(img["src"] for img in images) == sorted(f"{name}.png" for name in figures)
    for img in images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert img["width"] > 0 and img["height"] > 0, img  # laid out, not collapsed
        assert img["naturalWidth"] == img["declaredWidth"], img  # the page states each PNG's true size
