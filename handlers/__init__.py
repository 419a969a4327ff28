"""What the bot does, one package per capability (Netflix-Dispatch style).

Every capability package has the same shape, with only the modules it needs:
``models`` (domain types), ``service`` (rules over the tables, never commits),
``handlers`` (the chat router), ``cards``, ``jobs`` (scheduled work) and its rules TOML;
its ``__init__`` exposes a :class:`bot.features.Feature`. ``common`` holds formatting and
date helpers several capabilities share. Handlers see only platform-neutral messages
(:mod:`bot.messages`) and reach people only through :func:`bot.pipeline.notify.notify`.
The composition root (:mod:`bot.app`) lists the features in routing order.
"""
