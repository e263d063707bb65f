"""Developer tools: the demo, the ``make dev`` loop and the devstack built from settings.

They start the devstack; product code never imports this package.
"""
