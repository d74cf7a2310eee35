"""Supervisor wallboard (大屏): live queue state, today's figures and the merger view, served over HTTP + SSE.

``live`` folds queue and agent AMI events and the link's call records into state (pure), ``figures``
counts a day's calls, ``merger`` builds the per-line merger view, ``auth`` holds users and signed sessions,
``app`` is the aiohttp application and ``service`` wires them to an AMI client, the link's record builder
and the store (:func:`hotline_cti.wallboard.service.start_wallboard`).
"""
