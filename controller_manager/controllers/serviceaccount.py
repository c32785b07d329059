"""The service account controller: a ``default`` ServiceAccount in every active namespace.

``reconcile(namespace)`` creates the account when the namespace is active and the informer does
not show it; a namespace being deleted is left alone (the API server would refuse the create).
Deleting the account brings it back.
"""

from __future__ import annotations

from typing import ClassVar

from api import errors
from controller_manager.base import Controller, ControllerContext

NAMESPACES = "namespaces"
SERVICE_ACCOUNTS = "serviceaccounts"
ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    name: ClassVar[str] = "serviceaccount"
    workers: ClassVar[int] = 2

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.namespaces = ctx.informers.informer_for(NAMESPACES)
        self.accounts = ctx.informers.informer_for(SERVICE_ACCOUNTS)
        self.namespaces.add_event_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))
        self.accounts.add_event_handler(on_delete=self._account_deleted)

    def _account_deleted(self, sa: dict) -> None:
        md = sa.get("metadata") or {}
        if md.get("name") in ACCOUNTS and md.get("namespace"):
            self.queue.add(md["namespace"])

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        for name in ACCOUNTS:
            if self.accounts.get(f"{key}/{name}") is not None:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": key}}
            try:
                await self.client.create(SERVICE_ACCOUNTS, body, key)
                self.log.info("created service account", namespace=key, serviceaccount=name)
            except errors.AlreadyExists:
                pass
            except (errors.Forbidden, errors.NotFound):
                return None          # the namespace is going away
        return None
