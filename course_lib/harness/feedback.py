"""Feedback pages that run nothing a student wrote: what `make grade` leaves in build/feedback/.

nbgrader's feedback is nbconvert's HTML of the executed submission, so whatever the student put in it (a
`<script>` in a markdown cell, `display(Javascript(...))`, `<img onerror=...>`) would run when the teacher or the
student opens the page. Three layers:
  1. nbconvert sanitizes the markdown and the HTML outputs and leaves JavaScript outputs out
     (`HTMLExporter.sanitize_html`, set in build/nbgrader/nbgrader_config.py);
  2. secure() removes every <script> element left in the page (nbconvert's own loaders of MathJax 2 from a CDN
     among them), every event-handler attribute (nbconvert keeps a markdown cell's `<img onerror=...>`) and
     script URLs in links;
  3. and puts a Content-Security-Policy first in <head>: scripts run only with this page's random nonce (the
     local MathJax 3 and its settings, added here), never inline handlers or `javascript:` links; no network,
     frames, plugins, forms or <base>. A student cannot know the nonce: it is drawn when the page is written.
MathJax comes from the book's copy (book.copy_mathjax), next to the pages in build/feedback/mathjax/. A page
sent on its own shows the formulas as TeX.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

SCRIPT = re.compile(r"<script\b.*?</script\s*>|<script\b[^>]*/?>", re.IGNORECASE | re.DOTALL)
HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
TAG = re.compile(r"<[a-zA-Z][^<>]*>")
HANDLER = re.compile(r"""\s+on[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE)
SCRIPT_URL = re.compile(r"""((?:href|src|action|formaction|xlink:href)\s*=\s*["']?)\s*(?:javascript|vbscript):""",
                        re.IGNORECASE)
POLICY = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; "
          "font-src 'self' file: data:; base-uri 'none'; form-action 'none'; frame-src 'none'; object-src 'none'")
MATHJAX_SETTINGS = ("window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true}, "
                    "options: {enableMenu: false}};")


def secure(html: str, mathjax: str | None = None) -> str:
    """`html` with no script of its own and a policy that lets none run but `mathjax` (a URL relative to the
    page, or None for no MathJax)."""
    nonce = secrets.token_urlsafe(18)
    html = SCRIPT.sub("", html)
    html = TAG.sub(lambda tag: SCRIPT_URL.sub(r"\1#blocked:", HANDLER.sub("", tag.group(0))), html)
    head = HEAD.search(html)
    if head is None:
        raise ValueError("expected an HTML page with a <head> (nbconvert's output)")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{POLICY.format(nonce=nonce)}">'
    scripts = ""
    if mathjax:
        scripts = (f'<script nonce="{nonce}">{MATHJAX_SETTINGS}</script>'
                   f'<script nonce="{nonce}" src="{mathjax}" defer></script>')
    return html[:head.end()] + meta + scripts + html[head.end():]


def mathjax_for(folder: Path) -> Path | None:
    """MathJax copied into folder/mathjax/ (from the book extra's package), or None with a warning when it is
    not installed."""
    from . import book

    try:
        return book.copy_mathjax(Path(folder) / "mathjax")
    except book.BookError as err:
        print(f"warning: feedback without MathJax (formulas stay TeX): {err}", file=sys.stderr, flush=True)
        return None


def write_secure(source: Path, target: Path, mathjax: Path | None) -> None:
    """nbgrader's page `source` -> `target`, secured (source may be target)."""
    html = Path(source).read_text(encoding="utf-8", errors="replace")
    url = Path(os.path.relpath(mathjax, Path(target).parent)).as_posix() if mathjax else None
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(secure(html, url), encoding="utf-8")
