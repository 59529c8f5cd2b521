"""`publish` options more than one crowd takes. Every crowd option is absent from the command's
options unless given (argparse.SUPPRESS), so each crowd applies its own default."""

from __future__ import annotations

from annotator.crowds.base import Option


def int_or_none(text: str) -> int | None:
    """A whole number, or none ("none", "off" or empty: drop the requirement)."""
    return None if text.lower() in ("", "none", "off") else int(text)


SHARED = [
    Option(
        ("--external-url",),
        {
            "help": "This site's public https address, e.g. https://annotate.example.org "
            "(where the platform sends its workers)"
        },
    ),
    Option(("--title",), {"help": "What workers see in the platform's list"}),
    Option(("--description",), {"help": "The longer text under the title"}),
    Option(
        ("--min-approval-rate",),
        {"type": int_or_none, "help": "Percent of a worker's past work approved (95; 'none' to drop)"},
    ),
]
