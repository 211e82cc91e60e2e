"""The service: the handler of every operation of the table, over one server's state.

A transport calls a handler by the operation's name with the path's parameters and
a :class:`~._requests.ServiceRequest`; the handler answers an
:class:`~._service.Answer` (or the :class:`~._service.Messages` of an event
stream) and raises errors of the tree only.  HTTP (``_app``) and the channel
(``_channel``) are the adapters in front of it.
"""

from __future__ import annotations

from ._service_credit import CreditRoutes
from ._service_rules import RuleRoutes
from ._service_spaces import Operations
from ._service_transactions import Transactions

__all__ = ["Api"]


class Api(Operations, Transactions, RuleRoutes, CreditRoutes):
    """The state of one server and the handlers of its operations."""
