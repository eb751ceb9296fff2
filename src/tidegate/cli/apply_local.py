"""`tidegate apply/export --data-dir`: the documents straight to and from the console's database.

Its own module so that the CLI imports the console's services (SQLAlchemy and the rest) only when
a command works on a data directory, not on every start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tidegate.console.schemas.policies import PolicyBody
from tidegate.core.policy import Mode
from tidegate.core.profile import profile_from_document, profile_to_document
from tidegate.services import acks as ack_service
from tidegate.services import policies as policy_service
from tidegate.services import profiles as profile_service


class DatabaseBackend:
    """Straight to the console's database (bootstrap); changes are made as "apply"."""

    def __init__(self, session: Any, now: datetime, actor: str = "apply") -> None:
        self.session, self.now, self.actor = session, now, actor

    def policies(self) -> list[dict[str, Any]]:
        rows = policy_service.list_policies(self.session)
        return [
            PolicyBody.model_validate(policy_service.policy_document(r)).document() for r in rows
        ]

    def create_policy(self, doc: dict[str, Any]) -> None:
        policy_service.create_policy(self.session, document=doc, actor=self.actor, now=self.now)

    def replace_policy(self, name: str, doc: dict[str, Any]) -> None:
        policy_service.replace_policy(
            self.session, key=name, document=doc, actor=self.actor, now=self.now
        )

    def acknowledgements(self) -> list[dict[str, Any]]:
        rows = ack_service.list_acknowledgements(
            self.session, now=self.now, state=ack_service.AckState.ACTIVE, limit=100_000
        )
        return [{"id": r.id, **ack_service.ack_document(r)} for r in rows]

    def create_ack(self, doc: dict[str, Any]) -> None:
        doc = {**doc, "requester": doc.get("requester") or self.actor}
        ack_service.create_acknowledgement(
            self.session, document=doc, actor=self.actor, now=self.now
        )

    def update_ack(self, ack_id: str, changes: dict[str, Any]) -> None:
        ack_service.update_acknowledgement(
            self.session, ack_id=ack_id, changes=changes, actor=self.actor, now=self.now
        )

    def profiles(self) -> list[dict[str, Any]]:
        return [profile_to_document(p) for p in profile_service.list_profiles(self.session)]

    def put_profile(self, name: str, doc: dict[str, Any]) -> None:
        profile_service.put_profile(
            self.session,
            name=name,
            edited=profile_from_document(doc, f"RuntimeProfile {name}"),
            mode=Mode(doc.get("mode", Mode.AUDIT)),
            actor=self.actor,
            now=self.now,
        )
