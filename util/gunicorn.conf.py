"""gunicorn settings for the Traffic web app; the address comes from the Traffic config."""

from traffic.config import load_config

bind = [load_config().web.bind]
workers = 2
# gevent: each connection waits in a greenlet of a few KB, not in a worker, so clients that send
# half a request (slowly, or never) cannot hold up the others; a request's headers must arrive
# within keepalive seconds. The sync worker waited on each one for `timeout` (doc/operations.rst).
worker_class = "gevent"
worker_connections = 500  # per worker; more than a household opens, few enough to stay small
keepalive = 5
accesslog = None  # a line per realtime update would wear the SD card; errors are logged
errorlog = "-"
timeout = 30
graceful_timeout = 10
control_socket_disable = True  # nothing uses it; it would be one shared path for every instance
