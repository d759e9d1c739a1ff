"""Plan before you download: every quant of a model sized exactly, fitted, timed and priced."""
