"""How the OpenAPI schema describes the token authentications (drf-spectacular extensions,
registered by being imported: ``AccountsConfig.ready``)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "ckptweb.accounts.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        prefix = self.target.authenticate_header(None)  # "Token", knox's setting
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=prefix)


class PasswordScheme(OpenApiAuthenticationExtension):
    """HTTP Basic, taken by ``POST tokens`` only (``ckpt login``)."""

    target_class = "ckptweb.accounts.auth.ThrottledBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic"}
