"""Reports: leaderboards, statistics, plots and Markdown/HTML/CSV writers, built
from the results store alone (no torch, no transformers).

    load_results(url) -> long DataFrame      leaderboard(df, by="culture") -> DataFrame
    print_leaderboard(board, console)         write_report(url, out_dir) -> <out_dir>/report
"""

from cai_bench.results import COLUMNS, load_results
from cai_bench.reports.statistics import leaderboard
from cai_bench.reports.terminal import print_leaderboard
from cai_bench.reports.writer import write_report

__all__ = ["COLUMNS", "leaderboard", "load_results", "print_leaderboard", "write_report"]
