from django.urls import path

from apps.terminals.consumers import SessionEventsConsumer, TerminalConsumer

websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/terminals/<int:tab>/", TerminalConsumer.as_asgi()),
    path("ws/sessions/<uuid:session_id>/events/", SessionEventsConsumer.as_asgi()),
]
