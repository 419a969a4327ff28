"""The message pipeline: inbox (store) → dispatcher (handlers, one transaction) → outbox (store) → delivery.

``inbox`` and ``outbox`` are the stores: what is written, claimed and finished, and
nothing else. ``dispatcher`` turns one claimed inbox row into handler work; ``delivery``
hands one claimed outbox row to its channel. ``workers`` is the single poll loop both
run in. Nothing here knows which features exist: the runtime passes the router in.
"""
