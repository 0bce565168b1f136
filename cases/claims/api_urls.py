from django.urls import path

from cases.claims import api as views

urlpatterns = [
    path("insurance-claims", views.ClaimListApi.as_view(), name="insurance-claim-list"),
    path("insurance-claims/<int:claim_id>", views.ClaimDetailApi.as_view(), name="insurance-claim-detail"),
    path("insurance-claims/<int:claim_id>/submit", views.ClaimSubmitApi.as_view(), name="insurance-claim-submit"),
    path("insurance-claims/<int:claim_id>/approve", views.ClaimApproveApi.as_view(), name="insurance-claim-approve"),
    path("insurance-claims/<int:claim_id>/reject", views.ClaimRejectApi.as_view(), name="insurance-claim-reject"),
    path("insurance-claims/<int:claim_id>/pay", views.ClaimPayApi.as_view(), name="insurance-claim-pay"),
    path("insurance-claims/<int:claim_id>/settle", views.ClaimSettleApi.as_view(), name="insurance-claim-settle"),
]
