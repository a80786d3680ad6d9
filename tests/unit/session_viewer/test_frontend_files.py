"""The committed frontend is self-contained: no CDN, every vendored library with its licence."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[3] / "session_viewer" / "frontend"
LIBRARIES = {
    "axios.min.js": "axios-LICENSE",
    "marked.umd.js": "marked-LICENSE",
    "purify.min.js": "dompurify-LICENSE",
    "dayjs.min.js": "dayjs-LICENSE",
    "dayjs-relativeTime.min.js": "dayjs-LICENSE",
    "tailwind.css": "tailwindcss-LICENSE",
}


class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.inline_handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]
        if "style" in values:
            self.inline_handlers.append("style")
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_index_html_loads_only_local_files_that_exist() -> None:
    parser = References()
    parser.feed((FRONTEND / "index.html").read_text())
    assert parser.urls, "index.html references nothing?"
    for url in parser.urls:
        if url.startswith("data:"):
            continue
        assert not re.match(r"^[a-z]+:|^//", url), f"external reference {url}"
        assert (FRONTEND / url).is_file(), f"{url} is referenced but missing"
    assert parser.inline_scripts == 0 and parser.inline_handlers == []


def test_every_vendored_library_ships_with_its_licence() -> None:
    for name, licence in LIBRARIES.items():
        assert (FRONTEND / "vendor" / name).stat().st_size > 1000, name
        assert (FRONTEND / "vendor" / "licenses" / licence).is_file(), licence
    assert (FRONTEND / "build-vendor.sh").is_file()


def test_our_scripts_never_inject_unsanitised_html() -> None:
    for name in ("components.js", "viewer.js", "list.js", "detail.js", "detail-render.js"):
        source = (FRONTEND / name).read_text()
        assignments = re.findall(r"\.(?:innerHTML|outerHTML)\s*=\s*([^;]+);", source)
        assert all("DOMPurify.sanitize" in rhs for rhs in assignments), (name, assignments)
        assert "insertAdjacentHTML" not in source and "document.write" not in source and "eval(" not in source


def test_the_five_classes_and_the_render_functions_exist() -> None:
    scripts = {name: (FRONTEND / name).read_text() for name in ("viewer.js", "list.js", "detail.js")}
    for cls, name in (
        ("APIClient", "viewer.js"),
        ("FilterPanel", "list.js"),
        ("ResultsList", "list.js"),
        ("SessionDetail", "detail.js"),
        ("SessionViewer", "viewer.js"),
    ):
        assert re.search(rf"\bclass {cls}\b", scripts[name]), cls
    assert "SessionViewerComponents" in (FRONTEND / "components.js").read_text()
