"""Image profiling: profiling sessions (start, list, stop), runtime profiles (list, read, edit,
delete, mode, readiness, YAML export).

Reading needs `policies:read`; starting and stopping sessions and every profile change need
`policies:write` (services.profiles records the audit events). A stopped session's profile is
applied in audit mode; `POST /profiles/{name}/mode` switches it to enforce.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import yaml
from fastapi import APIRouter, Depends, Query, Response, status

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.profiles import (
    ModeBody,
    ProfileBody,
    ProfilePublic,
    ProfileVersionPublic,
    ReadinessPublic,
    SessionPublic,
    SessionStart,
    StopAnswer,
)
from tidegate.core.profile import SessionState, profile_to_document
from tidegate.core.roles import Permission
from tidegate.services import profiles
from tidegate.services.profiles import StopResult

router = APIRouter(prefix="/profiles", tags=["image profiling"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.POLICIES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.POLICIES_WRITE))]


def stop_answer(result: StopResult) -> StopAnswer:
    return StopAnswer(
        session=SessionPublic.of(result.session),
        profile=ProfilePublic.of(result.profile),
        observations=result.observations,
    )


@router.post("/sessions", response_model=SessionPublic, status_code=status.HTTP_201_CREATED)
def start_session(
    body: SessionStart, principal: Writer, session: SessionDep, clock: ClockDep
) -> SessionPublic:
    """Start profiling an image's repository (409 when the profile is already being learned);
    with `duration_seconds`, the automatic profiler stops and applies it when due."""
    duration = None if body.duration_seconds is None else timedelta(seconds=body.duration_seconds)
    started = profiles.start_session(
        session,
        image=body.image,
        profile=body.profile,
        append=body.append,
        actor=principal.name,
        now=clock(),
        duration=duration,
    )
    return SessionPublic.of(started)


@router.get("/sessions", response_model=list[SessionPublic])
def list_sessions(
    _p: Reader,
    session: SessionDep,
    state: SessionState | None = None,
    profile: Annotated[str | None, Query(max_length=128)] = None,
) -> list[SessionPublic]:
    return [
        SessionPublic.of(s) for s in profiles.list_sessions(session, state=state, profile=profile)
    ]


@router.get("/sessions/{session_id}", response_model=SessionPublic)
def get_session(session_id: str, _p: Reader, session: SessionDep) -> SessionPublic:
    return SessionPublic.of(profiles.get_session(session, session_id=session_id))


@router.post("/sessions/{session_id}/stop", response_model=StopAnswer)
def stop_session(
    session_id: str, principal: Writer, session: SessionDep, clock: ClockDep
) -> StopAnswer:
    """Stop learning: the profile is built from the observations and applied in audit mode."""
    result = profiles.stop_session(
        session, session_id=session_id, actor=principal.name, now=clock()
    )
    return stop_answer(result)


@router.get("", response_model=list[ProfilePublic])
def list_profiles(_p: Reader, session: SessionDep) -> list[ProfilePublic]:
    return [ProfilePublic.of(p) for p in profiles.list_profiles(session)]


@router.get("/{name}", response_model=ProfilePublic)
def get_profile(name: str, _p: Reader, session: SessionDep) -> ProfilePublic:
    return ProfilePublic.of(profiles.get_profile(session, name=name))


@router.put("/{name}", response_model=ProfilePublic)
def put_profile(
    name: str,
    body: ProfileBody,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
) -> ProfilePublic:
    """Create or edit a profile (201 when created); each change bumps its version."""
    change = profiles.put_profile(
        session,
        name=name,
        edited=body.profile(name),
        mode=body.mode,
        actor=principal.name,
        now=clock(),
    )
    if change.created:
        response.status_code = status.HTTP_201_CREATED
    return ProfilePublic.of(change.profile)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_profile(name: str, principal: Writer, session: SessionDep, clock: ClockDep) -> Response:
    profiles.delete_profile(session, name=name, actor=principal.name, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/mode", response_model=ProfilePublic)
def set_mode(
    name: str, body: ModeBody, principal: Writer, session: SessionDep, clock: ClockDep
) -> ProfilePublic:
    change = profiles.set_mode(
        session, name=name, mode=body.mode, actor=principal.name, now=clock()
    )
    return ProfilePublic.of(change.profile)


@router.get("/{name}/readiness", response_model=ReadinessPublic)
def readiness(
    name: str,
    _p: Reader,
    session: SessionDep,
    latest: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> ReadinessPublic:
    """DETECT events against the profile since it was applied or last switched mode."""
    return ReadinessPublic.of(profiles.readiness(session, name=name, latest=latest))


@router.get("/{name}/versions", response_model=list[ProfileVersionPublic])
def versions(name: str, _p: Reader, session: SessionDep) -> list[ProfileVersionPublic]:
    return [
        ProfileVersionPublic(
            version=v.version,
            change=v.change,  # type: ignore[arg-type]
            changed=v.changed,
            changed_by=v.changed_by,
            document=v.document,
        )
        for v in profiles.profile_history(session, name=name)
    ]


@router.get(
    "/{name}/export",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}, "description": "the YAML document"}},
)
def export(name: str, _p: Reader, session: SessionDep) -> Response:
    """The profile as a `kind: RuntimeProfile` document (`tidegate apply -f` takes it back)."""
    document = profile_to_document(profiles.get_profile(session, name=name))
    text = yaml.safe_dump([document], sort_keys=False, allow_unicode=True)
    return Response(content=text, media_type="application/yaml")
