"""Feishu/Lark adapter: lark-oapi long connection or webhook in, interactive cards out."""

from .adapter import FeishuAdapter
from .settings import FeishuSettings

__all__ = ["FeishuAdapter", "FeishuSettings"]
