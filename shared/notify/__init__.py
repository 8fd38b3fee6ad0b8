"""Alarm notifications, pure: channel configuration (:mod:`.config`), one message per alarm transition
(:mod:`.messages`), webhook HMAC signatures (:mod:`.signing`), who gets what and when — severity filter,
quiet hours, retry back-off (:mod:`.policy`) — and the delivery outbox with its dedupe by transition id
(:mod:`.outbox`). No I/O here: the reporter (:mod:`services.reporter.notifications`) sends and persists.
"""
