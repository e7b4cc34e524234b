"""Published pages from templates: the HTML export and the board report, through Jinja2.

The templates ship in the package (`page_templates/`). `--template DIR` puts a force's own folder in front
of them: a file there with the name of a shipped one replaces it, so a force changes its header, logo,
wording or colours (`header.html`, `footer.html`, `style.css`, or a whole page) without touching the code.
Every value is escaped for HTML by Jinja2's autoescaping, so nothing in a plan can add markup; templates
mark the few pieces of markup they build themselves as safe.

A template that cannot be read or run is one line naming the file and the line (`TemplateProblem`).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import DaplanError

TEMPLATE_FOLDER = Path(__file__).resolve().parent / "page_templates"


class TemplateProblem(DaplanError):
    """A page template (shipped or a force's own) has an error; fix the line named or remove the file."""


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def lines_html(text: Any) -> Any:
    """Plan text as HTML: escaped, its line breaks kept as <br>."""
    from markupsafe import Markup, escape

    return Markup("<br>").join(escape(line) for line in _norm(str(text)).split("\n"))


def paragraphs(text: Any) -> list[str]:
    """Text split at blank lines, empty paragraphs dropped."""
    return [p for p in re.split(r"\n\s*\n", _norm(str(text)).strip()) if p.strip()]


def css_string(text: Any) -> Any:
    """Text for a CSS string inside <style>: anything but plain characters as a hex escape, so no quote,
    backslash or `</style>` in a plan can end the string or the element."""
    from markupsafe import Markup

    plain = " ".join(str(text).split())
    return Markup("".join(c if c.isalnum() or c in " .,-()" else f"\\{ord(c):x} " for c in plain))


def check_template_dir(folder: Path | None) -> None:
    if folder is not None and not Path(folder).is_dir():
        raise DaplanError(
            "the template folder does not exist",
            file=folder,
            hint="name a folder holding your own page templates (e.g. header.html), or leave out --template",
        )


def environment(folder: Path | None = None) -> Any:
    """A Jinja2 environment over a force's folder (first, when given) and the shipped templates."""
    import jinja2

    check_template_dir(folder)
    loaders: list[Any] = []
    if folder is not None:
        loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATE_FOLDER)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["lines"] = lines_html
    env.filters["paragraphs"] = paragraphs
    env.filters["css_string"] = css_string
    return env


def template_file(name: str, folder: Path | None) -> Path:
    """Where a template comes from: the force's folder when it has the file, else the package."""
    if folder is not None and (Path(folder) / name).is_file():
        return Path(folder) / name
    return TEMPLATE_FOLDER / name


def render(name: str, context: dict[str, Any], folder: Path | None = None) -> str:
    """Render one page template; any error in a template becomes one line naming its file and line."""
    import jinja2

    env = environment(folder)
    try:
        return str(env.get_template(name).render(**context))
    except jinja2.TemplateSyntaxError as exc:
        where = Path(exc.filename) if exc.filename else template_file(exc.name or name, folder)
        raise TemplateProblem(
            f"the page template has an error at line {exc.lineno}: {exc.message}",
            file=where,
            hint="correct that line, or remove the file to use the built-in template",
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateProblem(
            f"a page template is missing: {exc.name}",
            file=folder or TEMPLATE_FOLDER,
            hint="add that file to the template folder, or remove the line that includes it",
        ) from exc
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError) as exc:
        file, line = _template_frame(exc, _searched(folder))
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise TemplateProblem(
            f"the page template failed at line {line}: {message}"
            if line
            else f"a page template failed: {message}",
            file=file or folder or TEMPLATE_FOLDER,
            hint="correct that line, or remove the file to use the built-in template",
        ) from exc


def _searched(folder: Path | None) -> list[Path]:
    return [p.resolve() for p in ([Path(folder)] if folder is not None else []) + [TEMPLATE_FOLDER]]


def _template_frame(exc: BaseException, folders: Iterable[Path]) -> tuple[Path | None, int | None]:
    """The innermost traceback frame in a template file: Jinja2 rewrites its frames to the template's lines."""
    found: tuple[Path | None, int | None] = (None, None)
    roots = list(folders)
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        try:
            resolved = path.resolve()
        except OSError:  # pragma: no cover - a frame of a file that went away
            continue
        if any(resolved.is_relative_to(root) for root in roots) and resolved.suffix != ".py":
            found = (path, frame.lineno)
    return found
