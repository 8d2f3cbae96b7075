from django.apps import AppConfig


class StorageConfigApp(AppConfig):
    name = "storage"
    verbose_name = "Checkpoint storage"
