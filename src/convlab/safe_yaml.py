"""YAML from a run directory, which anyone may have written: read as bounded plain data.

An alias repeats an anchored node without repeating its text, so a few hundred bytes of nested
aliases ("billion laughs") expand to gigabytes in the loader's result. What convlab writes there
has no anchor or alias and is a few kilobytes at most, so a file with either, or a large one, is
refused unparsed; safe_load alone would expand it.
"""

from pathlib import Path

import yaml

from convlab.errors import ConvlabError

MAX_BYTES = 1 << 20


class _Aliased(yaml.YAMLError):
    """An anchor or an alias, by its line: refused where it appears, before anything expands."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses an anchor or an alias at the event that carries it, before any
    node is repeated."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Aliased(event.start_mark.line + 1)
        return super().compose_node(parent, index)


def load(path: Path):
    """The plain data in a YAML file, or a one-line ConvlabError saying why it is refused."""
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConvlabError(f"{path} is unreadable ({e.strerror or e})") from None
    if len(text) > MAX_BYTES:
        raise ConvlabError(
            f"{path} is unreadable (over {MAX_BYTES // 1024} KiB; convlab writes far less there)"
        )
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except _Aliased as e:
        raise ConvlabError(
            f"{path} is unreadable (a YAML anchor or alias on line {e.args[0]}, which convlab "
            "never writes: aliases can expand a small file to gigabytes)"
        ) from None
    except (yaml.YAMLError, RecursionError) as e:  # RecursionError: nested thousands deep
        raise ConvlabError(f"{path} is unreadable ({type(e).__name__})") from None
