"""Content limits of a talk track, shared by the validator and the card builders.

Why a module of their own: the loader rejects content over these limits and the card
builders rely on them (e.g. how many related buttons are shown), so both read one copy.
"""

from __future__ import annotations

# Content limits. Titles are shown as a WeCom template-card title (≤ 26 characters);
# the whole rendered card must fit in at most two WeCom markdown messages (2048 bytes
# each) and in one DingTalk message without truncation — checked on the rendered card.
MAX_TAG = 16
MAX_TITLE = 26
MAX_WHEN = 80
MAX_ITEM = 160
MAX_STEPS = 8
MAX_PHRASES = 6
MAX_CASES = 3
MAX_LINKS = 4
MAX_RELATED = 4
MAX_WECOM_PARTS = 2
TALK_TRACK_BUTTONS_MAX = 3
