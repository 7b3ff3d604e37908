"""gunicorn settings for the Traffic web app; the address comes from the Traffic config."""

from traffic.config import load_config

bind = [load_config().web.bind]
workers = 2
worker_class = "sync"
accesslog = None  # a line per realtime update would wear the SD card; errors are logged
errorlog = "-"
timeout = 30
graceful_timeout = 10
control_socket_disable = True  # nothing uses it; it would be one shared path for every instance
