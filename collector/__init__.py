"""The collector: polls sources, turns counters into deltas, stores them."""
