"""``hotline-cti serve``: a supervisor and its two services, each in its own process.

``supervisor`` starts ``routing`` (FastAGI: the call path, no database) and, when AMI, MQTT or
the wallboard are asked for, ``events`` (records, transfers, outbox, commands, the wall). Each
child feeds a heartbeat; a child that stops beating is killed and started again, so a stalled
controller's sockets close and Asterisk's dialplan falls back at once instead of holding callers
in silence. Children die with the supervisor, however it dies.
"""
