from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import api_auth, policy_views
from accounts import auth_views as signin_views

urlpatterns = [
    path("login/", signin_views.SignInView.as_view(), name="login"),
    path("login/second-factor/", signin_views.second_factor, name="second-factor"),
    path("login/second-factor/enrol/", signin_views.second_factor_enrol, name="second-factor-enrol"),
    path("login/second-factor/recovery-codes/", signin_views.recovery_codes_renew, name="recovery-codes"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("security/policy/", policy_views.security_policy, name="security-policy"),
    path("api/v1/auth/token", api_auth.TokenCreateApi.as_view(), name="api-token"),
    path("api/v1/auth/logout", api_auth.TokenLogoutApi.as_view(), name="api-token-logout"),
    path("api/v1/auth/logout-all", api_auth.TokenLogoutAllApi.as_view(), name="api-token-logout-all"),
]
