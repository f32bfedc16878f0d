"""Change detection (polling, ``/monitor`` webhook) and refresh events on Redis."""
