"""The ``traffic`` command: the one place that wires the core, the collector and the web app.

It sits above all three, so the core (``traffic``) never imports upward.
"""
