"""Vapi and Retell tool webhooks. STUB: helper B replaces this."""
from fastapi import APIRouter

router = APIRouter()
