"""Conversations over SMS and WhatsApp: customers book, move and cancel by chatting, through the same tools."""
