"""Subcommands of ``bidl``: one module each, with ``HELP``, ``EXAMPLE``,
``add_arguments(parser)`` and ``run(args)``. ``bidl.cli`` lists them in ``COMMANDS``."""
