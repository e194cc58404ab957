"""Model profiles made callable: the ChatModel ABC, the OpenAI-compatible client, local model."""

from .base import CallRecord, ChatModel, Message, ModelResponse, ResponseFormat, TokenUsage

__all__ = ["CallRecord", "ChatModel", "Message", "ModelResponse", "ResponseFormat", "TokenUsage"]
