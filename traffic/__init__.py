"""Traffic: watch and keep alive a household's metered mobile-broadband link."""

__version__ = "0.1.0"
