"""gradproof.reports — LaTeX report, figures and the command line."""

__all__: list[str] = []
