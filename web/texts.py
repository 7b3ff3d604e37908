"""The usage figures as people read them, written once for the page and for ``/api/v1/usage``.

The page shows them when it is rendered; js/traffic.js puts in the ones ``/api/v1/usage``
sends each minute instead of formatting the numbers again.
"""

from typing import Any

from traffic.config import Config
from traffic.periods import starts_day
from traffic.quota import Beside, Usage
from traffic.report import comparison
from traffic.sites import SiteUse
from traffic.source_state import SourceState, billed_label, subject
from traffic.units import format_duration, format_size


def usage_texts(usage: Usage, config: Config, states: list[SourceState]) -> dict[str, Any]:
    """``rx_text`` ``"12.3 GB"``, ..., ``beside_text`` (one sentence per other count) and
    ``period_first_format``: ``date``, or ``datetime`` when the period does not start at the
    start of a day (after ``traffic reset-month``). ``states``: the sources' states, which
    name the bill's counters."""
    system = config.quota.unit_system

    def size(value: int) -> str:
        return format_size(value, system)

    ours = billed_label(states)
    return {
        "rx_text": size(usage.rx), "tx_text": size(usage.tx),
        "estimate_text": size(usage.estimate),
        "today_text": size(usage.today) + (f" of {size(usage.daily_limit)}"
                                           if usage.daily_limit else ""),
        "sample_age_text": sample_age_label(usage.sample_age_s),
        "beside_text": [beside_sentence(item, usage.total, ours, system)
                        for item in usage.beside],
        "period_first_format": ("date" if starts_day(usage.period_start, config.timezone)
                                else "datetime"),
    }


def site_texts(use: SiteUse) -> dict[str, Any]:
    """A site's line of the overview of every site: ``total_text``, ``limit_text`` (None
    without a limit) and ``sample_age_text``."""
    system, result = use.config.quota.unit_system, use.usage
    return {"total_text": format_size(result.total, system),
            "limit_text": format_size(result.limit, system) if result.limit else None,
            "sample_age_text": sample_age_label(result.sample_age_s)}


def sample_age_label(age: float | None) -> str:
    if age is None:
        return "No reading yet: is the collector running?"
    return f"Last reading {format_duration(max(age, 0))} ago."


def beside_sentence(item: Beside, billed_total: int, ours: str, system: str) -> str:
    """Another count of the link, for the family: ``The router counted 12.31 GB, this box
    12.29 GB (0.02 GB apart).``"""
    theirs, billed, apart = comparison(item, billed_total, system)
    head = (f"{subject(item.label)}'s own month: {theirs}" if item.what == "router month"
            else f"{subject(item.label)} counted {theirs}")
    return f"{head}, {ours} {billed} ({apart})."
