from django.urls import path

from cases.claims import views as claim_views

app_name = "claims"

urlpatterns = [
    path("claims/", claim_views.claim_list, name="list"),
    path("claims/<int:claim_id>/", claim_views.claim_detail, name="detail"),
]
