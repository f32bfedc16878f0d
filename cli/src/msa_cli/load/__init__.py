"""`msa load`: web and mobile journeys (Locust, headless, in a subprocess) against the gateways.

Only ``runner`` is imported here: ``locustfile`` is for Locust's process alone (gevent patching).
"""

from msa_cli.load.runner import at_least_one, more_than_zero, run

__all__ = ["at_least_one", "more_than_zero", "run"]
