"""Traffic's benchmarks: ``python -m bench [--quick] [NAME ...]`` prints one line per figure.

See bench/README.md for what each figure is and how it is measured.
"""
