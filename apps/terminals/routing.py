from django.urls import path

from apps.teaching.consumers import ClassLiveConsumer
from apps.terminals.consumers import SessionEventsConsumer, TerminalConsumer
from apps.terminals.watching import WatchConsumer

websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/terminals/<int:tab>/", TerminalConsumer.as_asgi()),
    path("ws/sessions/<uuid:session_id>/events/", SessionEventsConsumer.as_asgi()),
    path("ws/sessions/<uuid:session_id>/watch/<int:tab>/", WatchConsumer.as_asgi()),
    path("ws/classes/<int:pk>/live/", ClassLiveConsumer.as_asgi()),
]
