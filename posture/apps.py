from django.apps import AppConfig


class PostureConfig(AppConfig):
    name = "posture"
