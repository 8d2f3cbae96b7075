"""Storage pages."""

urlpatterns: list = []
