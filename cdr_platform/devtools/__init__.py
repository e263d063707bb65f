"""Developer tools: the demo, the ``make dev`` loop, the devstack built from settings, and the clean
stop that ends every process a command started on Ctrl-C, SIGTERM or an error.

They start the devstack; product code never imports this package.
"""
