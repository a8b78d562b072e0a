"""Placeholder: the live class view's consumer is written by its author."""

from channels.generic.websocket import AsyncWebsocketConsumer


class ClassLiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close(code=4004)
