"""The usage figures as people read them, written once for the page and for ``/api/v1/usage``.

The page shows them when it is rendered; js/traffic.js puts in the ones ``/api/v1/usage``
sends each minute instead of formatting the numbers again.
"""

from typing import Any

from traffic.config import Config
from traffic.quota import Usage
from traffic.source_state import billed_label, source_states
from traffic.units import format_size
from web.pages import beside_sentence, period_days, sample_age_label


def usage_texts(usage: Usage, config: Config) -> dict[str, Any]:
    """``rx_text`` ``"12.3 GB"``, ..., ``beside_text`` (one sentence per other count) and
    ``period_first_format``: ``date``, or ``datetime`` when the period does not start at the
    start of a day (after ``traffic reset-month``)."""
    system = config.quota.unit_system

    def size(value: int) -> str:
        return format_size(value, system)

    ours = billed_label(source_states(config, usage.now))
    first, _ = period_days(usage.period_start, usage.period_end, config.timezone)
    return {
        "rx_text": size(usage.rx), "tx_text": size(usage.tx),
        "estimate_text": size(usage.estimate),
        "today_text": size(usage.today) + (f" of {size(usage.daily_limit)}"
                                           if usage.daily_limit else ""),
        "sample_age_text": sample_age_label(usage.sample_age_s),
        "beside_text": [beside_sentence(item, usage.total, ours, system)
                        for item in usage.beside],
        "period_first_format": first.format,
    }
