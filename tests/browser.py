"""Headless Debian chromium for report checks (tests skip cleanly when it is absent)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
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

# appended to a COPY of the report: after load, record what the browser saw in a <pre id='dc-check'>
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var links = Array.from(document.querySelectorAll('a[href]'));
  var bad = links.filter(function (a) {
    var h = a.getAttribute('href');
    return !(h.startsWith('#') && document.getElementById(h.slice(1)));
  }).map(function (a) { return a.getAttribute('href'); });
  var out = {images: imgs.length,
             broken_images: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length,
             external_images: imgs.filter(function (i) {
               return !i.getAttribute('src').startsWith('data:image/'); }).length,
             links: links.length, broken_links: bad,
             tables: document.querySelectorAll('table').length,
             height: document.body.scrollHeight};
  var pre = document.createElement('pre'); pre.id = 'dc-check'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _run(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )


def check_page(path: str) -> dict:
    """Load a copy of ``path`` with the probe in chromium; return the probe's findings."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "page.html")
        with open(path) as fh:
            text = fh.read()
        with open(copy, "w") as fh:
            fh.write(text.replace("</body>", PROBE + "</body>"))
        res = _run(["--virtual-time-budget=10000", "--dump-dom", f"file://{copy}"], tmp)
    start = res.stdout.find('<pre id="dc-check">')
    assert start >= 0, f"chromium did not run the probe: {res.stderr[-2000:]}"
    body = res.stdout[start + len('<pre id="dc-check">') :]
    return json.loads(body[: body.find("</pre>")].replace("&quot;", '"'))


def screenshot(path: str, png: str) -> None:
    """Render ``path`` (the report itself, untouched) to ``png``."""
    folder = os.path.dirname(png)
    res = _run(["--window-size=1280,2000", f"--screenshot={png}", f"file://{os.path.abspath(path)}"], folder)
    assert os.path.isfile(png), f"chromium wrote no screenshot: {res.stderr[-2000:]}"
