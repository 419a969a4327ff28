"""Lead routing core: intake, duplicate detection, rules and the routing decision.

Everything here is pure and database-free so the routing policy can be unit-tested,
simulated over a CSV before sales ops switch a rule on, and called by a database-backed
service that loads the state (under a lock), calls :func:`routing.route` and writes the
outcome.  The modules import only the standard library and openpyxl; they never import
``bot`` or other handlers, so the service layer can be restructured around them.
"""
