"""The documentation stays true: its runnable snippets run, its links resolve, its API reference is complete.

Every fenced ```python block whose first line is ``# runnable`` in ``docs/**/*.md`` or ``README.md``
runs in its own interpreter against the test session's mongod, with the offline model forced. A
snippet that raises (or whose ``assert`` fails) fails its test, so a doc that drifts from the code
is caught in ``make test`` rather than by a reader. Each run gets its own database names (a suffix on
every ``database_name="..."``), so snippets never see each other's data or data already on the server.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API_REFERENCE = DOCS / "api-reference"
RUNNABLE_MARKER = "# runnable"

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")

#: Pages (and the viewer screenshot) other parts of the project write; a link to one is accepted while it
#: has not landed yet.
#: Empty this set once they exist, so their links are checked like every other.
PENDING_PAGES: set[Path] = set()


def markdown_files() -> list[Path]:
    return sorted([*DOCS.rglob("*.md"), ROOT / "README.md"])


def runnable_snippets() -> list[tuple[str, str]]:
    """``(id, code)`` for every runnable block; the id is ``<file>:<line>`` so a failure points at the doc."""
    found = []
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            code = match.group(1)
            if code.lstrip().startswith(RUNNABLE_MARKER):
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", code))
    return found


SNIPPETS = runnable_snippets()


def snippet_env(mongo_uri: str) -> dict[str, str]:
    # No AWS variables: with credentials in the environment default_model() would pick Bedrock.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["MONGODB_CONNECTION_STRING"] = mongo_uri
    env["MSM_MODEL"] = "offline"
    return env


@pytest.fixture
def fresh_databases(mongo_client: MongoClient[Any]) -> Iterator[None]:
    """Drop whatever databases a snippet created, so snippets never see each other's sessions."""
    before = set(mongo_client.list_database_names())
    yield
    for name in set(mongo_client.list_database_names()) - before:
        mongo_client.drop_database(name)


def test_the_docs_have_runnable_snippets() -> None:
    # Guards the collector itself: a broken pattern must not turn the test below into a no-op.
    assert len(SNIPPETS) >= 10, [snippet_id for snippet_id, _ in SNIPPETS]


def isolated(code: str) -> str:
    """The snippet with a unique suffix on every ``database_name="..."`` it uses."""
    suffix = uuid.uuid4().hex[:8]
    return re.sub(r'database_name="([^"]+)"', lambda m: f'database_name="{m.group(1)}_{suffix}"', code)


@pytest.mark.parametrize(("snippet_id", "code"), SNIPPETS, ids=[snippet_id for snippet_id, _ in SNIPPETS])
def test_runnable_snippet_exits_zero(
    snippet_id: str, code: str, mongo_uri: str, tmp_path: Path, fresh_databases: None
) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(isolated(code), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=snippet_env(mongo_uri),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"{snippet_id} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


# ---- links ------------------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for path in [*markdown_files(), *sorted((ROOT / "features").glob("*/plan.md"))]:
        text = _FENCE.sub("", path.read_text(encoding="utf-8"))
        for match in _LINK.finditer(text):
            target = match.group(1)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
                links.append((path, target))
    return links


def test_relative_links_point_at_existing_files_and_headings() -> None:
    broken = []
    for page, target in relative_links():
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.exists():
            if resolved not in PENDING_PAGES:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{page.relative_to(ROOT)} -> {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


# ---- API reference completeness ----------------------------------------------------------------------


def _public_api() -> dict[str, Any]:
    import mongodb_session_manager as package
    from mongodb_session_manager import embedded, errors, testing

    api: dict[str, Any] = {name: getattr(package, name) for name in package.__all__ if name != "__version__"}
    api.update({name: getattr(errors, name) for name in errors.__all__ if name != "SessionException"})
    for name in ("ScriptedModel", "ToolCall", "Reply", "default_model", "real_model_configured"):
        api[name] = getattr(testing, name)
    for name in (
        "MongoReplicaSet",
        "MongodInstallation",
        "MongodMember",
        "EmbeddedMongoError",
        "local_mongodb",
        "running_mongod",
        "install",
        "ensure_installed",
        "default_home",
        "free_port",
        "shared_mongod",
        "LocalMongod",
        "default_data_dir",
        "running_server",
        "checkout_dir",
    ):
        api[name] = getattr(embedded, name)
    return api


def _documented_parameters(obj: Any) -> list[str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    public = [p for p in signature.parameters.values() if not p.name.startswith("_")]  # _name: internal
    return [p.name for p in public if p.name not in ("self", "cls") and p.kind not in variadic]


def test_api_reference_names_every_public_class_function_method_and_parameter() -> None:
    reference = "\n".join(p.read_text(encoding="utf-8") for p in sorted(API_REFERENCE.glob("*.md")))
    missing = []
    for name, obj in _public_api().items():
        if f"`{name}" not in reference and f"{name}(" not in reference and f"# {name}" not in reference:
            missing.append(name)
            continue
        members = [obj]
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            members += [
                member
                for member_name, member in vars(obj).items()
                if not member_name.startswith("_") and callable(getattr(obj, member_name, None))
            ]
            missing += [
                f"{name}.{member_name}"
                for member_name, member in vars(obj).items()
                if not member_name.startswith("_")
                and (callable(member) or isinstance(member, property | classmethod | staticmethod))
                and member_name not in reference
            ]
        for member in members:
            target = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            missing += [f"{name}: parameter {p}" for p in _documented_parameters(target) if p not in reference]
    assert not missing, "not in docs/api-reference:\n" + "\n".join(sorted(set(missing)))
