"""The sales playbook: talk tracks sales ops write in TOML, served to reps by #tag.

Sales ops own the content and edit it without code, so loading is strict and every
problem names the file, the entry and what is wrong, and a running server keeps serving
the last good playbook when an edit is broken (:class:`PlaybookService`).

A directory (packaged: ``cards/playbook/tracks/``; ``[playbook] dir`` in the config)
holds ``*.toml`` files (read in name order). Each file may contain:

* ``[[entry]]`` — a talk track: ``tag``, ``aliases``, ``title``, ``when``, ``steps``,
  ``phrases``, ``cases``, ``links`` (``{label, url}``), ``roles`` (default: everyone),
  ``concerns`` (extraction concern codes it answers), ``related`` (tags offered as
  buttons).
* ``[[command]]`` — a command for ``#帮助``: ``tag``, ``aliases``, ``usage``,
  ``description``, ``roles``, ``handler`` (``"playbook"`` for the ones this module
  answers, e.g. ``#帮助``; anything else means another feature answers it, and the
  playbook router must let the message through).

The package keeps the data (:mod:`.model`), loading and validation (:mod:`.load`), the
cards reps see (:mod:`.render`) and hot reload (:mod:`.service`) apart; callers import
the names below from ``cards.playbook`` so the split is an internal matter.
"""

from __future__ import annotations

from cards.playbook.limits import TALK_TRACK_BUTTONS_MAX
from cards.playbook.load import PACKAGED_DIR, PlaybookError, load_playbook, parse_playbook, playbook_files, resolve_dir
from cards.playbook.model import PLAYBOOK_HANDLER, Command, Entry, Link, Playbook, normalize_tag
from cards.playbook.render import ROLE_LABELS, button_label, talk_track_buttons
from cards.playbook.service import PlaybookService

__all__ = [
    "CONCERNS",
    "PACKAGED_DIR",
    "PLAYBOOK_HANDLER",
    "ROLE_LABELS",
    "TALK_TRACK_BUTTONS_MAX",
    "Command",
    "Entry",
    "Link",
    "Playbook",
    "PlaybookError",
    "PlaybookService",
    "button_label",
    "load_playbook",
    "normalize_tag",
    "parse_playbook",
    "playbook_files",
    "resolve_dir",
    "talk_track_buttons",
]


def __getattr__(name: str) -> tuple[str, ...]:
    """``CONCERNS``: the packaged lexicon's concern codes, read when asked for.

    Kept for callers of the old module, which hard-coded the list; the codes now live only
    in ``nlp/lexicon/data/concerns.toml`` and are not read at import time.
    """
    if name == "CONCERNS":
        from nlp.lexicon import concern_codes  # noqa: PLC0415 - lazy on purpose, see above

        return concern_codes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
