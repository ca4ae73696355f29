"""`trainer report`: the paper's section 4.1 analyses (Figs. 2 and 3) and Table 1 for any models.

analysis (numbers) -> figures (PNGs) -> document (blocks) -> markdown / html (files); build runs
the steps; results holds the data they pass along.
"""
from emolive.trainer.report.build import build_report, command_line, load_sources

__all__ = ["build_report", "command_line", "load_sources"]
