"""The enforcer's side of image profiling, authenticated by the group token: containers started
with `TIDEGATE_PROFILE=<name>` (start or join the profile's session), observation batches
(idempotent by key), and container exits (an env-started session stops with its last one).
"""

from __future__ import annotations

from fastapi import APIRouter

from tidegate.console.deps import ClockDep, CurrentEnforcerGroup, SessionDep
from tidegate.console.routes.profiles import stop_answer
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.profiles import (
    EnvSessionAnswer,
    EnvSessionBody,
    ExitedAnswer,
    ObservationAnswer,
    ObservationBatchBody,
    SessionPublic,
)
from tidegate.services import profiles

router = APIRouter(
    prefix="/enforcer/profiling", tags=["enforcer API"], responses={**ERROR_RESPONSES}
)


@router.post("/sessions", response_model=EnvSessionAnswer)
def env_session(
    body: EnvSessionBody, group: CurrentEnforcerGroup, session: SessionDep, clock: ClockDep
) -> EnvSessionAnswer:
    """Start the profile's session, or add the container to the active one (safe to repeat)."""
    joined, started = profiles.join_env_session(
        session,
        profile=body.profile,
        image_ref=body.image_ref,
        digest=body.digest,
        container_id=body.container_id,
        append=body.append,
        group=group.name,
        now=clock(),
    )
    return EnvSessionAnswer(session=SessionPublic.of(joined), started=started)


@router.post("/observations", response_model=ObservationAnswer)
def observations(
    body: ObservationBatchBody, _group: CurrentEnforcerGroup, session: SessionDep, clock: ClockDep
) -> ObservationAnswer:
    """Store a batch: keys already stored are duplicates, sessions no longer active ignored; an
    unknown session or a malformed observation refuses the whole batch (nothing stored)."""
    items = [
        profiles.ObservationIn(
            key=o.key, session_id=o.session_id, observation=o.observation(f"observations[{i}]")
        )
        for i, o in enumerate(body.observations)
    ]
    result = profiles.record_observations(session, items=items, now=clock())
    return ObservationAnswer(
        accepted=list(result.accepted),
        duplicates=list(result.duplicates),
        ignored=list(result.ignored),
    )


@router.post("/containers/{container_id}/exited", response_model=ExitedAnswer)
def container_exited(
    container_id: str, group: CurrentEnforcerGroup, session: SessionDep, clock: ClockDep
) -> ExitedAnswer:
    stopped = profiles.container_exited(
        session, container_id=container_id, group=group.name, now=clock()
    )
    return ExitedAnswer(stopped=[stop_answer(r) for r in stopped])
