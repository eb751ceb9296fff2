"""Login, logout and "who am I".

`POST /auth/login` trades a username and password for a bearer token that expires after
`login_token_ttl` (12 hours by default) and follows the user's current role; `POST /auth/logout`
revokes the token it is called with.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from tidegate.console.deps import ClockDep, CurrentPrincipal, SessionDep, SettingsDep
from tidegate.console.errors import error_response
from tidegate.console.schemas.common import ERROR_RESPONSES, ErrorBody
from tidegate.console.schemas.users import LoginRequest, LoginResponse, PrincipalPublic, UserPublic
from tidegate.core.roles import ROLE_PERMISSIONS
from tidegate.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=LoginResponse,
    responses={401: {"model": ErrorBody, "description": "unknown user, bad password or disabled"}},
)
def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> LoginResponse | JSONResponse:
    source = request.client.host if request.client else None
    result = auth.login(
        session,
        username=body.username,
        password=body.password,
        now=clock(),
        ttl=settings.login_token_ttl,
        source=source,
    )
    if result is None:
        # Answered, not raised: the failure's audit event must commit with this request.
        return error_response(
            401, "unauthorized", "invalid username or password", {"WWW-Authenticate": "Bearer"}
        )
    return LoginResponse(
        access_token=result.token,
        expires_at=result.expires_at,
        user=UserPublic.model_validate(result.user),
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses={**ERROR_RESPONSES})
def logout(principal: CurrentPrincipal, session: SessionDep, clock: ClockDep) -> Response:
    if principal.token_id is not None:
        auth.logout(session, token_id=principal.token_id, now=clock(), actor=principal.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=PrincipalPublic, responses={**ERROR_RESPONSES})
def me(principal: CurrentPrincipal) -> PrincipalPublic:
    return PrincipalPublic(
        name=principal.name,
        role=principal.role,
        permissions=sorted(ROLE_PERMISSIONS[principal.role]),
    )
