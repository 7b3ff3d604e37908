"""The ``modem://`` alert target: an Apprise notification of our own (``@notify(on="modem")``)
that sends the message as an SMS through ``collector.sms``, so that it sits in
``alerts.notify`` beside the others, retried and kept like them.

``modem://+46700000000`` sends through the config's only ``modem`` or ``hilink`` source;
``modem://NAME/+46700000000`` through the source named NAME. The SMS carries the message's
body (it reads on its own, without the title). A failure is one line in Apprise's log of the
send (what the outbox keeps and shows); the body is not logged.

Apprise's plugins are process-wide: the target is registered once, and sends with the config
handed over last (``register``), which is the config the collector or the command runs with.
"""

import logging
from typing import Any

from traffic.config import SMS_SCHEME, Config, ConfigError, sms_target

SERVICE_NAME = "Traffic SMS"
_config: list[Config] = []


def register(config: Config) -> None:
    """``modem://`` known to Apprise, sending through ``config``'s sources; ``ConfigError``
    when an ``alerts.notify`` entry names no source that sends SMS, or fits several."""
    check(config)
    first = not _config
    _config[:] = [config]
    if first:
        from apprise.decorators import notify

        notify(on="modem", name=SERVICE_NAME)(_send)


def check(config: Config) -> None:
    from collector.sms import sms_channel

    for index, entry in enumerate(config.alerts.notify):
        if entry.url.lower().startswith(SMS_SCHEME):
            try:
                sms_channel(config, sms_target(entry.url)[0] or None)
            except ConfigError as error:
                raise ConfigError(f"alerts.notify[{index}]: {error}") from None


def _send(body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any,
          **kwargs: Any) -> bool:
    from collector.sms import SmsError, sms_channel

    try:
        source, number = sms_target(meta["url"])
        sms_channel(_config[0], source or None).send(number, body)
    except (ValueError, ConfigError, SmsError) as error:
        logging.getLogger("apprise").warning("%s", error)
        return False
    return True
