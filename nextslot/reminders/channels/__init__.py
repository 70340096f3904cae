"""Message channels for confirmations and reminders, and the factory that builds the configured ones."""
from nextslot.reminders.channels.base import Channel, ChannelName, Content, OutgoingMessage, SendResult
from nextslot.reminders.channels.local_outbox import LocalOutboxChannel, outbox_file
from nextslot.reminders.channels.smtp_channel import SmtpEmailChannel
from nextslot.reminders.channels.twilio_channels import TwilioSmsChannel, TwilioWhatsAppChannel, twilio_client
from nextslot.settings import Settings

__all__ = ["Channel", "ChannelName", "Content", "LocalOutboxChannel", "OutgoingMessage", "SendResult",
           "SmtpEmailChannel", "TwilioSmsChannel", "TwilioWhatsAppChannel", "build_channels", "twilio_client"]


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Build every channel whose settings are complete, keyed by channel name."""
    channels: dict[str, Channel] = {}
    if settings.twilio_account_sid and settings.twilio_auth_token:
        client = twilio_client(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_url)
        callback = f"{settings.public_url.rstrip('/')}/webhooks/twilio/status"
        if settings.twilio_sms_from:
            channels["sms"] = TwilioSmsChannel(client, settings.twilio_sms_from, callback)
        if settings.twilio_whatsapp_from:
            channels["whatsapp"] = TwilioWhatsAppChannel(client, settings.twilio_whatsapp_from, callback)
    if settings.smtp_host and settings.smtp_sender:
        channels["email"] = SmtpEmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender,
                                             settings.smtp_username, settings.smtp_password, settings.smtp_starttls)
    if settings.local_outbox:  # `nextslot up` with nothing configured: what is missing goes to the local outbox
        for name in ("whatsapp", "sms", "email"):
            channels.setdefault(name, LocalOutboxChannel(name, outbox_file(settings.data_dir)))
    return channels
