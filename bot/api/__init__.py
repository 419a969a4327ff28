"""HTTP adapters for features: aiohttp handlers that call a feature's service.

Handlers never import aiohttp (a layer contract), so an endpoint that feeds a feature
lives here and the composition root (:mod:`bot.app`) attaches it to the feature's
``routes``; the runtime mounts whatever routes its features bring.
"""
