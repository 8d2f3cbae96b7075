"""The Tokens page."""

from django.urls import path

from ckptweb.accounts import views

app_name = "accounts"
urlpatterns = [
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke", views.revoke, name="revoke"),
    path("tokens/det/<int:pk>/revoke", views.revoke_det, name="revoke-det"),
]
