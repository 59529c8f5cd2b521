"""The one kind of error a user's request can meet: it cannot be carried out, and the message says
why in words meant for them. Every service's error derives from it, so commands turn any into a
CommandError and dashboard actions into a message, without catching each service's own."""

from __future__ import annotations


class ActionRefused(Exception):
    """A request that cannot be carried out; the message says what to change."""
