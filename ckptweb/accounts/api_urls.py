"""Token routes, mounted under /api/v1/."""

from django.urls import path

from ckptweb.accounts import api

urlpatterns = [
    path("tokens", api.TokenList.as_view(), name="tokens"),
    path("tokens/<int:pk>", api.TokenDetail.as_view(), name="token"),
]
