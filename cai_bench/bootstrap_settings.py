"""Bootstrap settings shared by `run` and pipeline configs, `report` and the statistics:
one default and one floor (a 95 % percentile CI from fewer than 10 resamples has no tails to read)."""

N_BOOT = 1000
MIN_N_BOOT = 10
