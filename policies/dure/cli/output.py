"""How every ``dure`` command prints: nothing that comes from data is read as markup.

Task names, file paths, policy reasons, error messages and ledger fields come from
files, databases and remote services.  Rich reads ``[/]``, ``[bold]`` or
``[purpose]`` in a string as markup: it crashes (``MarkupError``) or silently
drops the bracketed text.  So every console a command prints with is made by
:func:`make_console`, with markup off (plain strings, table cells and titles are
printed literally), and styled text is assembled by :func:`styled` from
``(text, style)`` parts that are never parsed.  A test runs each command on data
holding markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

__all__ = ["make_console", "styled"]


def make_console(*, stderr: bool = False) -> Console:
    """Return a console that prints every string literally (no markup, no highlighting).

    Parameters
    ----------
    stderr
        Print to standard error instead of standard output.
    """
    return Console(highlight=False, markup=False, stderr=stderr)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Return text assembled from plain strings and ``(text, style)`` pairs, unparsed.

    ``styled(("valid", "green"), " policy of ", (site, "bold"))`` prints ``site``
    in bold exactly as it is, brackets included.
    """
    return Text.assemble(*parts)
