"""API tokens (django-rest-knox): issued only to a completed sign-in, expiring, stored as a hash.

POST /api/v1/auth/token from a signed-in session (second factor given where the account has one),
or with username, password and, for such an account, otp_token in the body; the answer carries the
token once. POST /api/v1/auth/logout revokes the token it is sent with; /logout-all every token of
the account. Wrong passwords and codes here count towards the lockout like on the login page.
"""

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_record, client_ip
from accounts.models import User
from accounts.request_types import AuthedRequest
from accounts.signin import (
    second_factor_enrolled,
    second_factor_required,
    second_factor_verify,
    signin_failure_record,
    signin_failures_clear,
    signin_locked_out,
)
from ebike_registry.api import StringField
from ebike_registry.schema import ErrorSerializer


class TokenRequestSerializer(serializers.Serializer):
    username = StringField(required=False, max_length=150)
    password = StringField(required=False, max_length=256, style={"input_type": "password"})
    otp_token = StringField(required=False, max_length=32)


TokenOutput = inline_serializer(
    "ApiToken", {"token": serializers.CharField(), "expiry": serializers.DateTimeField(allow_null=True)}
)


class TokenCreateApi(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: TokenOutput,
            429: OpenApiResponse(ErrorSerializer, description="Locked out after repeated failures."),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        http_request = request._request
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)  # a malformed body is refused even with a session
        if request.user.is_authenticated:
            user: User = request.user  # a session past SecondFactorMiddleware: not pending
            how = "session"
        else:
            signed_in = self._sign_in(http_request, serializer.validated_data)
            if isinstance(signed_in, Response):
                return signed_in
            user, how = signed_in
        instance, token = AuthToken.objects.create(user=user)
        audit_record(
            user=user,
            action="auth.token_issued",
            object_type="user",
            object_id=user.pk,
            query={"via": how, "expiry": instance.expiry.isoformat() if instance.expiry else None},
            ip=client_ip(http_request),
        )
        return Response({"token": token, "expiry": instance.expiry}, status=status.HTTP_201_CREATED)

    def _sign_in(self, http_request: Any, data: dict[str, Any]) -> tuple[User, str] | Response:
        """The account the body's credentials sign in to, and how (a refusal as the answer to send)."""
        missing = {name: ["This field is required."] for name in ("username", "password") if not data.get(name)}
        if missing:
            return Response(missing, status=status.HTTP_400_BAD_REQUEST)
        user = authenticate(http_request, username=data["username"], password=data["password"])
        if user is None:
            return Response(
                {"non_field_errors": ["Wrong username or password, or the account is inactive."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        how = "password"
        if second_factor_required(user) or second_factor_enrolled(user):
            problem = self._second_factor(http_request, user, data.get("otp_token", ""))
            if problem is not None:
                return problem
            how = "password and one-time code"
        signin_failures_clear(username=user.get_username())
        return user, how

    def _second_factor(self, http_request: Any, user: User, code: str) -> Response | None:
        if not code:
            return Response(
                {"otp_token": ["This account signs in with a one-time code: send it as otp_token."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if signin_locked_out(request=http_request, username=user.get_username()):
            http_request.axes_locked_out = True  # AxesMiddleware answers with the lockout
            return Response(status=status.HTTP_429_TOO_MANY_REQUESTS)
        if second_factor_verify(user=user, token=code) is None:
            signin_failure_record(request=http_request, username=user.get_username(), reason="wrong one-time code")
            return Response({"otp_token": ["The one-time code is wrong or was already used."]}, status=400)
        return None


class TokenLogoutApi(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, 400: None}, tags=["auth"])
    def post(self, request: AuthedRequest) -> Response:
        if not isinstance(request.auth, AuthToken):
            return Response(
                {"detail": "This revokes the API token the request is sent with (Authorization: Token …)."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        request.auth.delete()
        audit_record(
            user=request.user,
            action="auth.token_revoked",
            object_type="user",
            object_id=request.user.pk,
            ip=client_ip(request._request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenLogoutAllApi(APIView):
    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def post(self, request: AuthedRequest) -> Response:
        count, _ = AuthToken.objects.filter(user=request.user).delete()
        audit_record(
            user=request.user,
            action="auth.token_revoked",
            object_type="user",
            object_id=request.user.pk,
            query={"all": True},
            result_count=count,
            ip=client_ip(request._request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
