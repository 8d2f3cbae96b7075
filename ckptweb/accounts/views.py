"""The Tokens page (``/tokens/``): every signed-in user creates, lists and revokes their API
tokens and sees their ``det user login`` tokens; staff see and revoke everyone's. A new key
is shown once, in the answer to the form that created it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ckptweb.accounts import services
from ckptweb.accounts.models import NAME_LENGTH, ApiToken
from ckptweb.detcompat.auth import revoke_token as revoke_det_token
from ckptweb.detcompat.models import DetToken


class NewTokenForm(forms.Form):
    name = forms.CharField(max_length=NAME_LENGTH)
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return value


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    form = NewTokenForm(request.POST or None)
    created = key = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            created, key = services.create_token(
                request.user, form.cleaned_data["name"], form.cleaned_data["expires_at"]
            )
            form = NewTokenForm()
        else:
            status = 400
    everyone = request.user.is_staff
    context = {
        "form": form,
        "created": created,
        "key": key,
        "everyone": everyone,
        "api_tokens": services.api_tokens(request.user, everyone=everyone),
        "det_tokens": services.det_tokens(request.user, everyone=everyone),
        "url": request.build_absolute_uri("/").rstrip("/"),
    }
    response = render(request, "accounts/tokens.html", context, status=status)
    if key:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def revoke(request, pk: int):
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
    if not services.may_manage(request.user, token.user_id):
        raise PermissionDenied
    services.revoke_token(token)
    messages.success(request, f"Revoked the token {token.name!r}.")
    return redirect("accounts:tokens")


@login_required
@require_POST
def revoke_det(request, pk: int):
    row = get_object_or_404(DetToken, pk=pk)
    if not services.may_manage(request.user, row.user_id):
        raise PermissionDenied
    revoke_det_token(row)
    messages.success(request, "Revoked the det login token.")
    return redirect("accounts:tokens")
