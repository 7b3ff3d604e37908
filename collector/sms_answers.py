"""The words of the answers to ``status`` and ``usage``: the sentences the dashboard and
``traffic status`` show, so that a text says what the family reads at home."""

from collections.abc import Iterable

from traffic.config import Config
from traffic.counters import Delta
from traffic.periods import from_ms
from traffic.published import read_keeper
from traffic.quota import Usage, usage
from traffic.report import link_words, usage_sentence
from traffic.source_state import UP, source_states
from traffic.store import Store
from traffic.units import format_size

LINK_WORDS = {"up": "Link up.", "down": "Link down."}


def status_answer(config: Config, store: Store, now: int, unsaved: Iterable[Delta],
                  via: str) -> str:
    """The period's use, the limit and the days left; the link as the keeper last found it;
    what the source ``via`` (else the first that sees the mobile link) says of the signal."""
    current = usage(store, config, now, unsaved)
    parts = [usage_sentence(current, config.quota.unit_system)]
    keeper = read_keeper(store, config)
    if keeper is not None and keeper.get("link") in LINK_WORDS:
        parts.append(LINK_WORDS[keeper["link"]])
    states = sorted((state for state in source_states(config, store, now)
                     if state.state == UP and state.sees_link),
                    key=lambda state: state.name != via)
    if states:
        parts.append(f"{states[0].subject}: {', '.join(link_words(states[0]))}.")
    return " ".join(parts)


def usage_answer(config: Config, store: Store, now: int, unsaved: Iterable[Delta]) -> str:
    """The period's sentence, today's use and the estimate for the period."""
    current = usage(store, config, now, unsaved)
    return (f"{usage_sentence(current, config.quota.unit_system)} "
            f"{today_and_pace(current, config)}")


def today_and_pace(current: Usage, config: Config) -> str:
    def size(value: int) -> str:
        return format_size(value, config.quota.unit_system)

    last_day = from_ms(current.period_end - 1, config.timezone)
    daily = f" of {size(current.daily_limit)}" if current.daily_limit else ""
    return (f"Today {size(current.today)}{daily}. At this pace {size(current.estimate)} "
            f"by {last_day:%-d %b}.")
