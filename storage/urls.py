"""Storage pages (namespace ``storage``)."""

from django.urls import path

from storage import views

app_name = "storage"

urlpatterns = [
    path("storage/", views.storage_list, name="list"),
]
