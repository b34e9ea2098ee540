from django.apps import AppConfig


class PostureConfig(AppConfig):
    name = "posture"

    def ready(self) -> None:
        from posture import schema  # noqa: F401  (registers OpenAPI extensions)
