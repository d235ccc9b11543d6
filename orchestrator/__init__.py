"""jada-agent: an autonomous Claude agent daemon under hard budgets."""

__version__ = "0.1.0"
